package daemon

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/devctl/devctl/internal/api"
)

// Step names, in the order `up` runs them.
const (
	StepConfig  = "config"
	StepCluster = "cluster"
	StepBuild   = "build"
	StepDeliver = "deliver"
	StepRender  = "render"
	StepPolicy  = "policy"
	StepDeploy  = "deploy"
	StepReady   = "ready"
)

// Controller runs the slow work (cluster, build, deploy) outside the store's
// loop and reports it with actions. One pipeline runs per environment at a
// time; port-forwards live here too.
type Controller struct {
	store *Store
	deps  Deps
	log   *slog.Logger
	// readyTimeout bounds the wait for rollout and the first HTTP answer.
	readyTimeout time.Duration

	mu       sync.Mutex
	running  map[string]*run
	forwards map[string]Forward // env/service -> forward
	wg       sync.WaitGroup
}

type run struct {
	cancel context.CancelFunc
	done   chan struct{}
}

func newController(s *Store, deps Deps, log *slog.Logger) *Controller {
	return &Controller{
		store:        s,
		deps:         deps,
		log:          log,
		readyTimeout: 3 * time.Minute,
		running:      map[string]*run{},
		forwards:     map[string]Forward{},
	}
}

// Busy reports whether a pipeline runs for env.
func (c *Controller) Busy(env string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, ok := c.running[env]
	return ok
}

// start runs f for env in its own goroutine unless one already runs; a panic
// in f fails the environment instead of the daemon.
func (c *Controller) start(ctx context.Context, env string, f func(ctx context.Context) error) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.running[env]; ok {
		return false
	}
	ctx, cancel := context.WithCancel(ctx)
	r := &run{cancel: cancel, done: make(chan struct{})}
	c.running[env] = r
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		defer close(r.done)
		defer func() {
			c.mu.Lock()
			delete(c.running, env)
			c.mu.Unlock()
			cancel()
		}()
		defer func() {
			if p := recover(); p != nil {
				c.log.Error("pipeline panic", "env", env, "panic", p, "stack", string(debug.Stack()))
				c.store.Dispatch(EnvFailed{Name: env, Err: fmt.Sprintf("internal error: %v (see the daemon log)", p)})
			}
		}()
		if err := f(ctx); err != nil {
			c.log.Info("pipeline ended with error", "env", env, "err", err)
		}
	}()
	return true
}

// Wait waits for every pipeline to end (after their context is cancelled).
func (c *Controller) Wait() { c.wg.Wait() }

// CloseForwards ends every port-forward.
func (c *Controller) CloseForwards() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, f := range c.forwards {
		f.Close()
		delete(c.forwards, k)
	}
}

func (c *Controller) closeForwards(env string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, f := range c.forwards {
		if strings.HasPrefix(k, env+"/") {
			f.Close()
			delete(c.forwards, k)
		}
	}
}

// up brings env up: config, cluster, build, deliver, render, policy, deploy,
// ready. Each step is timed and reported.
func (c *Controller) up(ctx context.Context, name string, req api.UpRequest) error {
	d := c.store.Dispatch
	fail := func(err error, kubeconfig, ns string) error {
		diag := ""
		if kubeconfig != "" && ns != "" && c.deps.Cluster != nil {
			dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 20*time.Second)
			diag = c.deps.Cluster.Diagnose(dctx, kubeconfig, ns)
			cancel()
		}
		d(EnvFailed{Name: name, Err: err.Error(), Diagnostics: diag})
		return err
	}
	logw := c.logWriter(name)
	defer func() { _ = logw.Close() }()

	var proj *Project
	if err := c.step(name, StepConfig, func() (string, error) {
		var err error
		proj, err = c.deps.Projects.Load(ctx, req)
		if err != nil {
			return "", err
		}
		for _, n := range proj.Notes {
			d(LogLine{Name: name, Line: "config: " + n})
		}
		return fmt.Sprintf("%s: %d service(s)", proj.Name, len(proj.Services)), nil
	}); err != nil {
		return fail(err, "", "")
	}
	ns := proj.Name
	nodeImage := req.NodeImage
	if nodeImage == "" {
		nodeImage = proj.NodeImage
	}
	d(EnvInfo{Name: name, Namespace: ns, Project: proj.Name, NodeImage: nodeImage})

	d(PhaseChanged{Name: name, Phase: api.PhaseCreating})
	var rec *EnvRecord
	if err := c.step(name, StepCluster, func() (string, error) {
		var err error
		rec, err = c.deps.Environments.Up(ctx, EnvSpec{
			Name: name, Project: proj.Name, Repo: req.Repo, Branch: req.Branch, NodeImage: nodeImage,
			Labels: map[string]string{"team": proj.Team},
		}, func(msg string) { d(LogLine{Name: name, Line: "cluster: " + msg}) })
		if err != nil {
			return "", err
		}
		if rec.New {
			return "created " + rec.Provider + " cluster", nil
		}
		return "exists", nil
	}); err != nil {
		return fail(err, "", "")
	}
	d(EnvInfo{Name: name, Kubeconfig: rec.Kubeconfig})

	prev, _ := c.store.Get(ctx, name)
	delivered := map[string]string{}
	if !rec.New {
		for _, s := range prev.Services {
			delivered[s.Name] = s.Image
		}
	}

	d(PhaseChanged{Name: name, Phase: api.PhaseBuilding})
	images := map[string]*ImageResult{}
	if err := c.step(name, StepBuild, func() (string, error) {
		var parts []string
		for _, s := range proj.Services {
			res, err := c.deps.Images.Build(ctx, ImageSpec{
				Repository: imageRepository(proj.Name, s.Name),
				Service:    s,
				Labels:     map[string]string{"devctl.dev/project": proj.Name, "devctl.dev/service": s.Name},
				Output:     logw,
			})
			if err != nil {
				return "", fmt.Errorf("build %s: %w", s.Name, err)
			}
			images[s.Name] = res
			how := "built"
			if res.Cached {
				how = "cached"
			}
			parts = append(parts, fmt.Sprintf("%s %s %s", s.Name, how, res.Ref))
		}
		return strings.Join(parts, ", "), nil
	}); err != nil {
		return fail(err, "", "")
	}

	d(PhaseChanged{Name: name, Phase: api.PhaseDelivering})
	if err := c.step(name, StepDeliver, func() (string, error) {
		var refs []string
		for _, s := range proj.Services {
			if ref := images[s.Name].Ref; delivered[s.Name] != ref {
				refs = append(refs, ref)
			}
		}
		if len(refs) == 0 {
			return skipped("images already in the cluster")
		}
		err := c.deps.Environments.LoadImages(ctx, name, func() (io.ReadCloser, error) {
			return c.deps.Images.Save(ctx, refs...)
		})
		if err != nil {
			return "", err
		}
		return "loaded " + strings.Join(refs, ", "), nil
	}); err != nil {
		return fail(err, rec.Kubeconfig, ns)
	}
	services := make([]api.Service, 0, len(proj.Services))
	for _, s := range proj.Services {
		svc := api.Service{Name: s.Name, Image: images[s.Name].Ref, Port: s.Port}
		for _, p := range prev.Services {
			if p.Name == s.Name {
				svc.URL, svc.Revision = p.URL, p.Revision
			}
		}
		services = append(services, svc)
	}
	d(ServicesUpdated{Name: name, Services: append([]api.Service(nil), services...)})

	releases := make([]Release, 0, len(proj.Services))
	var manifests []string
	if err := c.step(name, StepRender, func() (string, error) {
		for _, s := range proj.Services {
			r := Release{Name: s.Name, Namespace: ns, Values: ChartValues(proj, s, images[s.Name].Ref, req.Branch, name)}
			m, err := c.deps.Charts.Render(ctx, r)
			if err != nil {
				return "", fmt.Errorf("render %s: %w", s.Name, err)
			}
			releases = append(releases, r)
			manifests = append(manifests, m)
		}
		return fmt.Sprintf("%d release(s)", len(releases)), nil
	}); err != nil {
		return fail(err, rec.Kubeconfig, ns)
	}

	if err := c.step(name, StepPolicy, func() (string, error) {
		findings, err := c.deps.Policies.Check(ctx, proj, strings.Join(manifests, "\n---\n"))
		if err != nil {
			return "", fmt.Errorf("policy check: %w", err)
		}
		d(FindingsUpdated{Name: name, Findings: findings})
		if err := c.deps.Policies.InstallAdmission(ctx, rec.Kubeconfig, ns); err != nil {
			return "", fmt.Errorf("install admission policies: %w", err)
		}
		open := 0
		for _, f := range findings {
			if !f.Waived {
				open++
			}
		}
		return fmt.Sprintf("%d finding(s), admission policies installed", open), nil
	}); err != nil {
		return fail(err, rec.Kubeconfig, ns)
	}

	d(PhaseChanged{Name: name, Phase: api.PhaseDeploying})
	revisions := map[string]int{}
	if err := c.step(name, StepDeploy, func() (string, error) {
		var parts []string
		changed := false
		for _, r := range releases {
			res, err := c.deps.Charts.Deploy(ctx, rec.Kubeconfig, r)
			if err != nil {
				return "", fmt.Errorf("deploy %s: %w", r.Name, err)
			}
			revisions[r.Name] = res.Revision
			changed = changed || res.Changed
			how := "unchanged"
			if res.Changed {
				how = "upgraded"
				if res.Revision == 1 {
					how = "installed"
				}
			}
			parts = append(parts, fmt.Sprintf("%s %s (revision %d)", r.Name, how, res.Revision))
		}
		if !changed {
			return skipped(strings.Join(parts, ", "))
		}
		return strings.Join(parts, ", "), nil
	}); err != nil {
		return fail(err, rec.Kubeconfig, ns)
	}
	for i := range services {
		services[i].Revision = revisions[services[i].Name]
	}
	d(ServicesUpdated{Name: name, Services: append([]api.Service(nil), services...)})

	d(PhaseChanged{Name: name, Phase: api.PhaseWaiting})
	if err := c.step(name, StepReady, func() (string, error) {
		rctx, cancel := context.WithTimeout(ctx, c.readyTimeout)
		defer cancel()
		var urls []string
		for _, s := range proj.Services {
			if err := c.deps.Cluster.WaitReady(rctx, rec.Kubeconfig, ns, s.Name); err != nil {
				return "", fmt.Errorf("%s did not become ready: %w", s.Name, err)
			}
			url, err := c.ensureForward(rctx, name, rec.Kubeconfig, ns, s, prevPort(prev, s.Name))
			if err != nil {
				return "", err
			}
			if err := waitHTTP(rctx, url); err != nil {
				return "", fmt.Errorf("%s does not answer on %s: %w", s.Name, url, err)
			}
			d(ServiceReady{Name: name, Service: s.Name, Ready: true, URL: url})
			urls = append(urls, s.Name+" "+url)
		}
		return strings.Join(urls, ", "), nil
	}); err != nil {
		return fail(err, rec.Kubeconfig, ns)
	}
	d(PhaseChanged{Name: name, Phase: api.PhaseReady})
	return nil
}

// down deletes env's cluster and forgets it.
func (c *Controller) down(ctx context.Context, name string) error {
	c.store.Dispatch(PhaseChanged{Name: name, Phase: api.PhaseDeleting})
	c.closeForwards(name)
	if err := c.deps.Environments.Delete(ctx, name); err != nil {
		c.store.Dispatch(EnvFailed{Name: name, Err: fmt.Sprintf("delete: %v", err)})
		return err
	}
	c.store.Dispatch(EnvDeleted{Name: name})
	return nil
}

// resume re-establishes the port-forwards of a ready environment after a
// daemon restart.
func (c *Controller) resume(ctx context.Context, e api.Environment) error {
	if e.Kubeconfig == "" || e.Namespace == "" {
		return nil
	}
	for _, s := range e.Services {
		if s.Port == 0 {
			continue
		}
		url, err := c.ensureForward(ctx, e.Name, e.Kubeconfig, e.Namespace, ProjectService{Name: s.Name, Port: s.Port}, portOf(s.URL))
		if err != nil {
			c.store.Dispatch(ServiceReady{Name: e.Name, Service: s.Name, Ready: false})
			return err
		}
		c.store.Dispatch(ServiceReady{Name: e.Name, Service: s.Name, Ready: true, URL: url})
	}
	c.store.Dispatch(PhaseChanged{Name: e.Name, Phase: api.PhaseReady, Message: "resumed after daemon restart"})
	return nil
}

func (c *Controller) ensureForward(ctx context.Context, env, kubeconfig, ns string, s ProjectService, port int) (string, error) {
	key := env + "/" + s.Name
	c.mu.Lock()
	f, ok := c.forwards[key]
	c.mu.Unlock()
	if !ok {
		var err error
		// The forward outlives this request: it is closed by down or shutdown.
		f, err = c.deps.Cluster.Forward(context.WithoutCancel(ctx), kubeconfig, ns, s.Name, s.Port, port)
		if err != nil && port != 0 {
			// The old port may be taken now; any free one will do.
			f, err = c.deps.Cluster.Forward(context.WithoutCancel(ctx), kubeconfig, ns, s.Name, s.Port, 0)
		}
		if err != nil {
			return "", fmt.Errorf("port-forward to %s: %w", s.Name, err)
		}
		c.mu.Lock()
		c.forwards[key] = f
		c.mu.Unlock()
	}
	return fmt.Sprintf("http://127.0.0.1:%d", f.LocalPort()), nil
}

type skippedStep struct{ detail string }

func (s skippedStep) Error() string { return s.detail }

func skipped(detail string) (string, error) { return "", skippedStep{detail} }

// step times f and reports it as StepStarted/StepEnded.
func (c *Controller) step(env, name string, f func() (string, error)) error {
	c.store.Dispatch(StepStarted{Name: env, Step: name, At: time.Now()})
	detail, err := f()
	var sk skippedStep
	switch {
	case errors.As(err, &sk):
		c.store.Dispatch(StepEnded{Name: env, Step: name, Status: api.StepSkipped, Detail: sk.detail, At: time.Now()})
		return nil
	case err != nil:
		c.store.Dispatch(StepEnded{Name: env, Step: name, Status: api.StepFailed, Detail: err.Error(), At: time.Now()})
		return err
	}
	c.store.Dispatch(StepEnded{Name: env, Step: name, Status: api.StepDone, Detail: detail, At: time.Now()})
	return nil
}

// logWriter turns written lines into LogLine actions for env.
func (c *Controller) logWriter(env string) io.WriteCloser {
	pr, pw := io.Pipe()
	go func() {
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 64*1024), 1024*1024)
		for sc.Scan() {
			c.store.Dispatch(LogLine{Name: env, Line: sc.Text()})
		}
		_, _ = io.Copy(io.Discard, pr)
	}()
	return pw
}

func imageRepository(project, service string) string {
	return "devctl.local/" + project + "/" + service
}

func prevPort(e api.Environment, service string) int {
	for _, s := range e.Services {
		if s.Name == service {
			return portOf(s.URL)
		}
	}
	return 0
}

func portOf(url string) int {
	i := strings.LastIndexByte(url, ':')
	if i < 0 {
		return 0
	}
	var p int
	_, _ = fmt.Sscanf(url[i+1:], "%d", &p)
	return p
}

// waitHTTP polls url until it answers with a status below 500.
func waitHTTP(ctx context.Context, url string) error {
	client := &http.Client{Timeout: 2 * time.Second}
	var last error
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		resp, err := client.Do(req)
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode < 500 {
				return nil
			}
			err = fmt.Errorf("HTTP %s", resp.Status)
		}
		last = err
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last: %w)", ctx.Err(), last)
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// ChartValues are the golden-path values for a service: devctl's defaults,
// then the service's overrides from devctl.yaml, then the image just built.
func ChartValues(p *Project, s ProjectService, ref, branch, env string) map[string]any {
	repo, tag := splitRef(ref)
	v := map[string]any{
		"team":        p.Team,
		"owner":       p.Owner,
		"costCenter":  p.CostCenter,
		"branch":      branch,
		"environment": env,
		"service":     map[string]any{"port": s.Port},
		"env":         map[string]any{"DEVCTL_BRANCH": branch, "DEVCTL_ENV": env},
	}
	mergeValues(v, s.Values)
	mergeValues(v, map[string]any{"image": map[string]any{"repository": repo, "tag": tag}})
	return v
}

// mergeValues deep-merges src into dst; maps merge, anything else replaces.
func mergeValues(dst, src map[string]any) {
	for k, sv := range src {
		if sm, ok := sv.(map[string]any); ok {
			if dm, ok := dst[k].(map[string]any); ok {
				mergeValues(dm, sm)
				continue
			}
			c := map[string]any{}
			mergeValues(c, sm)
			dst[k] = c
			continue
		}
		dst[k] = sv
	}
}

func splitRef(ref string) (repo, tag string) {
	i := strings.LastIndexByte(ref, ':')
	if i < 0 || strings.Contains(ref[i:], "/") {
		return ref, "latest"
	}
	return ref[:i], ref[i+1:]
}
