package daemon

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/devctl/devctl/internal/api"
)

var t0 = time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)

// apply runs actions through the reducer, one second apart.
func apply(s *State, actions ...Action) *State {
	if s == nil {
		s = newState()
	}
	for i, a := range actions {
		reduce(s, a, t0.Add(time.Duration(i)*time.Second))
	}
	return s
}

var spec = api.EnvSpec{Provider: "kind", Project: "hello", Dir: "/src/hello", Branch: "main"}

func up(name string) UpRequested { return UpRequested{Name: name, Spec: spec, Reason: "test"} }

// finish ends the active run of env successfully (or with err).
func finish(s *State, env string, err string) RunFinished {
	return RunFinished{Name: env, Run: s.Envs[env].Status.Run.ID, Err: err}
}

func TestReduceUpStartsARunAtOnce(t *testing.T) {
	t.Parallel()
	s := apply(nil, up("a"))
	e := s.Envs["a"]
	if e.Generation != 1 || e.Status.Phase != api.PhasePending || !e.Status.CreatedAt.Equal(t0) {
		t.Fatalf("env = %+v", e)
	}
	run := e.Status.Run
	if !run.Active() || run.ID != 1 || run.Request.Kind != api.RunUp || run.Request.Generation != 1 || e.Status.Queued != nil {
		t.Fatalf("run = %+v queued = %+v", run, e.Status.Queued)
	}
	if !reflect.DeepEqual(e.Spec, spec) {
		t.Errorf("spec = %+v", e.Spec)
	}
}

// Concurrent ups queue behind the running one and coalesce: the latest
// wins, every request gets its own generation, and none is dropped.
func TestReduceConcurrentUpsCoalesce(t *testing.T) {
	t.Parallel()
	s := apply(nil, up("a"))
	newer := up("a")
	newer.Spec.NodeImage = "node:2"
	apply(s, up("a"), newer)
	e := s.Envs["a"]
	if e.Generation != 3 || e.Status.Run.ID != 1 || e.Status.Run.Request.Generation != 1 {
		t.Fatalf("the running run changed: gen %d run %+v", e.Generation, e.Status.Run)
	}
	if q := e.Status.Queued; q == nil || q.Kind != api.RunUp || q.Generation != 3 {
		t.Fatalf("queued = %+v, want the latest up at generation 3", q)
	}
	if e.Spec.NodeImage != "node:2" {
		t.Errorf("spec not the latest: %+v", e.Spec)
	}
	reduce(s, finish(s, "a", ""), t0.Add(time.Minute))
	if e.Status.ObservedGeneration != 1 || e.Status.Phase != api.PhasePending {
		t.Fatalf("after the first run: observed %d phase %s", e.Status.ObservedGeneration, e.Status.Phase)
	}
	if run := e.Status.Run; !run.Active() || run.ID != 2 || run.Request.Generation != 3 || e.Status.Queued != nil {
		t.Fatalf("the queued up did not start: %+v", run)
	}
	reduce(s, finish(s, "a", ""), t0.Add(2*time.Minute))
	if e.Status.ObservedGeneration != 3 || e.Status.Phase != api.PhaseReady || e.Status.Run.Active() {
		t.Fatalf("after the second run: %+v", e.Status)
	}
}

func TestReduceRebuildDuringUpRunsAfterIt(t *testing.T) {
	t.Parallel()
	s := apply(nil, up("a"), RebuildRequested{Name: "a", Services: []string{"web"}, Reason: "1 file changed"})
	e := s.Envs["a"]
	if q := e.Status.Queued; q == nil || q.Kind != api.RunRebuild || q.Generation != 2 {
		t.Fatalf("queued = %+v", q)
	}
	reduce(s, finish(s, "a", ""), t0.Add(time.Minute))
	run := e.Status.Run
	if !run.Active() || run.Request.Kind != api.RunRebuild || !reflect.DeepEqual(run.Request.Services, []string{"web"}) {
		t.Fatalf("run = %+v", run)
	}
	// A rebuild leaves a ready environment ready while it runs.
	if e.Status.Phase != api.PhaseReady {
		t.Errorf("phase during rebuild = %s", e.Status.Phase)
	}
}

func TestMergeRequests(t *testing.T) {
	t.Parallel()
	rb := func(gen int64, svcs ...string) api.Request {
		return api.Request{Kind: api.RunRebuild, Generation: gen, Services: svcs}
	}
	req := func(k api.RunKind, gen int64) api.Request { return api.Request{Kind: k, Generation: gen} }
	tests := []struct {
		name   string
		queued *api.Request
		in     api.Request
		want   api.Request
	}{
		{"nothing queued", nil, rb(2, "a"), rb(2, "a")},
		{"rebuilds join", &api.Request{Kind: api.RunRebuild, Generation: 2, Services: []string{"a"}}, rb(3, "b", "a"), rb(3, "a", "b")},
		{"an up covers a rebuild", &api.Request{Kind: api.RunUp, Generation: 2}, rb(3, "a"), req(api.RunUp, 3)},
		{"a rebuild never revives a deleted env", &api.Request{Kind: api.RunDelete, Generation: 2}, rb(3, "a"), req(api.RunDelete, 2)},
		{"an up replaces a delete", &api.Request{Kind: api.RunDelete, Generation: 2}, req(api.RunUp, 3), req(api.RunUp, 3)},
		{"a delete replaces an up", &api.Request{Kind: api.RunUp, Generation: 2}, req(api.RunDelete, 3), req(api.RunDelete, 3)},
		{"a resume is covered by anything", &api.Request{Kind: api.RunUp, Generation: 2}, req(api.RunResume, 2), req(api.RunUp, 2)},
		{"a rebuild replaces a resume", &api.Request{Kind: api.RunResume, Generation: 1}, rb(2, "a"), rb(2, "a")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := mergeRequests(tt.queued, tt.in)
			if got.Kind != tt.want.Kind || got.Generation != tt.want.Generation || !reflect.DeepEqual(got.Services, tt.want.Services) {
				t.Errorf("got %+v, want %+v", *got, tt.want)
			}
		})
	}
}

func TestReduceRebuildOfAFailedEnvironmentIsAnUp(t *testing.T) {
	t.Parallel()
	s := apply(nil, up("a"))
	apply(s, finish(s, "a", "build: compile error"))
	if e := s.Envs["a"]; e.Status.Phase != api.PhaseFailed || e.Status.Message != "build: compile error" {
		t.Fatalf("status = %+v", e.Status)
	}
	apply(s, RebuildRequested{Name: "a", Services: []string{"web"}})
	if run := s.Envs["a"].Status.Run; run.Request.Kind != api.RunUp || run.Request.Services != nil {
		t.Fatalf("run = %+v, want a full up", run)
	}
}

func TestReduceFailedRebuildKeepsTheEnvironmentReady(t *testing.T) {
	t.Parallel()
	s := apply(nil, up("a"))
	apply(s, finish(s, "a", ""), RebuildRequested{Name: "a", Services: []string{"web"}})
	apply(s, finish(s, "a", "build web: main.go:3:1: syntax error"))
	e := s.Envs["a"]
	if e.Status.Phase != api.PhaseReady || !strings.Contains(e.Status.Message, "main.go:3:1") || e.Status.ObservedGeneration != 2 {
		t.Fatalf("status = %+v", e.Status)
	}
	if e.Status.Run.Error == "" {
		t.Error("the run does not keep its error")
	}
}

func TestReduceDown(t *testing.T) {
	t.Parallel()
	t.Run("idle environment is deleted and removed", func(t *testing.T) {
		t.Parallel()
		s := apply(nil, up("a"))
		apply(s, finish(s, "a", ""), DownRequested{Name: "a"})
		e := s.Envs["a"]
		if e.Status.Phase != api.PhaseDeleting || e.Status.Run.Request.Kind != api.RunDelete || e.Generation != 2 {
			t.Fatalf("status = %+v", e.Status)
		}
		if !reduce(s, finish(s, "a", ""), t0) || s.Envs["a"] != nil {
			t.Fatalf("env still there: %+v", s.Envs["a"])
		}
	})
	t.Run("during an up it is queued and the up is cancelled", func(t *testing.T) {
		t.Parallel()
		s := apply(nil, up("a"), DownRequested{Name: "a"})
		e := s.Envs["a"]
		if q := e.Status.Queued; q == nil || q.Kind != api.RunDelete {
			t.Fatalf("queued = %+v", q)
		}
		id := e.Status.Run.ID
		apply(s, RunFinished{Name: "a", Run: id, Err: "cancelled", Cancelled: true})
		if e.Status.ObservedGeneration != 0 {
			t.Errorf("a cancelled run observed generation %d", e.Status.ObservedGeneration)
		}
		if run := e.Status.Run; run.Request.Kind != api.RunDelete || !run.Active() {
			t.Fatalf("delete not started: %+v", run)
		}
	})
	t.Run("up after a queued down brings it back", func(t *testing.T) {
		t.Parallel()
		s := apply(nil, up("a"))
		apply(s, finish(s, "a", ""), DownRequested{Name: "a"}, up("a"))
		apply(s, finish(s, "a", ""))
		e := s.Envs["a"]
		if e == nil || e.Status.Run.Request.Kind != api.RunUp || !e.Status.Run.Active() || e.Generation != 3 {
			t.Fatalf("env = %+v", e)
		}
		if e.Status.Kubeconfig != "" || len(e.Status.Services) != 0 {
			t.Errorf("the new environment kept the deleted one's status: %+v", e.Status)
		}
	})
	t.Run("failed delete says how to retry", func(t *testing.T) {
		t.Parallel()
		s := apply(nil, up("a"))
		apply(s, finish(s, "a", ""), DownRequested{Name: "a"})
		apply(s, finish(s, "a", "docker: no answer"))
		e := s.Envs["a"]
		if e.Status.Phase != api.PhaseFailed || !strings.Contains(e.Status.Message, "devctl down") {
			t.Fatalf("status = %+v", e.Status)
		}
	})
	t.Run("unknown environment", func(t *testing.T) {
		t.Parallel()
		s := newState()
		if reduce(s, RebuildRequested{Name: "nope"}, t0) {
			t.Error("a rebuild of an unknown environment changed the state")
		}
	})
}

func TestReduceObservations(t *testing.T) {
	t.Parallel()
	s := apply(nil, up("a"))
	id := s.Envs["a"].Status.Run.ID
	apply(s,
		StepStarted{Name: "a", Run: id, Step: StepCluster, Phase: api.PhaseCreating, At: t0},
		ClusterObserved{Name: "a", Kubeconfig: "/k", Namespace: "hello"},
		StepEnded{Name: "a", Run: id, Step: StepCluster, Status: api.StepDone, Detail: "created", At: t0.Add(3 * time.Second)},
		ServicesDeclared{Name: "a", Services: []api.ServiceStatus{{Name: "web", Port: 8080}, {Name: "api", Port: 9090}}},
		ImageBuilt{Name: "a", Service: "web", Image: "web:1"},
		ServiceDeployed{Name: "a", Service: "web", Image: "web:1", ChartDigest: "c", ValuesDigest: "v", Revision: 1,
			Secrets: []api.SecretRef{{Name: "postgres", Env: []string{"PGPASSWORD"}}}},
		ServiceReady{Name: "a", Service: "web", Ready: true, URL: "http://127.0.0.1:1234"},
		FindingsUpdated{Name: "a", Findings: []api.Finding{{Rule: "image-tag"}}},
		WatchChanged{Name: "a", Watching: true},
		StepStarted{Name: "a", Run: id + 1, Step: "stale", At: t0},
	)
	e := s.Envs["a"]
	st := e.Status.Run.Steps
	if len(st) != 1 || st[0].Duration != 3*time.Second || st[0].Status != api.StepDone || st[0].Detail != "created" {
		t.Fatalf("steps = %+v (a step of another run must be ignored)", st)
	}
	if e.Status.Phase != api.PhaseCreating || e.Status.Kubeconfig != "/k" || e.Status.Namespace != "hello" || !e.Status.Watching {
		t.Errorf("status = %+v", e.Status)
	}
	web := e.Status.Service("web")
	want := api.ServiceStatus{Name: "web", Port: 8080, DesiredImage: "web:1", Image: "web:1", ChartDigest: "c", ValuesDigest: "v", Revision: 1, URL: "http://127.0.0.1:1234", Ready: true,
		Secrets: []api.SecretRef{{Name: "postgres", Env: []string{"PGPASSWORD"}}}}
	if !reflect.DeepEqual(*web, want) {
		t.Errorf("web = %+v", *web)
	}
	if len(e.Status.Findings) != 1 {
		t.Errorf("findings = %+v", e.Status.Findings)
	}
	// Declaring the services again keeps what was observed of those that
	// remain, takes the new port, and drops the removed ones.
	apply(s, ServicesDeclared{Name: "a", Services: []api.ServiceStatus{{Name: "web", Port: 8081}}})
	if got := e.Status.Services; len(got) != 1 || got[0].Port != 8081 || got[0].URL != want.URL || got[0].Revision != 1 {
		t.Errorf("services = %+v", got)
	}
	if reduce(s, ImageBuilt{Name: "a", Service: "gone", Image: "x"}, t0) {
		t.Error("an observation of an unknown service changed the state")
	}
}

func TestReduceRunFinishedOfAnotherRunIsIgnored(t *testing.T) {
	t.Parallel()
	s := apply(nil, up("a"))
	if reduce(s, RunFinished{Name: "a", Run: 99}, t0) {
		t.Fatal("a stale RunFinished changed the state")
	}
	if !s.Envs["a"].Status.Run.Active() {
		t.Fatal("run ended")
	}
}

// A cluster that fails after the up that made it ended fails the
// environment (the up's run stays as it ended); while a later run is under
// way, or for an unknown environment, it changes nothing: runs report for
// themselves.
func TestReduceClusterFailed(t *testing.T) {
	t.Parallel()
	failed := ClusterFailed{Name: "a", Err: "create the cluster: boom"}
	s := apply(nil, up("a"))
	if reduce(s, failed, t0) {
		t.Fatal("ClusterFailed changed an environment whose run is under way")
	}
	s = apply(s, finish(s, "a", ""))
	if !reduce(s, failed, t0) {
		t.Fatal("ClusterFailed changed nothing")
	}
	e := s.Envs["a"]
	if e.Status.Phase != api.PhaseFailed || !strings.HasPrefix(e.Status.Message, "create the cluster: boom") || !strings.Contains(e.Status.Message, "devctl up") {
		t.Errorf("phase %s message %q", e.Status.Phase, e.Status.Message)
	}
	if e.Status.Run.Error != "" || e.Status.ObservedGeneration != 1 {
		t.Errorf("run error %q observed %d: the up's record changed", e.Status.Run.Error, e.Status.ObservedGeneration)
	}
	s = apply(s, up("a"))
	if e := s.Envs["a"]; !e.Status.Run.Active() || e.Status.Run.Request.Kind != api.RunUp {
		t.Errorf("an up after the failure does not run: %+v", e.Status.Run)
	}
	if reduce(s, ClusterFailed{Name: "b", Err: "x"}, t0) {
		t.Error("ClusterFailed of an unknown environment changed the state")
	}
}

func TestReduceRecovered(t *testing.T) {
	t.Parallel()
	t.Run("an interrupted run starts again", func(t *testing.T) {
		t.Parallel()
		s := apply(nil, up("a"))
		id := s.Envs["a"].Status.Run.ID
		apply(s, StepStarted{Name: "a", Run: id, Step: StepCluster, At: t0}, Recovered{Name: "a", LastRun: s.LastRun})
		e := s.Envs["a"]
		if run := e.Status.Run; run.ID == id || !run.Active() || run.Request.Kind != api.RunUp || run.Request.Generation != 1 {
			t.Fatalf("run = %+v", run)
		}
		if got := e.Status.Run.Request.Interrupted; got != "up in step cluster" {
			t.Errorf("interrupted = %q, want the run and the step the daemon stopped in", got)
		}
	})
	t.Run("an up queued behind the interrupted run keeps what was interrupted", func(t *testing.T) {
		t.Parallel()
		s := apply(nil, up("a"))
		id := s.Envs["a"].Status.Run.ID
		apply(s, StepStarted{Name: "a", Run: id, Step: StepBuild, At: t0}, StepStarted{Name: "a", Run: id, Step: StepCluster, At: t0},
			up("a"), Recovered{Name: "a", LastRun: s.LastRun})
		e := s.Envs["a"]
		if run := e.Status.Run; !run.Active() || !run.Request.Recovered || run.Request.Interrupted != "up in step build and cluster" || e.Status.Queued != nil {
			t.Fatalf("run = %+v, queued %+v", run.Request, e.Status.Queued)
		}
	})
	t.Run("an interrupted rebuild becomes an up", func(t *testing.T) {
		t.Parallel()
		s := apply(nil, up("a"))
		apply(s, finish(s, "a", ""), RebuildRequested{Name: "a", Services: []string{"web"}})
		apply(s, Recovered{Name: "a", LastRun: s.LastRun})
		if run := s.Envs["a"].Status.Run; run.Request.Kind != api.RunUp || run.Request.Services != nil {
			t.Fatalf("run = %+v", run)
		}
	})
	t.Run("a ready environment is resumed", func(t *testing.T) {
		t.Parallel()
		s := apply(nil, up("a"))
		apply(s, finish(s, "a", ""), Recovered{Name: "a", LastRun: s.LastRun})
		e := s.Envs["a"]
		if run := e.Status.Run; run.Request.Kind != api.RunResume || !run.Active() || e.Generation != 1 {
			t.Fatalf("run = %+v gen %d", run, e.Generation)
		}
	})
	t.Run("a failed environment is left alone", func(t *testing.T) {
		t.Parallel()
		s := apply(nil, up("a"))
		apply(s, finish(s, "a", "boom"))
		if reduce(s, Recovered{Name: "a", LastRun: s.LastRun}, t0) {
			t.Fatal("recovering a failed environment changed it")
		}
	})
	t.Run("a run this daemon started is not interrupted", func(t *testing.T) {
		t.Parallel()
		s := apply(nil, up("a"))
		if reduce(s, Recovered{Name: "a", LastRun: 0}, t0) {
			t.Fatal("recovery touched a run started since the daemon began")
		}
	})
}

func TestReduceDiscoveredAndForgotten(t *testing.T) {
	t.Parallel()
	s := apply(nil, Discovered{Name: "b", Spec: spec, Kubeconfig: "/kb", Created: t0.Add(-time.Hour)})
	e := s.Envs["b"]
	if e.Status.Phase != api.PhaseUnknown || e.Status.Kubeconfig != "/kb" || !e.Status.CreatedAt.Equal(t0.Add(-time.Hour)) || e.Spec.Dir != spec.Dir {
		t.Fatalf("discovered = %+v", e)
	}
	if run := e.Status.Run; run.Request.Kind != api.RunResume {
		t.Fatalf("a discovered environment is not resumed: %+v", run)
	}
	if reduce(s, Forgotten{Name: "b"}, t0) {
		t.Fatal("forgot an environment with a run under way")
	}
	apply(s, finish(s, "b", ""), Forgotten{Name: "b"})
	if s.Envs["b"] != nil {
		t.Fatal("not forgotten")
	}
	// What the daemon recorded wins over the cluster's metadata.
	s = apply(nil, up("a"), Discovered{Name: "a", Spec: api.EnvSpec{Dir: "/elsewhere"}, Kubeconfig: "/ka"})
	if e := s.Envs["a"]; e.Spec.Dir != spec.Dir || e.Status.Kubeconfig != "/ka" {
		t.Errorf("merged = %+v", e)
	}
}

func TestReduceLoggedChangesNothing(t *testing.T) {
	t.Parallel()
	s := apply(nil, up("a"))
	if reduce(s, Logged{Name: "a", Message: "x"}, t0) {
		t.Fatal("Logged reported a state change")
	}
}

func TestStateFileRoundTripAndCorruption(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "state.json")
	s := apply(nil, up("a"))
	if err := SaveState(path, s); err != nil {
		t.Fatal(err)
	}
	got, err := LoadState(path)
	if err != nil || got.LastRun != 1 || !reflect.DeepEqual(got.Envs["a"].Spec, spec) {
		t.Fatalf("round trip: %+v, %v", got, err)
	}
	if err := os.WriteFile(path, []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	got, err = LoadState(path)
	if err == nil || len(got.Envs) != 0 {
		t.Fatalf("corrupt file: %+v, %v", got, err)
	}
	matches, _ := filepath.Glob(filepath.Join(dir, "state.json.corrupt-*"))
	if len(matches) != 1 {
		t.Fatalf("corrupt file not kept aside: %v", matches)
	}
}

// A state file that cannot be saved keeps the last one saved, is reported
// with what to do, and is saved once the cause is gone without another
// change.
func TestPersistReportsAndRetriesAFailedSave(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "state.json")
	old := apply(nil, up("a"))
	if err := SaveState(path, old); err != nil {
		t.Fatal(err)
	}
	before, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// Saving fails while the temporary files cannot be made: the folder
	// they go to is replaced by a file for a while.
	blocked := filepath.Join(t.TempDir(), "state")
	if err := os.WriteFile(blocked, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	target := filepath.Join(blocked, "state.json")
	s := NewStore(apply(nil, up("a"), up("b")), slog.New(slog.DiscardHandler))
	defer s.Close()
	reports := make(chan error, 16)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	changes := s.Watch()
	go func() {
		defer close(done)
		persist(ctx, s, changes, target, time.Millisecond, 20*time.Millisecond, slog.New(slog.DiscardHandler), func(err error) { reports <- err })
	}()
	s.Dispatch(up("c"))
	select {
	case err := <-reports:
		if err == nil || !strings.Contains(err.Error(), "the last saved state is kept") {
			t.Fatalf("first report = %v, want the save error with what is kept", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a failed save was not reported")
	}
	// The old file elsewhere is untouched, and nothing half-written is left.
	if after, _ := os.ReadFile(path); !bytes.Equal(after, before) {
		t.Error("the old state file changed")
	}
	if err := os.Remove(blocked); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(blocked, 0o700); err != nil {
		t.Fatal(err)
	}
	// No further change: the retry saves it and clears the report.
	deadline := time.After(5 * time.Second)
	for cleared := false; !cleared; {
		select {
		case err := <-reports:
			cleared = err == nil
		case <-deadline:
			t.Fatal("the save was not retried after the cause was gone")
		}
	}
	got, err := LoadState(target)
	if err != nil || len(got.Envs) != 3 {
		t.Fatalf("saved after the retry: %+v, %v", got, err)
	}
	cancel()
	<-done
}

func TestSaveErrorSaysWhatToDo(t *testing.T) {
	t.Parallel()
	for errno, want := range map[syscall.Errno]string{
		syscall.ENOSPC: "is full: free some space",
		syscall.EROFS:  "read-only file system",
		syscall.EACCES: "is not writable",
		syscall.EPERM:  "chattr -i",
	} {
		err := saveError("/s/state.json", &os.PathError{Op: "open", Path: "/s/.state-1.json", Err: errno})
		if !strings.Contains(err.Error(), want) || !errors.Is(err, errno) {
			t.Errorf("%v: %v, want %q", errno, err, want)
		}
	}
}
