package daemon

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/devctl/devctl/envs"
	"github.com/devctl/devctl/internal/api"
	"github.com/devctl/devctl/internal/build"
	"github.com/devctl/devctl/internal/goldenpath"
)

// runner is the controller that executes runs. It subscribes to the store:
// whenever the reducer has started a run (Status.Run active with an ID it
// has not started), it executes that run's steps in a goroutine of its own
// and dispatches what they observe, ending with RunFinished. It decides
// nothing itself: what runs, and when, is the reducer's business. When a
// delete is queued behind a run, the runner cancels the run.
type runner struct {
	store *Store
	deps  Deps
	log   *slog.Logger
	// readyTimeout bounds the wait for rollout and the first HTTP answer.
	readyTimeout time.Duration

	mu      sync.Mutex
	started map[string]int64 // env → ID of the last run started
	cancels map[string]context.CancelFunc
	// finishing holds, per environment, what a provider still did for a
	// new cluster when the run that made it ended; closed once done.
	finishing map[string]chan struct{}
	wg        sync.WaitGroup

	forwards *forwards
	// stateDir holds the agents' tokens.
	stateDir string
	live     liveState
	// regPulls records per kubeconfig whether the cluster pulls from the
	// registry.
	regMu    sync.Mutex
	regPulls map[string]bool
}

func newRunner(s *Store, deps Deps, log *slog.Logger) *runner {
	return &runner{
		store:        s,
		deps:         deps,
		log:          log,
		readyTimeout: 3 * time.Minute,
		started:      map[string]int64{},
		cancels:      map[string]context.CancelFunc{},
		finishing:    map[string]chan struct{}{},
		forwards:     newForwards(deps.Cluster),
	}
}

// run reconciles after every state change until ctx ends, then waits for
// the runs under way (which see ctx cancelled) to stop.
func (r *runner) run(ctx context.Context, changes <-chan struct{}) {
	defer r.wg.Wait()
	for {
		r.reconcile(ctx)
		select {
		case <-ctx.Done():
			return
		case <-changes:
		}
	}
}

func (r *runner) reconcile(ctx context.Context) {
	for _, e := range r.store.List(ctx) {
		run := e.Status.Run
		if !run.Active() {
			continue
		}
		r.mu.Lock()
		last, cancel := r.started[e.Name], r.cancels[e.Name]
		r.mu.Unlock()
		if run.ID <= last {
			if q := e.Status.Queued; q != nil && q.Kind == api.RunDelete && cancel != nil {
				cancel()
			}
			continue
		}
		r.start(ctx, e)
	}
}

func (r *runner) start(ctx context.Context, e api.Environment) {
	ctx, cancel := context.WithCancel(ctx)
	r.mu.Lock()
	r.started[e.Name] = e.Status.Run.ID
	r.cancels[e.Name] = cancel
	r.mu.Unlock()
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		defer cancel()
		fin, rest := r.execute(ctx, e)
		// Held before the run's end is dispatched (which may start the
		// next run), reported after it.
		ended := make(chan struct{})
		if rest != nil {
			r.finishCluster(e.Name, fin.Run, rest, ended)
		}
		r.mu.Lock()
		if r.started[e.Name] == e.Status.Run.ID {
			delete(r.cancels, e.Name)
		}
		r.mu.Unlock()
		r.store.Dispatch(fin)
		close(ended)
	}()
}

// execute runs e's run to the end and returns how it ended, and what the
// provider still does for a new cluster when the run succeeded before it
// was done (nil when nothing). A panic in a step fails the run, not the
// daemon.
func (r *runner) execute(ctx context.Context, e api.Environment) (fin RunFinished, rest func() error) {
	run := newRun(e, r)
	fin = RunFinished{Name: e.Name, Run: run.ID}
	defer func() {
		if p := recover(); p != nil {
			r.log.Error("run panicked", "env", e.Name, "run", run.ID, "panic", p, "stack", string(debug.Stack()))
			fin.Err = fmt.Sprintf("internal error: %v (see the daemon log)", p)
		}
	}()
	steps, mode := plan(run.Kind), ModeImage
	if run.Kind == api.RunRebuild && run.Request.Live {
		steps, mode = livePlan(), ModeLive
	}
	err := run.do(ctx, steps...)
	// A new cluster whose step ended when its API answered may still be
	// finishing. A failed run waits for it: its failure explains the
	// steps' (a cluster deleted under them). A run whose services answer
	// does not: the provider finishes after it (finishCluster).
	if err != nil {
		if cerr := run.awaitCluster(); cerr != nil {
			err = stepError{step: StepCluster, err: cerr}
		}
	} else {
		run.mu.Lock()
		rest = run.clusterRest
		run.mu.Unlock()
	}
	if err == nil && mode == ModeImage && run.project != nil && (run.Kind == api.RunRebuild || run.Kind == api.RunUp) {
		// A new image (or pod) runs the image's binary: a failed live
		// update goes back to that, not to an older synced one.
		for _, svc := range run.targets() {
			_ = os.Remove(r.goodBinary(e.Name, svc))
		}
	}
	if run.Kind == api.RunRebuild && ctx.Err() == nil {
		r.store.Dispatch(RebuildRecorded{Name: e.Name, Rebuild: run.rebuildRecord(mode, err, time.Now())})
		if mode == ModeLive && errors.Is(err, errLiveUnavailable) {
			// Not a failure of the change: rebuild it as an image.
			r.store.Dispatch(RebuildRequested{Name: e.Name, Services: run.Request.Services, Changed: run.Request.Changed,
				Reason: run.Request.Reason + " (as an image: " + firstLine(err.Error()) + ")"})
			err = nil
		}
	}
	switch {
	case err == nil:
	case ctx.Err() != nil:
		fin.Cancelled = true
		fin.Err = "cancelled"
	default:
		fin.Err = err.Error()
		// The message has the last lines of a failed command; all of its
		// output goes to `devctl status` and the daemon log.
		if out := commandOutput(err); out != "" {
			fin.Diagnostics = out
			r.log.Error("command failed", "env", e.Name, "run", run.ID, "err", fin.Err, "output", out)
		}
		if run.Kind == api.RunUp && run.kubeconfig != "" && run.namespace != "" && clusterDiagnosis(err) {
			dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 20*time.Second)
			fin.Diagnostics += r.deps.Cluster.Diagnose(dctx, run.kubeconfig, run.namespace)
			cancel()
		}
	}
	r.log.Info("run ended", "env", e.Name, "run", run.ID, "kind", string(run.Kind), "err", fin.Err)
	return fin, rest
}

// finishCluster hands on what the provider still does for env's new
// cluster once run has ended: kind's last phases (a storage class, its
// kubeconfig export) take 2-5 s after the services answer, and the
// environment is usable meanwhile. The environment's next steps that ask
// the provider wait for it (awaitFinishing), and so does the daemon's stop;
// its failure, reported once the run's end is (ended), fails the
// environment.
func (r *runner) finishCluster(env string, run int64, rest func() error, ended <-chan struct{}) {
	done := make(chan struct{})
	r.mu.Lock()
	r.finishing[env] = done
	r.mu.Unlock()
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		defer func() {
			r.mu.Lock()
			if r.finishing[env] == done {
				delete(r.finishing, env)
			}
			r.mu.Unlock()
			close(done)
		}()
		start := time.Now()
		err := rest()
		<-ended
		if err != nil {
			msg := "create the cluster: " + err.Error()
			r.log.Error("the cluster failed after its run ended", "env", env, "run", run, "err", err)
			r.store.Dispatch(Logged{Name: env, Run: run, Step: StepCluster, Source: api.SourceProgress, Level: api.LevelError, Message: msg})
			r.store.Dispatch(ClusterFailed{Name: env, Err: msg})
			return
		}
		r.log.Debug("cluster finished after its run", "env", env, "run", run, "waited", time.Since(start))
	}()
}

// awaitFinishing waits until what a provider still does for env's cluster
// after an earlier run is done, or ctx ends. The steps that ask the
// provider call it (a delete, a create, finding the cluster); the others
// (an unchanged up, a rebuild) only need the API, which answers already.
func (r *runner) awaitFinishing(ctx context.Context, env string) {
	r.mu.Lock()
	done := r.finishing[env]
	r.mu.Unlock()
	if done == nil {
		return
	}
	select {
	case <-done:
	case <-ctx.Done():
	}
}

// Run is one execution of a run's steps for an environment: what the steps
// share. Steps running in parallel write disjoint fields, or take mu.
type Run struct {
	ID       int64
	Env      string
	Kind     api.RunKind
	Spec     api.EnvSpec
	Services []string // the services this run builds and deploys; nil is all
	Request  api.Request
	started  time.Time
	// Recovered is set on a run the daemon started again after a crash.
	Recovered bool
	prev      api.Environment

	r *runner

	// Filled in by the steps.
	project    *goldenpath.Project
	kubeconfig string
	namespace  string
	newCluster bool
	mu         sync.Mutex
	images     map[string]string // service → image built
	releases   []*goldenpath.Release
	mocks      *mockState // the platform stand-ins (mocks.go)
	stepTimes  map[string]time.Duration
	goImages   map[string]goBuilt // image ref → the Go builder's image
	agentRef   string             // the live-update agent image in the cluster
	// early holds the pushes begun while the cluster is made: ref → the
	// push's result, read by the deliver step.
	early map[string]*earlyPush
	// admission is the result of installing the admission policies, begun
	// as soon as the cluster answers; nil when not begun.
	admission chan error
	// clusterRest, when the cluster step ended as soon as a new cluster's
	// API answered, waits for the provider to finish it.
	clusterRest func() error
}

func newRun(e api.Environment, r *runner) *Run {
	run := e.Status.Run
	return &Run{
		ID: run.ID, Env: e.Name, Kind: run.Request.Kind, Spec: e.Spec, Services: run.Request.Services,
		Request: run.Request, started: run.Started, Recovered: run.Request.Recovered,
		prev: e, r: r, kubeconfig: e.Status.Kubeconfig, namespace: e.Status.Namespace,
		images: map[string]string{},
	}
}

func (run *Run) dispatch(a Action) { run.r.store.Dispatch(a) }

// logf sends one line of progress or output to the event stream.
func (run *Run) logf(step, service string, src api.Source, level api.Level, format string, args ...any) {
	run.dispatch(Logged{Name: run.Env, Run: run.ID, Step: step, Service: service, Source: src, Level: level,
		Message: fmt.Sprintf(format, args...)})
}

// targets are the project's services this run builds and deploys.
func (run *Run) targets() []string {
	all := run.project.ServiceNames()
	if run.Services == nil {
		return all
	}
	var out []string
	for _, s := range all {
		for _, want := range run.Services {
			if s == want {
				out = append(out, s)
			}
		}
	}
	return out
}

func (run *Run) target() goldenpath.Target {
	return goldenpath.Target{Env: run.Env, Branch: run.Spec.Branch}
}

// do runs steps in order; a parallel group runs its steps at once and
// fails when one of them does (cancelling the others).
func (run *Run) do(ctx context.Context, steps ...Step) error {
	for _, s := range steps {
		if err := ctx.Err(); err != nil {
			return err
		}
		var err error
		if g, ok := s.(parallel); ok {
			err = run.doParallel(ctx, g)
		} else {
			err = run.doStep(ctx, s)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func (run *Run) doParallel(ctx context.Context, g parallel) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errs := make([]error, len(g))
	var wg sync.WaitGroup
	for i, s := range g {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if errs[i] = run.doStep(ctx, s); errs[i] != nil {
				cancel()
			}
		}()
	}
	wg.Wait()
	// Report the step that failed first, not the ones it cancelled.
	for _, err := range errs {
		if err != nil && !errors.Is(err, context.Canceled) {
			return err
		}
	}
	return errors.Join(errs...)
}

// doStep times s and reports it as StepStarted and StepEnded.
func (run *Run) doStep(ctx context.Context, s Step) error {
	if o, ok := s.(interface{ absent(*Run) bool }); ok && o.absent(run) {
		return nil // not part of this project's runs: not reported
	}
	begin := time.Now()
	run.dispatch(StepStarted{Name: run.Env, Run: run.ID, Step: s.Name(), Phase: s.Phase(), At: begin})
	if holdStep != "" && holdStep == s.Name() {
		// The fault-injection hook: the step stays running, so a test can
		// kill the daemon in the middle of it.
		run.r.log.Warn("holding step ("+holdStepEnv+")", "env", run.Env, "step", s.Name())
		<-ctx.Done()
	}
	detail, err := s.Run(ctx, run)
	end := StepEnded{Name: run.Env, Run: run.ID, Step: s.Name(), Status: api.StepDone, Detail: detail, At: time.Now()}
	run.noteStep(s.Name(), end.At.Sub(begin))
	var sk skipped
	switch {
	case errors.As(err, &sk):
		end.Status, end.Detail, err = api.StepSkipped, sk.reason, nil
	case err != nil && ctx.Err() != nil:
		end.Status, end.Detail = api.StepSkipped, "cancelled"
	case err != nil:
		end.Status, end.Detail = api.StepFailed, firstLine(err.Error())
	}
	run.dispatch(end)
	if err != nil {
		return stepError{step: s.Name(), err: err}
	}
	return nil
}

// stepError is a step's failure, named by its step.
type stepError struct {
	step string
	err  error
}

func (e stepError) Error() string { return e.step + ": " + e.err.Error() }
func (e stepError) Unwrap() error { return e.err }

// clusterDiagnosis says whether a failure is worth the cluster's pods,
// events and logs: not when it happened before anything was applied to
// the cluster (a build, the config, the policy check).
func clusterDiagnosis(err error) bool {
	var se stepError
	if !errors.As(err, &se) {
		return true
	}
	switch se.step {
	case StepConfig, StepBuild, StepRender, StepPolicy:
		return false
	}
	return true
}

// holdStepEnv names a step that every run of this daemon holds once it has
// started, until the run is cancelled: the e2e tests kill the daemon with
// kill -9 while a build, a delivery or a deploy is under way, without
// depending on how long the step takes. Unset in normal use.
const holdStepEnv = "DEVCTL_TEST_HOLD_STEP"

var holdStep = os.Getenv(holdStepEnv)

// skipped is returned by a step that had nothing to do.
type skipped struct{ reason string }

func (s skipped) Error() string { return s.reason }

func skip(format string, args ...any) (string, error) {
	return "", skipped{fmt.Sprintf(format, args...)}
}

// commandOutput is all the output a failed command left in err (a
// provider's CommandError, a build's BuildError), headed by what ran, or "".
func commandOutput(err error) string {
	var (
		ce *envs.CommandError
		be *build.BuildError
	)
	switch {
	case errors.As(err, &ce) && len(bytes.TrimSpace(ce.Output)) > 0:
		return fmt.Sprintf("Output of %s:\n%s\n", ce.Command, bytes.TrimRight(ce.Output, "\n"))
	case errors.As(err, &be) && len(be.Output) > 0:
		return fmt.Sprintf("Output of the %s:\n%s\n", be.Step, strings.Join(be.Output, "\n"))
	}
	return ""
}

// lastLines is the last n lines of out, indented, for an error message.
func lastLines(out []string, n int) string {
	if len(out) > n {
		out = out[len(out)-n:]
	}
	return "  " + strings.Join(out, "\n  ")
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i] + " …"
	}
	return s
}
