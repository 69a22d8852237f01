package envs

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/devctl/devctl/envs/internal/providers"
	"github.com/devctl/devctl/envs/internal/providers/fake"
)

// memStore is an in-memory metadataStore keyed by kubeconfig, with failure
// knobs.
type memStore struct {
	ReadError  error
	WriteError error

	mu   sync.Mutex
	data map[string]Env
}

func newMemStore() *memStore { return &memStore{data: map[string]Env{}} }

func (s *memStore) read(_ context.Context, kc []byte) (Env, error) {
	if s.ReadError != nil {
		return Env{}, s.ReadError
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	env, ok := s.data[string(kc)]
	if !ok {
		return Env{}, errNoMetadata
	}
	return env, nil
}

func (s *memStore) write(_ context.Context, kc []byte, env Env) error {
	if s.WriteError != nil {
		return s.WriteError
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	env.Kubeconfig = "" // not part of the metadata
	s.data[string(kc)] = env
	return nil
}

var errBoom = errors.New("boom")

var fixedNow = time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC)

type harness struct {
	m        *Manager
	p        *fake.Provider
	store    *memStore
	dir      string
	progress []Progress
}

func newHarness(t *testing.T, p providers.Provider, fp *fake.Provider) *harness {
	t.Helper()
	h := &harness{p: fp, store: newMemStore(), dir: t.TempDir()}
	h.m = New(WithProvider(p), WithStateDir(h.dir), WithProgress(func(pr Progress) { h.progress = append(h.progress, pr) }))
	h.m.store = h.store
	h.m.now = func() time.Time { return fixedNow }
	return h
}

func newFakeHarness(t *testing.T, existing ...string) *harness {
	fp := fake.New(existing...)
	return newHarness(t, fp, fp)
}

var helloSpec = Spec{Project: "hello", Repo: "github.com/acme/hello", Branch: "main", NodeImage: "devctl.local/kind-node:test", Labels: map[string]string{"team": "a"}}

func TestUpCreatesEnvironment(t *testing.T) {
	t.Parallel()
	h := newFakeHarness(t)
	env, err := h.m.Up(context.Background(), helloSpec)
	if err != nil {
		t.Fatal(err)
	}
	want := Env{
		Name: "hello-main", Provider: "fake", Project: "hello", Repo: "github.com/acme/hello", Branch: "main",
		NodeImage: "devctl.local/kind-node:test", Kubeconfig: filepath.Join(h.dir, "envs", "hello-main", "kubeconfig"),
		Created: fixedNow, Labels: map[string]string{"team": "a"}, New: true,
	}
	assertEnv(t, env, want)

	o, ok := h.p.Created("hello-main")
	if !ok {
		t.Fatal("backend has no environment hello-main")
	}
	if o.NodeImage != helloSpec.NodeImage || o.KubeconfigPath != want.Kubeconfig || o.WaitForReady != DefaultReadyTimeout {
		t.Errorf("create options = %+v", o)
	}
	b, err := os.ReadFile(env.Kubeconfig)
	if err != nil || string(b) != fake.Kubeconfig("hello-main") {
		t.Errorf("kubeconfig file = %q, %v", b, err)
	}
	recorded := h.store.data[fake.Kubeconfig("hello-main")]
	want.Kubeconfig, want.New = "", false
	assertEnv(t, &recorded, want)

	var msgs []string
	for _, p := range h.progress {
		if p.Env != "hello-main" {
			t.Errorf("progress for env %q", p.Env)
		}
		msgs = append(msgs, p.State.String()+" "+p.Message)
	}
	wantMsgs := []string{
		"started creating fake cluster hello-main (node image devctl.local/kind-node:test)",
		"started starting fake control plane",
		"done starting fake control plane",
		"done creating fake cluster hello-main (node image devctl.local/kind-node:test)",
		"started writing kubeconfig",
		"done writing kubeconfig",
		"started recording environment metadata",
		"done recording environment metadata",
	}
	if strings.Join(msgs, "\n") != strings.Join(wantMsgs, "\n") {
		t.Errorf("progress:\n%s\nwant:\n%s", strings.Join(msgs, "\n"), strings.Join(wantMsgs, "\n"))
	}
}

func TestUpDefaults(t *testing.T) {
	t.Parallel()
	h := newFakeHarness(t)
	env, err := h.m.Up(context.Background(), Spec{Name: "custom"})
	if err != nil {
		t.Fatal(err)
	}
	if env.Name != "custom" || env.NodeImage != DefaultNodeImage {
		t.Errorf("env = %+v", env)
	}
	if o, _ := h.p.Created("custom"); o.NodeImage != DefaultNodeImage {
		t.Errorf("node image passed to backend = %q, want %q", o.NodeImage, DefaultNodeImage)
	}
}

func TestUpIsIdempotent(t *testing.T) {
	t.Parallel()
	h := newFakeHarness(t)
	ctx := context.Background()
	first, err := h.m.Up(ctx, helloSpec)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(first.Kubeconfig); err != nil {
		t.Fatal(err)
	}
	h.m.now = func() time.Time { return fixedNow.Add(time.Hour) }
	second, err := h.m.Up(ctx, helloSpec)
	if err != nil {
		t.Fatal(err)
	}
	if !first.New || second.New {
		t.Errorf("New = %v then %v, want true then false", first.New, second.New)
	}
	first.New = false
	assertEnv(t, second, *first)
	if n := h.p.Creates(); n != 1 {
		t.Errorf("backend Create called %d times, want 1", n)
	}
	if _, err := os.Stat(second.Kubeconfig); err != nil {
		t.Errorf("kubeconfig file not refreshed: %v", err)
	}
}

func TestUpErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		spec     Spec
		existing []string
		setup    func(h *harness)
		wantErr  error
		wantDir  bool
	}{
		{name: "no name", spec: Spec{}, wantErr: ErrInvalidName},
		{name: "bad name", spec: Spec{Name: "Bad_Name"}, wantErr: ErrInvalidName},
		{name: "list fails", spec: helloSpec, setup: func(h *harness) { h.p.ListError = errBoom }, wantErr: errBoom},
		{name: "create fails", spec: helloSpec, setup: func(h *harness) { h.p.CreateError = errBoom }, wantErr: errBoom},
		{name: "kubeconfig fails", spec: helloSpec, setup: func(h *harness) { h.p.KubeconfigError = errBoom }, wantErr: errBoom, wantDir: true},
		{name: "metadata write fails", spec: helloSpec, setup: func(h *harness) { h.store.WriteError = errBoom }, wantErr: errBoom, wantDir: true},
		{name: "foreign cluster", spec: helloSpec, existing: []string{"hello-main"}, wantErr: ErrNotManaged},
		{name: "metadata read fails", spec: helloSpec, existing: []string{"hello-main"}, setup: func(h *harness) { h.store.ReadError = errBoom }, wantErr: errBoom},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := newFakeHarness(t, tt.existing...)
			if tt.setup != nil {
				tt.setup(h)
			}
			_, err := h.m.Up(context.Background(), tt.spec)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Up err = %v, want %v", err, tt.wantErr)
			}
			_, statErr := os.Stat(filepath.Join(h.dir, "envs", "hello-main"))
			if (statErr == nil) != tt.wantDir {
				t.Errorf("state dir exists = %v, want %v", statErr == nil, tt.wantDir)
			}
		})
	}
}

func TestUpResumesInterruptedCreate(t *testing.T) {
	t.Parallel()
	h := newFakeHarness(t)
	ctx := context.Background()
	h.store.WriteError = errBoom
	if _, err := h.m.Up(ctx, helloSpec); !errors.Is(err, errBoom) {
		t.Fatalf("first Up err = %v, want %v", err, errBoom)
	}
	h.store.WriteError = nil
	env, err := h.m.Up(ctx, helloSpec)
	if err != nil {
		t.Fatalf("second Up: %v", err)
	}
	if env.Name != "hello-main" || h.p.Creates() != 1 {
		t.Errorf("env = %+v, creates = %d", env, h.p.Creates())
	}
}

func TestGetAndList(t *testing.T) {
	t.Parallel()
	h := newFakeHarness(t, "someone-elses")
	ctx := context.Background()
	for _, b := range []string{"main", "dev"} {
		s := helloSpec
		s.Branch = b
		if _, err := h.m.Up(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	// A second Manager with the same backend but a fresh state dir sees the
	// same environments: state lives in the clusters.
	other := newHarness(t, h.p, h.p)
	other.m.store = h.store
	envs, err := other.m.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range envs {
		names = append(names, e.Name+"@"+e.Branch)
		if _, err := os.Stat(e.Kubeconfig); err != nil || !strings.HasPrefix(e.Kubeconfig, other.dir) {
			t.Errorf("kubeconfig of %s = %q: %v", e.Name, e.Kubeconfig, err)
		}
	}
	if got, want := strings.Join(names, ","), "hello-dev@dev,hello-main@main"; got != want {
		t.Errorf("List = %s, want %s", got, want)
	}

	env, err := other.m.Get(ctx, "hello-dev")
	if err != nil || env.Branch != "dev" || env.Project != "hello" {
		t.Errorf("Get = %+v, %v", env, err)
	}
	for _, name := range []string{"missing", "someone-elses"} {
		if _, err := other.m.Get(ctx, name); !errors.Is(err, ErrEnvNotFound) || !strings.Contains(err.Error(), "devctl ls") {
			t.Errorf("Get(%q) err = %v, want ErrEnvNotFound with a hint", name, err)
		}
	}
}

func TestListSkipsUnreadable(t *testing.T) {
	t.Parallel()
	h := newFakeHarness(t)
	ctx := context.Background()
	if _, err := h.m.Up(ctx, helloSpec); err != nil {
		t.Fatal(err)
	}
	h.store.ReadError = errBoom
	envs, err := h.m.List(ctx)
	if err != nil || len(envs) != 0 {
		t.Errorf("List = %+v, %v; want nothing and no error", envs, err)
	}
	h.p.ListError = errBoom
	if _, err := h.m.List(ctx); !errors.Is(err, errBoom) {
		t.Errorf("List err = %v, want %v", err, errBoom)
	}
}

func TestDelete(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	t.Run("removes cluster and state", func(t *testing.T) {
		t.Parallel()
		h := newFakeHarness(t)
		env, err := h.m.Up(ctx, helloSpec)
		if err != nil {
			t.Fatal(err)
		}
		if err := h.m.Delete(ctx, env.Name); err != nil {
			t.Fatal(err)
		}
		if _, ok := h.p.Created(env.Name); ok {
			t.Error("cluster still exists")
		}
		if _, err := os.Stat(filepath.Dir(env.Kubeconfig)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("state dir still there: %v", err)
		}
		if err := h.m.Delete(ctx, env.Name); !errors.Is(err, ErrEnvNotFound) {
			t.Errorf("second Delete err = %v, want ErrEnvNotFound", err)
		}
	})
	t.Run("backend fails", func(t *testing.T) {
		t.Parallel()
		h := newFakeHarness(t)
		env, err := h.m.Up(ctx, helloSpec)
		if err != nil {
			t.Fatal(err)
		}
		h.p.DeleteError = errBoom
		if err := h.m.Delete(ctx, env.Name); !errors.Is(err, errBoom) {
			t.Fatalf("Delete err = %v, want %v", err, errBoom)
		}
		if _, err := os.Stat(env.Kubeconfig); err != nil {
			t.Errorf("kubeconfig removed although the cluster remains: %v", err)
		}
	})
	t.Run("refuses foreign cluster", func(t *testing.T) {
		t.Parallel()
		h := newFakeHarness(t, "theirs")
		if err := h.m.Delete(ctx, "theirs"); !errors.Is(err, ErrNotManaged) {
			t.Fatalf("Delete err = %v, want ErrNotManaged", err)
		}
		if _, ok := h.p.Created("theirs"); !ok {
			t.Error("foreign cluster deleted")
		}
	})
}

func TestLoadImages(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	archive := func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader("tarball")), nil }

	fp := fake.New()
	h := newHarness(t, fake.ImageLoader{Provider: fp}, fp)
	if _, err := h.m.Up(ctx, helloSpec); err != nil {
		t.Fatal(err)
	}
	if err := h.m.LoadImages(ctx, "hello-main", archive); err != nil {
		t.Fatal(err)
	}
	if got := fp.Images("hello-main"); len(got) != 1 || !bytes.Equal(got[0], []byte("tarball")) {
		t.Errorf("loaded %q", got)
	}
	if err := h.m.LoadImages(ctx, "missing", archive); !errors.Is(err, ErrEnvNotFound) {
		t.Errorf("LoadImages(missing) err = %v, want ErrEnvNotFound", err)
	}
	fp.LoadImagesError = errBoom
	if err := h.m.LoadImages(ctx, "hello-main", archive); !errors.Is(err, errBoom) {
		t.Errorf("LoadImages err = %v, want %v", err, errBoom)
	}

	plain := newFakeHarness(t)
	if err := plain.m.LoadImages(ctx, "hello-main", archive); !errors.Is(err, ErrNotSupported) {
		t.Errorf("LoadImages without loader err = %v, want ErrNotSupported", err)
	}
}

func TestKubeconfigExport(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	h := newFakeHarness(t)
	if _, err := h.m.Up(ctx, helloSpec); err != nil {
		t.Fatal(err)
	}
	dest := filepath.Join(t.TempDir(), "config")
	existing := `apiVersion: v1
kind: Config
clusters:
- name: prod
  cluster:
    server: https://prod.example:6443
contexts:
- name: prod
  context:
    cluster: prod
    user: prod
users:
- name: prod
  user:
    token: secret
current-context: prod
`
	if err := os.WriteFile(dest, []byte(existing), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := h.m.KubeconfigExport(ctx, "hello-main", dest); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(dest)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"https://prod.example:6443", "https://hello-main.invalid:6443", "current-context: fake-hello-main", "token: secret"} {
		if !bytes.Contains(b, []byte(want)) {
			t.Errorf("merged kubeconfig lacks %q:\n%s", want, b)
		}
	}
	if err := h.m.KubeconfigExport(ctx, "missing", dest); !errors.Is(err, ErrEnvNotFound) {
		t.Errorf("export of missing env err = %v", err)
	}
	if err := h.m.KubeconfigExport(ctx, "hello-main", ""); err == nil {
		t.Error("export to empty path succeeded")
	}
}

func TestProgressElapsed(t *testing.T) {
	t.Parallel()
	var got []Progress
	now := fixedNow
	tr := &tracker{env: "e", send: func(p Progress) { got = append(got, p) }, now: func() time.Time { return now }, started: map[string]time.Time{}}
	done := tr.start("step")
	now = now.Add(1500 * time.Millisecond)
	done(errBoom)
	if len(got) != 2 || got[1].State != StepFailed || got[1].Elapsed != 1500*time.Millisecond || got[0].Elapsed != 0 {
		t.Errorf("progress = %+v", got)
	}
}

func TestDefaultStateDir(t *testing.T) {
	t.Setenv("XDG_STATE_HOME", "/x/state")
	if got := DefaultStateDir(); got != "/x/state/devctl" {
		t.Errorf("DefaultStateDir() = %q", got)
	}
	t.Setenv("XDG_STATE_HOME", "")
	t.Setenv("HOME", "/home/u")
	if got := DefaultStateDir(); got != "/home/u/.local/state/devctl" {
		t.Errorf("DefaultStateDir() = %q", got)
	}
}

func assertEnv(t *testing.T, got *Env, want Env) {
	t.Helper()
	if got == nil {
		t.Fatal("env is nil")
	}
	g, w := *got, want
	if len(g.Labels) != len(w.Labels) {
		t.Errorf("labels = %v, want %v", g.Labels, w.Labels)
	}
	for k, v := range w.Labels {
		if g.Labels[k] != v {
			t.Errorf("label %s = %q, want %q", k, g.Labels[k], v)
		}
	}
	g.Labels, w.Labels = nil, nil
	if !g.Created.Equal(w.Created) {
		t.Errorf("created = %v, want %v", g.Created, w.Created)
	}
	g.Created, w.Created = time.Time{}, time.Time{}
	if !reflect.DeepEqual(g, w) {
		t.Errorf("env = %+v\nwant  %+v", g, w)
	}
}
