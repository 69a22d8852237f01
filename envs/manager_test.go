package envs

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/devctl/devctl/envs/internal/providers"
	"github.com/devctl/devctl/envs/internal/providers/fake"
	"github.com/devctl/devctl/envs/internal/providers/kind"
	"github.com/devctl/devctl/envs/internal/providers/vcluster"
	"github.com/devctl/devctl/internal/api"
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
	env.Kubeconfig, env.New = "", false // not part of the metadata
	s.data[string(kc)] = env
	return nil
}

func (s *memStore) recorded(provider, name string) (Env, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	env, ok := s.data[fake.Kubeconfig(provider, name)]
	return env, ok
}

// progressLog collects Progress reports; it is safe for concurrent use.
type progressLog struct {
	mu  sync.Mutex
	got []Progress
}

func (l *progressLog) add(p Progress) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.got = append(l.got, p)
}

// lines returns "<env>: <state> <message>" per report.
func (l *progressLog) lines() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]string, 0, len(l.got))
	for _, p := range l.got {
		out = append(out, p.Env+": "+p.State.String()+" "+p.Message)
	}
	return out
}

var errBoom = errors.New("boom")

var fixedNow = time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC)

type harness struct {
	m        *Manager
	p        *fake.Provider // the backend called "kind", the default one
	store    *memStore
	dir      string
	progress *progressLog
}

// newHarness returns a Manager over the given backends, with an in-memory
// metadata store, a fixed clock and its state in a temporary directory.
// Every harness has a fake backend called "kind" so that no test reaches
// the real kind backend (and Docker); backends may replace it.
func newHarness(t *testing.T, backends ...providers.Provider) *harness {
	t.Helper()
	h := &harness{p: fake.New(api.ProviderKind), store: newMemStore(), dir: t.TempDir(), progress: &progressLog{}}
	opts := []Option{withProvider(h.p), WithStateDir(h.dir), WithProgress(h.progress.add)}
	for _, b := range backends {
		opts = append(opts, withProvider(b))
	}
	h.m = New(opts...)
	h.m.store = h.store
	h.m.now = func() time.Time { return fixedNow }
	for name, p := range h.m.providers {
		if _, real := p.(*kind.Provider); real {
			t.Fatalf("backend %q is the real kind backend", name)
		}
	}
	return h
}

// newFakeHarness returns a harness whose default backend already holds the
// given clusters, made by someone else.
func newFakeHarness(t *testing.T, existing ...string) *harness {
	t.Helper()
	h := newHarness(t)
	for _, n := range existing {
		h.p.Add(n)
	}
	return h
}

func (h *harness) envDir(name string) string { return filepath.Join(h.dir, "envs", name) }

func (h *harness) hasDir(name string) bool {
	_, err := os.Stat(h.envDir(name))
	return err == nil
}

func (h *harness) hasCluster(name string) bool {
	_, ok := h.p.Created(name)
	return ok
}

// helloSpec names no provider: Up picks the default one.
var helloSpec = api.EnvSpec{
	Project:   "hello",
	Repo:      "github.com/acme/hello",
	Branch:    "main",
	Dir:       "/src/hello",
	Config:    "/src/hello/devctl.yaml",
	NodeImage: "devctl.local/kind-node:test",
	Watch:     true,
	Labels:    map[string]string{"team": "a"},
}

// specFor returns helloSpec for the backend called provider.
func specFor(provider string) api.EnvSpec {
	s := helloSpec
	s.Provider = provider
	return s
}

func TestUpCreatesEnvironment(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	env, err := h.m.Up(context.Background(), "hello-main", helloSpec)
	if err != nil {
		t.Fatal(err)
	}
	wantSpec := specFor(api.ProviderKind)
	want := Env{
		Name:       "hello-main",
		Spec:       wantSpec,
		Kubeconfig: filepath.Join(h.dir, "envs", "hello-main", "kubeconfig"),
		Created:    fixedNow,
		New:        true,
	}
	assertEnv(t, env, want)

	o, ok := h.p.Created("hello-main")
	if !ok {
		t.Fatal("backend has no environment hello-main")
	}
	if !reflect.DeepEqual(o.Spec, wantSpec) || o.KubeconfigPath != want.Kubeconfig || o.WaitForReady != DefaultReadyTimeout {
		t.Errorf("create options = %+v", o)
	}
	b, err := os.ReadFile(env.Kubeconfig)
	if err != nil || string(b) != fake.Kubeconfig("kind", "hello-main") {
		t.Errorf("kubeconfig file = %q, %v", b, err)
	}
	recorded, ok := h.store.recorded("kind", "hello-main")
	if !ok {
		t.Fatal("no metadata recorded")
	}
	want.Kubeconfig, want.New = "", false
	assertEnv(t, &recorded, want)

	wantProgress := []string{
		"hello-main: started creating kind cluster hello-main (node image devctl.local/kind-node:test)",
		"hello-main: started starting fake control plane",
		"hello-main: done starting fake control plane",
		"hello-main: done creating kind cluster hello-main (node image devctl.local/kind-node:test)",
		"hello-main: started writing kubeconfig",
		"hello-main: done writing kubeconfig",
		"hello-main: started recording environment metadata",
		"hello-main: done recording environment metadata",
	}
	assertLines(t, "progress", h.progress.lines(), wantProgress)
}

func TestUpWithoutNodeImageLeavesTheDefaultToTheBackend(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	env, err := h.m.Up(context.Background(), "custom", api.EnvSpec{})
	if err != nil {
		t.Fatal(err)
	}
	if env.Spec.Provider != DefaultProvider || env.Spec.NodeImage != "" {
		t.Errorf("spec = %+v, want the default provider and no node image", env.Spec)
	}
	if o, _ := h.p.Created("custom"); o.Spec.NodeImage != "" {
		t.Errorf("node image passed to backend = %q, want none", o.Spec.NodeImage)
	}
	if got := h.progress.lines()[0]; got != "custom: started creating kind cluster custom" {
		t.Errorf("first progress = %q", got)
	}
}

func TestUpIsIdempotent(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	ctx := context.Background()
	first, err := h.m.Up(ctx, "hello-main", helloSpec)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(first.Kubeconfig); err != nil {
		t.Fatal(err)
	}
	h.m.now = func() time.Time { return fixedNow.Add(time.Hour) }
	changed := helloSpec
	changed.Branch = "other"
	second, err := h.m.Up(ctx, "hello-main", changed)
	if err != nil {
		t.Fatal(err)
	}
	if !first.New || second.New {
		t.Errorf("New = %v then %v, want true then false", first.New, second.New)
	}
	first.New = false
	assertEnv(t, second, *first) // the recorded environment, not the new spec
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
		name        string
		env         string
		spec        api.EnvSpec
		existing    []string
		setup       func(h *harness)
		wantErr     error
		wantCluster bool
		wantDir     bool
	}{
		{name: "no name", env: "", spec: helloSpec, wantErr: ErrInvalidName},
		{name: "bad name", env: "Bad_Name", spec: helloSpec, wantErr: ErrInvalidName},
		{name: "name too long", env: strings.Repeat("a", MaxNameLen+1), spec: helloSpec, wantErr: ErrInvalidName},
		{name: "unknown provider", env: "hello-main", spec: specFor("nope"), wantErr: ErrUnknownProvider},
		{name: "list fails", env: "hello-main", spec: helloSpec, setup: func(h *harness) { h.p.ListError = errBoom }, wantErr: errBoom},
		{name: "kubeconfig fails", env: "hello-main", spec: helloSpec, setup: func(h *harness) { h.p.KubeconfigError = errBoom }, wantErr: errBoom, wantCluster: true, wantDir: true},
		{name: "metadata write fails", env: "hello-main", spec: helloSpec, setup: func(h *harness) { h.store.WriteError = errBoom }, wantErr: errBoom, wantCluster: true, wantDir: true},
		{name: "foreign cluster", env: "hello-main", spec: helloSpec, existing: []string{"hello-main"}, wantErr: ErrNotManaged, wantCluster: true},
		{name: "metadata read fails", env: "hello-main", spec: helloSpec, existing: []string{"hello-main"}, setup: func(h *harness) { h.store.ReadError = errBoom }, wantErr: errBoom, wantCluster: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := newFakeHarness(t, tt.existing...)
			if tt.setup != nil {
				tt.setup(h)
			}
			env, err := h.m.Up(context.Background(), tt.env, tt.spec)
			if !errors.Is(err, tt.wantErr) || env != nil {
				t.Fatalf("Up = %+v, %v; want %v", env, err, tt.wantErr)
			}
			if got := h.hasCluster("hello-main"); got != tt.wantCluster {
				t.Errorf("cluster exists = %v, want %v", got, tt.wantCluster)
			}
			if got := h.hasDir("hello-main"); got != tt.wantDir {
				t.Errorf("state dir exists = %v, want %v", got, tt.wantDir)
			}
		})
	}
}

func TestUpRecreatesHalfMadeCluster(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tests := []struct {
		name string
		// halfMake leaves hello-main the way an interrupted Up does.
		halfMake func(t *testing.T, h *harness)
	}{
		{
			name: "metadata never written",
			halfMake: func(t *testing.T, h *harness) {
				h.store.WriteError = errBoom
				if _, err := h.m.Up(ctx, "hello-main", helloSpec); !errors.Is(err, errBoom) {
					t.Fatalf("first Up err = %v, want %v", err, errBoom)
				}
				h.store.WriteError = nil
			},
		},
		{
			name: "killed while the backend was creating",
			halfMake: func(t *testing.T, h *harness) {
				if err := os.MkdirAll(h.envDir("hello-main"), 0o700); err != nil {
					t.Fatal(err)
				}
				h.p.Add("hello-main")
			},
		},
		{
			name: "killed before its API server answered",
			halfMake: func(t *testing.T, h *harness) {
				if err := os.MkdirAll(h.envDir("hello-main"), 0o700); err != nil {
					t.Fatal(err)
				}
				h.p.Add("hello-main")
				// Reading the metadata fails as a refused connection does.
				h.store.ReadError = errBoom
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t)
			tt.halfMake(t, h)
			if !h.hasCluster("hello-main") || !h.hasDir("hello-main") {
				t.Fatal("setup did not leave a half-made cluster")
			}
			creates := h.p.Creates()
			h.progress = &progressLog{}
			h.m.progress = h.progress.add

			env, err := h.m.Up(ctx, "hello-main", helloSpec)
			if err != nil {
				t.Fatalf("Up: %v", err)
			}
			if !env.New || env.Name != "hello-main" {
				t.Errorf("env = %+v, want a new hello-main", env)
			}
			if h.p.Deletes() != 1 || h.p.Creates() != creates+1 {
				t.Errorf("backend deletes = %d, creates = %d; want 1 and %d", h.p.Deletes(), h.p.Creates(), creates+1)
			}
			if _, ok := h.store.recorded("kind", "hello-main"); !ok {
				t.Error("no metadata recorded")
			}
			lines := h.progress.lines()
			if len(lines) < 2 || lines[0] != "hello-main: started deleting kind cluster hello-main: its creation never finished" ||
				lines[1] != "hello-main: done deleting kind cluster hello-main: its creation never finished" {
				t.Errorf("progress does not start with the delete:\n%s", strings.Join(lines, "\n"))
			}
		})
	}

	t.Run("a finished cluster that does not answer is kept", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t)
		if _, err := h.m.Up(ctx, "hello-main", helloSpec); err != nil {
			t.Fatal(err)
		}
		h.store.ReadError = errBoom
		if _, err := h.m.Up(ctx, "hello-main", helloSpec); !errors.Is(err, errBoom) {
			t.Fatalf("Up err = %v, want %v", err, errBoom)
		}
		if h.p.Deletes() != 0 || h.p.Creates() != 1 {
			t.Errorf("deletes = %d, creates = %d; a finished cluster was recreated", h.p.Deletes(), h.p.Creates())
		}
	})

	t.Run("delete fails", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t)
		if err := os.MkdirAll(h.envDir("hello-main"), 0o700); err != nil {
			t.Fatal(err)
		}
		h.p.Add("hello-main")
		h.p.DeleteError = errBoom
		_, err := h.m.Up(ctx, "hello-main", helloSpec)
		if !errors.Is(err, errBoom) || !strings.Contains(err.Error(), "half-made") {
			t.Fatalf("Up err = %v, want %v about the half-made cluster", err, errBoom)
		}
		if h.p.Creates() != 0 || !h.hasDir("hello-main") {
			t.Errorf("creates = %d, state dir = %v; want no create and the dir kept", h.p.Creates(), h.hasDir("hello-main"))
		}
	})
}

func TestUpRemovesFailedCreate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		// setup returns the context Up runs with.
		setup       func(h *harness) context.Context
		wantErr     error
		wantCluster bool // left behind (and the state dir with it)
	}{
		{
			name:    "backend fails",
			setup:   func(h *harness) context.Context { h.p.CreateError = errBoom; return context.Background() },
			wantErr: errBoom,
		},
		{
			name: "cancelled while creating",
			setup: func(*harness) context.Context {
				ctx, cancel := context.WithCancel(context.Background())
				return ContextWithProgress(ctx, func(p Progress) {
					if p.Message == "starting fake control plane" && p.State == StepStarted {
						cancel()
					}
				})
			},
			wantErr: context.Canceled,
		},
		{
			name: "cluster cannot be removed",
			setup: func(h *harness) context.Context {
				h.p.CreateError, h.p.DeleteError = errBoom, errors.New("delete failed")
				return context.Background()
			},
			wantErr:     errBoom,
			wantCluster: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t)
			ctx := tt.setup(h)
			_, err := h.m.Up(ctx, "hello-main", helloSpec)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Up err = %v, want %v", err, tt.wantErr)
			}
			if got := h.hasCluster("hello-main"); got != tt.wantCluster {
				t.Errorf("cluster exists = %v, want %v", got, tt.wantCluster)
			}
			if got := h.hasDir("hello-main"); got != tt.wantCluster {
				t.Errorf("state dir exists = %v, want %v", got, tt.wantCluster)
			}

			// Whatever was left, the next Up succeeds.
			h.p.CreateError, h.p.DeleteError = nil, nil
			env, err := h.m.Up(context.Background(), "hello-main", helloSpec)
			if err != nil || !env.New {
				t.Fatalf("next Up = %+v, %v; want a new environment", env, err)
			}
		})
	}
}

func TestUpRacingAnotherCreator(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	theirs := Env{Name: "hello-main", Spec: specFor(api.ProviderKind), Created: fixedNow.Add(-time.Minute)}
	theirs.Spec.Branch = "theirs"

	t.Run("recorded", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t)
		h.p.BeforeCreate = func(ctx context.Context, name string) error {
			h.p.Add(name)
			return h.store.write(ctx, []byte(fake.Kubeconfig("kind", name)), theirs)
		}
		env, err := h.m.Up(ctx, "hello-main", helloSpec)
		if err != nil {
			t.Fatal(err)
		}
		want := theirs
		want.Kubeconfig = filepath.Join(h.dir, "envs", "hello-main", "kubeconfig")
		assertEnv(t, env, want)
	})
	t.Run("still creating", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t)
		h.p.BeforeCreate = func(_ context.Context, name string) error { h.p.Add(name); return nil }
		_, err := h.m.Up(ctx, "hello-main", helloSpec)
		if !errors.Is(err, providers.ErrExists) || !strings.Contains(err.Error(), "try again") {
			t.Fatalf("Up err = %v, want ErrExists and a way out", err)
		}
		if !h.hasCluster("hello-main") || h.p.Deletes() != 0 {
			t.Error("Up removed a cluster another caller is creating")
		}
	})
}

func TestProviders(t *testing.T) {
	t.Parallel()
	t.Run("kind by default", func(t *testing.T) {
		t.Parallel()
		m := New(WithStateDir(t.TempDir()))
		if got := m.Providers(); !slices.Equal(got, []string{"kind", "vcluster"}) {
			t.Errorf("Providers() = %q, want [kind vcluster]", got)
		}
		if _, ok := m.providers["kind"].(*kind.Provider); !ok {
			t.Errorf("kind backend is %T", m.providers["kind"])
		}
		if _, ok := m.providers["vcluster"].(*vcluster.Provider); !ok {
			t.Errorf("vcluster backend is %T", m.providers["vcluster"])
		}
		for _, name := range []string{"", "kind"} {
			if err := m.CheckProvider(name); err != nil {
				t.Errorf("CheckProvider(%q) = %v", name, err)
			}
		}
		if !m.CanLoadImages("") {
			t.Error("kind backend cannot load images")
		}
	})

	t.Run("unknown names the known ones", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t, fake.New("vcluster"))
		if got := h.m.Providers(); !slices.Equal(got, []string{"kind", "vcluster"}) {
			t.Errorf("Providers() = %q", got)
		}
		ctx := context.Background()
		archive := func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader("")), nil }
		ops := map[string]func() error{
			"CheckProvider": func() error { return h.m.CheckProvider("nope") },
			"Up":            func() error { _, err := h.m.Up(ctx, "hello-main", specFor("nope")); return err },
			"Get":           func() error { _, err := h.m.Get(ctx, "hello-main", "nope"); return err },
			"Delete":        func() error { _, err := h.m.Delete(ctx, "hello-main", "nope"); return err },
			"LoadImages":    func() error { return h.m.LoadImages(ctx, "hello-main", "nope", archive) },
		}
		for op, f := range ops {
			err := f()
			if !errors.Is(err, ErrUnknownProvider) {
				t.Errorf("%s err = %v, want ErrUnknownProvider", op, err)
				continue
			}
			if msg := err.Error(); !strings.Contains(msg, `"nope"`) || !strings.Contains(msg, "use one of kind, vcluster") {
				t.Errorf("%s err = %q, want the name and the known providers", op, msg)
			}
		}
		if h.m.CanLoadImages("nope") {
			t.Error("CanLoadImages(nope) = true")
		}
	})
}

func TestTwoProviders(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	vc := fake.New("vcluster", "not-ours")
	h := newHarness(t, fake.ImageLoader{Provider: vc})
	ups := []struct{ name, provider string }{{"c-kind", ""}, {"b-vcluster", "vcluster"}, {"a-kind", "kind"}}
	for _, u := range ups {
		if _, err := h.m.Up(ctx, u.name, specFor(u.provider)); err != nil {
			t.Fatalf("Up %s on %q: %v", u.name, u.provider, err)
		}
	}
	if !h.hasCluster("a-kind") || !h.hasCluster("c-kind") || h.hasCluster("b-vcluster") {
		t.Error("kind environments not on the kind backend")
	}
	if _, ok := vc.Created("b-vcluster"); !ok {
		t.Error("vcluster environment not on the vcluster backend")
	}

	list, err := h.m.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range list {
		got = append(got, e.Name+"@"+e.Spec.Provider)
	}
	assertLines(t, "List", got, []string{"a-kind@kind", "b-vcluster@vcluster", "c-kind@kind"})

	if env, err := h.m.Get(ctx, "b-vcluster", "vcluster"); err != nil || env.Spec.Provider != "vcluster" {
		t.Errorf("Get(b-vcluster, vcluster) = %+v, %v", env, err)
	}
	if _, err := h.m.Get(ctx, "b-vcluster", ""); !errors.Is(err, ErrEnvNotFound) {
		t.Errorf("Get(b-vcluster) on the default backend err = %v, want ErrEnvNotFound", err)
	}

	if h.m.CanLoadImages("kind") || !h.m.CanLoadImages("vcluster") {
		t.Errorf("CanLoadImages = %v for kind, %v for vcluster; want false, true", h.m.CanLoadImages("kind"), h.m.CanLoadImages("vcluster"))
	}
	archive := func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader("tar")), nil }
	if err := h.m.LoadImages(ctx, "b-vcluster", "vcluster", archive); err != nil {
		t.Errorf("LoadImages on vcluster: %v", err)
	}

	d, err := h.m.Delete(ctx, "b-vcluster", "vcluster")
	if err != nil || d != (Deleted{Cluster: true, Files: true}) {
		t.Errorf("Delete(b-vcluster, vcluster) = %+v, %v", d, err)
	}
	if _, ok := vc.Created("b-vcluster"); ok || !h.hasCluster("a-kind") {
		t.Error("Delete removed the wrong cluster")
	}
	if h.hasDir("b-vcluster") || !h.hasDir("a-kind") {
		t.Error("Delete removed the wrong state dir")
	}

	vc.ListError = errBoom
	if _, err := h.m.List(ctx); !errors.Is(err, errBoom) {
		t.Errorf("List with a failing backend err = %v, want %v", err, errBoom)
	}
}

func TestGetAndList(t *testing.T) {
	t.Parallel()
	h := newFakeHarness(t, "someone-elses")
	ctx := context.Background()
	for _, b := range []string{"main", "dev"} {
		s := helloSpec
		s.Branch = b
		if _, err := h.m.Up(ctx, "hello-"+b, s); err != nil {
			t.Fatal(err)
		}
	}
	// A second Manager with the same backend but a fresh state dir sees the
	// same environments: state lives in the clusters.
	other := newHarness(t, h.p)
	other.p, other.m.store = h.p, h.store
	list, err := other.m.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range list {
		names = append(names, e.Name+"@"+e.Spec.Branch)
		if _, err := os.Stat(e.Kubeconfig); err != nil || !strings.HasPrefix(e.Kubeconfig, other.dir) {
			t.Errorf("kubeconfig of %s = %q: %v", e.Name, e.Kubeconfig, err)
		}
	}
	assertLines(t, "List", names, []string{"hello-dev@dev", "hello-main@main"})

	env, err := other.m.Get(ctx, "hello-dev", "")
	if err != nil || env.Spec.Branch != "dev" || env.Spec.Project != "hello" || env.New {
		t.Errorf("Get = %+v, %v", env, err)
	}
	for _, name := range []string{"missing", "someone-elses"} {
		if _, err := other.m.Get(ctx, name, ""); !errors.Is(err, ErrEnvNotFound) || !strings.Contains(err.Error(), "devctl ls") {
			t.Errorf("Get(%q) err = %v, want ErrEnvNotFound with a hint", name, err)
		}
	}
	if _, err := other.m.Get(ctx, "../hello-dev", ""); !errors.Is(err, ErrInvalidName) {
		t.Errorf("Get(../hello-dev) err = %v, want ErrInvalidName", err)
	}
}

func TestListUnreachable(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	ctx := context.Background()
	if _, err := h.m.Up(ctx, "hello-main", helloSpec); err != nil {
		t.Fatal(err)
	}
	// Begun by another state directory (or someone else): not listed when
	// it cannot be read.
	h.p.Add("other-main")
	h.store.ReadError = errBoom
	list, err := h.m.List(ctx)
	if err != nil || len(list) != 1 {
		t.Fatalf("List = %+v, %v; want hello-main only", list, err)
	}
	e := list[0]
	if e.Name != "hello-main" || !e.Stopped || e.Spec.Branch != helloSpec.Branch || e.Spec.Provider != "kind" ||
		e.Start == "" || !strings.Contains(e.Err, errBoom.Error()) || e.Created.IsZero() {
		t.Errorf("unreachable environment listed as %+v", e)
	}
	h.p.ListError = errBoom
	if _, err := h.m.List(ctx); !errors.Is(err, errBoom) {
		t.Errorf("List err = %v, want %v", err, errBoom)
	}
}

func TestDelete(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		env  string
		// setup leaves the environment env in some state.
		setup       func(t *testing.T, h *harness)
		want        Deleted
		wantErr     error
		wantCluster bool // left after Delete
		wantDir     bool
	}{
		{
			name:  "cluster and files",
			env:   "hello-main",
			setup: upHello,
			want:  Deleted{Cluster: true, Files: true},
		},
		{
			name: "cluster made with another state dir",
			env:  "hello-main",
			setup: func(t *testing.T, h *harness) {
				upHello(t, h)
				removeDir(t, h, "hello-main")
			},
			want: Deleted{Cluster: true},
		},
		{
			name: "cluster gone, files left",
			env:  "hello-main",
			setup: func(t *testing.T, h *harness) {
				upHello(t, h)
				if err := h.p.Delete(context.Background(), "hello-main"); err != nil {
					t.Fatal(err)
				}
			},
			want: Deleted{Files: true},
		},
		{
			name:  "nothing",
			env:   "hello-main",
			setup: func(*testing.T, *harness) {},
			want:  Deleted{},
		},
		{
			name: "half-made cluster",
			env:  "hello-main",
			setup: func(t *testing.T, h *harness) {
				h.store.WriteError = errBoom
				if _, err := h.m.Up(context.Background(), "hello-main", helloSpec); !errors.Is(err, errBoom) {
					t.Fatalf("Up err = %v", err)
				}
			},
			want: Deleted{Cluster: true, Files: true},
		},
		{
			name:        "foreign cluster",
			env:         "hello-main",
			setup:       func(_ *testing.T, h *harness) { h.p.Add("hello-main") },
			wantErr:     ErrNotManaged,
			wantCluster: true,
		},
		{
			name: "metadata unreadable",
			env:  "hello-main",
			setup: func(t *testing.T, h *harness) {
				upHello(t, h)
				removeDir(t, h, "hello-main")
				h.store.ReadError = errBoom
			},
			wantErr:     errBoom,
			wantCluster: true,
		},
		{
			name: "backend fails",
			env:  "hello-main",
			setup: func(t *testing.T, h *harness) {
				upHello(t, h)
				h.p.DeleteError = errBoom
			},
			wantErr:     errBoom,
			wantCluster: true,
			wantDir:     true,
		},
		{
			name: "list fails",
			env:  "hello-main",
			setup: func(t *testing.T, h *harness) {
				upHello(t, h)
				h.p.ListError = errBoom
			},
			wantErr:     errBoom,
			wantCluster: true,
			wantDir:     true,
		},
		{
			name: "name outside the state dir",
			env:  "..",
			setup: func(t *testing.T, h *harness) {
				upHello(t, h)
			},
			wantErr:     ErrInvalidName,
			wantCluster: true,
			wantDir:     true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t)
			tt.setup(t, h)
			got, err := h.m.Delete(context.Background(), tt.env, "")
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil && err != nil) {
				t.Fatalf("Delete err = %v, want %v", err, tt.wantErr)
			}
			if got != tt.want {
				t.Errorf("Delete = %+v, want %+v", got, tt.want)
			}
			if c := h.hasCluster("hello-main"); c != tt.wantCluster {
				t.Errorf("cluster exists = %v, want %v", c, tt.wantCluster)
			}
			if d := h.hasDir("hello-main"); d != tt.wantDir {
				t.Errorf("state dir exists = %v, want %v", d, tt.wantDir)
			}
			if tt.wantErr != nil {
				return
			}
			// Deleting again finds nothing and succeeds.
			h.p.DeleteError = nil
			if again, err := h.m.Delete(context.Background(), tt.env, ""); err != nil || again != (Deleted{}) {
				t.Errorf("second Delete = %+v, %v; want nothing deleted", again, err)
			}
		})
	}
}

func upHello(t *testing.T, h *harness) {
	t.Helper()
	if _, err := h.m.Up(context.Background(), "hello-main", helloSpec); err != nil {
		t.Fatal(err)
	}
}

func removeDir(t *testing.T, h *harness, name string) {
	t.Helper()
	if err := os.RemoveAll(h.envDir(name)); err != nil {
		t.Fatal(err)
	}
}

func TestLoadImages(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	archive := func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader("tarball")), nil }

	fp := fake.New("kind")
	h := newHarness(t, fake.ImageLoader{Provider: fp})
	h.p = fp
	if !h.m.CanLoadImages("") {
		t.Error("CanLoadImages = false for a backend that can")
	}
	if _, err := h.m.Up(ctx, "hello-main", helloSpec); err != nil {
		t.Fatal(err)
	}
	if err := h.m.LoadImages(ctx, "hello-main", "", archive); err != nil {
		t.Fatal(err)
	}
	if got := fp.Images("hello-main"); len(got) != 1 || !bytes.Equal(got[0], []byte("tarball")) {
		t.Errorf("loaded %q", got)
	}
	if err := h.m.LoadImages(ctx, "missing", "", archive); !errors.Is(err, ErrEnvNotFound) {
		t.Errorf("LoadImages(missing) err = %v, want ErrEnvNotFound", err)
	}
	if err := h.m.LoadImages(ctx, "a/b", "", archive); !errors.Is(err, ErrInvalidName) {
		t.Errorf("LoadImages(a/b) err = %v, want ErrInvalidName", err)
	}
	fp.LoadImagesError = errBoom
	if err := h.m.LoadImages(ctx, "hello-main", "", archive); !errors.Is(err, errBoom) {
		t.Errorf("LoadImages err = %v, want %v", err, errBoom)
	}

	plain := newHarness(t)
	if plain.m.CanLoadImages("") {
		t.Error("CanLoadImages = true for a backend that cannot")
	}
	if err := plain.m.LoadImages(ctx, "hello-main", "", archive); !errors.Is(err, ErrNotSupported) {
		t.Errorf("LoadImages without loader err = %v, want ErrNotSupported", err)
	}
}

func TestContextWithProgress(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	ctx := context.Background()

	// Two operations at once on one Manager, each with its own sink.
	sinks := map[string]*progressLog{"hello-a": {}, "hello-b": {}}
	var wg sync.WaitGroup
	for name, sink := range sinks {
		wg.Go(func() {
			if _, err := h.m.Up(ContextWithProgress(ctx, sink.add), name, helloSpec); err != nil {
				t.Errorf("Up %s: %v", name, err)
			}
		})
	}
	wg.Wait()
	for name, sink := range sinks {
		lines := sink.lines()
		if len(lines) != 8 {
			t.Errorf("%s got %d reports, want 8:\n%s", name, len(lines), strings.Join(lines, "\n"))
		}
		for _, l := range lines {
			if !strings.HasPrefix(l, name+": ") {
				t.Errorf("%s got a report of another operation: %s", name, l)
			}
		}
	}
	if got := h.progress.lines(); len(got) != 0 {
		t.Errorf("the Manager's progress function got reports of operations with their own:\n%s", strings.Join(got, "\n"))
	}

	// Without one in the context, reports go to the Manager's function.
	if _, err := h.m.Delete(ctx, "hello-a", ""); err != nil {
		t.Fatal(err)
	}
	assertLines(t, "Manager progress", h.progress.lines(), []string{
		"hello-a: started deleting kind cluster hello-a",
		"hello-a: done deleting kind cluster hello-a",
	})
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
	g := *got
	if !g.Created.Equal(want.Created) {
		t.Errorf("created = %v, want %v", g.Created, want.Created)
	}
	g.Created, want.Created = time.Time{}, time.Time{}
	if !reflect.DeepEqual(g, want) {
		t.Errorf("env = %+v\nwant  %+v", g, want)
	}
}

func assertLines(t *testing.T, what string, got, want []string) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Errorf("%s:\n%s\nwant:\n%s", what, strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
