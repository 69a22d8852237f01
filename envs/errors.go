package envs

import (
	"errors"

	"github.com/devctl/devctl/envs/internal/providers"
)

var (
	// ErrEnvNotFound is returned for an environment that does not exist or
	// that devctl did not create.
	ErrEnvNotFound = errors.New("environment not found (devctl ls lists environments)")
	// ErrNotSupported is returned when the backend lacks an ability, such as
	// loading images.
	ErrNotSupported = errors.New("not supported by this environment backend")
	// ErrInvalidName is returned for a name ValidateName rejects.
	ErrInvalidName = errors.New("invalid environment name")
	// ErrNotManaged is returned by Up when a cluster with the name exists but
	// was not created by devctl.
	ErrNotManaged = errors.New("a cluster with this name exists but was not created by devctl; delete it or choose another name")
)

// CommandError carries the output of a failed backend command (for example a
// `docker` or node command run by kind). Find it with errors.As and show
// Output above the error message.
type CommandError = providers.CommandError

// ErrUnknownProvider is returned for a provider name no backend has.
var ErrUnknownProvider = errors.New("unknown cluster provider")
