//go:build !linux

package daemon

// releaseBinaryPages is a no-op where the binary's pages cannot be advised.
func releaseBinaryPages() (int, error) { return 0, nil }
