//go:build agentembed

package agentbin

import "embed"

// bin holds the agents `make agent` built. The agentembed tag is set by
// `make build`; without it devctl has no agent embedded.
//
//go:embed bin/devctl-agent-linux-*
var bin embed.FS

func embedded(goarch string) ([]byte, bool) {
	b, err := bin.ReadFile("bin/" + FileName(goarch))
	return b, err == nil
}
