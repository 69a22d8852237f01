// Package agentbin provides the devctl-agent executable that devctl puts
// into live-mode pods, and the build context of its FROM scratch image.
//
// `make build` compiles cmd/devctl-agent for linux into bin/ here and builds
// devctl with the agentembed tag, which embeds it. A plain `go build` (or
// `go install`) has no agent embedded; devctl then looks for
// $DEVCTL_AGENT_BINARY, and for devctl-agent-linux-<arch> next to its own
// executable.
package agentbin

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// EnvBinary names a devctl-agent executable (static, linux) that wins over
// the embedded one.
const EnvBinary = "DEVCTL_AGENT_BINARY"

// Dockerfile builds the agent image from a context holding devctl-agent.
const Dockerfile = `FROM scratch
COPY devctl-agent /devctl-agent
USER 65532:65532
ENTRYPOINT ["/devctl-agent"]
`

// ErrNotAvailable means no agent binary was found for the architecture.
var ErrNotAvailable = errors.New("no devctl-agent binary: build devctl with `make build` (it embeds the agent), or set " + EnvBinary + " to a static linux devctl-agent")

// executable is os.Executable, replaced in tests.
var executable = os.Executable

// FileName is the name of the agent for linux/goarch, in bin/ here and next
// to the devctl executable.
func FileName(goarch string) string { return "devctl-agent-linux-" + goarch }

// Binary returns the devctl-agent executable for linux/goarch and where it
// came from: $DEVCTL_AGENT_BINARY (taken as built for goarch), the binary
// embedded by `make build`, or FileName(goarch) next to the running
// executable.
func Binary(goarch string) (data []byte, from string, err error) {
	if p := os.Getenv(EnvBinary); p != "" {
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, "", fmt.Errorf("agent binary from %s: %w", EnvBinary, err)
		}
		return b, p, nil
	}
	if b, ok := embedded(goarch); ok {
		return b, "embedded", nil
	}
	if exe, err := executable(); err == nil {
		p := filepath.Join(filepath.Dir(exe), FileName(goarch))
		if b, err := os.ReadFile(p); err == nil {
			return b, p, nil
		}
	}
	return nil, "", fmt.Errorf("linux/%s: %w", goarch, ErrNotAvailable)
}

// WriteContext writes the agent image's build context into dir: the agent
// for linux/goarch and the Dockerfile. devctl builds it like a service
// image, so the image tag is the hash of the binary.
func WriteContext(dir, goarch string) (from string, err error) {
	b, from, err := Binary(goarch)
	if err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(dir, "devctl-agent"), b, 0o755); err != nil {
		return "", fmt.Errorf("agent image context: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte(Dockerfile), 0o644); err != nil {
		return "", fmt.Errorf("agent image context: %w", err)
	}
	return from, nil
}
