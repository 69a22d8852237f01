package app

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/devctl/devctl/daemon"
	"github.com/devctl/devctl/internal/api"
	"github.com/devctl/devctl/internal/paths"
)

// client returns a daemon client without starting the daemon.
func (g *globalOptions) client() *api.Client { return api.NewClient(g.socket) }

// ensureDaemon returns a client of a running daemon, starting one in the
// background (its log in the state dir) when nothing answers.
func (g *globalOptions) ensureDaemon(ctx context.Context, onStart func()) (*api.Client, error) {
	c := g.client()
	if _, err := c.Health(ctx); err == nil {
		return c, nil
	} else if !errors.Is(err, api.ErrDaemonNotRunning) {
		return nil, err
	}
	if onStart != nil {
		onStart()
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
