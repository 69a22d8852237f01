package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"sync"

	"helm.sh/helm/v3/pkg/chart"

	"github.com/devctl/devctl/charts"
	"github.com/devctl/devctl/envs"
	"github.com/devctl/devctl/internal/api"
	"github.com/devctl/devctl/internal/build"
	"github.com/devctl/devctl/internal/config"
	"github.com/devctl/devctl/internal/helm"
	"github.com/devctl/devctl/internal/kube"
	"github.com/devctl/devctl/internal/paths"
)

// RealDeps binds the daemon to the real libraries: envs (kind), the Docker
// Engine SDK builder, the Helm SDK, the policy engine and client-go. The
// Docker engine is connected lazily, so a daemon starts (and lists
// environments) even while Docker is down.
func RealDeps(ctx context.Context, log *slog.Logger) (Deps, func(), error) {
	ch, err := charts.GoldenPath()
	if err != nil {
		return Deps{}, nil, fmt.Errorf("load the embedded golden-path chart: %w", err)
	}
	ev := &envsAdapter{progress: map[string]func(string){}}
	ev.m = envs.New(
		envs.WithLogger(log),
		envs.WithStateDir(paths.StateDir()),
		envs.WithProgress(ev.onProgress),
	)
	img := &imagesAdapter{log: log}
	kc := &clusterAdapter{log: log}
	deps := Deps{
		Projects:     projectsAdapter{},
		Environments: ev,
		Images:       img,
		Charts:       &chartsAdapter{chart: ch, log: log},
		Policies:     newPoliciesAdapter(log),
		Cluster:      kc,
	}
	return deps, img.close, nil
}

type projectsAdapter struct{}

func (projectsAdapter) Load(_ context.Context, req api.UpRequest) (*Project, error) {
	var (
		cfg   *config.Config
		notes []string
		err   error
	)
	if req.Config != "" {
		cfg, err = config.Load(req.Config)
	} else {
		cfg, notes, err = config.Detect(req.Dir)
		if err == nil {
			cfg.Dir = req.Dir
		}
	}
	if err != nil {
		return nil, err
	}
	return ProjectFromConfig(cfg, notes), nil
}

// ProjectFromConfig resolves a parsed devctl.yaml into the services to build.
func ProjectFromConfig(cfg *config.Config, notes []string) *Project {
	p := &Project{
		Name: cfg.Name, Team: cfg.Team, Owner: cfg.Owner, CostCenter: cfg.CostCenter,
		Dir: cfg.Dir, NodeImage: cfg.Cluster.NodeImage, Notes: notes, Config: cfg,
	}
	for _, s := range cfg.Services {
		ps := ProjectService{
			Name:       s.Name,
			Context:    filepath.Join(cfg.Dir, s.Context),
			Dockerfile: s.Dockerfile,
			Port:       s.Port,
			Values:     s.Values,
		}
		if s.Go != nil {
			ps.GoPackage, ps.GoOutput = s.Go.Package, s.Go.Output
		}
		p.Services = append(p.Services, ps)
	}
	return p
}

// envsAdapter routes the Manager's progress to the up that asked for it.
type envsAdapter struct {
	m        *envs.Manager
	mu       sync.Mutex
	progress map[string]func(string)
}

func (a *envsAdapter) onProgress(p envs.Progress) {
	a.mu.Lock()
	f := a.progress[p.Env]
	a.mu.Unlock()
	if f == nil {
		return
	}
	msg := p.Message
	if p.State == envs.StepDone || p.State == envs.StepFailed {
		msg = fmt.Sprintf("%s (%s, %.1fs)", p.Message, p.State, p.Elapsed.Seconds())
	}
	f(msg)
}

func (a *envsAdapter) Up(ctx context.Context, s EnvSpec, progress func(string)) (*EnvRecord, error) {
	a.mu.Lock()
	a.progress[s.Name] = progress
	a.mu.Unlock()
	defer func() {
		a.mu.Lock()
		delete(a.progress, s.Name)
		a.mu.Unlock()
	}()
	e, err := a.m.Up(ctx, envs.Spec{Name: s.Name, Project: s.Project, Repo: s.Repo, Branch: s.Branch, NodeImage: s.NodeImage, Labels: s.Labels})
	if err != nil {
		return nil, err
	}
	r := record(*e)
	r.New = e.New
	return &r, nil
}

func record(e envs.Env) EnvRecord {
	return EnvRecord{Name: e.Name, Provider: e.Provider, Project: e.Project, Repo: e.Repo, Branch: e.Branch, Kubeconfig: e.Kubeconfig, Created: e.Created}
}

func (a *envsAdapter) List(ctx context.Context) ([]EnvRecord, error) {
	list, err := a.m.List(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]EnvRecord, 0, len(list))
	for _, e := range list {
		out = append(out, record(e))
	}
	return out, nil
}

func (a *envsAdapter) Delete(ctx context.Context, name string) error { return a.m.Delete(ctx, name) }

func (a *envsAdapter) LoadImages(ctx context.Context, name string, archive func() (io.ReadCloser, error)) error {
	return a.m.LoadImages(ctx, name, archive)
}

// imagesAdapter connects to the Docker engine on first use and again after
// a failure, so a daemon outlives a Docker restart.
type imagesAdapter struct {
	log *slog.Logger
	mu  sync.Mutex
	b   *build.Builder
}

func (a *imagesAdapter) builder(ctx context.Context) (*build.Builder, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.b != nil {
		return a.b, nil
	}
	b, err := build.New(ctx, build.WithLogger(a.log))
	if err != nil {
		return nil, err
	}
	a.b = b
	return b, nil
}

func (a *imagesAdapter) reset(err error) {
	if !errors.Is(err, build.ErrDockerUnavailable) {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.b != nil {
		_ = a.b.Close()
		a.b = nil
	}
}

func (a *imagesAdapter) close() {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.b != nil {
		_ = a.b.Close()
	}
}

func (a *imagesAdapter) Build(ctx context.Context, s ImageSpec) (*ImageResult, error) {
	b, err := a.builder(ctx)
	if err != nil {
		return nil, err
	}
	spec := build.Spec{Image: s.Repository, Context: s.Service.Context, Dockerfile: s.Service.Dockerfile, Labels: s.Labels, Output: s.Output}
	if s.Service.GoPackage != "" {
		spec.Go = &build.GoSpec{Package: s.Service.GoPackage, Output: s.Service.GoOutput}
	}
	res, err := b.Build(ctx, spec)
	if err != nil {
		a.reset(err)
		return nil, err
	}
	return &ImageResult{Ref: res.Ref, Cached: res.Cached}, nil
}

func (a *imagesAdapter) Save(ctx context.Context, refs ...string) (io.ReadCloser, error) {
	b, err := a.builder(ctx)
	if err != nil {
		return nil, err
	}
	rc, err := b.SaveImages(ctx, refs...)
	if err != nil {
		a.reset(err)
	}
	return rc, err
}

type chartsAdapter struct {
	chart *chart.Chart
	log   *slog.Logger
}

func (a *chartsAdapter) Render(ctx context.Context, r Release) (string, error) {
	return helm.Render(ctx, a.chart, r.Name, r.Namespace, r.Values)
}

func (a *chartsAdapter) Deploy(ctx context.Context, kubeconfig string, r Release) (*DeployResult, error) {
	cfg, err := helm.NewConfig(kubeconfig, r.Namespace, helm.WithLogger(a.log))
	if err != nil {
		return nil, err
	}
	d := helm.NewDeploy(cfg)
	d.ReleaseName = r.Name
	d.Namespace = r.Namespace
	d.Labels = map[string]string{"devctl.dev/managed": "true"}
	res, err := d.Run(ctx, a.chart, r.Values)
	if err != nil {
		return nil, err
	}
	return &DeployResult{Revision: res.Revision, Changed: res.Changed}, nil
}

type clusterAdapter struct {
	log     *slog.Logger
	clients kube.Clients
}

func (a *clusterAdapter) WaitReady(ctx context.Context, kubeconfig, ns, release string) error {
	c, err := a.clients.For(kubeconfig)
	if err != nil {
		return err
	}
	return c.WaitRollout(ctx, ns, release)
}

func (a *clusterAdapter) Forward(ctx context.Context, kubeconfig, ns, release string, remote, local int) (Forward, error) {
	c, err := a.clients.For(kubeconfig)
	if err != nil {
		return nil, err
	}
	return c.StartForward(ctx, ns, release, remote, local, a.log)
}

func (a *clusterAdapter) Logs(ctx context.Context, kubeconfig, ns, release string, follow bool, tail int, w io.Writer) error {
	c, err := a.clients.For(kubeconfig)
	if err != nil {
		return err
	}
	return c.Logs(ctx, ns, release, follow, tail, w)
}

func (a *clusterAdapter) Diagnose(ctx context.Context, kubeconfig, ns string) string {
	c, err := a.clients.For(kubeconfig)
	if err != nil {
		return err.Error()
	}
	return c.Diagnose(ctx, ns)
}
