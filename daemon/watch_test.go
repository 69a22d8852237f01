package daemon

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/devctl/devctl/internal/api"
	"github.com/devctl/devctl/internal/watch"
)

// quickWatch is watch.New with a short quiet window.
func quickWatch(ctx context.Context, o watch.Options) (*watch.Watcher, error) {
	o.Quiet = 20 * time.Millisecond
	return watch.New(ctx, o)
}

// nextRun follows events until a run after run `after` settles, and returns
// the environment then.
func nextRun(t *testing.T, events <-chan api.Event, after int64) *api.Environment {
	t.Helper()
	timeout := time.After(20 * time.Second)
	for {
		select {
		case ev, ok := <-events:
			if !ok {
				t.Fatal("event stream ended")
			}
			e := ev.Environment
			if e != nil && e.Status.Run != nil && e.Status.Run.ID > after && !e.Status.Run.Active() {
				return e
			}
		case <-timeout:
			t.Fatalf("no run after #%d", after)
		}
	}
}

// watching follows events until the environment's watch state is want.
func watching(t *testing.T, events <-chan api.Event, want bool) *api.Environment {
	t.Helper()
	timeout := time.After(20 * time.Second)
	for {
		select {
		case ev := <-events:
			if e := ev.Environment; e != nil && e.Status.Watching == want {
				return e
			}
		case <-timeout:
			t.Fatalf("watching never became %v", want)
		}
	}
}

func TestWatchRebuildsChangedServiceOnly(t *testing.T) {
	t.Parallel()
	f := newFakeDeps()
	f.watch = quickWatch
	c := startDaemon(t, f, t.TempDir())
	dir := writeProject(t, "web", "api=9090")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	events, _, err := c.Events(ctx, "hello-main")
	if err != nil {
		t.Fatal(err)
	}
	up := upAndWait(t, c, dir)
	if up.Status.Phase != api.PhaseReady {
		t.Fatalf("up: %s %s", up.Status.Phase, up.Status.Message)
	}
	watching(t, events, true)

	saved := time.Now()
	writeFile(t, filepath.Join(dir, "web", "main.go"), "package main\n\nfunc main() { println(1) }\n")
	e := nextRun(t, events, up.Status.Run.ID)
	run := e.Status.Run
	if run.Request.Kind != api.RunRebuild || !slices.Equal(run.Request.Services, []string{"web"}) {
		t.Fatalf("run = %+v, want a rebuild of web", run.Request)
	}
	if run.Request.Reason != "main.go changed" {
		t.Errorf("reason = %q", run.Request.Reason)
	}
	if f.builds["api"] != 1 || f.builds["web"] != 2 {
		t.Errorf("builds = %v, want web twice, api once", f.builds)
	}
	if len(e.Status.Rebuilds) != 1 {
		t.Fatalf("rebuilds = %+v", e.Status.Rebuilds)
	}
	rb := e.Status.Rebuilds[0]
	if rb.Mode != ModeImage || rb.Error != "" || rb.SaveToServing <= 0 || rb.SaveToServing > time.Since(saved) {
		t.Errorf("rebuild = %+v (saved %s ago)", rb, time.Since(saved))
	}
	if len(rb.Phases) != 5 || rb.Phases[0].Name != RebuildDetect || rb.Phases[0].Duration < 20*time.Millisecond {
		t.Errorf("phases = %+v, want detect first, at least the quiet window", rb.Phases)
	}
	if st := e.Status.RebuildStats; len(st) != 1 || st[0].Count != 1 || st[0].P50 != rb.SaveToServing {
		t.Errorf("stats = %+v", st)
	}

	// devctl.yaml changed: a full up.
	writeFile(t, filepath.Join(dir, "devctl.yaml"), readFile(t, filepath.Join(dir, "devctl.yaml"))+"# edited\n")
	e = nextRun(t, events, run.ID)
	if e.Status.Run.Request.Kind != api.RunUp || e.Status.Run.Request.Reason != "devctl.yaml changed" {
		t.Fatalf("run = %+v, want an up for devctl.yaml", e.Status.Run.Request)
	}
}

func TestWatchPauseKeepsChangesForResume(t *testing.T) {
	t.Parallel()
	f := newFakeDeps()
	f.watch = quickWatch
	c := startDaemon(t, f, t.TempDir())
	dir := writeProject(t, "web")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	events, _, err := c.Events(ctx, "hello-main")
	if err != nil {
		t.Fatal(err)
	}
	up := upAndWait(t, c, dir)
	watching(t, events, true)
	if _, err := c.SetWatch(ctx, "hello-main", false); err != nil {
		t.Fatal(err)
	}
	e := watching(t, events, false)
	if e.Spec.Watch {
		t.Fatal("spec still asks for watching")
	}
	for i := range 3 {
		writeFile(t, filepath.Join(dir, "web", fmt.Sprintf("f%d.go", i)), "package main\n")
	}
	time.Sleep(200 * time.Millisecond) // ten quiet windows: a rebuild would have started
	if got, _ := c.Get(ctx, "hello-main"); got.Status.Run.ID != up.Status.Run.ID {
		t.Fatalf("paused, yet run #%d started (%s)", got.Status.Run.ID, got.Status.Run.Request.Reason)
	}
	if _, err := c.SetWatch(ctx, "hello-main", true); err != nil {
		t.Fatal(err)
	}
	e = nextRun(t, events, up.Status.Run.ID)
	if r := e.Status.Run.Request; r.Kind != api.RunRebuild || r.Reason != "3 files changed" {
		t.Fatalf("after resume: %+v, want one rebuild of the 3 files", r)
	}
}

func TestWatchStopsOnDownAndRestartsWithDaemon(t *testing.T) {
	t.Parallel()
	f := newFakeDeps()
	f.watch = quickWatch
	state := t.TempDir()
	c := startDaemon(t, f, state)
	dir := writeProject(t, "web")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	events, _, err := c.Events(ctx, "hello-main")
	if err != nil {
		t.Fatal(err)
	}
	upAndWait(t, c, dir)
	watching(t, events, true)
	c.stop()

	c2 := startDaemon(t, f, state)
	events2, _, err := c2.Events(ctx, "hello-main")
	if err != nil {
		t.Fatal(err)
	}
	e := watching(t, events2, true)
	writeFile(t, filepath.Join(dir, "web", "main.go"), "package main\n\nfunc main() { println(2) }\n")
	e = nextRun(t, events2, e.Status.Run.ID)
	if e.Status.Run.Request.Kind != api.RunRebuild {
		t.Fatalf("after a daemon restart: %+v, want a rebuild", e.Status.Run.Request)
	}
	if _, err := c2.Down(ctx, "hello-main"); err != nil {
		t.Fatal(err)
	}
	for ev := range events2 {
		if ev.Type == api.EventDeleted {
			break
		}
	}
	ws := c2.d.watchers
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		ws.mu.Lock()
		n := len(ws.m)
		ws.mu.Unlock()
		if n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d watcher(s) left after down", n)
		}
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestWatchOffForCIUntilResumed(t *testing.T) {
	t.Parallel()
	f := newFakeDeps()
	f.watch = quickWatch
	c := startDaemon(t, f, t.TempDir())
	dir := writeProject(t, "web")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	events, _, err := c.Events(ctx, "hello-main")
	if err != nil {
		t.Fatal(err)
	}
	off := false
	acc, err := c.Up(ctx, api.UpRequest{ProjectRef: api.ProjectRef{Dir: dir}, Watch: &off})
	if err != nil {
		t.Fatal(err)
	}
	e := settled(t, events, acc.Generation)
	if e.Spec.Watch || e.Status.Watching {
		t.Fatalf("up --ci: spec.watch %v, watching %v", e.Spec.Watch, e.Status.Watching)
	}
	writeFile(t, filepath.Join(dir, "web", "main.go"), "package main\n\nfunc main() { println(3) }\n")
	time.Sleep(200 * time.Millisecond) // ten quiet windows
	if got, _ := c.Get(ctx, "hello-main"); got.Status.Run.ID != e.Status.Run.ID {
		t.Fatalf("not watched, yet run #%d started (%s)", got.Status.Run.ID, got.Status.Run.Request.Reason)
	}
	if _, err := c.SetWatch(ctx, "hello-main", true); err != nil {
		t.Fatal(err)
	}
	watching(t, events, true)
	writeFile(t, filepath.Join(dir, "web", "main.go"), "package main\n\nfunc main() { println(4) }\n")
	if e = nextRun(t, events, e.Status.Run.ID); e.Status.Run.Request.Kind != api.RunRebuild {
		t.Fatalf("after resume: %+v, want a rebuild", e.Status.Run.Request)
	}
}

func TestWatchTakesUpLiveConfigWithoutLosingChanges(t *testing.T) {
	t.Parallel()
	f := newFakeDeps()
	f.watch = quickWatch
	c := startDaemon(t, f, t.TempDir())
	dir := writeProject(t, "web")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	events, _, err := c.Events(ctx, "hello-main")
	if err != nil {
		t.Fatal(err)
	}
	upAndWait(t, c, dir)
	watching(t, events, true)
	ws := c.d.watchers
	ws.mu.Lock()
	before := ws.m["hello-main"].w
	ws.mu.Unlock()

	// live: added in devctl.yaml: an up, the same watcher, the new rules.
	writeFile(t, filepath.Join(dir, "web", "static", "a.txt"), "1\n")
	e := nextRun(t, events, 0)
	writeFile(t, filepath.Join(dir, "devctl.yaml"), readFile(t, filepath.Join(dir, "devctl.yaml"))+"    live:\n      sync: [{path: static, dest: /static}]\n")
	for e.Status.Run.Request.Kind != api.RunUp || e.Status.Run.Request.Reason != "devctl.yaml changed" {
		e = nextRun(t, events, e.Status.Run.ID)
	}
	writeFile(t, filepath.Join(dir, "web", "static", "a.txt"), "2\n")
	// The change is not lost: the fake daemon has no agent to deploy, so
	// the service is not in live mode and it is rebuilt as an image.
	for e.Status.Run.Request.Kind != api.RunRebuild || e.Status.Run.Request.Reason != "static/a.txt changed" {
		e = nextRun(t, events, e.Status.Run.ID)
	}
	if e.Status.Run.Request.Live {
		t.Errorf("rebuild %+v: a live update of a service deployed without the agent", e.Status.Run.Request)
	}
	ws.mu.Lock()
	after := ws.m["hello-main"].w
	ws.mu.Unlock()
	if after != before {
		t.Error("the watcher was replaced although its folders did not change")
	}
}
