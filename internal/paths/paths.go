// Package paths says where devctl keeps its socket, state and logs.
//
// The daemon's socket lives under $XDG_RUNTIME_DIR (per-user, mode 0700 by
// the login manager); without it, under a private 0700 directory in the
// system temp dir. State (environments, kubeconfigs, the daemon log) lives
// under $XDG_STATE_HOME/devctl, falling back to ~/.local/state/devctl.
// DEVCTL_SOCKET and DEVCTL_STATE_DIR override both, which tests use.
package paths

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
)

// Socket returns the path of the daemon's unix socket.
func Socket() string {
	if p := os.Getenv("DEVCTL_SOCKET"); p != "" {
		return p
	}
	if d := os.Getenv("XDG_RUNTIME_DIR"); d != "" {
		return filepath.Join(d, "devctl", "devctl.sock")
	}
	return filepath.Join(os.TempDir(), "devctl-"+strconv.Itoa(os.Getuid()), "devctl.sock")
}

// StateDir returns devctl's state directory.
func StateDir() string {
	if d := os.Getenv("DEVCTL_STATE_DIR"); d != "" {
		return d
	}
	if d := os.Getenv("XDG_STATE_HOME"); d != "" {
		return filepath.Join(d, "devctl")
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return filepath.Join(os.TempDir(), "devctl-state-"+strconv.Itoa(os.Getuid()))
	}
	return filepath.Join(home, ".local", "state", "devctl")
}

// EnsurePrivateDir creates dir with mode 0700 and refuses one that others
// can write to, so a socket or state file in it cannot be swapped.
func EnsurePrivateDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create %s: %w", dir, err)
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("check %s: %w", dir, err)
	}
	if fi.Mode().Perm()&0o022 != 0 {
		return fmt.Errorf("%s is writable by other users (mode %v): run `chmod 700 %s`", dir, fi.Mode().Perm(), dir)
	}
	return nil
}
