package daemon

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/devctl/devctl/envs"
	"github.com/devctl/devctl/internal/api"
	"github.com/devctl/devctl/internal/build"
	"github.com/devctl/devctl/internal/git"
	"github.com/devctl/devctl/internal/goldenpath"
	"github.com/devctl/devctl/internal/helm"
)

// fakeDeps are in-memory collaborators with per-method failure knobs and
// gates that hold a call until the test releases it. Rendering and the
// policy check are real.
type fakeDeps struct {
	mu       sync.Mutex
	clusters map[string]envs.Env
	creates  int
	ups      int // calls of Up
	// upsEntered counts calls of Up before UpGate lets them through.
	upsEntered int
	stopped    map[string]bool // clusters that do not answer
	answering  map[string]bool // new clusters whose API answers before Up returns
	builds     map[string]int  // service → builds
	loads      int
	prepulled  []string // every image Prepull was given
	deploys    int
	digests    map[string]string // release → values digest deployed
	revision   map[string]int
	forwards   []*fakeForward
	forgot     []string
	deletes    int                // calls of Delete
	waited     []string           // workloads WaitReady waited on
	admission  [][]runtime.Object // every InstallAdmission's policies

	UpErr        error
	BuildErr     error
	DeployErr    error
	awaited      []string // the objects AwaitAdmitted was given, then "deploy" for each Deploy
	ReadyErr     error
	ListErr      error
	PingErr      error
	ResourcesErr error
	// EarlyAPI makes Up of a new cluster say its API answers (as kind's
	// backend does) and then wait for RestGate before it returns RestErr
	// or the environment.
	EarlyAPI bool
	RestGate chan struct{}
	RestErr  error
	// Gates: when set, the call waits for a value (or the context).
	UpGate    chan struct{}
	BuildGate chan struct{}
	ListGate  chan struct{}
	// buildStarted receives the service of every build that starts.
	buildStarted chan string
	// Platform, when set, stands in for the platform stand-ins (mocks_test.go).
	Platform Platform
	// watch starts source watchers; nil watches nothing.
	watch Watcher
	// goImages builds Go services; nil builds them with the fake Build.
	goImages GoImages
	archives [][]byte // every image archive loaded
	// running is the image each release runs (kubeconfig/release → ref).
	running map[string]string
	// readyCheck, when set, says whether a release running an image
	// becomes ready (the cluster's rollout).
	readyCheck func(image string) error
}

func newFakeDeps() *fakeDeps {
	return &fakeDeps{
		clusters: map[string]envs.Env{}, builds: map[string]int{}, digests: map[string]string{},
		revision: map[string]int{}, buildStarted: make(chan string, 100), stopped: map[string]bool{},
		running: map[string]string{}, answering: map[string]bool{},
	}
}

func (f *fakeDeps) deps() Deps {
	return Deps{
		Environments: f, Images: f, Releases: f, Cluster: f, Platform: f.Platform,
		Checker:  goldenpath.NewChecker(nil),
		Watch:    f.watch,
		GoImages: f.goImages,
		Git: func(_ context.Context, dir string) (git.Info, error) {
			return git.Info{Root: dir, Repo: "hello", Branch: "main"}, nil
		},
	}
}

func wait(ctx context.Context, gate chan struct{}) error {
	if gate == nil {
		return nil
	}
	select {
	case <-gate:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (f *fakeDeps) Up(ctx context.Context, name string, spec api.EnvSpec) (*envs.Env, error) {
	f.mu.Lock()
	f.upsEntered++
	f.mu.Unlock()
	if err := wait(ctx, f.UpGate); err != nil {
		return nil, err
	}
	f.mu.Lock()
	_, exists := f.clusters[name]
	early, ready := f.EarlyAPI && !exists, envs.APIReadyFunc(ctx)
	f.mu.Unlock()
	if early && ready != nil {
		f.mu.Lock()
		f.answering[name] = true
		f.mu.Unlock()
		ready("/kube/" + name)
		if err := wait(ctx, f.RestGate); err != nil {
			return nil, err
		}
		f.mu.Lock()
		err := f.RestErr
		f.mu.Unlock()
		if err != nil {
			return nil, err
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ups++
	if f.UpErr != nil {
		return nil, f.UpErr
	}
	e, ok := f.clusters[name]
	if !ok {
		e = envs.Env{Name: name, Spec: spec, Kubeconfig: "/kube/" + name, Created: time.Now()}
		e.Spec.Provider = "fake"
		f.clusters[name] = e
		f.creates++
	}
	e.New = !ok
	return &e, nil
}

func (f *fakeDeps) Prepull(_ context.Context, _, _ string, refs []string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.prepulled = append(f.prepulled, refs...)
	return nil
}

func (f *fakeDeps) Get(_ context.Context, name, _ string) (*envs.Env, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	e, ok := f.clusters[name]
	if !ok {
		return nil, envs.ErrEnvNotFound
	}
	return &e, nil
}

func (f *fakeDeps) List(ctx context.Context) ([]envs.Env, error) {
	if err := wait(ctx, f.ListGate); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.ListErr != nil {
		return nil, f.ListErr
	}
	var out []envs.Env
	for _, e := range f.clusters {
		if f.stopped[e.Name] {
			e.Stopped, e.Start = true, "docker start "+e.Name+"-control-plane"
		}
		out = append(out, e)
	}
	return out, nil
}

func (f *fakeDeps) Delete(_ context.Context, name, _ string) (envs.Deleted, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.deletes++
	_, ok := f.clusters[name]
	delete(f.clusters, name)
	for k := range f.digests {
		if strings.HasPrefix(k, name+"/") {
			delete(f.digests, k)
		}
	}
	return envs.Deleted{Cluster: ok}, nil
}

func (f *fakeDeps) LoadImages(_ context.Context, _, _ string, archive func() (io.ReadCloser, error)) error {
	rc, err := archive()
	if err != nil {
		return err
	}
	b, err := io.ReadAll(rc)
	_ = rc.Close()
	if err != nil {
		return err
	}
	f.mu.Lock()
	f.loads++
	f.archives = append(f.archives, b)
	f.mu.Unlock()
	return nil
}

func (f *fakeDeps) PullsFromRegistry(context.Context, string, string) (bool, error) {
	return false, nil
}

func (f *fakeDeps) ApplyConfigMap(context.Context, string, *corev1.ConfigMap) error { return nil }

func (f *fakeDeps) CheckProvider(name string) error {
	if name != "" && name != "kind" && name != "fake" {
		return fmt.Errorf("%w %q: use one of fake, kind", envs.ErrUnknownProvider, name)
	}
	return nil
}

func (f *fakeDeps) Ping(context.Context) error { return f.PingErr }

// Build tags images with the content of the context's main.go, so a change
// of the source is a new image, as with the real builder.
func (f *fakeDeps) Build(ctx context.Context, s build.Spec) (*build.Result, error) {
	svc := s.Labels["devctl.dev/service"]
	// The source is read when the build starts, as the real builder hashes
	// its context first.
	src, _ := os.ReadFile(filepath.Join(s.Context, "main.go"))
	f.buildStarted <- svc
	if err := wait(ctx, f.BuildGate); err != nil {
		return nil, err
	}
	if f.BuildErr != nil {
		return nil, f.BuildErr
	}
	fmt.Fprintf(s.Output, "Step 1/1 : building %s\n", svc)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.builds[svc]++
	sum := sha256.Sum256(src)
	return &build.Result{Ref: fmt.Sprintf("%s:%x", s.Image, sum[:6])}, nil
}

func (f *fakeDeps) Save(context.Context, ...string) (io.ReadCloser, error) {
	return io.NopCloser(strings.NewReader("tar")), nil
}

func (f *fakeDeps) Deploy(_ context.Context, kubeconfig string, r *goldenpath.Release) (*helm.Result, error) {
	if f.DeployErr != nil {
		return nil, f.DeployErr
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.awaited = append(f.awaited, "deploy")
	key := strings.TrimPrefix(kubeconfig, "/kube/") + "/" + r.Name
	if img, ok := r.Values["image"].(map[string]any); ok {
		f.running[key] = fmt.Sprintf("%v:%v", img["repository"], img["tag"])
	}
	if f.digests[key] == r.ValuesDigest+r.ChartDigest {
		return &helm.Result{Revision: f.revision[key]}, nil
	}
	f.digests[key] = r.ValuesDigest + r.ChartDigest
	f.revision[key]++
	f.deploys++
	return &helm.Result{Revision: f.revision[key], Changed: true}, nil
}

func (f *fakeDeps) InstallAdmission(_ context.Context, _, _ string, objs []runtime.Object) error {
	f.mu.Lock()
	f.admission = append(f.admission, objs)
	f.mu.Unlock()
	return nil
}

func (f *fakeDeps) AwaitAdmitted(_ context.Context, _, _ string, objs []*unstructured.Unstructured) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, o := range objs {
		f.awaited = append(f.awaited, o.GetKind()+"/"+o.GetName())
	}
	return nil
}

func (f *fakeDeps) Reachable(_ context.Context, kubeconfig string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	name := strings.TrimPrefix(kubeconfig, "/kube/")
	if _, ok := f.clusters[name]; (!ok && !f.answering[name]) || f.stopped[name] {
		return errors.New("connection refused")
	}
	return nil
}

func (f *fakeDeps) WaitReady(_ context.Context, kubeconfig, _, workload string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.waited = append(f.waited, workload)
	if f.readyCheck != nil {
		if err := f.readyCheck(f.running[strings.TrimPrefix(kubeconfig, "/kube/")+"/"+workload]); err != nil {
			return err
		}
	}
	return f.ReadyErr
}

func (f *fakeDeps) Forward(_ context.Context, _, _, _ string, remote, local int) (Forward, error) {
	addr := "127.0.0.1:0"
	if local != 0 {
		addr = fmt.Sprintf("127.0.0.1:%d", local)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = fmt.Fprintf(w, "hello from port %d", remote)
	}), ReadHeaderTimeout: time.Second}
	go func() { _ = srv.Serve(ln) }()
	fw := &fakeForward{srv: srv, port: ln.Addr().(*net.TCPAddr).Port, remote: remote}
	f.mu.Lock()
	f.forwards = append(f.forwards, fw)
	f.mu.Unlock()
	return fw, nil
}

func (f *fakeDeps) Logs(_ context.Context, _, _, release string, _ bool, _ int, w io.Writer) error {
	_, err := fmt.Fprintf(w, "log line of %s\n", release)
	return err
}

func (f *fakeDeps) Resources(_ context.Context, _ string, namespaces []string) ([]api.Resource, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.ResourcesErr != nil {
		return nil, f.ResourcesErr
	}
	var out []api.Resource
	for _, ns := range namespaces {
		for key := range f.digests { // kubeconfig/release
			name := key[strings.LastIndex(key, "/")+1:]
			out = append(out, api.Resource{Kind: api.KindDeployment, Namespace: ns, Name: name, Service: name, Ready: "1/1", OK: true, Status: "Available"})
		}
	}
	return out, nil
}

func (f *fakeDeps) Diagnose(context.Context, string, string) string {
	return "pod web-1: CrashLoopBackOff\n"
}

func (f *fakeDeps) Forget(kubeconfig string) {
	f.mu.Lock()
	f.forgot = append(f.forgot, kubeconfig)
	f.mu.Unlock()
}

func (f *fakeDeps) counts() (creates, loads, deploys int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.creates, f.loads, f.deploys
}

type fakeForward struct {
	srv    *http.Server
	port   int
	remote int
	closed bool
}

func (f *fakeForward) LocalPort() int { return f.port }
func (f *fakeForward) Close()         { f.closed = true; _ = f.srv.Close() }

var errFake = errors.New("fake failure")

// writeProject writes a project with the given services (name=port) into a
// new folder and returns it.
func writeProject(t *testing.T, services ...string) string {
	t.Helper()
	dir := t.TempDir()
	var b strings.Builder
	b.WriteString("apiVersion: devctl.dev/v1alpha1\nkind: Project\nname: hello\nteam: dx\nowner: dx@example.com\ncostCenter: cc-1\nservices:\n")
	for _, s := range services {
		name, port, _ := strings.Cut(s, "=")
		if port == "" {
			port = "8080"
		}
		fmt.Fprintf(&b, "  - name: %s\n    context: %s\n    port: %s\n", name, name, port)
		writeFile(t, filepath.Join(dir, name, "Dockerfile"), "FROM scratch\n")
		writeFile(t, filepath.Join(dir, name, "main.go"), "package main\n\nfunc main() {}\n")
	}
	writeFile(t, filepath.Join(dir, "devctl.yaml"), b.String())
	return dir
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}
