package app

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/devctl/devctl/daemon"
	"github.com/devctl/devctl/internal/api"
)

// A newer devctl talking to an older daemon says so, stops it, waits for
// it to exit and starts its own on the same socket and state.
func TestVersionSkewRestartsTheDaemon(t *testing.T) {
	sockDir, err := os.MkdirTemp("", "dctl")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(sockDir) })
	sock, stateDir := filepath.Join(sockDir, "d.sock"), t.TempDir()
	deps, closeDeps := daemon.RealDeps(slog.New(slog.DiscardHandler))
	t.Cleanup(closeDeps)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	start := func(version string) <-chan error {
		d := daemon.New(daemon.Options{Socket: sock, StateDir: stateDir, Version: version, Deps: deps})
		dctx, stop := context.WithCancel(context.Background())
		done := make(chan error, 1)
		exited := make(chan struct{})
		go func() { done <- d.Run(dctx); close(exited) }()
		t.Cleanup(func() { stop(); <-exited })
		c := api.NewClient(sock)
		for range 500 {
			if h, err := c.Health(ctx); err == nil && h.Version == version {
				return done
			}
			time.Sleep(10 * time.Millisecond)
		}
		t.Fatalf("daemon %s did not answer", version)
		return nil
	}
	oldDone := start("v0.1.0+0123456789ab")

	var errOut bytes.Buffer
	spawned := false
	g := &globalOptions{socket: sock, errOut: &errOut, spawn: func(context.Context) error {
		select {
		case err := <-oldDone:
			if err != nil {
				t.Errorf("old daemon: %v", err)
			}
		default:
			t.Error("the new daemon was started before the old one exited")
		}
		spawned = true
		start(buildID())
		return nil
	}}
	c, err := g.ensureDaemon(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !spawned {
		t.Fatal("no new daemon started")
	}
	h, err := c.Health(ctx)
	if err != nil || h.Version != buildID() {
		t.Fatalf("health %+v, %v; want version %s", h, err, buildID())
	}
	if msg := errOut.String(); !strings.Contains(msg, "is v0.1.0+0123456789ab, this devctl is "+buildID()) || !strings.Contains(msg, "restarting it") {
		t.Errorf("devctl said %q", msg)
	}
	// The same build is used as is.
	errOut.Reset()
	spawned = false
	if _, err := g.ensureDaemon(ctx, nil); err != nil || spawned || errOut.Len() != 0 {
		t.Errorf("same version: err %v, restarted %v, said %q", err, spawned, errOut.String())
	}
}
