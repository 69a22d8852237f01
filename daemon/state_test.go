package daemon

import (
	"testing"
	"time"

	"github.com/devctl/devctl/internal/api"
)

func TestReduce(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	t1 := t0.Add(3 * time.Second)
	tests := []struct {
		name    string
		actions []Action
		check   func(t *testing.T, s *State)
	}{
		{
			name:    "accept creates generation 1 pending",
			actions: []Action{EnvAccepted{Env: api.Environment{Name: "a", Branch: "main"}}},
			check: func(t *testing.T, s *State) {
				e := s.Envs["a"]
				if e == nil || e.Generation != 1 || e.Phase != api.PhasePending || !e.CreatedAt.Equal(t0) {
					t.Fatalf("got %+v", e)
				}
			},
		},
		{
			name: "second accept bumps generation, keeps creation time, services and kubeconfig, clears steps",
			actions: []Action{
				EnvAccepted{Env: api.Environment{Name: "a"}},
				EnvInfo{Name: "a", Kubeconfig: "/k"},
				ServicesUpdated{Name: "a", Services: []api.Service{{Name: "web", Image: "img:1"}}},
				StepStarted{Name: "a", Step: StepBuild, At: t0},
				PhaseChanged{Name: "a", Phase: api.PhaseReady},
				EnvAccepted{Env: api.Environment{Name: "a"}},
			},
			check: func(t *testing.T, s *State) {
				e := s.Envs["a"]
				if e.Generation != 2 || e.Kubeconfig != "/k" || len(e.Services) != 1 || len(e.Steps) != 0 || e.Phase != api.PhasePending {
					t.Fatalf("got %+v", e)
				}
			},
		},
		{
			name: "step ended records duration and detail",
			actions: []Action{
				EnvAccepted{Env: api.Environment{Name: "a"}},
				StepStarted{Name: "a", Step: StepCluster, At: t0},
				StepEnded{Name: "a", Step: StepCluster, Status: api.StepDone, Detail: "created", At: t1},
			},
			check: func(t *testing.T, s *State) {
				st := s.Envs["a"].Steps
				if len(st) != 1 || st[0].Duration != 3*time.Second || st[0].Status != api.StepDone || st[0].Detail != "created" {
					t.Fatalf("got %+v", st)
				}
			},
		},
		{
			name: "failure marks running steps failed and keeps diagnostics",
			actions: []Action{
				EnvAccepted{Env: api.Environment{Name: "a"}},
				StepStarted{Name: "a", Step: StepReady, At: t0},
				EnvFailed{Name: "a", Err: "boom", Diagnostics: "pod x: CrashLoopBackOff"},
			},
			check: func(t *testing.T, s *State) {
				e := s.Envs["a"]
				if e.Phase != api.PhaseFailed || e.Message != "boom" || e.Diagnostics == "" || e.Steps[0].Status != api.StepFailed {
					t.Fatalf("got %+v", e)
				}
			},
		},
		{
			name: "actions for unknown environments are ignored",
			actions: []Action{
				PhaseChanged{Name: "ghost", Phase: api.PhaseReady},
			},
			check: func(t *testing.T, s *State) {
				if len(s.Envs) != 0 {
					t.Fatalf("got %+v", s.Envs)
				}
			},
		},
		{
			name: "discovered environment does not override what the daemon recorded",
			actions: []Action{
				EnvAccepted{Env: api.Environment{Name: "a", Branch: "main"}},
				PhaseChanged{Name: "a", Phase: api.PhaseReady},
				EnvDiscovered{Env: api.Environment{Name: "a", Branch: "other", Kubeconfig: "/k", Phase: api.PhaseUnknown}},
			},
			check: func(t *testing.T, s *State) {
				e := s.Envs["a"]
				if e.Branch != "main" || e.Phase != api.PhaseReady || e.Kubeconfig != "/k" {
					t.Fatalf("got %+v", e)
				}
			},
		},
		{
			name: "service ready sets URL",
			actions: []Action{
				EnvAccepted{Env: api.Environment{Name: "a"}},
				ServicesUpdated{Name: "a", Services: []api.Service{{Name: "web"}, {Name: "api"}}},
				ServiceReady{Name: "a", Service: "api", Ready: true, URL: "http://127.0.0.1:1"},
			},
			check: func(t *testing.T, s *State) {
				sv := s.Envs["a"].Services
				if sv[0].Ready || !sv[1].Ready || sv[1].URL != "http://127.0.0.1:1" {
					t.Fatalf("got %+v", sv)
				}
			},
		},
		{
			name:    "delete removes",
			actions: []Action{EnvAccepted{Env: api.Environment{Name: "a"}}, EnvDeleted{Name: "a"}},
			check: func(t *testing.T, s *State) {
				if _, ok := s.Envs["a"]; ok {
					t.Fatal("still there")
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := newState()
			for _, a := range tt.actions {
				reduce(s, a, t0)
			}
			tt.check(t, s)
		})
	}
}

func TestReduceLogLineChangesNothing(t *testing.T) {
	t.Parallel()
	s := newState()
	reduce(s, EnvAccepted{Env: api.Environment{Name: "a"}}, time.Now())
	if reduce(s, LogLine{Name: "a", Line: "x"}, time.Now()) {
		t.Fatal("a log line must not count as a state change")
	}
}

func TestStateFileRoundTripAndCorruption(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := dir + "/state.json"
	s := newState()
	reduce(s, EnvAccepted{Env: api.Environment{Name: "a", Branch: "main"}}, time.Now())
	if err := SaveState(path, s); err != nil {
		t.Fatal(err)
	}
	got, err := LoadState(path)
	if err != nil || got.Envs["a"] == nil || got.Envs["a"].Branch != "main" {
		t.Fatalf("round trip: %v %+v", err, got)
	}
	if err := writeFile(path, "{not json"); err != nil {
		t.Fatal(err)
	}
	got, err = LoadState(path)
	if err == nil || len(got.Envs) != 0 {
		t.Fatalf("corrupt file: want an error and an empty state, got %v %+v", err, got)
	}
	matches, _ := globFiles(dir, "state.json.corrupt-*")
	if len(matches) != 1 {
		t.Fatalf("the corrupt file must be kept aside, found %v", matches)
	}
}
