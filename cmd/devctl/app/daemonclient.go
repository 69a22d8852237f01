package app

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"github.com/devctl/devctl/daemon"
	"github.com/devctl/devctl/internal/api"
	"github.com/devctl/devctl/internal/paths"
	"github.com/devctl/devctl/internal/version"
)

// client returns a daemon client without starting the daemon.
func (g *globalOptions) client() *api.Client { return api.NewClient(g.socket) }

// buildID names this build of devctl: its version and commit. A daemon
// that answers with another one is restarted.
func buildID() string {
	commit := version.Commit
	if commit == "unknown" {
		if bi, ok := debug.ReadBuildInfo(); ok {
			for _, s := range bi.Settings {
				if s.Key == "vcs.revision" && len(s.Value) >= 12 {
					commit = s.Value[:12]
				}
			}
		}
	}
	return version.Version + "+" + commit
}

// ensureDaemon returns a client of a running daemon, starting one in the
// background (its log in the state dir) when nothing answers. A daemon of
// another devctl build (an upgrade while it ran) is stopped and replaced:
// environments keep running and the new daemon rediscovers them.
func (g *globalOptions) ensureDaemon(ctx context.Context, onStart func()) (*api.Client, error) {
	c := g.client()
	h, err := c.Health(ctx)
	switch {
	case err == nil && h.Version == buildID():
		if h.StateError != "" {
			fmt.Fprintf(g.errOut, "devctl: warning: the daemon cannot save its state: %s\n", h.StateError)
		}
		return c, nil
	case err == nil:
		fmt.Fprintf(g.errOut, "devctl: the running daemon (pid %d) is %s, this devctl is %s: restarting it; environments keep running and are rediscovered\n",
			h.PID, h.Version, buildID())
		if err := stopDaemon(ctx, c, g.socket, 30*time.Second); err != nil {
			return nil, fmt.Errorf("restart the devctl daemon of another version (pid %d): %w; stop it with `kill %d` and run the command again", h.PID, err, h.PID)
		}
	case !errors.Is(err, api.ErrDaemonNotRunning):
		return nil, err
	}
	if onStart != nil {
		onStart()
	}
	if g.spawn != nil {
		return c, g.spawn(ctx)
	}
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("find devctl's own binary to start the daemon: %w", err)
	}
	stateDir := paths.StateDir()
	if err := paths.EnsurePrivateDir(stateDir); err != nil {
		return nil, err
	}
	logPath := filepath.Join(stateDir, "daemon.log")
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open daemon log: %w", err)
	}
	defer func() { _ = logf.Close() }()
	cmd := exec.Command(exe, "daemon", "run", "--socket", g.socket)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start the devctl daemon: %w", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	deadline := time.After(15 * time.Second)
	var exitErr error
	for {
		hctx, cancel := context.WithTimeout(ctx, time.Second)
		_, err := c.Health(hctx)
		cancel()
		if err == nil {
			return c, nil
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case exitErr = <-exited:
			// Another devctl may have started a daemon at the same time:
			// ours then exits because that one holds the socket; keep
			// asking that one. Any other exit is a failure.
			exited = nil
			if !strings.Contains(tail(logPath, 3), daemon.ErrAlreadyRunning.Error()) {
				return nil, fmt.Errorf("the devctl daemon exited at start (%w); its log %s ends with:\n%s", exitErr, logPath, tail(logPath, 15))
			}
		case <-deadline:
			if exitErr != nil {
				return nil, fmt.Errorf("the devctl daemon exited at start (%w); its log %s ends with:\n%s", exitErr, logPath, tail(logPath, 15))
			}
			return nil, fmt.Errorf("the devctl daemon did not answer on %s within 15s; see %s", g.socket, logPath)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// stopDaemon asks the daemon on socket to stop and waits until it has
// exited: its lock on the socket is released only then, by the kernel if
// need be.
func stopDaemon(ctx context.Context, c *api.Client, socket string, wait time.Duration) error {
	if err := c.Shutdown(ctx); err != nil && !errors.Is(err, api.ErrDaemonNotRunning) {
		return fmt.Errorf("ask it to stop: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	for {
		free, err := lockFree(socket + ".lock")
		if err != nil {
			return err
		}
		if free {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("it did not exit within %s", wait)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// lockFree says whether no process holds the daemon's lock at path.
func lockFree(path string) (bool, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return true, nil
	}
	if err != nil {
		return false, err
	}
	defer func() { _ = f.Close() }()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return false, nil
		}
		return false, fmt.Errorf("lock %s: %w", path, err)
	}
	_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
	return true, nil
}

// tail returns the last n lines of a file.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	lines := bytes.Split(bytes.TrimRight(b, "\n"), []byte("\n"))
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return string(bytes.Join(lines, []byte("\n")))
}
