package helm

import "errors"

var (
	// ErrInvalidValues means the values do not satisfy the chart's
	// values.schema.json or its templates' checks; the message names the key.
	ErrInvalidValues = errors.New("invalid chart values")
	// ErrInvalidArgument means a caller passed an empty or inconsistent
	// argument (release name, namespace, chart).
	ErrInvalidArgument = errors.New("invalid argument")
)
