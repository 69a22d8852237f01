//go:build agentembed

package agentbin

import (
	"bytes"
	"runtime"
	"testing"
)

func TestEmbedded(t *testing.T) {
	t.Setenv(EnvBinary, "")
	b, from, err := Binary(runtime.GOARCH)
	if err != nil || from != "embedded" || !bytes.HasPrefix(b, []byte("\x7fELF")) {
		t.Errorf("embedded agent: %d bytes from %q, %v", len(b), from, err)
	}
}
