package daemon

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/devctl/devctl/internal/api"
)

// startDaemon runs a daemon with fake deps on a real unix socket.
func startDaemon(t *testing.T, f *fakeDeps, stateDir string) (*api.Client, func()) {
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
	stop := func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("daemon Run: %v", err)
		}
	}
	return c, stop
}

// upAndWait sends an up request and follows events until the env settles.
func upAndWait(t *testing.T, c *api.Client, dir, branch string) *api.Environment {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	env := "hello-" + branch
	events, _, err := c.Events(ctx, env)
	if err != nil {
		t.Fatal(err)
	}
	acc, err := c.Up(ctx, api.UpRequest{Dir: dir, Name: env, Repo: "hello", Branch: branch})
	if err != nil {
		t.Fatal(err)
	}
	for ev := range events {
		if e := ev.Environment; e != nil && e.Generation >= acc.Generation && (e.Phase == api.PhaseReady || e.Phase == api.PhaseFailed) {
			return e
		}
	}
	t.Fatal("event stream ended before the environment settled")
	return nil
}

func TestDaemonAPIOverUnixSocket(t *testing.T) {
	t.Parallel()
	f := newFakeDeps()
	stateDir := t.TempDir()
	dir := t.TempDir()
	c, stop := startDaemon(t, f, stateDir)
	defer stop()

	fi, err := os.Stat(c.Socket())
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("socket mode = %v, want 0600", fi.Mode().Perm())
	}

	e := upAndWait(t, c, dir, "main")
	if e.Phase != api.PhaseReady {
		t.Fatalf("phase = %s (%s)", e.Phase, e.Message)
	}
	var names []string
	for _, s := range e.Steps {
		names = append(names, s.Name+":"+string(s.Status))
	}
	want := "config:done cluster:done build:done deliver:done render:done policy:done deploy:done ready:done"
	if got := strings.Join(names, " "); got != want {
		t.Errorf("steps = %s\nwant    %s", got, want)
	}
	if len(e.Services) != 1 || !e.Services[0].Ready || !strings.HasPrefix(e.Services[0].URL, "http://127.0.0.1:") {
		t.Fatalf("services = %+v", e.Services)
	}
	resp, err := http.Get(e.Services[0].URL)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if string(body) != "hello" {
		t.Errorf("GET %s = %q", e.Services[0].URL, body)
	}
	if len(e.Findings) != 1 || e.Findings[0].Rule != "probes" {
		t.Errorf("findings = %+v", e.Findings)
	}

	// A second up with nothing changed builds from cache and deploys nothing.
	e2 := upAndWait(t, c, dir, "main")
	if e2.Generation != 2 || e2.Phase != api.PhaseReady {
		t.Fatalf("second up: %+v", e2)
	}
	for _, s := range e2.Steps {
		if (s.Name == StepDeliver || s.Name == StepDeploy) && s.Status != api.StepSkipped {
			t.Errorf("second up: step %s = %s (%s), want skipped", s.Name, s.Status, s.Detail)
		}
	}
	if e2.Services[0].URL != e.Services[0].URL {
		t.Errorf("URL changed between ups: %s -> %s", e.Services[0].URL, e2.Services[0].URL)
	}

	list, err := c.List(context.Background())
	if err != nil || len(list) != 1 || list[0].Name != "hello-main" {
		t.Fatalf("list = %+v, %v", list, err)
	}
	var buf bytes.Buffer
	if err := c.Logs(context.Background(), "hello-main", api.LogOptions{}, &buf); err != nil || buf.String() != "log line of web\n" {
		t.Errorf("logs = %q, %v", buf.String(), err)
	}
	if _, err := c.Get(context.Background(), "nope"); !errors.Is(err, api.ErrNotFound) {
		t.Errorf("get unknown: %v, want ErrNotFound", err)
	}

	// Down deletes the cluster and the record.
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
	if list, _ := c.List(context.Background()); len(list) != 0 {
		t.Errorf("after down: %+v", list)
	}
	if len(f.clusters) != 0 {
		t.Errorf("cluster left behind: %+v", f.clusters)
	}
}

func TestDaemonRejectsBadRequests(t *testing.T) {
	t.Parallel()
	c, stop := startDaemon(t, newFakeDeps(), t.TempDir())
	defer stop()
	ctx := context.Background()
	for _, req := range []api.UpRequest{
		{Dir: "relative/dir", Name: "x"},
		{Dir: "/does/not/exist", Name: "x"},
		{Dir: t.TempDir()},
	} {
		_, err := c.Up(ctx, req)
		var se *api.StatusError
		if !errors.As(err, &se) || se.StatusCode != http.StatusBadRequest {
			t.Errorf("up %+v: err = %v, want a 400", req, err)
		}
	}
	if _, err := c.Down(ctx, "nope"); !errors.Is(err, api.ErrNotFound) {
		t.Errorf("down unknown: %v", err)
	}
}

func TestDaemonFailureCarriesDiagnostics(t *testing.T) {
	t.Parallel()
	f := newFakeDeps()
	f.ReadyErr = errFake
	c, stop := startDaemon(t, f, t.TempDir())
	defer stop()
	e := upAndWait(t, c, t.TempDir(), "broken")
	if e.Phase != api.PhaseFailed || !strings.Contains(e.Message, "fake failure") || !strings.Contains(e.Diagnostics, "CrashLoopBackOff") {
		t.Fatalf("got phase %s message %q diagnostics %q", e.Phase, e.Message, e.Diagnostics)
	}
	last := e.Steps[len(e.Steps)-1]
	if last.Name != StepReady || last.Status != api.StepFailed {
		t.Errorf("last step = %+v", last)
	}
}

func TestDaemonRestartRediscovers(t *testing.T) {
	t.Parallel()
	f := newFakeDeps()
	stateDir := t.TempDir()
	c, stop := startDaemon(t, f, stateDir)
	e := upAndWait(t, c, t.TempDir(), "main")
	if e.Phase != api.PhaseReady {
		t.Fatalf("phase %s", e.Phase)
	}
	stop()

	// The state file is gone (as after a crash before it was written): the
	// environment comes back from the provider's list alone.
	if err := os.Remove(filepath.Join(stateDir, "state.json")); err != nil {
		t.Fatal(err)
	}
	c2, stop2 := startDaemon(t, f, stateDir)
	defer stop2()
	deadline := time.Now().Add(5 * time.Second)
	for {
		list, err := c2.List(context.Background())
		if err == nil && len(list) == 1 && list[0].Name == "hello-main" && list[0].Kubeconfig == "/kube/hello-main" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not rediscovered: %+v %v", list, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestDaemonSecondRefused(t *testing.T) {
	t.Parallel()
	c, stop := startDaemon(t, newFakeDeps(), t.TempDir())
	defer stop()
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
	old := newState()
	reduce(old, EnvAccepted{Env: api.Environment{Name: "stale"}}, time.Now())
	reduce(old, PhaseChanged{Name: "stale", Phase: api.PhaseReady}, time.Now())
	if err := SaveState(filepath.Join(stateDir, "state.json"), old); err != nil {
		t.Fatal(err)
	}
	f := newFakeDeps()
	f.ListBlock = make(chan struct{})
	f.BuildBlock = make(chan struct{})
	c, stop := startDaemon(t, f, stateDir)
	defer stop()
	ctx := context.Background()
	if _, err := c.Up(ctx, api.UpRequest{Dir: t.TempDir(), Name: "fresh", Repo: "r", Branch: "b"}); err != nil {
		t.Fatal(err)
	}
	close(f.ListBlock) // rediscovery now sees no cluster at all
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
	close(f.BuildBlock)
}
