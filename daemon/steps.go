package daemon

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/devctl/devctl/envs"
	"github.com/devctl/devctl/internal/api"
	"github.com/devctl/devctl/internal/build"
	"github.com/devctl/devctl/internal/check"
	"github.com/devctl/devctl/internal/config"
	"github.com/devctl/devctl/internal/goldenpath"
	"github.com/devctl/devctl/internal/policy"
)

// Step names.
const (
	StepConfig  = "config"
	StepCluster = "cluster"
	StepBuild   = "build"
	StepDeliver = "deliver"
	StepRender  = "render"
	StepPolicy  = "policy"
	StepDeploy  = "deploy"
	StepReady   = "ready"
	StepDelete  = "delete"
)

// A Step is one unit of a run: it does its work, dispatches what it
// observed and returns a one-line detail for the step list (or skip(...)
// when there was nothing to do). Steps are values: an up and a rebuild are
// two lists of the same steps.
type Step interface {
	Name() string
	// Phase is the environment's phase while the step runs.
	Phase() api.Phase
	Run(ctx context.Context, r *Run) (detail string, err error)
}

type step struct {
	name  string
	phase api.Phase
	run   func(ctx context.Context, r *Run) (string, error)
}

func (s step) Name() string                                    { return s.name }
func (s step) Phase() api.Phase                                { return s.phase }
func (s step) Run(ctx context.Context, r *Run) (string, error) { return s.run(ctx, r) }

// parallel is a group of steps that do not depend on each other and run at
// the same time, each reported on its own.
type parallel []Step

func (p parallel) Name() string {
	names := make([]string, len(p))
	for i, s := range p {
		names[i] = s.Name()
	}
	return strings.Join(names, "+")
}
func (p parallel) Phase() api.Phase { return p[0].Phase() }
func (p parallel) Run(ctx context.Context, r *Run) (string, error) {
	return "", r.doParallel(ctx, p)
}

var (
	configStep  = step{StepConfig, api.PhasePending, runConfig}
	clusterStep = step{StepCluster, api.PhaseCreating, runCluster}
	attachStep  = step{StepCluster, api.PhaseWaiting, runAttach}
	buildStep   = step{StepBuild, api.PhaseBuilding, runBuild}
	deliverStep = step{StepDeliver, api.PhaseDelivering, runDeliver}
	renderStep  = step{StepRender, api.PhaseDeploying, runRender}
	policyStep  = step{StepPolicy, api.PhaseDeploying, runPolicy}
	deployStep  = step{StepDeploy, api.PhaseDeploying, runDeploy}
	readyStep   = step{StepReady, api.PhaseWaiting, runReady}
	deleteStep  = step{StepDelete, api.PhaseDeleting, runDelete}
)

// plan is the list of steps of a run. The image build does not need the
// cluster, so a cold up costs about max(cluster, build) + deploy + ready.
func plan(kind api.RunKind) []Step {
	switch kind {
	case api.RunUp:
		return []Step{configStep, parallel{clusterStep, buildStep, mockImagesStep}, parallel{deliverStep, mocksStep},
			dependenciesStep, renderStep, policyStep, deployStep, readyStep}
	case api.RunRebuild:
		return []Step{configStep, buildStep, deliverStep, renderStep, policyStep, deployStep, readyStep}
	case api.RunResume:
		return []Step{configStep, attachStep, readyStep}
	case api.RunDelete:
		return []Step{deleteStep}
	}
	return nil
}

// runConfig loads devctl.yaml (or detects defaults) and checks everything
// that can be checked before slow work starts: values against the chart's
// schema, Dockerfiles, the provider, the Docker engine.
func runConfig(ctx context.Context, r *Run) (string, error) {
	p, err := goldenpath.Load(r.Spec.Dir, r.Spec.Config)
	if err != nil {
		return "", err
	}
	r.project, r.namespace = p, p.Namespace()
	if r.Kind == api.RunUp {
		for _, n := range p.Notes {
			r.logf(StepConfig, "", api.SourceConfig, api.LevelInfo, "no devctl.yaml: %s", n)
		}
	}
	svcs := make([]api.ServiceStatus, len(p.Services))
	for i, s := range p.Services {
		svcs[i] = api.ServiceStatus{Name: s.Name, Port: s.Port}
	}
	r.dispatch(ServicesDeclared{Name: r.Env, Services: svcs})
	r.dispatch(ClusterObserved{Name: r.Env, Namespace: p.Namespace()})
	if r.Kind != api.RunResume {
		if err := preflight(ctx, r.r.deps, p, r.Spec, r.target()); err != nil {
			return "", err
		}
	}
	return fmt.Sprintf("%s: %d service(s)", p.Name, len(p.Services)), nil
}

// preflight catches in a second what would otherwise fail minutes later.
func preflight(ctx context.Context, deps Deps, p *goldenpath.Project, spec api.EnvSpec, t goldenpath.Target) error {
	if err := deps.Environments.CheckProvider(spec.Provider); err != nil {
		return &configError{err}
	}
	if err := goldenpath.CheckValues(p, t); err != nil {
		return &configError{err}
	}
	for i := range p.Services {
		s := &p.Services[i]
		if s.Go != nil && deps.GoImages != nil {
			continue // built without a Dockerfile
		}
		df := filepath.Join(p.ContextDir(s), s.Dockerfile)
		if _, err := os.Stat(df); err != nil {
			hint := ""
			if s.Go != nil {
				hint = " (`devctl init --force` writes a FROM scratch one for Go services)"
			}
			return &configError{fmt.Errorf("service %s: %w%s (looked for %s)", s.Name, build.ErrDockerfileNotFound, hint, df)}
		}
	}
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	return deps.Images.Ping(pctx)
}

// configError marks a problem with the project's configuration.
type configError struct{ err error }

func (e *configError) Error() string { return e.err.Error() }
func (e *configError) Unwrap() error { return e.err }

func runCluster(ctx context.Context, r *Run) (string, error) {
	// A cluster an earlier up finished, whose API server answers on the
	// kubeconfig it left, is there: asking the provider (docker ps, docker
	// exec) again costs a second and a half on every up. After a crash the
	// provider is asked: the interrupted run may have begun a new cluster
	// under that kubeconfig that answers but was never finished.
	if kc := r.prev.Status.Kubeconfig; kc != "" && r.prev.Status.ObservedGeneration > 0 && !r.Recovered {
		rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		err := r.r.deps.Cluster.Reachable(rctx, kc)
		cancel()
		if err == nil {
			r.mu.Lock()
			r.kubeconfig = kc
			r.mu.Unlock()
			return "exists", nil
		}
		r.logf(StepCluster, "", api.SourceProgress, api.LevelInfo, "the cluster does not answer (%v): asking %s", err, r.Spec.Provider)
	}
	r.r.awaitFinishing(ctx, r.Env)
	pctx := envs.ContextWithProgress(ctx, func(p envs.Progress) {
		level, msg := api.LevelInfo, p.Message
		switch p.State {
		case envs.StepStarted:
		case envs.StepDone:
			msg = fmt.Sprintf("%s (%.1fs)", p.Message, p.Elapsed.Seconds())
		case envs.StepFailed:
			level, msg = api.LevelError, fmt.Sprintf("%s failed (%.1fs)", p.Message, p.Elapsed.Seconds())
		}
		r.logf(StepCluster, "", api.SourceProgress, level, "%s", msg)
	})
	// A new cluster's API server answers seconds before the provider is
	// done (kind then installs the CNI and the storage class): the step
	// ends there, the steps after it push, install and schedule meanwhile,
	// and the ready step (or the end of the run) waits for the rest.
	answering := make(chan string, 1)
	pctx = envs.ContextWithAPIReady(pctx, func(kubeconfig string) {
		select {
		case answering <- kubeconfig:
		default:
		}
	})
	type upResult struct {
		env *envs.Env
		err error
	}
	done := make(chan upResult, 1)
	go func() {
		// Not ended with the step: once it answered, the provider goes on
		// after the step (a create cannot be stopped half-way anyway).
		env, err := r.r.deps.Environments.Up(context.WithoutCancel(pctx), r.Env, r.Spec)
		done <- upResult{env, err}
	}()
	select {
	case res := <-done:
		if res.err != nil {
			return "", res.err
		}
		return r.clusterMade(ctx, res.env.Kubeconfig, res.env.New), nil
	case kc := <-answering:
		var (
			once sync.Once
			err  error
		)
		r.mu.Lock()
		// The kubeconfig path stays the same (the provider replaces the
		// file's content whole), so finishing has nothing to record.
		r.clusterRest = func() error {
			once.Do(func() { err = (<-done).err })
			return err
		}
		r.mu.Unlock()
		r.clusterMade(ctx, kc, true)
		return "created " + r.Spec.Provider + " cluster (its API answers; " + r.Spec.Provider + " finishes while the steps after this one run)", nil
	}
}

// clusterMade records that the cluster answers on kubeconfig and starts
// what only needs that; it returns the cluster step's detail.
func (run *Run) clusterMade(ctx context.Context, kubeconfig string, isNew bool) string {
	run.mu.Lock()
	run.kubeconfig, run.newCluster = kubeconfig, isNew
	run.mu.Unlock()
	run.dispatch(ClusterObserved{Name: run.Env, Kubeconfig: kubeconfig})
	run.startAdmission(ctx)
	if isNew {
		// A cluster made again under the same name: old forwards are dead.
		run.r.forwards.closeEnv(run.Env)
		return "created " + run.Spec.Provider + " cluster"
	}
	return "exists"
}

// awaitCluster waits for what the provider still does after the cluster
// step ended early (nothing when it did not) and returns its error.
func (run *Run) awaitCluster() error {
	run.mu.Lock()
	rest := run.clusterRest
	run.mu.Unlock()
	if rest == nil {
		return nil
	}
	return rest()
}

func runAttach(ctx context.Context, r *Run) (string, error) {
	r.r.awaitFinishing(ctx, r.Env)
	env, err := r.r.deps.Environments.Get(ctx, r.Env, r.Spec.Provider)
	if err != nil {
		return "", err
	}
	r.kubeconfig = env.Kubeconfig
	r.dispatch(ClusterObserved{Name: r.Env, Kubeconfig: env.Kubeconfig})
	return "found " + env.Spec.Provider + " cluster", nil
}

func runBuild(ctx context.Context, r *Run) (string, error) {
	p := r.project
	if r.Kind == api.RunUp {
		r.pushAgentEarly(ctx)
	}
	var parts []string
	for _, name := range r.targets() {
		s := p.Service(name)
		if r.r.usesGoBuilder(s) {
			part, err := r.buildGo(ctx, p, s)
			if err != nil {
				return "", fmt.Errorf("build %s: %w", s.Name, buildFailure(err))
			}
			parts = append(parts, part)
			continue
		}
		out := r.outputWriter(StepBuild, name, api.SourceBuild)
		spec := build.Spec{
			Image:      goldenpath.ImageRepository(p.Name, s.Name),
			Context:    p.ContextDir(s),
			Dockerfile: s.Dockerfile,
			Labels:     map[string]string{"devctl.dev/project": p.Name, "devctl.dev/service": s.Name},
			Output:     out,
		}
		if s.Go != nil {
			spec.Go = &build.GoSpec{Package: s.Go.Package, Output: s.Go.Output}
		}
		res, err := r.r.deps.Images.Build(ctx, spec)
		_ = out.Close()
		if be := (*build.BuildError)(nil); errors.As(err, &be) && len(be.Output) > 0 {
			return "", fmt.Errorf("build %s: %w; it printed (last lines):\n%s", s.Name, err, lastLines(be.Output, 8))
		}
		if err != nil {
			return "", fmt.Errorf("build %s: %w", s.Name, buildFailure(err))
		}
		r.mu.Lock()
		r.images[s.Name] = res.Ref
		r.mu.Unlock()
		r.dispatch(ImageBuilt{Name: r.Env, Service: s.Name, Image: res.Ref})
		how := "built"
		if res.Cached {
			how = "cached"
		}
		parts = append(parts, fmt.Sprintf("%s %s %s", s.Name, how, res.Ref))
	}
	return strings.Join(parts, ", "), nil
}

func runDeliver(ctx context.Context, r *Run) (string, error) {
	if err := r.deliverAgent(ctx); err != nil {
		return "", err
	}
	var refs []string
	for _, name := range r.targets() {
		ref := r.images[name]
		// After a crash the images are loaded again: the interrupted run
		// may have made a new cluster that lacks what the old one had.
		if prev := r.prev.Status.Service(name); r.newCluster || r.Recovered || prev == nil || prev.Image != ref {
			refs = append(refs, ref)
		}
	}
	if len(refs) == 0 {
		return skip("images already in the cluster")
	}
	toLoad, pushed, err := r.pushGo(ctx, refs)
	if err != nil {
		return "", err
	}
	if r.newCluster && len(pushed) > 0 {
		r.prepull(ctx, slices.DeleteFunc(slices.Clone(refs), func(ref string) bool { return slices.Contains(toLoad, ref) }))
	}
	goArchive, dockerRefs, err := r.goArchive(toLoad)
	if err != nil {
		return "", err
	}
	if goArchive != nil {
		if err := r.r.deps.Environments.LoadImages(ctx, r.Env, r.Spec.Provider, goArchive); err != nil {
			return "", err
		}
	}
	if len(dockerRefs) > 0 {
		err := r.r.deps.Environments.LoadImages(ctx, r.Env, r.Spec.Provider, func() (io.ReadCloser, error) {
			return r.r.deps.Images.Save(ctx, dockerRefs...)
		})
		if err != nil {
			return "", err
		}
	}
	if len(toLoad) > 0 {
		pushed = append(pushed, "loaded "+strings.Join(toLoad, ", "))
	}
	return strings.Join(pushed, "; "), nil
}

// runRender renders every service, not only the targets, so that the
// policy findings always cover the whole project; services this run did
// not build keep the image they run.
func runRender(ctx context.Context, r *Run) (string, error) {
	images := map[string]string{}
	for _, name := range r.project.ServiceNames() {
		if ref := r.images[name]; ref != "" {
			images[name] = ref
		} else if prev := r.prev.Status.Service(name); prev != nil && prev.Image != "" {
			images[name] = prev.Image
		} else if prev != nil && prev.DesiredImage != "" {
			images[name] = prev.DesiredImage
		}
	}
	var names []string
	for name := range images {
		names = append(names, name)
	}
	if err := r.liveValues(); err != nil {
		return "", err
	}
	rels, err := goldenpath.Render(ctx, r.project, r.target(), images, names...)
	if err != nil {
		return "", err
	}
	r.releases = rels
	return fmt.Sprintf("%d release(s)", len(rels)), nil
}

func runPolicy(ctx context.Context, r *Run) (string, error) {
	rep, err := r.r.deps.Checker.Check(ctx, r.project, r.releases)
	if err != nil {
		return "", fmt.Errorf("policy check: %w", err)
	}
	if err := rep.Err(); err != nil {
		// Input devctl cannot read completely is never half-checked.
		return "", fmt.Errorf("policy check: %w", err)
	}
	for _, u := range rep.NotChecked {
		r.logf(StepPolicy, "", api.SourcePolicy, api.LevelWarn, "not checked: %s: %s", u.Object, u.Reason)
	}
	findings := goldenpath.Findings(rep)
	r.dispatch(FindingsUpdated{Name: r.Env, Findings: findings})
	for _, f := range findings {
		if f.Waived {
			continue
		}
		r.logf(StepPolicy, "", api.SourcePolicy, api.LevelWarn, "[%s] %s %s: %s", f.Severity, f.Rule, f.Object, f.Message)
	}
	// The cluster enforces the same rules and the same waivers, also when
	// this check fails: an expired waiver stops admitting at once, and an
	// edited waivers file is applied with the next rebuild too.
	if err := r.awaitAdmission(ctx); err != nil {
		return "", err
	}
	threshold, err := check.FailOn(r.project.Config, "")
	if err != nil {
		return "", err
	}
	if rep.Failed(threshold) {
		return "", policyFailure(rep, threshold)
	}
	// A waiver added in this run is a binding the API server enforces
	// moments later: the deploy waits for that instead of being denied.
	if err := r.r.deps.Cluster.AwaitAdmitted(ctx, r.kubeconfig, r.namespace, waivedObjects(rep)); err != nil {
		return "", fmt.Errorf("admission: %w", err)
	}
	detail := fmt.Sprintf("%d finding(s), %d waived", len(rep.Findings), len(rep.Waived))
	if r.Kind == api.RunUp {
		detail += ", admission policies installed"
	}
	return detail, nil
}

// startAdmission installs the admission policies and the namespace's Pod
// Security labels as soon as a new cluster answers, while the images are
// delivered and the releases rendered; the policy step waits for it, so
// nothing is deployed before they are in place.
func (r *Run) startAdmission(ctx context.Context) {
	if r.Kind != api.RunUp || r.namespace == "" {
		return
	}
	done := make(chan error, 1)
	r.admission = done
	// The cluster step's context ends with its parallel group.
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
	go func() {
		defer cancel()
		done <- r.installAdmission(actx)
	}()
}

// awaitAdmission waits for the admission policies startAdmission began to
// install, or installs them now when it did not (a rebuild, a resume).
func (r *Run) awaitAdmission(ctx context.Context) error {
	if r.admission == nil {
		return r.installAdmission(ctx)
	}
	select {
	case err := <-r.admission:
		r.admission = nil // a second wait installs again rather than block
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// installAdmission installs the project's admission policies, with the
// waivers in force, into the environment's namespace.
func (r *Run) installAdmission(ctx context.Context) error {
	e, err := r.r.deps.Checker.Engine(ctx, r.project)
	if err != nil {
		return err
	}
	objs, err := e.AdmissionPolicies(r.namespace)
	if err != nil {
		return err
	}
	if err := r.r.deps.Cluster.InstallAdmission(ctx, r.kubeconfig, r.namespace, objs); err != nil {
		return fmt.Errorf("install admission policies: %w", err)
	}
	return nil
}

// waivedObjects are the objects of the waived findings, each once.
func waivedObjects(rep *policy.Report) []*unstructured.Unstructured {
	var out []*unstructured.Unstructured
	seen := map[policy.ObjectRef]bool{}
	for _, f := range rep.Waived {
		d := f.Document()
		if d == nil || d.Object == nil || seen[d.Ref()] {
			continue
		}
		seen[d.Ref()] = true
		out = append(out, d.Object)
	}
	return out
}

func policyFailure(rep *policy.Report, threshold policy.Severity) error {
	var lines []string
	for _, f := range rep.Findings {
		if f.Severity >= threshold {
			line := fmt.Sprintf("  [%s] %s %s: %s", f.Severity, f.Rule, f.Object, f.Message)
			if f.Waiver != nil && f.Waiver.Note != "" {
				line += " (" + f.Waiver.Note + ")"
			}
			lines = append(lines, line)
		}
	}
	return fmt.Errorf("%d policy finding(s) at or above %s; fix them or add a waiver (`devctl check` explains each):\n%s",
		len(lines), threshold, strings.Join(lines, "\n"))
}

func runDeploy(ctx context.Context, r *Run) (string, error) {
	var parts []string
	changed := false
	for _, rel := range r.releases {
		if !slices.Contains(r.targets(), rel.Service) {
			continue
		}
		res, err := r.r.deps.Releases.Deploy(ctx, r.kubeconfig, rel)
		if err != nil {
			return "", fmt.Errorf("deploy %s: %w", rel.Name, err)
		}
		// The Secrets it injects are read from the rendered release:
		// names, never values.
		secrets, err := goldenpath.SecretRefs(rel.Manifest)
		if err != nil {
			r.logf(StepDeploy, rel.Service, api.SourceProgress, api.LevelWarn, "list the Secrets of %s: %v", rel.Name, err)
		}
		r.dispatch(ServiceDeployed{Name: r.Env, Service: rel.Service, Image: r.images[rel.Service],
			ChartDigest: rel.ChartDigest, ValuesDigest: rel.ValuesDigest, Revision: res.Revision, Secrets: secrets,
			Live: r.deployedLive(rel.Service)})
		changed = changed || res.Changed
		parts = append(parts, fmt.Sprintf("%s %s (revision %d)", rel.Name, res.Outcome(), res.Revision))
	}
	if !changed {
		return skip("%s", strings.Join(parts, ", "))
	}
	return strings.Join(parts, ", "), nil
}

func runReady(ctx context.Context, r *Run) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, r.r.readyTimeout)
	defer cancel()
	// A new cluster may still be finishing (kind applies its storage class
	// and exports its kubeconfig after its API answers): the services are
	// waited for meanwhile. Its failure stops the wait and is the step's
	// error. Services that answer first end the step; the provider then
	// finishes after the run (runner.finishCluster).
	cluster := make(chan error, 1)
	go func() {
		err := r.awaitCluster()
		if err != nil {
			cancel()
		}
		cluster <- err
	}()
	urls, err := r.waitServices(ctx)
	var cerr error
	if err == nil {
		select {
		case cerr = <-cluster:
		default:
		}
	} else {
		cerr = <-cluster // its failure is why the services did not answer
	}
	if cerr != nil {
		return "", fmt.Errorf("create the cluster: %w", cerr)
	}
	if err != nil {
		return "", err
	}
	return strings.Join(urls, ", "), nil
}

// waitServices waits until the run's services are rolled out and answer
// through their port-forwards, and returns "service URL" for each.
func (r *Run) waitServices(ctx context.Context) ([]string, error) {
	var urls []string
	for _, name := range r.targets() {
		s := r.project.Service(name)
		// A hatch without a Deployment (a StatefulSet, say) is ready when
		// the forward below finds a ready pod of it and it answers.
		if w := r.workload(s.Name); w != "" {
			if err := r.r.deps.Cluster.WaitReady(ctx, r.kubeconfig, r.namespace, w); err != nil {
				if back := r.rollBack(ctx, s.Name); back != "" {
					return nil, fmt.Errorf("%s: the new version did not become ready: %w; %s", s.Name, err, back)
				}
				return nil, fmt.Errorf("%s did not become ready: %w", s.Name, err)
			}
		}
		prefer := 0
		if prev := r.prev.Status.Service(name); prev != nil {
			prefer = portOf(prev.URL)
		}
		r.r.log.Debug("rolled out", "env", r.Env, "service", s.Name)
		url, err := r.r.forwards.ensure(ctx, r.Env, r.kubeconfig, r.namespace, s.Name, s.Port, prefer)
		if err != nil {
			return nil, err
		}
		r.r.log.Debug("forwarded", "env", r.Env, "service", s.Name, "url", url)
		if err := waitHTTP(ctx, url); err != nil {
			return nil, fmt.Errorf("%s does not answer on %s: %w", s.Name, url, err)
		}
		r.r.log.Debug("answers", "env", r.Env, "service", s.Name)
		r.dispatch(ServiceReady{Name: r.Env, Service: s.Name, Ready: true, URL: url})
		r.warmAgent(ctx, s)
		urls = append(urls, s.Name+" "+url)
	}
	return urls, nil
}

// workload is the Deployment whose rollout makes service ready: the one
// its release runs the built image in (the service's name on the golden
// path), "" when it runs in none or this run did not render its hatch.
func (r *Run) workload(service string) string {
	for _, rel := range r.releases {
		if rel.Service == service {
			return rel.Workload
		}
	}
	if s := r.project.Service(service); s != nil && s.Deployer() != config.DeployGoldenPath {
		// Not rendered in this run (resume): a ready pod of it will do.
		return ""
	}
	return service
}

// rollBack deploys again the image service ran before this run, when this
// run deployed a new one that does not become ready: the old version keeps
// serving (the rollout never took its pod away) and the release says so
// again, so the next save builds and tries anew. It says what it did, or
// "" when there was nothing to go back to.
func (r *Run) rollBack(ctx context.Context, service string) string {
	prev := r.prev.Status.Service(service)
	if prev == nil || prev.Image == "" || prev.Image == r.images[service] || r.images[service] == "" {
		return ""
	}
	// The ready step's own time may be what ran out.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	images := map[string]string{service: prev.Image}
	rels, err := goldenpath.Render(ctx, r.project, r.target(), images, service)
	if err == nil && len(rels) != 1 {
		err = fmt.Errorf("%d releases rendered", len(rels))
	}
	if err != nil {
		return fmt.Sprintf("rolling back to %s failed: %v", prev.Image, err)
	}
	rel := rels[0]
	res, err := r.r.deps.Releases.Deploy(ctx, r.kubeconfig, rel)
	if err != nil {
		return fmt.Sprintf("rolling back to %s failed: %v", prev.Image, err)
	}
	r.mu.Lock()
	r.images[service] = prev.Image
	r.mu.Unlock()
	secrets, _ := goldenpath.SecretRefs(rel.Manifest)
	r.dispatch(ServiceDeployed{Name: r.Env, Service: service, Image: prev.Image,
		ChartDigest: rel.ChartDigest, ValuesDigest: rel.ValuesDigest, Revision: res.Revision, Secrets: secrets,
		Live: r.deployedLive(service)})
	r.logf(StepReady, service, api.SourceProgress, api.LevelWarn, "rolled back to %s (revision %d): it serves while you fix the new version", prev.Image, res.Revision)
	return fmt.Sprintf("rolled back to %s (revision %d), which keeps serving; the next save tries again", prev.Image, res.Revision)
}

func runDelete(ctx context.Context, r *Run) (string, error) {
	r.r.awaitFinishing(ctx, r.Env) // never a delete beside a create
	r.r.forwards.closeEnv(r.Env)
	d, err := r.r.deps.Environments.Delete(ctx, r.Env, r.Spec.Provider)
	if err != nil {
		return "", err
	}
	if r.kubeconfig != "" {
		r.r.deps.Cluster.Forget(r.kubeconfig)
	}
	provider := r.Spec.Provider
	if provider == "" {
		provider = envs.DefaultProvider
	}
	thawed := ""
	if d.Thawed > 0 {
		thawed = fmt.Sprintf(" (thawed %d frozen cgroup(s) that blocked its removal)", d.Thawed)
	}
	switch {
	case d.Cluster && d.Files:
		return "deleted " + provider + " cluster " + r.Env + " and its files" + thawed, nil
	case d.Cluster:
		return "deleted " + provider + " cluster " + r.Env + thawed, nil
	case d.Files:
		return "no cluster left; removed its files", nil
	default:
		return "nothing to delete: no cluster and no files", nil
	}
}

// outputWriter turns written lines into log events of a step and service.
func (r *Run) outputWriter(stepName, service string, src api.Source) io.WriteCloser {
	pr, pw := io.Pipe()
	go func() {
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 64*1024), 1024*1024)
		for sc.Scan() {
			r.logf(stepName, service, src, api.LevelInfo, "%s", sc.Text())
		}
		_, _ = io.Copy(io.Discard, pr)
	}()
	return pw
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
			return errors.Join(ctx.Err(), last)
		case <-time.After(100 * time.Millisecond):
		}
	}
}
