// Package providers declares the small interface every environment backend
// (kind today, vcluster later) implements, and the optional abilities a
// backend may add.
package providers

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/devctl/devctl/internal/api"
)

// ErrExists is returned by Provider.Create when an environment with the name
// is already present.
var ErrExists = errors.New("environment already exists")

// ErrNotFound is returned by Provider methods for a name the backend does
// not know.
var ErrNotFound = errors.New("environment not found")

// Provider creates and removes environments of one backend.
// Implementations are safe for concurrent use.
type Provider interface {
	// Name is the backend's name, recorded with each environment ("kind").
	Name() string
	// Create makes the environment and returns when it is ready to use.
	// It returns an error wrapping ErrExists when name is already present.
	Create(ctx context.Context, name string, o CreateOptions) error
	// Delete removes the environment; deleting an absent one is not an error.
	Delete(ctx context.Context, name string) error
	// List returns the names of all environments the backend can see,
	// including ones devctl did not create.
	List(ctx context.Context) ([]string, error)
	// Kubeconfig returns a kubeconfig that reaches the environment's API
	// server from this machine.
	Kubeconfig(ctx context.Context, name string) ([]byte, error)
}

// ImageLoader is implemented by backends that can put an image archive
// (the output of `docker save`) straight into the environment's nodes.
type ImageLoader interface {
	// LoadImages imports the archive into every node. archive is called
	// once per node and each returned stream is closed by LoadImages.
	LoadImages(ctx context.Context, name string, archive func() (io.ReadCloser, error)) error
}

// RegistryPuller is implemented by backends that can tell whether an
// environment's nodes pull from the daemon's registry (it was created with
// CreateOptions.RegistryHostsDir).
type RegistryPuller interface {
	PullsFromRegistry(ctx context.Context, name string) (bool, error)
}

// Prepuller is implemented by backends whose nodes can be told to pull
// images now (from the registry their containerd is pointed at), so that
// pods scheduled moments later start without waiting for their pulls.
type Prepuller interface {
	Prepull(ctx context.Context, name string, refs []string) error
}

// Starter is implemented by backends whose stopped environments the user
// can start again by hand.
type Starter interface {
	// StartCommand is the shell command that starts name's stopped
	// environment, e.g. `docker start hello-main-control-plane`.
	StartCommand(ctx context.Context, name string) string
	// Start starts name's stopped environment (what StartCommand says);
	// starting a running one does nothing.
	Start(ctx context.Context, name string) error
}

// Containerized is implemented by backends whose environments run as
// containers of the local Docker engine.
type Containerized interface {
	// Containers returns the full IDs of name's containers.
	Containers(ctx context.Context, name string) ([]string, error)
}

// CreateOptions tune Provider.Create. Backends ignore fields that do not
// apply to them.
type CreateOptions struct {
	// Spec is what the environment should be; backends read the fields that
	// apply to them (NodeImage for kind).
	Spec api.EnvSpec
	// KubeconfigPath is the only kubeconfig file the backend may write while
	// creating; backends never touch the user's default kubeconfig.
	KubeconfigPath string
	// RegistryHostsDir, when set, is a folder of containerd registry hosts
	// files (internal/registry.WriteHostsDir) the nodes read, so that they
	// pull devctl's images from the daemon's registry.
	RegistryHostsDir string
	// WaitForReady bounds the wait for the control plane to be ready.
	WaitForReady time.Duration
	// Progress, when set, receives the backend's slow steps as they start
	// and end.
	Progress func(Step)
	// APIReady, when set, is called once while Create is still running, as
	// soon as the new cluster's API server answers with the credentials of
	// a kubeconfig the backend has already written at KubeconfigPath. The
	// file is only ever replaced whole (never seen half-written). Backends
	// that cannot tell earlier do not call it.
	APIReady func()
}

// StepState is where a Step is in its life.
type StepState int

// Step states.
const (
	StepStarted StepState = iota + 1
	StepDone
	StepFailed
)

// Step is a slow, user-visible phase of a backend operation.
type Step struct {
	Message string
	State   StepState
}

// Report sends s to o.Progress when it is set.
func (o CreateOptions) Report(message string, state StepState) {
	if o.Progress != nil {
		o.Progress(Step{Message: message, State: state})
	}
}

// CommandError carries the output of a backend command that failed. Its
// message ends with the last lines of the output, which usually hold the
// reason (kubeadm's, docker's); Output keeps all of it.
type CommandError struct {
	Command string
	Output  []byte
	Err     error
}

// commandErrorLines is how many of the output's last lines the message shows.
const commandErrorLines = 8

func (e *CommandError) Error() string {
	out := bytes.TrimSpace(e.Output)
	if len(out) == 0 {
		return e.Err.Error()
	}
	lines := strings.Split(string(out), "\n")
	if len(lines) > commandErrorLines {
		lines = lines[len(lines)-commandErrorLines:]
	}
	return fmt.Sprintf("%v; %s printed (last lines):\n  %s", e.Err, e.Command, strings.Join(lines, "\n  "))
}

func (e *CommandError) Unwrap() error { return e.Err }
