package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/devctl/devctl/internal/api"
)

// fakePlatform records what the mock steps asked of it.
type fakePlatform struct {
	mu       sync.Mutex
	images   map[string]bool // engine images
	checks   []string
	CheckErr map[string]error
}

func (p *fakePlatform) StandInImage(context.Context) (string, func() (io.ReadCloser, error), error) {
	return "devctl.local/platform-mocks:0123456789ab", func() (io.ReadCloser, error) {
		return io.NopCloser(strings.NewReader("tar")), nil
	}, nil
}

func (p *fakePlatform) HasImage(_ context.Context, ref string) (bool, error) {
	return p.images[ref], nil
}

func (p *fakePlatform) Check(_ context.Context, kubeconfig, ns, release, dep string) (string, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.checks = append(p.checks, ns+"/"+release+"/"+dep)
	if err := p.CheckErr[dep]; err != nil {
		return "", err
	}
	return dep + " ok", nil
}

func writeProjectWithDeps(t *testing.T, deps string) string {
	t.Helper()
	dir := writeProject(t, "web")
	writeFile(t, filepath.Join(dir, "devctl.yaml"), "apiVersion: devctl.dev/v1alpha1\nkind: Project\nname: hello\nteam: dx\n"+
		"dependencies: ["+deps+"]\nmocks:\n  postgres: {image: devctl.local/postgres:test}\n"+
		"services:\n  - name: web\n    context: web\n    port: 8080\n")
	writeFile(t, filepath.Join(dir, ".devctl", "secrets.yaml"), "web:\n  API_KEY: s3cr3t-value\n")
	return dir
}

func TestUpInstallsDeclaredDependenciesBeforeTheServices(t *testing.T) {
	t.Setenv("DEVCTL_POSTGRES_IMAGE", "")
	f := newFakeDeps()
	pl := &fakePlatform{images: map[string]bool{"devctl.local/postgres:test": true}}
	f.Platform = pl
	c := startDaemon(t, f, t.TempDir())
	dir := writeProjectWithDeps(t, "secrets, postgres, s3, metrics")

	e := upAndWait(t, c, dir)
	if e.Status.Phase != api.PhaseReady {
		t.Fatalf("phase %s: %s\n%s", e.Status.Phase, e.Status.Message, stepList(e.Status.Run))
	}
	var names []string
	for _, s := range e.Status.Run.Steps {
		if s.Status != api.StepDone {
			t.Errorf("step %s %s: %s", s.Name, s.Status, s.Detail)
		}
		names = append(names, s.Name)
	}
	// The checks run at once (any order) after the install and before the
	// services deploy.
	idx := func(n string) int { return slices.Index(names, n) }
	for _, n := range []string{"check-secrets", "check-postgres", "check-s3", "check-metrics"} {
		if i := idx(n); i < idx(StepMocks) || i > idx(StepDeploy) || i < 0 {
			t.Errorf("%s at %d in %v: want between mocks and deploy", n, i, names)
		}
	}
	// mock-images runs beside cluster and build; mocks beside deliver.
	if idx(StepMockImages) < 0 || idx(StepMockImages) > idx(StepDeliver) || idx(StepMockImages) > idx(StepMocks) ||
		idx(StepMocks) > idx(StepDependencies) || idx(StepDeliver) > idx(StepDependencies) {
		t.Errorf("steps %v: want mock-images before deliver and mocks, both before dependencies", names)
	}
	pl.mu.Lock()
	checks := slices.Sorted(slices.Values(pl.checks))
	pl.mu.Unlock()
	if want := []string{"hello/platform-mocks/metrics", "hello/platform-mocks/postgres", "hello/platform-mocks/s3", "hello/platform-mocks/secrets"}; !slices.Equal(checks, want) {
		t.Errorf("checks = %v, want %v", checks, want)
	}
	_, loads, deploys := f.counts()
	if loads != 3 || deploys != 2 { // web + stand-ins + postgres; web + platform-mocks
		t.Errorf("loads = %d, deploys = %d; want 3 and 2", loads, deploys)
	}

	// A second up loads and installs nothing again.
	e = upAndWait(t, c, dir)
	if e.Status.Phase != api.PhaseReady {
		t.Fatalf("second up: %s", e.Status.Message)
	}
	if _, loads2, deploys2 := f.counts(); loads2 != loads || deploys2 != deploys {
		t.Errorf("second up loaded %d and deployed %d more", loads2-loads, deploys2-deploys)
	}
	for _, s := range e.Status.Run.Steps {
		if s.Name == StepMocks && !strings.Contains(s.Detail, "unchanged") {
			t.Errorf("second mocks step: %s", s.Detail)
		}
	}
	// The Secrets injected into web are in status by name: the
	// ExternalSecret's target (every key) and the connection Secrets.
	var secrets []string
	if web := e.Status.Service("web"); web != nil {
		for _, r := range web.Secrets {
			secrets = append(secrets, fmt.Sprintf("%s:%v:%d", r.Name, r.AllKeys, len(r.Env)))
		}
	}
	if want := []string{"postgres:false:7", "s3:false:5", "web-secrets:true:0"}; !slices.Equal(secrets, want) {
		t.Errorf("web's Secrets = %v, want %v", secrets, want)
	}
	// The secrets seed is never in status.
	if b, _ := jsonOf(e); strings.Contains(b, "s3cr3t-value") {
		t.Error("a secret value is in the environment's status")
	}
}

func TestUpWithoutDependenciesHasNoMockSteps(t *testing.T) {
	t.Parallel()
	f := newFakeDeps()
	c := startDaemon(t, f, t.TempDir())
	e := upAndWait(t, c, writeProject(t, "web"))
	for _, s := range e.Status.Run.Steps {
		if strings.HasPrefix(s.Name, StepCheckPrefix) || s.Name == StepMocks || s.Name == StepMockImages || s.Name == StepDependencies {
			t.Errorf("step %s in a project without dependencies", s.Name)
		}
	}
}

func TestDependencyFailures(t *testing.T) {
	t.Setenv("DEVCTL_POSTGRES_IMAGE", "")
	t.Run("missing postgres image says how to get one", func(t *testing.T) {
		f := newFakeDeps()
		f.Platform = &fakePlatform{images: map[string]bool{}}
		c := startDaemon(t, f, t.TempDir())
		e := upAndWait(t, c, writeProjectWithDeps(t, "postgres"))
		if e.Status.Phase != api.PhaseFailed || !strings.Contains(e.Status.Message, "e2e/images/postgres.sh") ||
			!strings.Contains(e.Status.Message, "docker pull devctl.local/postgres:test") {
			t.Errorf("phase %s message %q", e.Status.Phase, e.Status.Message)
		}
		if _, _, deploys := f.counts(); deploys != 0 {
			t.Errorf("%d deploys after a failed image check", deploys)
		}
	})
	t.Run("a failed check stops before the services deploy", func(t *testing.T) {
		f := newFakeDeps()
		f.Platform = &fakePlatform{images: map[string]bool{}, CheckErr: map[string]error{"s3": errors.New("ListBuckets: connection refused")}}
		c := startDaemon(t, f, t.TempDir())
		e := upAndWait(t, c, writeProjectWithDeps(t, "s3, metrics"))
		if e.Status.Phase != api.PhaseFailed || !strings.Contains(e.Status.Message, "check-s3") || !strings.Contains(e.Status.Message, "connection refused") {
			t.Errorf("phase %s message %q", e.Status.Phase, e.Status.Message)
		}
		if _, _, deploys := f.counts(); deploys != 1 { // platform-mocks only
			t.Errorf("deploys = %d, want the stand-ins only", deploys)
		}
	})
}

func jsonOf(v any) (string, error) {
	b, err := json.Marshal(v)
	return string(b), err
}
