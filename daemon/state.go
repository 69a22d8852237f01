package daemon

import (
	"maps"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/devctl/devctl/internal/api"
)

// State is everything the daemon knows. Only the store's loop reads or
// writes it; everyone else sees copies.
type State struct {
	Envs map[string]*api.Environment `json:"envs"`
	// LastRun is the ID of the last run started; run IDs never repeat.
	LastRun int64 `json:"lastRun"`
}

func newState() *State { return &State{Envs: map[string]*api.Environment{}} }

// List returns copies of the environments sorted by name.
func (s *State) List() []api.Environment {
	out := make([]api.Environment, 0, len(s.Envs))
	for _, e := range s.Envs {
		out = append(out, copyEnv(e))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Action is a request or an observation. Actions are plain data; reduce
// applies them to the State, and only reduce decides what runs next.
//
//sumtype:decl
type Action interface{ envName() string }

// UpRequested asks for an environment to be brought up with spec: a new
// one, or a new generation of an existing one.
type UpRequested struct {
	Name   string
	Spec   api.EnvSpec
	Reason string
}

// RebuildRequested asks for some services of a ready environment to be
// built and deployed again (their sources changed).
type RebuildRequested struct {
	Name     string
	Services []string
	Reason   string
	// Changed is when the first change was seen; zero when not asked for
	// by a change.
	Changed time.Time
	// Live asks for Files (relative to the project folder) to be synced
	// into the running containers instead of a new image.
	Live  bool
	Files []string
}

// DownRequested asks for an environment to be deleted. A run under way is
// cancelled.
type DownRequested struct {
	Name   string
	Reason string
}

// Recovered is dispatched for every environment when the daemon starts:
// a run the previous daemon did not finish (its ID is at most LastRun, the
// last run of the state file) is started again, and a ready environment is
// resumed (its port-forwards and watches re-attached).
type Recovered struct {
	Name    string
	LastRun int64
}

// Discovered merges an environment found in a cluster. Stopped says the
// cluster exists but does not answer; Start is how to start it.
type Discovered struct {
	Name       string
	Spec       api.EnvSpec
	Kubeconfig string
	Created    time.Time
	Stopped    bool
	Start      string
}

// Forgotten drops an environment whose cluster is gone.
type Forgotten struct{ Name string }

// StepStarted records that a step of run Run began.
type StepStarted struct {
	Name  string
	Run   int64
	Step  string
	Phase api.Phase
	At    time.Time
}

// StepEnded records how a step ended.
type StepEnded struct {
	Name   string
	Run    int64
	Step   string
	Status api.StepStatus
	Detail string
	At     time.Time
}

// ClusterObserved records where an environment's cluster is.
type ClusterObserved struct {
	Name       string
	Kubeconfig string
	Namespace  string
}

// ServicesDeclared sets the project's services (from devctl.yaml): their
// names and ports. Observed facts of services that remain are kept.
type ServicesDeclared struct {
	Name     string
	Services []api.ServiceStatus
}

// ImageBuilt records the image a service's last build produced.
type ImageBuilt struct {
	Name, Service, Image string
}

// ServiceDeployed records what a service's release runs.
type ServiceDeployed struct {
	Name, Service             string
	Image                     string
	ChartDigest, ValuesDigest string
	Revision                  int
	// Secrets are the Secrets the release injects, by name.
	Secrets []api.SecretRef
	// Live says the release runs the service under the live-update agent.
	Live bool
}

// ServiceReady updates one service's readiness and URL.
type ServiceReady struct {
	Name, Service string
	Ready         bool
	URL           string
}

// FindingsUpdated replaces an environment's policy findings.
type FindingsUpdated struct {
	Name     string
	Findings []api.Finding
}

// WatchChanged records whether the sources are watched, and why not when
// they should be (Error).
type WatchChanged struct {
	Name     string
	Watching bool
	Error    string
}

// RunFinished ends run Run. Err is empty on success; Cancelled says the run
// was stopped for a queued request (it observed nothing).
type RunFinished struct {
	Name        string
	Run         int64
	Err         string
	Diagnostics string
	Cancelled   bool
}

// ClusterFailed says the provider failed to finish a new cluster after the
// run that made it had ended: its services answered first (the cluster's
// step ends when its API answers; kind then installs a storage class and
// exports a kubeconfig). Err says what failed.
type ClusterFailed struct {
	Name string
	Err  string
}

// Logged is a line of progress or output. It changes no state; it goes to
// subscribers in order with the state changes.
type Logged struct {
	Name    string
	Run     int64
	Step    string
	Service string
	Level   api.Level
	Source  api.Source
	Message string
}

func (a UpRequested) envName() string      { return a.Name }
func (a RebuildRequested) envName() string { return a.Name }
func (a DownRequested) envName() string    { return a.Name }
func (a Recovered) envName() string        { return a.Name }
func (a Discovered) envName() string       { return a.Name }
func (a Forgotten) envName() string        { return a.Name }
func (a StepStarted) envName() string      { return a.Name }
func (a StepEnded) envName() string        { return a.Name }
func (a ClusterObserved) envName() string  { return a.Name }
func (a ServicesDeclared) envName() string { return a.Name }
func (a ImageBuilt) envName() string       { return a.Name }
func (a ServiceDeployed) envName() string  { return a.Name }
func (a ServiceReady) envName() string     { return a.Name }
func (a FindingsUpdated) envName() string  { return a.Name }
func (a WatchChanged) envName() string     { return a.Name }
func (a RunFinished) envName() string      { return a.Name }
func (a ClusterFailed) envName() string    { return a.Name }
func (a WatchRequested) envName() string   { return a.Name }
func (a RebuildRecorded) envName() string  { return a.Name }
func (a Logged) envName() string           { return a.Name }

// reduce applies a to s at time now and says whether the environment
// changed (and so must be published and persisted).
func reduce(s *State, a Action, now time.Time) bool {
	name := a.envName()
	e := s.Envs[name]
	switch a := a.(type) {
	case UpRequested:
		if e == nil {
			e = &api.Environment{Name: name, Status: api.EnvStatus{Phase: api.PhasePending, CreatedAt: now}}
			s.Envs[name] = e
		}
		e.Spec = a.Spec
		e.Generation++
		enqueue(s, e, api.Request{Kind: api.RunUp, Generation: e.Generation, Reason: a.Reason, At: now}, now)
	case RebuildRequested:
		if e == nil {
			return false
		}
		e.Generation++
		enqueue(s, e, api.Request{Kind: api.RunRebuild, Generation: e.Generation, Services: slices.Clone(a.Services), Reason: a.Reason, At: now, Changed: a.Changed,
			Live: a.Live, Files: slices.Clone(a.Files)}, now)
	case DownRequested:
		if e == nil {
			// Not known here (never created, or made before the state was
			// lost): the delete still looks for its cluster and files, so a
			// down of anything does what it can and says what it removed.
			e = &api.Environment{Name: name, Status: api.EnvStatus{Phase: api.PhaseDeleting, CreatedAt: now,
				Message: "not known to this daemon: looking for its cluster"}}
			s.Envs[name] = e
		}
		e.Generation++
		enqueue(s, e, api.Request{Kind: api.RunDelete, Generation: e.Generation, Reason: a.Reason, At: now}, now)
	case Recovered:
		if e == nil {
			return false
		}
		if e.Status.Run.Active() && e.Status.Run.ID > a.LastRun {
			return false // started by this daemon since
		}
		if !recoverEnv(s, e, now) {
			return false
		}
	case Discovered:
		if e != nil {
			// What the daemon recorded wins over the cluster's metadata,
			// except facts only the cluster knows.
			setIf(&e.Status.Kubeconfig, a.Kubeconfig)
			if e.Spec.Dir == "" {
				e.Spec = a.Spec
			}
			if a.Stopped && !e.Status.Run.Active() && e.Status.Queued == nil {
				e.Status.Phase, e.Status.Message = api.PhaseStopped, stoppedMessage(a.Start)
			}
			break
		}
		e = &api.Environment{Name: name, Spec: a.Spec, Status: api.EnvStatus{
			Phase: api.PhaseUnknown, Message: "rediscovered from its cluster",
			Kubeconfig: a.Kubeconfig, Namespace: a.Spec.Project, CreatedAt: a.Created,
		}}
		if e.Status.CreatedAt.IsZero() {
			e.Status.CreatedAt = now
		}
		s.Envs[name] = e
		if a.Stopped {
			e.Status.Phase, e.Status.Message = api.PhaseStopped, stoppedMessage(a.Start)
			break
		}
		enqueue(s, e, api.Request{Kind: api.RunResume, Generation: e.Generation, Reason: "rediscovered after a daemon restart", At: now}, now)
	case Forgotten:
		if e == nil || e.Status.Run.Active() {
			return false
		}
		delete(s.Envs, name)
		return true
	case RunFinished:
		if e == nil || e.Status.Run == nil || e.Status.Run.ID != a.Run || !e.Status.Run.Active() {
			return false
		}
		if finishRun(s, e, a, now) {
			delete(s.Envs, name)
			return true
		}
	case ClusterFailed:
		if e == nil || e.Status.Run.Active() {
			// A later run reports its own outcome.
			return false
		}
		e.Status.Phase = api.PhaseFailed
		e.Status.Message = a.Err + " (after its services answered; run `devctl up` to make the cluster again)"
	case Logged:
		return false
	case WatchRequested:
		if e == nil || e.Spec.Watch == a.Watch {
			return false
		}
		e.Spec.Watch = a.Watch
	case RebuildRecorded:
		if e == nil {
			return false
		}
		e.Status.Rebuilds = appendRebuild(e.Status.Rebuilds, a.Rebuild)
		e.Status.RebuildStats = api.Stats(e.Status.Rebuilds)
	case StepStarted, StepEnded, ClusterObserved, ServicesDeclared, ImageBuilt, ServiceDeployed, ServiceReady, FindingsUpdated, WatchChanged, MetricsObserved:
		if e == nil || !observe(e, a.(observation)) {
			return false
		}
	}
	e.Status.UpdatedAt = now
	return true
}

// observation is an Action that records what a run observed.
//
//sumtype:decl
type observation interface {
	Action
	observation()
}

func (StepStarted) observation()      {}
func (StepEnded) observation()        {}
func (ClusterObserved) observation()  {}
func (ServicesDeclared) observation() {}
func (ImageBuilt) observation()       {}
func (ServiceDeployed) observation()  {}
func (ServiceReady) observation()     {}
func (FindingsUpdated) observation()  {}
func (WatchChanged) observation()     {}

// observe applies an observation to e and says whether it applied.
func observe(e *api.Environment, a observation) bool {
	run := e.Status.Run
	switch a := a.(type) {
	case StepStarted:
		if run == nil || run.ID != a.Run {
			return false
		}
		run.Steps = append(run.Steps, api.Step{Name: a.Step, Status: api.StepRunning, Started: a.At})
		if a.Phase != "" && run.Request.Kind != api.RunRebuild {
			e.Status.Phase = a.Phase
		}
	case StepEnded:
		if run == nil || run.ID != a.Run {
			return false
		}
		for i := len(run.Steps) - 1; i >= 0; i-- {
			st := &run.Steps[i]
			if st.Name == a.Step && st.Status == api.StepRunning {
				st.Status, st.Detail, st.Duration = a.Status, a.Detail, a.At.Sub(st.Started)
				break
			}
		}
	case ClusterObserved:
		setIf(&e.Status.Kubeconfig, a.Kubeconfig)
		setIf(&e.Status.Namespace, a.Namespace)
	case ServicesDeclared:
		out := make([]api.ServiceStatus, 0, len(a.Services))
		for _, s := range a.Services {
			if old := e.Status.Service(s.Name); old != nil {
				port := s.Port
				s = *old
				s.Port = port
			}
			out = append(out, s)
		}
		e.Status.Services = out
	case ImageBuilt:
		s := e.Status.Service(a.Service)
		if s == nil {
			return false
		}
		s.DesiredImage = a.Image
	case ServiceDeployed:
		s := e.Status.Service(a.Service)
		if s == nil {
			return false
		}
		s.Image, s.ChartDigest, s.ValuesDigest, s.Revision = a.Image, a.ChartDigest, a.ValuesDigest, a.Revision
		s.Secrets, s.Live = a.Secrets, a.Live
	case ServiceReady:
		s := e.Status.Service(a.Service)
		if s == nil {
			return false
		}
		s.Ready = a.Ready
		if a.URL != "" {
			s.URL = a.URL
		}
	case MetricsObserved:
		s := e.Status.Service(a.Service)
		if s == nil {
			return false
		}
		s.RED = a.RED
	case FindingsUpdated:
		e.Status.Findings = slices.Clone(a.Findings)
	case WatchChanged:
		if e.Status.Watching == a.Watching && e.Status.WatchError == a.Error {
			return false
		}
		e.Status.Watching, e.Status.WatchError = a.Watching, a.Error
	}
	return true
}

// enqueue starts req when nothing runs for e, and otherwise queues it in
// e's one slot, merged with what is queued there: the latest request wins.
func enqueue(s *State, e *api.Environment, req api.Request, now time.Time) {
	if !e.Status.Run.Active() {
		start(s, e, req, now)
		return
	}
	e.Status.Queued = mergeRequests(e.Status.Queued, req)
}

// mergeRequests folds r into the queued request q. A delete or an up
// replaces whatever was queued; a rebuild joins a queued rebuild (the union
// of their services), is covered by a queued up, and never revives an
// environment queued for deletion; a resume is covered by anything.
func mergeRequests(q *api.Request, r api.Request) *api.Request {
	if q == nil {
		return &r
	}
	switch r.Kind {
	case api.RunUp, api.RunDelete:
		return &r
	case api.RunRebuild:
		switch q.Kind {
		case api.RunUp:
			q.Generation, q.At, q.Changed = r.Generation, r.At, earliest(q.Changed, r.Changed)
			return q
		case api.RunDelete:
			return q
		case api.RunRebuild:
			for _, svc := range r.Services {
				if !slices.Contains(q.Services, svc) {
					q.Services = append(q.Services, svc)
				}
			}
			q.Generation, q.Reason, q.At, q.Changed = r.Generation, r.Reason, r.At, earliest(q.Changed, r.Changed)
			// Two live updates are one; with an image rebuild, the image
			// carries every change.
			if q.Live && r.Live {
				q.Files = mergeFiles(q.Files, r.Files)
			} else {
				q.Live, q.Files = false, nil
			}
			return q
		case api.RunResume:
			return &r
		}
	case api.RunResume:
		return q
	}
	return &r
}

// start begins a run of req. A rebuild of an environment that is not ready
// (its last up failed, or never finished) becomes a full up.
func start(s *State, e *api.Environment, req api.Request, now time.Time) {
	if req.Kind == api.RunRebuild && e.Status.Phase != api.PhaseReady {
		req.Kind, req.Services, req.Live, req.Files = api.RunUp, nil, false, nil
	}
	s.LastRun++
	e.Status.Run = &api.Run{ID: s.LastRun, Request: req, Started: now}
	e.Status.Queued = nil
	switch req.Kind {
	case api.RunUp:
		e.Status.Phase, e.Status.Message, e.Status.Diagnostics = api.PhasePending, "", ""
	case api.RunDelete:
		e.Status.Phase, e.Status.Message = api.PhaseDeleting, ""
	case api.RunRebuild, api.RunResume:
	}
}

// finishRun ends e's run as a says, starts the queued request if any, and
// reports whether e is gone (a delete succeeded with nothing queued).
func finishRun(s *State, e *api.Environment, a RunFinished, now time.Time) (gone bool) {
	run := e.Status.Run
	run.Ended, run.Error = now, a.Err
	for i := range run.Steps {
		if st := &run.Steps[i]; st.Status == api.StepRunning {
			st.Status, st.Duration = api.StepFailed, now.Sub(st.Started)
			if a.Cancelled {
				st.Status, st.Detail = api.StepSkipped, "cancelled"
			}
		}
	}
	if !a.Cancelled {
		e.Status.ObservedGeneration = max(e.Status.ObservedGeneration, run.Request.Generation)
		settle(e, run, a)
	}
	if run.Request.Kind == api.RunDelete && !a.Cancelled && e.Status.Queued == nil && a.Err != "" && unknownEnv(e) {
		// A failed down of a name this daemon knew nothing of leaves no
		// entry behind; the run's failed step told the caller why.
		return true
	}
	if run.Request.Kind == api.RunDelete && a.Err == "" && !a.Cancelled {
		if e.Status.Queued == nil {
			return true
		}
		// Deleted, and already asked for again: start from scratch.
		e.Status = api.EnvStatus{Phase: api.PhasePending, CreatedAt: now, Queued: e.Status.Queued, Run: run}
	}
	if q := e.Status.Queued; q != nil {
		start(s, e, *q, now)
	}
	return false
}

// stoppedMessage says how to bring back an environment whose cluster does
// not answer.
func stoppedMessage(start string) string {
	return "the cluster does not answer (its node is stopped?): start it with `" + start + "`, then run `devctl up`; or delete it with `devctl down`"
}

// unknownEnv says e holds nothing but a delete: no spec, no cluster.
func unknownEnv(e *api.Environment) bool {
	return e.Spec.Dir == "" && e.Spec.Project == "" && e.Status.Kubeconfig == ""
}

// settle sets e's phase after run ended as a says.
func settle(e *api.Environment, run *api.Run, a RunFinished) {
	st := &e.Status
	switch run.Request.Kind {
	case api.RunUp:
		if a.Err == "" {
			st.Phase, st.Message, st.Diagnostics = api.PhaseReady, "", ""
		} else {
			st.Phase, st.Message, st.Diagnostics = api.PhaseFailed, a.Err, a.Diagnostics
		}
	case api.RunRebuild:
		// A failed rebuild leaves the previous version serving.
		if a.Err == "" {
			st.Message = ""
		} else {
			st.Message = "last rebuild failed: " + a.Err + " (the previous version keeps serving)"
		}
	case api.RunResume:
		if a.Err == "" {
			st.Phase, st.Message = api.PhaseReady, "resumed after a daemon restart"
		} else {
			st.Phase, st.Message = api.PhaseUnknown, "could not resume after a daemon restart: "+a.Err+" (run `devctl up` again)"
		}
	case api.RunDelete:
		if a.Err != "" {
			st.Phase, st.Message = api.PhaseFailed, "delete failed: "+a.Err+" (run `devctl down` again)"
		}
	}
}

// recoverEnv restarts what a previous daemon left unfinished in e: an
// interrupted run is ended and asked for again (a rebuild as a full up,
// since what it had done is unknown), a queued request is started, and a
// ready environment is resumed.
func recoverEnv(s *State, e *api.Environment, now time.Time) bool {
	if run := e.Status.Run; run.Active() {
		kind := run.Request.Kind
		if kind == api.RunRebuild {
			kind = api.RunUp
		}
		run.Ended, run.Error = now, "interrupted: the daemon stopped during this run"
		var steps []string
		for i := range run.Steps {
			if st := &run.Steps[i]; st.Status == api.StepRunning {
				st.Status, st.Detail = api.StepFailed, "interrupted"
				steps = append(steps, st.Name)
			}
		}
		interrupted := string(run.Request.Kind)
		if len(steps) > 0 {
			interrupted += " in step " + strings.Join(steps, " and ")
		}
		req := run.Request
		req.Kind, req.Reason, req.At, req.Recovered = kind, "the daemon restarted during a "+string(run.Request.Kind), now, true
		req.Interrupted = interrupted
		if kind == api.RunUp {
			req.Services, req.Live, req.Files = nil, false, nil
		}
		if e.Status.Queued != nil {
			req = *mergeRequests(&req, *e.Status.Queued)
			req.Recovered, req.Interrupted = true, interrupted
			e.Status.Queued = nil
		}
		start(s, e, req, now)
		return true
	}
	if q := e.Status.Queued; q != nil {
		start(s, e, *q, now)
		return true
	}
	if e.Status.Phase == api.PhaseReady || e.Status.Phase == api.PhaseUnknown {
		start(s, e, api.Request{Kind: api.RunResume, Generation: e.Status.ObservedGeneration, Reason: "the daemon restarted", At: now}, now)
		return true
	}
	return false
}

func setIf(dst *string, v string) {
	if v != "" {
		*dst = v
	}
}

func copyEnv(e *api.Environment) api.Environment {
	c := *e
	c.Spec.Labels = maps.Clone(e.Spec.Labels)
	c.Status.Services = slices.Clone(e.Status.Services)
	c.Status.Findings = slices.Clone(e.Status.Findings)
	c.Status.Rebuilds = slices.Clone(e.Status.Rebuilds)
	c.Status.RebuildStats = slices.Clone(e.Status.RebuildStats)
	if r := e.Status.Run; r != nil {
		rc := *r
		rc.Steps = slices.Clone(r.Steps)
		rc.Request.Services = slices.Clone(r.Request.Services)
		rc.Request.Files = slices.Clone(r.Request.Files)
		c.Status.Run = &rc
	}
	if q := e.Status.Queued; q != nil {
		qc := *q
		qc.Services = slices.Clone(q.Services)
		qc.Files = slices.Clone(q.Files)
		c.Status.Queued = &qc
	}
	return c
}

type storeError string

func (e storeError) Error() string { return string(e) }

const errStoreClosed = storeError("daemon state store is closed")
