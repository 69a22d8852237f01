package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/devctl/devctl/internal/api"
)

// fakeDeps are in-memory collaborators with per-method failure knobs.
type fakeDeps struct {
	mu       sync.Mutex
	clusters map[string]EnvRecord
	builds   int
	loads    int
	deploys  int
	digests  map[string]string
	forwards []*fakeForward

	LoadErr    error
	UpErr      error
	BuildErr   error
	DeployErr  error
	ReadyErr   error
	ListErr    error
	BuildBlock chan struct{} // when set, Build waits for it
	ListBlock  chan struct{} // when set, List waits for it
}

func newFakeDeps() *fakeDeps {
	return &fakeDeps{clusters: map[string]EnvRecord{}, digests: map[string]string{}}
}

func (f *fakeDeps) deps() Deps {
	return Deps{Projects: f, Environments: f, Images: f, Charts: f, Policies: f, Cluster: f}
}

func (f *fakeDeps) Load(_ context.Context, req api.UpRequest) (*Project, error) {
	if f.LoadErr != nil {
		return nil, f.LoadErr
	}
	return &Project{Name: "hello", Team: "dx", Dir: req.Dir, Services: []ProjectService{{Name: "web", Context: req.Dir, Port: 8080}}}, nil
}

func (f *fakeDeps) Up(_ context.Context, s EnvSpec, progress func(string)) (*EnvRecord, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.UpErr != nil {
		return nil, f.UpErr
	}
	progress("creating cluster " + s.Name)
	r, ok := f.clusters[s.Name]
	if !ok {
		r = EnvRecord{Name: s.Name, Provider: "fake", Project: s.Project, Repo: s.Repo, Branch: s.Branch, Kubeconfig: "/kube/" + s.Name, Created: time.Now()}
		f.clusters[s.Name] = r
	}
	r.New = !ok
	return &r, nil
}

func (f *fakeDeps) List(ctx context.Context) ([]EnvRecord, error) {
	if f.ListBlock != nil {
		select {
		case <-f.ListBlock:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.ListErr != nil {
		return nil, f.ListErr
	}
	var out []EnvRecord
	for _, r := range f.clusters {
		out = append(out, r)
	}
	return out, nil
}

func (f *fakeDeps) Delete(_ context.Context, name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.clusters, name)
	return nil
}

func (f *fakeDeps) LoadImages(_ context.Context, _ string, archive func() (io.ReadCloser, error)) error {
	rc, err := archive()
	if err != nil {
		return err
	}
	_ = rc.Close()
	f.mu.Lock()
	f.loads++
	f.mu.Unlock()
	return nil
}

func (f *fakeDeps) Build(ctx context.Context, s ImageSpec) (*ImageResult, error) {
	if f.BuildBlock != nil {
		select {
		case <-f.BuildBlock:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if f.BuildErr != nil {
		return nil, f.BuildErr
	}
	fmt.Fprintf(s.Output, "Step 1/1 : building %s\n", s.Service.Name)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.builds++
	return &ImageResult{Ref: s.Repository + ":abc", Cached: f.builds > 1}, nil
}

func (f *fakeDeps) Save(context.Context, ...string) (io.ReadCloser, error) {
	return io.NopCloser(strings.NewReader("tar")), nil
}

func (f *fakeDeps) Render(_ context.Context, r Release) (string, error) {
	return fmt.Sprintf("# Source: golden-path/templates/deployment.yaml\nkind: Deployment\nmetadata:\n  name: %s\n", r.Name), nil
}

func (f *fakeDeps) Deploy(_ context.Context, _ string, r Release) (*DeployResult, error) {
	if f.DeployErr != nil {
		return nil, f.DeployErr
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	digest := fmt.Sprint(r.Values)
	if f.digests[r.Name] == digest {
		return &DeployResult{Revision: f.deploys, Changed: false}, nil
	}
	f.digests[r.Name] = digest
	f.deploys++
	return &DeployResult{Revision: f.deploys, Changed: true}, nil
}

func (f *fakeDeps) Check(context.Context, *Project, string) ([]api.Finding, error) {
	return []api.Finding{{Rule: "probes", Severity: "high", Object: "Deployment/web", Message: "no probe"}}, nil
}

func (f *fakeDeps) InstallAdmission(context.Context, string, string) error { return nil }

func (f *fakeDeps) WaitReady(context.Context, string, string, string) error { return f.ReadyErr }

func (f *fakeDeps) Forward(_ context.Context, _, _, _ string, _, local int) (Forward, error) {
	addr := "127.0.0.1:0"
	if local != 0 {
		addr = fmt.Sprintf("127.0.0.1:%d", local)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "hello") })}
	go func() { _ = srv.Serve(ln) }()
	fw := &fakeForward{srv: srv, port: ln.Addr().(*net.TCPAddr).Port}
	f.mu.Lock()
	f.forwards = append(f.forwards, fw)
	f.mu.Unlock()
	return fw, nil
}

func (f *fakeDeps) Logs(_ context.Context, _, _, release string, _ bool, _ int, w io.Writer) error {
	_, err := fmt.Fprintf(w, "log line of %s\n", release)
	return err
}

func (f *fakeDeps) Diagnose(context.Context, string, string) string {
	return "pod web-1: CrashLoopBackOff\n"
}

type fakeForward struct {
	srv  *http.Server
	port int
}

func (f *fakeForward) LocalPort() int { return f.port }
func (f *fakeForward) Close()         { _ = f.srv.Close() }

var errFake = errors.New("fake failure")
