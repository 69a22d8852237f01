package daemon

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/devctl/devctl/internal/api"
	"github.com/devctl/devctl/internal/build"
)

// testDaemon is a daemon with fake deps on a real unix socket.
type testDaemon struct {
	*api.Client
	d    *Daemon
	stop func()
}

func startDaemon(t *testing.T, f *fakeDeps, stateDir string) *testDaemon {
	t.Helper()
	sockDir, err := os.MkdirTemp("", "dctl")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(sockDir) })
	sock := filepath.Join(sockDir, "d.sock")
	d := New(Options{Socket: sock, StateDir: stateDir, Version: "test", Deps: f.deps()})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	c := api.NewClient(sock)
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := c.Health(context.Background()); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("daemon did not answer")
		}
		time.Sleep(10 * time.Millisecond)
	}
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("daemon Run: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return &testDaemon{Client: c, d: d, stop: stop}
}

// settled follows events of env until generation gen is observed and the
// environment is ready or failed.
func settled(t *testing.T, events <-chan api.Event, gen int64) *api.Environment {
	t.Helper()
	for ev := range events {
		if ev.Type == api.EventDeleted {
			t.Fatalf("environment %s deleted", ev.Env)
		}
		e := ev.Environment
		if e != nil && e.Status.ObservedGeneration >= gen && !e.Status.Run.Active() {
			return e
		}
	}
	t.Fatal("event stream ended before the environment settled")
	return nil
}

// upAndWait sends an up for the project in dir and waits until it settles.
func upAndWait(t *testing.T, c *testDaemon, dir string) *api.Environment {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, events, gen := beginUp(ctx, t, c, dir)
	return settled(t, events, gen)
}

// beginUp follows the events of the project in dir's environment and sends
// an up for it; it returns the environment's name, the events and the
// generation the up asked for.
func beginUp(ctx context.Context, t *testing.T, c *testDaemon, dir string) (string, <-chan api.Event, int64) {
	t.Helper()
	res, err := c.Resolve(ctx, api.ProjectRef{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	events, _, err := c.Events(ctx, res.Name)
	if err != nil {
		t.Fatal(err)
	}
	acc, err := c.Up(ctx, api.UpRequest{ProjectRef: api.ProjectRef{Dir: dir}})
	if err != nil {
		t.Fatal(err)
	}
	return res.Name, events, acc.Generation
}

func stepList(run *api.Run) string {
	var names []string
	for _, s := range run.Steps {
		names = append(names, s.Name+":"+string(s.Status))
	}
	return strings.Join(names, " ")
}

func get(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

func TestDaemonUpOverUnixSocket(t *testing.T) {
	t.Parallel()
	f := newFakeDeps()
	c := startDaemon(t, f, t.TempDir())
	dir := writeProject(t, "web")

	fi, err := os.Stat(c.Socket())
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("socket mode = %v, want 0600", fi.Mode().Perm())
	}

	e := upAndWait(t, c, dir)
	if e.Name != "hello-main" || e.Status.Phase != api.PhaseReady {
		t.Fatalf("env %s phase = %s (%s)", e.Name, e.Status.Phase, e.Status.Message)
	}
	// The build ran beside the cluster, so both appear before deliver in
	// either order.
	got := stepList(e.Status.Run)
	if got != "config:done cluster:done build:done deliver:done render:done policy:done deploy:done ready:done" &&
		got != "config:done build:done cluster:done deliver:done render:done policy:done deploy:done ready:done" {
		t.Errorf("steps = %s", got)
	}
	web := e.Status.Service("web")
	if web == nil || !web.Ready || web.Revision != 1 || web.Image == "" || web.Image != web.DesiredImage || web.ChartDigest == "" || web.ValuesDigest == "" {
		t.Fatalf("services = %+v", e.Status.Services)
	}
	if body := get(t, web.URL); body != "hello from port 8080" {
		t.Errorf("GET %s = %q", web.URL, body)
	}
	if len(e.Status.Findings) != 0 {
		t.Errorf("the golden path has findings: %+v", e.Status.Findings)
	}

	// A second up with nothing changed delivers and deploys nothing.
	e2 := upAndWait(t, c, dir)
	if e2.Generation != 2 || e2.Status.Phase != api.PhaseReady {
		t.Fatalf("second up: %+v", e2.Status)
	}
	for _, s := range e2.Status.Run.Steps {
		if (s.Name == StepDeliver || s.Name == StepDeploy) && s.Status != api.StepSkipped {
			t.Errorf("second up: step %s = %s (%s), want skipped", s.Name, s.Status, s.Detail)
		}
	}
	if u := e2.Status.Service("web").URL; u != web.URL {
		t.Errorf("URL changed between ups: %s -> %s", web.URL, u)
	}
	if creates, loads, deploys := f.counts(); creates != 1 || loads != 1 || deploys != 1 {
		t.Errorf("creates %d loads %d deploys %d, want 1 each", creates, loads, deploys)
	}

	var buf bytes.Buffer
	if err := c.Logs(context.Background(), "hello-main", api.LogOptions{}, &buf); err != nil || buf.String() != "log line of web\n" {
		t.Errorf("logs = %q, %v", buf.String(), err)
	}
	if _, err := c.Get(context.Background(), "nope"); !errors.Is(err, api.ErrNotFound) {
		t.Errorf("get unknown: %v, want ErrNotFound", err)
	}
}

// Two ups at once on one branch give one environment and one deploy; the
// second is queued behind the first, not dropped and not racing it.
func TestDaemonConcurrentUpsQueue(t *testing.T) {
	t.Parallel()
	f := newFakeDeps()
	f.BuildGate = make(chan struct{})
	c := startDaemon(t, f, t.TempDir())
	dir := writeProject(t, "web")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	events, _, err := c.Events(ctx, "hello-main")
	if err != nil {
		t.Fatal(err)
	}
	var gens []int64
	var mu sync.Mutex
	var wg sync.WaitGroup
	for range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			e, err := c.Up(ctx, api.UpRequest{ProjectRef: api.ProjectRef{Dir: dir}})
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			gens = append(gens, e.Generation)
			mu.Unlock()
		}()
	}
	wg.Wait()
	// Every request got its own generation, none skipped or repeated.
	seen := map[int64]bool{}
	for _, g := range gens {
		seen[g] = true
	}
	if len(seen) != 3 || !seen[1] || !seen[2] || !seen[3] {
		t.Fatalf("generations = %v", gens)
	}
	close(f.BuildGate)
	e := settled(t, events, 3)
	if e.Status.ObservedGeneration != 3 || e.Status.Phase != api.PhaseReady {
		t.Fatalf("status = %+v", e.Status)
	}
	// The first run, then one run for the two queued requests.
	if e.Status.Run.ID != 2 {
		t.Errorf("last run = %d, want 2 (the queued ups coalesced)", e.Status.Run.ID)
	}
	if creates, _, deploys := f.counts(); creates != 1 || deploys != 1 {
		t.Errorf("creates %d deploys %d, want 1 each", creates, deploys)
	}
}

// A source change during a full up runs after it, as a rebuild of the
// changed service only, and what it builds is served.
func TestDaemonRebuildAfterUp(t *testing.T) {
	t.Parallel()
	f := newFakeDeps()
	f.BuildGate = make(chan struct{}, 10)
	c := startDaemon(t, f, t.TempDir())
	dir := writeProject(t, "web", "api=9090")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	events, _, err := c.Events(ctx, "hello-main")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Up(ctx, api.UpRequest{ProjectRef: api.ProjectRef{Dir: dir}}); err != nil {
		t.Fatal(err)
	}
	<-f.buildStarted // the up is building
	writeFile(t, filepath.Join(dir, "web", "main.go"), "package main\n\nfunc main() { println(2) }\n")
	c.d.store.Dispatch(RebuildRequested{Name: "hello-main", Services: []string{"web"}, Reason: "1 file changed"})
	for range 3 {
		f.BuildGate <- struct{}{}
	}
	e := settled(t, events, 2)
	run := e.Status.Run
	if run.Request.Kind != api.RunRebuild || e.Status.Phase != api.PhaseReady {
		t.Fatalf("last run = %+v, phase %s", run.Request, e.Status.Phase)
	}
	if f.builds["web"] != 2 || f.builds["api"] != 1 {
		t.Errorf("builds = %v, want web twice and api once", f.builds)
	}
	web, api2 := e.Status.Service("web"), e.Status.Service("api")
	if web.Revision != 2 || api2.Revision != 1 {
		t.Errorf("revisions web %d api %d, want 2 and 1", web.Revision, api2.Revision)
	}
	if web.Image != web.DesiredImage {
		t.Errorf("web runs %s, built %s", web.Image, web.DesiredImage)
	}
}

// A new version that does not become ready (its pod crashes) is rolled
// back: the release runs the previous image again, the environment stays
// Ready and serving, the error says what happened, and the next save
// builds and deploys anew.
func TestDaemonRollsBackAVersionThatDoesNotBecomeReady(t *testing.T) {
	t.Parallel()
	f := newFakeDeps()
	c := startDaemon(t, f, t.TempDir())
	dir := writeProject(t, "web")
	e := upAndWait(t, c, dir)
	good := e.Status.Service("web").Image
	f.mu.Lock()
	f.readyCheck = func(image string) error {
		if image != good {
			return errors.New("deployment hello/web cannot start: pod web-2: container app crashed (Error, exit code 2)")
		}
		return nil
	}
	f.mu.Unlock()

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	events, _, err := c.Events(ctx, "hello-main")
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "web", "main.go"), "package main\n\nfunc main() { panic(2) }\n")
	c.d.store.Dispatch(RebuildRequested{Name: "hello-main", Services: []string{"web"}, Reason: "main.go changed"})
	e = settled(t, events, 2)
	web := e.Status.Service("web")
	if e.Status.Phase != api.PhaseReady || e.Status.Run.Request.Kind != api.RunRebuild {
		t.Fatalf("phase %s after run %+v", e.Status.Phase, e.Status.Run.Request)
	}
	if msg := e.Status.Run.Error; !strings.Contains(msg, "container app crashed") || !strings.Contains(msg, "rolled back to "+good) {
		t.Errorf("run error = %q, want the crash and the rollback", msg)
	}
	if web.Image != good || web.DesiredImage == good || web.Revision != 3 {
		t.Errorf("web runs %s (revision %d, built %s), want %s again at revision 3", web.Image, web.Revision, web.DesiredImage, good)
	}
	f.mu.Lock()
	running := f.running["hello-main/web"]
	f.mu.Unlock()
	if running != good {
		t.Errorf("the release runs %s, want %s", running, good)
	}

	// The fix lands.
	f.mu.Lock()
	f.readyCheck = nil
	f.mu.Unlock()
	writeFile(t, filepath.Join(dir, "web", "main.go"), "package main\n\nfunc main() { println(3) }\n")
	c.d.store.Dispatch(RebuildRequested{Name: "hello-main", Services: []string{"web"}, Reason: "main.go changed"})
	e = settled(t, events, 3)
	web = e.Status.Service("web")
	if e.Status.Run.Error != "" || web.Image == good || web.Image != web.DesiredImage || web.Revision != 4 {
		t.Errorf("after the fix: error %q, web runs %s (revision %d), built %s", e.Status.Run.Error, web.Image, web.Revision, web.DesiredImage)
	}
}

func TestDaemonDownThenUpInOneDaemon(t *testing.T) {
	t.Parallel()
	f := newFakeDeps()
	c := startDaemon(t, f, t.TempDir())
	dir := writeProject(t, "web")
	e := upAndWait(t, c, dir)
	firstURL := e.Status.Service("web").URL

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	events, _, err := c.Events(ctx, "hello-main")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Down(ctx, "hello-main"); err != nil {
		t.Fatal(err)
	}
	deleted := false
	for ev := range events {
		if ev.Type == api.EventDeleted {
			deleted = true
			break
		}
	}
	if !deleted {
		t.Fatal("no deleted event")
	}
	if list, _ := c.List(ctx); len(list) != 0 {
		t.Errorf("after down: %+v", list)
	}
	if len(f.forgot) != 1 || f.forgot[0] != "/kube/hello-main" {
		t.Errorf("the cluster's clients were not forgotten: %v", f.forgot)
	}
	for _, fw := range f.forwards {
		if !fw.closed {
			t.Error("a port-forward outlived its environment")
		}
	}
	// Down again: nothing to delete, and nothing left behind.
	if st := downAndWait(t, c, "hello-main"); st.Detail != "nothing to delete: no cluster and no files" {
		t.Errorf("second down: %+v", st)
	}

	e = upAndWait(t, c, dir)
	if e.Status.Phase != api.PhaseReady || e.Generation != 1 {
		t.Fatalf("up after down: gen %d %+v", e.Generation, e.Status)
	}
	if creates, _, deploys := f.counts(); creates != 2 || deploys != 2 {
		t.Errorf("creates %d deploys %d, want 2 each", creates, deploys)
	}
	if body := get(t, e.Status.Service("web").URL); body != "hello from port 8080" {
		t.Errorf("GET = %q (first URL was %s)", body, firstURL)
	}
}

// A changed services[].port is served on the next up: the forward to the
// old port is replaced, the local URL kept.
func TestDaemonChangedPortIsServed(t *testing.T) {
	t.Parallel()
	f := newFakeDeps()
	c := startDaemon(t, f, t.TempDir())
	dir := writeProject(t, "web")
	e := upAndWait(t, c, dir)
	url := e.Status.Service("web").URL
	cfg, _ := os.ReadFile(filepath.Join(dir, "devctl.yaml"))
	writeFile(t, filepath.Join(dir, "devctl.yaml"), strings.Replace(string(cfg), "port: 8080", "port: 9000", 1))
	e = upAndWait(t, c, dir)
	web := e.Status.Service("web")
	if web.Port != 9000 || web.Revision != 2 {
		t.Fatalf("web = %+v", web)
	}
	if body := get(t, web.URL); body != "hello from port 9000" {
		t.Errorf("GET %s = %q", web.URL, body)
	}
	if web.URL != url {
		t.Errorf("URL changed: %s -> %s", url, web.URL)
	}
}

func TestDaemonRejectsBadRequests(t *testing.T) {
	t.Parallel()
	f := newFakeDeps()
	c := startDaemon(t, f, t.TempDir())
	ctx := context.Background()
	badValues := writeProject(t, "web")
	cfg, _ := os.ReadFile(filepath.Join(badValues, "devctl.yaml"))
	writeFile(t, filepath.Join(badValues, "devctl.yaml"), string(cfg)+"    values:\n      replicas: many\n")
	reserved := writeProject(t, "web")
	writeFile(t, filepath.Join(reserved, "devctl.yaml"), string(cfg)+"    values:\n      team: other\n")
	unknownProvider := writeProject(t, "web")
	writeFile(t, filepath.Join(unknownProvider, "devctl.yaml"), strings.Replace(string(cfg), "services:", "cluster:\n  provider: vcluster\nservices:", 1))
	tests := []struct {
		name string
		dir  string
		code string
		msg  string
	}{
		{"relative dir", "relative/dir", api.CodeBadRequest, "absolute"},
		{"missing dir", "/does/not/exist", api.CodeBadRequest, "does not exist"},
		{"nothing to build", t.TempDir(), api.CodeConfigInvalid, "nothing to detect"},
		{"values against the schema", badValues, api.CodeConfigInvalid, "replicas"},
		{"reserved values with line and column", reserved, api.CodeConfigInvalid, "devctl.yaml:12:7: services[0].values.team"},
		{"a provider no backend has", unknownProvider, api.CodeConfigInvalid, `unknown cluster provider "vcluster": use one of fake, kind`},
	}
	for _, tt := range tests {
		_, err := c.Up(ctx, api.UpRequest{ProjectRef: api.ProjectRef{Dir: tt.dir}})
		var se *api.StatusError
		if !errors.As(err, &se) || se.Err.Code != tt.code || !strings.Contains(se.Err.Message, tt.msg) {
			t.Errorf("%s: err = %v (%+v), want code %s containing %q", tt.name, err, se, tt.code, tt.msg)
		}
	}
	f.PingErr = errors.New("connect: docker engine is not reachable")
	if _, err := c.Up(ctx, api.UpRequest{ProjectRef: api.ProjectRef{Dir: writeProject(t, "web")}}); err == nil {
		t.Error("up with Docker down was accepted")
	}
	if list, _ := c.List(ctx); len(list) != 0 {
		t.Errorf("a rejected up created an environment: %+v", list)
	}
}

func TestDaemonFailureCarriesDiagnostics(t *testing.T) {
	t.Parallel()
	f := newFakeDeps()
	f.ReadyErr = errFake
	c := startDaemon(t, f, t.TempDir())
	e := upAndWait(t, c, writeProject(t, "web"))
	st := e.Status
	if st.Phase != api.PhaseFailed || !strings.Contains(st.Message, "fake failure") || !strings.Contains(st.Diagnostics, "CrashLoopBackOff") {
		t.Fatalf("got phase %s message %q diagnostics %q", st.Phase, st.Message, st.Diagnostics)
	}
	last := st.Run.Steps[len(st.Run.Steps)-1]
	if last.Name != StepReady || last.Status != api.StepFailed {
		t.Errorf("last step = %+v", last)
	}
}

// A build that fails (Docker gone) on an existing cluster says why without
// the cluster's pods and events, which have nothing to do with it.
func TestDaemonBuildFailureHasNoClusterDiagnostics(t *testing.T) {
	t.Parallel()
	f := newFakeDeps()
	c := startDaemon(t, f, t.TempDir())
	dir := writeProject(t, "web")
	if e := upAndWait(t, c, dir); e.Status.Phase != api.PhaseReady {
		t.Fatalf("phase %s", e.Status.Phase)
	}
	f.mu.Lock()
	f.BuildErr = fmt.Errorf("connect to unix:///x.sock: broken pipe: %w", build.ErrDockerUnavailable)
	f.mu.Unlock()
	st := upAndWait(t, c, dir).Status
	if st.Phase != api.PhaseFailed || !strings.Contains(st.Message, "docker engine is not reachable") {
		t.Fatalf("phase %s message %q", st.Phase, st.Message)
	}
	if strings.Contains(st.Diagnostics, "CrashLoopBackOff") {
		t.Errorf("a failed build carries the cluster's diagnostics:\n%s", st.Diagnostics)
	}
}

// A daemon killed during an up leaves the run unfinished in its state file;
// the next daemon runs the up again instead of trusting or abandoning it.
func TestDaemonRestartRerunsInterruptedUp(t *testing.T) {
	t.Parallel()
	f := newFakeDeps()
	stateDir := t.TempDir()
	dir := writeProject(t, "web")
	old := apply(nil, UpRequested{Name: "hello-main", Spec: api.EnvSpec{Provider: "kind", Project: "hello", Dir: dir, Branch: "main"}})
	if err := SaveState(filepath.Join(stateDir, "state.json"), old); err != nil {
		t.Fatal(err)
	}
	c := startDaemon(t, f, stateDir)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	events, _, err := c.Events(ctx, "hello-main")
	if err != nil {
		t.Fatal(err)
	}
	e := settled(t, events, 1)
	if e.Status.Phase != api.PhaseReady || e.Status.Run.ID != 2 || !strings.Contains(e.Status.Run.Request.Reason, "restarted") {
		t.Fatalf("status = %+v run %+v", e.Status, e.Status.Run)
	}
}

func TestDaemonRestartRediscovers(t *testing.T) {
	t.Parallel()
	f := newFakeDeps()
	stateDir := t.TempDir()
	c := startDaemon(t, f, stateDir)
	dir := writeProject(t, "web")
	if e := upAndWait(t, c, dir); e.Status.Phase != api.PhaseReady {
		t.Fatalf("phase %s", e.Status.Phase)
	}
	c.stop()

	// The state file is gone (as after a crash before it was written): the
	// environment comes back from the provider's list and its metadata,
	// and is resumed: serving again on a port-forward.
	if err := os.Remove(filepath.Join(stateDir, "state.json")); err != nil {
		t.Fatal(err)
	}
	c2 := startDaemon(t, f, stateDir)
	deadline := time.Now().Add(10 * time.Second)
	for {
		e, err := c2.Get(context.Background(), "hello-main")
		if err == nil && e.Status.Phase == api.PhaseReady && e.Status.Kubeconfig == "/kube/hello-main" {
			if web := e.Status.Service("web"); web != nil && web.Ready && get(t, web.URL) == "hello from port 8080" {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("not rediscovered and resumed: %+v %v", e, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestDaemonSecondRefused(t *testing.T) {
	t.Parallel()
	c := startDaemon(t, newFakeDeps(), t.TempDir())
	d2 := New(Options{Socket: c.Socket(), StateDir: t.TempDir(), Deps: newFakeDeps().deps()})
	err := d2.Run(context.Background())
	if !errors.Is(err, ErrAlreadyRunning) {
		t.Fatalf("second daemon: %v, want ErrAlreadyRunning", err)
	}
	if _, err := c.Health(context.Background()); err != nil {
		t.Fatalf("first daemon must keep serving: %v", err)
	}
}

// A daemon that starts while an old state file names an environment whose
// cluster is gone forgets that one, but never one accepted since it started
// (its cluster is still being created, so no provider lists it yet).
func TestDaemonRediscoveryKeepsNewEnvironments(t *testing.T) {
	t.Parallel()
	stateDir := t.TempDir()
	old := apply(nil, up("stale"))
	reduce(old, finish(old, "stale", ""), t0)
	if err := SaveState(filepath.Join(stateDir, "state.json"), old); err != nil {
		t.Fatal(err)
	}
	f := newFakeDeps()
	f.ListGate = make(chan struct{})
	f.BuildGate = make(chan struct{})
	c := startDaemon(t, f, stateDir)
	ctx := context.Background()
	if _, err := c.Up(ctx, api.UpRequest{ProjectRef: api.ProjectRef{Dir: writeProject(t, "web"), Name: "fresh"}}); err != nil {
		t.Fatal(err)
	}
	close(f.ListGate) // rediscovery now sees no cluster at all
	deadline := time.Now().Add(5 * time.Second)
	for {
		list, err := c.List(ctx)
		if err != nil {
			t.Fatal(err)
		}
		names := map[string]bool{}
		for _, e := range list {
			names[e.Name] = true
		}
		if !names["fresh"] {
			t.Fatalf("the environment being created was forgotten: %+v", list)
		}
		if !names["stale"] {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("stale environment not forgotten: %+v", list)
		}
		time.Sleep(10 * time.Millisecond)
	}
	close(f.BuildGate)
}

// Log events are typed: build output carries its step, service and source.
func TestDaemonEventsAreTyped(t *testing.T) {
	t.Parallel()
	f := newFakeDeps()
	c := startDaemon(t, f, t.TempDir())
	dir := writeProject(t, "web")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	events, _, err := c.Events(ctx, "hello-main")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Up(ctx, api.UpRequest{ProjectRef: api.ProjectRef{Dir: dir}}); err != nil {
		t.Fatal(err)
	}
	for ev := range events {
		if ev.Type == api.EventLog && ev.Source == api.SourceBuild {
			if ev.Step != StepBuild || ev.Service != "web" || ev.Message != "Step 1/1 : building web" || ev.Run == 0 {
				t.Errorf("build event = %+v", ev)
			}
			return
		}
	}
	t.Fatal("no build output event")
}

// A preview's up names the provider, the host cluster and devctl.dev/*
// labels; they reach the spec next to devctl.yaml's labels.
func TestDaemonUpCarriesPreviewSpec(t *testing.T) {
	t.Parallel()
	f := newFakeDeps()
	c := startDaemon(t, f, t.TempDir())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	host := &api.HostCluster{Kubeconfig: "/ci/host.yaml", Context: "ci"}
	e, err := c.Up(ctx, api.UpRequest{
		ProjectRef: api.ProjectRef{Dir: writeProject(t, "web"), Name: "pr7-web-abc123"},
		Provider:   "fake",
		Host:       host,
		Labels:     map[string]string{"devctl.dev/pr": "7"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if e.Spec.Provider != "fake" || e.Spec.Host == nil || *e.Spec.Host != *host {
		t.Errorf("spec provider %q host %+v, want fake on %+v", e.Spec.Provider, e.Spec.Host, host)
	}
	if e.Spec.Labels["devctl.dev/pr"] != "7" || e.Spec.Labels["team"] == "" {
		t.Errorf("labels = %v, want devctl.yaml's and devctl.dev/pr=7", e.Spec.Labels)
	}
}
