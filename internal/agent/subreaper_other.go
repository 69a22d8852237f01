//go:build unix && !linux

package agent

import "errors"

func setSubreaper() error { return errors.ErrUnsupported }
