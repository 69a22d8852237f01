//go:build !agentembed

package agentbin

func embedded(string) ([]byte, bool) { return nil, false }
