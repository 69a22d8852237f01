package daemon

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/devctl/devctl/internal/api"
)

// The daemon serves only its own user: the peer's credentials are checked,
// not only the socket file's mode.
func TestDaemonRefusesOtherUsers(t *testing.T) {
	t.Parallel()
	sockDir, err := os.MkdirTemp("", "dctl")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(sockDir) })
	sock := filepath.Join(sockDir, "d.sock")
	// This process plays another user: the daemon serves only uid+1.
	other := os.Getuid() + 1
	d := New(Options{Socket: sock, StateDir: t.TempDir(), Deps: newFakeDeps().deps(), PeerUID: &other})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("daemon Run: %v", err)
		}
	})
	for range 500 {
		if _, err := os.Stat(sock); err == nil {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	hctx, hcancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer hcancel()
	if h, err := api.NewClient(sock).Health(hctx); err == nil {
		t.Fatalf("a connection of another user was served: %+v", h)
	}

	// Its own user is served.
	c := startDaemon(t, newFakeDeps(), t.TempDir())
	if _, err := c.Health(context.Background()); err != nil {
		t.Fatalf("own user refused: %v", err)
	}
}
