package watch

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fsnotify/fsnotify"
	clocktesting "k8s.io/utils/clock/testing"
)

var epoch = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// writeTree creates files under dir; a name ending in "/" is a folder.
func writeTree(t testing.TB, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if strings.HasSuffix(name, "/") {
			if err := os.MkdirAll(p, 0o755); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// harness runs a Watcher on a FakeNotifier and a fake clock.
type harness struct {
	t     *testing.T
	dir   string
	w     *Watcher
	fake  *FakeNotifier
	clock *clocktesting.FakeClock
}

// start creates and runs a Watcher with a fake notifier and clock. Roots'
// relative Dirs are taken under dir; no roots means one named "app" at dir.
func start(t *testing.T, dir string, o Options) *harness {
	t.Helper()
	h := &harness{t: t, dir: dir, fake: NewFakeNotifier(), clock: clocktesting.NewFakeClock(epoch)}
	if len(o.Roots) == 0 {
		o.Roots = []Root{{Name: "app", Dir: "."}}
	}
	for i := range o.Roots {
		o.Roots[i].Dir = filepath.Join(dir, o.Roots[i].Dir)
	}
	o.Clock = h.clock
	o.NewNotifier = func() (Notifier, error) { return h.fake, nil }
	w, err := New(t.Context(), o)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	h.w = w
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return h
}

func (h *harness) send(op fsnotify.Op, rel string) {
	h.fake.Send(fsnotify.Event{Name: filepath.Join(h.dir, filepath.FromSlash(rel)), Op: op})
}

// step moves the clock and waits until the watcher has seen the new time.
func (h *harness) step(d time.Duration) {
	h.clock.Step(d)
	h.fake.Sync()
}

// next returns the batch that is ready after a step. The watcher hands it
// out once back in its loop; the timeout only keeps a broken test from
// hanging.
func (h *harness) next() Batch {
	h.t.Helper()
	select {
	case b, ok := <-h.w.Batches():
		if !ok {
			h.t.Fatal("Batches closed")
		}
		return b
	case <-time.After(10 * time.Second):
		h.t.Fatal("no batch ready")
		return Batch{}
	}
}

// none fails when a batch is waiting on Batches. After a step the
// watcher's state is settled, so a batch it has is offered, not about to be
// made.
func (h *harness) none() {
	h.t.Helper()
	select {
	case b := <-h.w.Batches():
		h.t.Fatalf("unexpected batch %v", b.Changes)
	default:
	}
}

// watched returns the watched folders relative to the harness folder.
func (h *harness) watched() []string {
	var rels []string
	for _, d := range h.fake.Watched() {
		rel, err := filepath.Rel(h.dir, d)
		if err != nil {
			h.t.Fatal(err)
		}
		rels = append(rels, filepath.ToSlash(rel))
	}
	return rels
}
