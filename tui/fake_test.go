package tui

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/devctl/devctl/internal/api"
)

// fakeDaemon answers like the daemon from memory and records the requests.
type fakeDaemon struct {
	mu        sync.Mutex
	ups       []api.UpRequest
	downs     []string
	resources map[string]*api.Resources
	healthErr error
}

func (f *fakeDaemon) Health(context.Context) (*api.Health, error) {
	if f.healthErr != nil {
		return nil, f.healthErr
	}
	return &api.Health{Version: "v0.test", PID: 1}, nil
}

func (f *fakeDaemon) Events(context.Context, string) (<-chan api.Event, func() error, error) {
	ch := make(chan api.Event)
	return ch, func() error { return nil }, nil
}

func (f *fakeDaemon) Resources(_ context.Context, env string) (*api.Resources, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if r, ok := f.resources[env]; ok {
		return r, nil
	}
	return nil, errors.New("not found")
}

func (f *fakeDaemon) LogLines(context.Context, string, api.LogOptions) (<-chan string, func() error, error) {
	return make(chan string), func() error { return nil }, nil
}

func (f *fakeDaemon) Up(_ context.Context, req api.UpRequest) (*api.Environment, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ups = append(f.ups, req)
	return &api.Environment{Name: req.Name}, nil
}

func (f *fakeDaemon) Down(_ context.Context, name string) (*api.Environment, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.downs = append(f.downs, name)
	return &api.Environment{Name: name}, nil
}

var t0 = time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)

// sampleEnvs are two environments of two projects: hello ready with a
// finding, a waived finding, rebuilds and a failed one; shop failed.
func sampleEnvs() []api.Environment {
	hello := api.Environment{
		Name: "hello-main", Generation: 3,
		Spec: api.EnvSpec{Provider: "kind", Project: "hello", Repo: "hello", Branch: "main", Dir: "/src/hello", Watch: true},
		Status: api.EnvStatus{
			Phase: api.PhaseReady, Message: "ready", ObservedGeneration: 3, Namespace: "hello", Watching: true,
			Kubeconfig: "/state/hello-main.kubeconfig",
			CreatedAt:  t0.Add(-2 * time.Hour),
			Services: []api.ServiceStatus{{Name: "hello", Port: 8080, URL: "http://127.0.0.1:41234", Ready: true, Revision: 3,
				RED: &api.RED{At: t0.Add(-3 * time.Second), Window: time.Minute, Requests: 744, RatePerSecond: 12.4, ErrorRatio: 0.0121,
					P50: ptr(4200 * time.Microsecond), P95: ptr(38 * time.Millisecond), P99: ptr(120 * time.Millisecond)},
				Secrets: []api.SecretRef{{Name: "hello-live-token", Env: []string{"DEVCTL_AGENT_TOKEN"}}, {Name: "hello-secrets", AllKeys: true},
					{Name: "postgres", Env: []string{"DATABASE_URL", "PGDATABASE", "PGHOST", "PGPASSWORD", "PGPORT", "PGSSLMODE", "PGUSER"}}}}},
			Findings: []api.Finding{
				{Rule: "no-latest-tag", Severity: "high", Object: "Deployment hello/bad", Path: "spec.template.spec.containers[0].image", Source: "/src/hello/k8s/bad.yaml:12", Message: `image "nginx:latest" has no pinned tag`, Fix: "pin the image to a digest or a version tag"},
				{Rule: "resources-limits", Severity: "medium", Object: "Deployment hello/bad", Path: "spec.template.spec.containers[0].resources.limits", Source: "bad.yaml:14", Message: "container nginx has no memory limit", Fix: "set resources.limits.memory"},
				{Rule: "read-only-root", Severity: "medium", Object: "Deployment hello/hello", Source: "charts/golden-path/templates/deployment.yaml:40", Message: "root filesystem is writable", Waived: true,
					Waiver: &api.Waiver{Approver: "dx@example.com", Reason: "writes a cache", Expires: time.Date(2027, 1, 31, 0, 0, 0, 0, time.UTC)}},
			},
			Run: &api.Run{ID: 7, Request: api.Request{Kind: api.RunRebuild, Generation: 3, Reason: "main.go changed"},
				Started: t0.Add(-time.Minute), Ended: t0.Add(-time.Minute + 1500*time.Millisecond),
				Steps: []api.Step{
					{Name: "build", Status: api.StepDone, Duration: 900 * time.Millisecond, Detail: "hello: go build"},
					{Name: "deliver", Status: api.StepDone, Duration: 200 * time.Millisecond},
					{Name: "deploy", Status: api.StepDone, Duration: 300 * time.Millisecond, Detail: "revision 3"},
					{Name: "ready", Status: api.StepDone, Duration: 100 * time.Millisecond},
				}},
			Rebuilds: []api.Rebuild{
				{Run: 5, Services: []string{"hello"}, Mode: "image", Reason: "main.go changed", Started: t0.Add(-10 * time.Minute), SaveToServing: 1200 * time.Millisecond,
					Phases: []api.PhaseTime{{Name: "detect", Duration: 200 * time.Millisecond}, {Name: "build", Duration: 700 * time.Millisecond}, {Name: "ready", Duration: 300 * time.Millisecond}}},
				{Run: 6, Services: []string{"hello"}, Mode: "image", Reason: "main.go changed", Started: t0.Add(-5 * time.Minute),
					Error: "./main.go:14:2: undefined: fmt.Printn\n./main.go:15:2: too many errors"},
				{Run: 7, Services: []string{"hello"}, Mode: "live", Reason: "main.go changed", Started: t0.Add(-time.Minute), SaveToServing: 900 * time.Millisecond,
					Phases: []api.PhaseTime{{Name: "detect", Duration: 200 * time.Millisecond}, {Name: "update", Duration: 500 * time.Millisecond}, {Name: "ready", Duration: 200 * time.Millisecond}}},
			},
		},
	}
	shop := api.Environment{
		Name: "shop-feature-x", Generation: 1,
		Spec: api.EnvSpec{Provider: "kind", Project: "shop", Branch: "feature-x", Dir: "/src/shop"},
		Status: api.EnvStatus{Phase: api.PhaseFailed, Message: "deploy: deployment shop/api cannot start", CreatedAt: t0.Add(-30 * time.Minute),
			Run: &api.Run{ID: 1, Request: api.Request{Kind: api.RunUp, Reason: "devctl up"}, Started: t0.Add(-30 * time.Minute), Ended: t0.Add(-29 * time.Minute),
				Error: "deploy: deployment shop/api cannot start: pod api-1: ImagePullBackOff"}},
	}
	return []api.Environment{hello, shop}
}

func ptr[T any](v T) *T { return &v }

func sampleResources() *api.Resources {
	return &api.Resources{Env: "hello-main", Namespaces: []string{"hello"}, Items: []api.Resource{
		{Kind: api.KindDeployment, Namespace: "hello", Name: "hello", Service: "hello", Ready: "1/1", OK: true, Status: "Available", Created: t0.Add(-2 * time.Hour)},
		{Kind: api.KindPod, Namespace: "hello", Name: "hello-7d9f-abcde", Service: "hello", Ready: "1/1", OK: true, Status: "Running", Created: t0.Add(-time.Minute)},
		{Kind: api.KindService, Namespace: "hello", Name: "hello", Service: "hello", Ready: "1/1", OK: true, Status: "ClusterIP 8080/TCP", Created: t0.Add(-2 * time.Hour)},
		{Kind: api.KindDeployment, Namespace: "hello", Name: "s3", Service: "platform-mocks", Ready: "0/1", Status: "Progressing", Reason: "0 of 1 replicas ready, 1 updated", Created: t0.Add(-2 * time.Hour)},
		{Kind: api.KindPod, Namespace: "hello", Name: "s3-5c6d-xyz", Service: "platform-mocks", Ready: "0/1", Status: "CrashLoopBackOff", Restarts: 4, Reason: "container s3: back-off 40s restarting failed container; container s3 last exited with code 2 (Error)", Created: t0.Add(-2 * time.Hour)},
	}}
}
