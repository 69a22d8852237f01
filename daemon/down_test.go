package daemon

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/devctl/devctl/envs"
	"github.com/devctl/devctl/internal/api"
	"github.com/devctl/devctl/internal/build"
)

// downAndWait asks for name to be deleted and follows its events until it
// is gone; it returns the delete step as last seen.
func downAndWait(t *testing.T, c *testDaemon, name string) api.Step {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	events, _, err := c.Events(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	acc, err := c.Down(ctx, name)
	if err != nil {
		t.Fatalf("down %s: %v", name, err)
	}
	var last api.Step
	for ev := range events {
		if ev.Type == api.EventDeleted {
			return last
		}
		e := ev.Environment
		if e == nil || e.Status.Run == nil || e.Status.Run.Request.Generation < acc.Generation {
			continue
		}
		for _, st := range e.Status.Run.Steps {
			if st.Name == StepDelete {
				last = st
			}
		}
		if !e.Status.Run.Active() && e.Status.Run.Error != "" {
			t.Fatalf("down %s failed: %s (phase %s: %s)", name, e.Status.Run.Error, e.Status.Phase, e.Status.Message)
		}
	}
	t.Fatalf("event stream of %s ended before it was deleted", name)
	return last
}

// Down of anything succeeds, removes what there is and says what it
// removed: an environment never created, one that failed before its
// cluster existed, one that failed with a cluster, and a cluster devctl made
// that this daemon never knew (its state was lost).
func TestDaemonDownOfAnything(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	t.Run("never created", func(t *testing.T) {
		t.Parallel()
		c := startDaemon(t, newFakeDeps(), t.TempDir())
		st := downAndWait(t, c, "nope-main")
		if st.Status != api.StepDone || st.Detail != "nothing to delete: no cluster and no files" {
			t.Errorf("delete step = %+v", st)
		}
		if list, _ := c.List(ctx); len(list) != 0 {
			t.Errorf("down of an unknown name left %+v", list)
		}
	})
	t.Run("failed before the cluster", func(t *testing.T) {
		t.Parallel()
		f := newFakeDeps()
		f.UpErr = errFake
		c := startDaemon(t, f, t.TempDir())
		if e := upAndWait(t, c, writeProject(t, "web")); e.Status.Phase != api.PhaseFailed {
			t.Fatalf("phase %s", e.Status.Phase)
		}
		st := downAndWait(t, c, "hello-main")
		if st.Status != api.StepDone || st.Detail != "nothing to delete: no cluster and no files" {
			t.Errorf("delete step = %+v", st)
		}
		if _, err := c.Get(ctx, "hello-main"); !errors.Is(err, api.ErrNotFound) {
			t.Errorf("after down: %v", err)
		}
	})
	t.Run("failed with a cluster", func(t *testing.T) {
		t.Parallel()
		f := newFakeDeps()
		f.DeployErr = errFake
		c := startDaemon(t, f, t.TempDir())
		if e := upAndWait(t, c, writeProject(t, "web")); e.Status.Phase != api.PhaseFailed {
			t.Fatalf("phase %s", e.Status.Phase)
		}
		st := downAndWait(t, c, "hello-main")
		if st.Status != api.StepDone || st.Detail != "deleted kind cluster hello-main" {
			t.Errorf("delete step = %+v", st)
		}
		if _, ok := f.clusters["hello-main"]; ok {
			t.Error("the cluster is still there")
		}
	})
	t.Run("a cluster the daemon never knew", func(t *testing.T) {
		t.Parallel()
		f := newFakeDeps()
		c := startDaemon(t, f, t.TempDir())
		f.mu.Lock()
		f.clusters["lost-main"] = envs.Env{Name: "lost-main", Kubeconfig: "/kube/lost-main"}
		f.mu.Unlock()
		st := downAndWait(t, c, "lost-main")
		if st.Status != api.StepDone || st.Detail != "deleted kind cluster lost-main" {
			t.Errorf("delete step = %+v", st)
		}
		f.mu.Lock()
		_, ok := f.clusters["lost-main"]
		f.mu.Unlock()
		if ok {
			t.Error("the cluster is still there")
		}
	})
	t.Run("a name devctl cannot have made", func(t *testing.T) {
		t.Parallel()
		c := startDaemon(t, newFakeDeps(), t.TempDir())
		if _, err := c.Down(ctx, "Not_A_Name"); !errors.Is(err, api.ErrNotFound) {
			t.Errorf("down: %v, want not found", err)
		}
	})
}

// A delete that fails for a name the daemon did not know leaves no entry.
func TestReduceFailedDownOfUnknownLeavesNothing(t *testing.T) {
	t.Parallel()
	s := apply(nil, DownRequested{Name: "x"})
	e := s.Envs["x"]
	if e == nil || e.Status.Phase != api.PhaseDeleting || e.Status.Run.Request.Kind != api.RunDelete {
		t.Fatalf("env = %+v", e)
	}
	if !reduce(s, finish(s, "x", "not created by devctl"), t0) || s.Envs["x"] != nil {
		t.Fatalf("a failed down of an unknown name left %+v", s.Envs["x"])
	}
}

// A daemon killed during an up that followed a finished one: the next
// daemon trusts nothing the interrupted run may have half done. The cluster
// is asked of the provider (it may be a new one that never finished) and
// the images are delivered again though the old cluster had them.
func TestDaemonRecoveredUpTrustsNothingHalfDone(t *testing.T) {
	t.Parallel()
	f := newFakeDeps()
	stateDir := t.TempDir()
	dir := writeProject(t, "web")
	c := startDaemon(t, f, stateDir)
	if e := upAndWait(t, c, dir); e.Status.Phase != api.PhaseReady {
		t.Fatalf("phase %s", e.Status.Phase)
	}
	c.stop()
	path := filepath.Join(stateDir, "state.json")
	st, err := LoadState(path)
	if err != nil {
		t.Fatal(err)
	}
	e := st.Envs["hello-main"]
	apply(st, UpRequested{Name: "hello-main", Spec: e.Spec, Reason: "devctl up"})
	apply(st, StepStarted{Name: "hello-main", Run: st.LastRun, Step: StepCluster, Phase: api.PhaseCreating, At: t0})
	if err := SaveState(path, st); err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	ups, loads := f.ups, f.loads
	f.mu.Unlock()

	c2 := startDaemon(t, f, stateDir)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	events, _, err := c2.Events(ctx, "hello-main")
	if err != nil {
		t.Fatal(err)
	}
	got := settled(t, events, 2)
	if got.Status.Phase != api.PhaseReady || !got.Status.Run.Request.Recovered {
		t.Fatalf("status %+v run %+v", got.Status, got.Status.Run)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.ups != ups+1 {
		t.Errorf("the provider was asked %d times after the restart, want once", f.ups-ups)
	}
	if f.loads != loads+1 {
		t.Errorf("images loaded %d times after the restart, want once", f.loads-loads)
	}
}

// A run the killed daemon left active is run once, as the recovered run:
// the new daemon never executes the stale one beside it. Both would ask the
// provider for the cluster at once; on kind the second create fails with
// "node(s) already exist" and its cleanup deletes the first one's node.
func TestDaemonRunsAnInterruptedUpOnce(t *testing.T) {
	t.Parallel()
	f := newFakeDeps()
	stateDir := t.TempDir()
	dir := writeProject(t, "web")
	c := startDaemon(t, f, stateDir)
	upAndWait(t, c, dir)
	c.stop()
	path := filepath.Join(stateDir, "state.json")
	st, err := LoadState(path)
	if err != nil {
		t.Fatal(err)
	}
	e := st.Envs["hello-main"]
	apply(st, UpRequested{Name: "hello-main", Spec: e.Spec, Reason: "devctl up"})
	apply(st, StepStarted{Name: "hello-main", Run: st.LastRun, Step: StepCluster, Phase: api.PhaseCreating, At: t0})
	// As if this were the first up, killed while kind created the cluster:
	// no finished up vouches for a cluster.
	e.Status.ObservedGeneration, e.Status.Kubeconfig = 0, ""
	if err := SaveState(path, st); err != nil {
		t.Fatal(err)
	}
	stale := st.LastRun
	f.mu.Lock()
	f.UpGate = make(chan struct{})
	entered := f.upsEntered
	f.mu.Unlock()

	c2 := startDaemon(t, f, stateDir)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	events, _, err := c2.Events(ctx, "hello-main")
	if err != nil {
		t.Fatal(err)
	}
	// The recovered run reaches the cluster step and waits in Up.
	for ev := range events {
		if r := ev.Environment; r != nil && r.Status.Run != nil && r.Status.Run.ID > stale && len(r.Status.Run.Steps) > 1 {
			break
		}
	}
	time.Sleep(300 * time.Millisecond) // a stale run started beside it would be in Up by now
	f.mu.Lock()
	n := f.upsEntered - entered
	close(f.UpGate)
	f.mu.Unlock()
	if n != 1 {
		t.Fatalf("the provider was asked for the cluster %d times at once after the restart, want once", n)
	}
	if got := settled(t, events, e.Generation); got.Status.Phase != api.PhaseReady {
		t.Fatalf("phase %s: %s", got.Status.Phase, got.Status.Run.Error)
	}
}

// A failed command keeps its output: the last lines in the message, all of
// it in the diagnostics `devctl status` prints.
func TestDaemonFailedCommandKeepsItsOutput(t *testing.T) {
	t.Parallel()
	var lines []string
	for i := 1; i <= 30; i++ {
		lines = append(lines, fmt.Sprintf("output line %d", i))
	}
	for name, fail := range map[string]func(f *fakeDeps){
		"cluster": func(f *fakeDeps) {
			f.UpErr = &envs.CommandError{Command: "docker exec node kubeadm init", Output: []byte(strings.Join(lines, "\n") + "\n"), Err: errFake}
		},
		"build": func(f *fakeDeps) {
			f.BuildErr = &build.BuildError{Step: build.StepImageBuild, Message: "exit 1", Output: lines}
		},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			f := newFakeDeps()
			fail(f)
			c := startDaemon(t, f, t.TempDir())
			e := upAndWait(t, c, writeProject(t, "web"))
			st := e.Status
			if st.Phase != api.PhaseFailed {
				t.Fatalf("phase %s", st.Phase)
			}
			if !strings.Contains(st.Message, "output line 30") || !strings.Contains(st.Message, "output line 23") || strings.Contains(st.Message, "output line 22\n") {
				t.Errorf("message does not end with the last 8 lines:\n%s", st.Message)
			}
			for _, l := range []string{"output line 1\n", "output line 30\n"} {
				if !strings.Contains(st.Diagnostics, l) {
					t.Errorf("diagnostics lack %q:\n%s", l, st.Diagnostics)
				}
			}
		})
	}
}

// A cluster that does not answer is shown Stopped with the command that
// starts it, not dropped, and the daemon keeps it across restarts.
func TestDaemonKeepsStoppedEnvironments(t *testing.T) {
	t.Parallel()
	f := newFakeDeps()
	stateDir := t.TempDir()
	c := startDaemon(t, f, stateDir)
	if e := upAndWait(t, c, writeProject(t, "web")); e.Status.Phase != api.PhaseReady {
		t.Fatalf("phase %s", e.Status.Phase)
	}
	c.stop()
	f.mu.Lock()
	f.stopped["hello-main"] = true
	f.mu.Unlock()
	for i := range 2 {
		c := startDaemon(t, f, stateDir)
		deadline := time.Now().Add(10 * time.Second)
		for {
			e, err := c.Get(context.Background(), "hello-main")
			if err == nil && e.Status.Phase == api.PhaseStopped {
				if !strings.Contains(e.Status.Message, "docker start hello-main-control-plane") {
					t.Errorf("message %q does not say how to start it", e.Status.Message)
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("daemon %d: not shown stopped: %+v %v", i+2, e, err)
			}
			time.Sleep(20 * time.Millisecond)
		}
		c.stop()
	}
}

// A node stopped or killed while the daemon runs shows in the next list
// and status as Stopped with how to start it; the next up brings it back.
func TestDaemonNoticesAStoppedClusterOnListAndStatus(t *testing.T) {
	t.Parallel()
	f := newFakeDeps()
	c := startDaemon(t, f, t.TempDir())
	dir := writeProject(t, "web")
	if e := upAndWait(t, c, dir); e.Status.Phase != api.PhaseReady {
		t.Fatalf("phase %s", e.Status.Phase)
	}
	f.mu.Lock()
	f.stopped["hello-main"] = true
	f.mu.Unlock()
	list, err := c.List(context.Background())
	if err != nil || len(list) != 1 || list[0].Status.Phase != api.PhaseStopped ||
		!strings.Contains(list[0].Status.Message, "docker start hello-main-control-plane") {
		t.Fatalf("list after the node stopped = %+v, %v", list, err)
	}
	if e, err := c.Get(context.Background(), "hello-main"); err != nil || e.Status.Phase != api.PhaseStopped {
		t.Fatalf("status = %+v, %v", e, err)
	}
	f.mu.Lock()
	f.stopped["hello-main"] = false
	f.mu.Unlock()
	if e := upAndWait(t, c, dir); e.Status.Phase != api.PhaseReady {
		t.Fatalf("up after the node stopped: phase %s (%s)", e.Status.Phase, e.Status.Message)
	}
}

func TestReduceDiscoveredStopped(t *testing.T) {
	t.Parallel()
	s := apply(nil, Discovered{Name: "a", Spec: spec, Kubeconfig: "/k", Stopped: true, Start: "docker start a-control-plane"})
	e := s.Envs["a"]
	if e.Status.Phase != api.PhaseStopped || e.Status.Run != nil || !strings.Contains(e.Status.Message, "docker start a-control-plane") {
		t.Fatalf("status = %+v", e.Status)
	}
	if reduce(s, Recovered{Name: "a", LastRun: s.LastRun}, t0) {
		t.Error("a stopped environment was resumed")
	}
}

// After a start without a state file, the first list already holds the
// environments found in the clusters.
func TestDaemonListWaitsForRediscovery(t *testing.T) {
	t.Parallel()
	f := newFakeDeps()
	f.clusters["hello-main"] = envs.Env{Name: "hello-main", Spec: api.EnvSpec{Project: "hello", Branch: "main"}, Kubeconfig: "/kube/hello-main"}
	f.ListGate = make(chan struct{})
	c := startDaemon(t, f, t.TempDir())
	go func() {
		time.Sleep(200 * time.Millisecond)
		close(f.ListGate)
	}()
	list, err := c.List(context.Background())
	if err != nil || len(list) != 1 || list[0].Name != "hello-main" {
		t.Fatalf("first list = %+v, %v", list, err)
	}
}
