// Package api holds the types of the devctl daemon's HTTP API and the typed
// client that the CLI and the TUI use. The daemon is the only server.
//
// An Environment has the shape of a Kubernetes object: a Spec (what the user
// asked for), a Generation that moves with every request, and a Status that
// says what the daemon observed, including ObservedGeneration, the
// generation the status reflects.
package api

import (
	"time"
)

// Version is the API version prefix of every path.
const Version = "v1"

// Phase is where an environment is in its life.
type Phase string

// The phases an environment moves through. Ready and Failed are settled;
// the others are in progress.
const (
	PhasePending    Phase = "Pending"
	PhaseCreating   Phase = "Creating"
	PhaseBuilding   Phase = "Building"
	PhaseDelivering Phase = "Delivering"
	PhaseDeploying  Phase = "Deploying"
	PhaseWaiting    Phase = "Waiting"
	PhaseReady      Phase = "Ready"
	PhaseFailed     Phase = "Failed"
	PhaseDeleting   Phase = "Deleting"
	// PhaseUnknown is an environment rediscovered in a cluster whose state the
	// daemon has not checked yet, or could not check.
	PhaseUnknown Phase = "Unknown"
	// PhaseStopped is an environment whose cluster exists but does not
	// answer (its node containers are stopped); Message says how to start it.
	PhaseStopped Phase = "Stopped"
)

// Settled reports whether p is a phase that no running step will change.
func (p Phase) Settled() bool {
	switch p {
	case PhaseReady, PhaseFailed, PhaseUnknown, PhaseStopped:
		return true
	case PhasePending, PhaseCreating, PhaseBuilding, PhaseDelivering, PhaseDeploying, PhaseWaiting, PhaseDeleting:
		return false
	}
	return false
}

// Provider names.
const (
	ProviderKind     = "kind"
	ProviderVCluster = "vcluster"
)

// EnvSpec is what an environment should be: the one description of an
// environment, from the HTTP request down to the provider that makes it.
type EnvSpec struct {
	// Provider is the backend that makes the cluster: "kind" or "vcluster".
	Provider string `json:"provider"`
	// Project is the project name from devctl.yaml; its services run in the
	// namespace of the same name.
	Project string `json:"project,omitempty"`
	// Repo and Branch name the git repository and branch the environment is for.
	Repo   string `json:"repo,omitempty"`
	Branch string `json:"branch,omitempty"`
	// Dir is the absolute project directory (where devctl.yaml is, or the
	// repository root when there is none).
	Dir string `json:"dir"`
	// Config is the absolute path of devctl.yaml; empty means defaults
	// detected in Dir.
	Config string `json:"config,omitempty"`
	// NodeImage is the kind node image; empty is the provider's default.
	NodeImage string `json:"nodeImage,omitempty"`
	// Watch asks the daemon to rebuild when the sources change.
	Watch bool `json:"watch"`
	// Labels are recorded with the environment (team, owner, cost centre).
	// The vcluster backend also puts every label whose key starts with
	// "devctl.dev/" on the host namespace it makes (previews record repo, pr,
	// sha, created-by and expires-at there).
	Labels map[string]string `json:"labels,omitempty"`
	// Host is the cluster a vcluster environment runs in. Nil means devctl's
	// own local kind host cluster, which it creates once and shares between
	// environments; a CI preview passes its host cluster here. kind
	// environments ignore it.
	Host *HostCluster `json:"host,omitempty"`
}

// HostCluster names a Kubernetes cluster through a kubeconfig file and a
// context in it.
type HostCluster struct {
	// Kubeconfig is the path of the kubeconfig file; empty is the default
	// loading rules ($KUBECONFIG, then ~/.kube/config).
	Kubeconfig string `json:"kubeconfig,omitempty"`
	// Context is the context to use; empty is the file's current context.
	Context string `json:"context,omitempty"`
}

// Environment is one ephemeral environment: a cluster for a project's branch
// with the project's services installed in it.
type Environment struct {
	Name string `json:"name"`
	// Generation moves with every request that changes what the environment
	// should be (an up, a rebuild, a delete).
	Generation int64     `json:"generation"`
	Spec       EnvSpec   `json:"spec"`
	Status     EnvStatus `json:"status"`
}

// EnvStatus is what the daemon observed of an environment.
type EnvStatus struct {
	Phase   Phase  `json:"phase"`
	Message string `json:"message,omitempty"`
	// ObservedGeneration is the generation of the last run that finished.
	ObservedGeneration int64  `json:"observedGeneration"`
	Kubeconfig         string `json:"kubeconfig,omitempty"`
	Namespace          string `json:"namespace,omitempty"`
	// Services are the observed states of the project's services.
	Services []ServiceStatus `json:"services,omitempty"`
	// Run is the run under way, or the last one.
	Run *Run `json:"run,omitempty"`
	// Queued is the request that runs when Run ends (the latest wins).
	Queued *Request `json:"queued,omitempty"`
	// Findings are the policy findings of the last render.
	Findings []Finding `json:"findings,omitempty"`
	// Diagnostics holds what to read when the environment failed: pod events
	// and the last log lines of the services.
	Diagnostics string `json:"diagnostics,omitempty"`
	// Watching says whether the daemon watches the sources for changes.
	Watching bool `json:"watching"`
	// WatchError says why the sources are not watched although asked to be
	// (an inotify limit too low, with the command that raises it).
	WatchError string `json:"watchError,omitempty"`
	// Rebuilds are the last rebuilds and live updates, oldest first (a
	// bounded history).
	Rebuilds []Rebuild `json:"rebuilds,omitempty"`
	// RebuildStats are the save → serving percentiles of Rebuilds per mode.
	RebuildStats []RebuildStats `json:"rebuildStats,omitempty"`
	CreatedAt    time.Time      `json:"createdAt"`
	UpdatedAt    time.Time      `json:"updatedAt"`
}

// Service returns the status of the named service, or nil.
func (s *EnvStatus) Service(name string) *ServiceStatus {
	for i := range s.Services {
		if s.Services[i].Name == name {
			return &s.Services[i]
		}
	}
	return nil
}

// ServiceStatus is one service of an environment as observed.
type ServiceStatus struct {
	Name string `json:"name"`
	Port int    `json:"port"`
	// DesiredImage is the image the last build produced; Image is the one
	// delivered and deployed.
	DesiredImage string `json:"desiredImage,omitempty"`
	Image        string `json:"image,omitempty"`
	// ChartDigest and ValuesDigest identify what the deployed release was
	// rendered from; Revision is its Helm revision.
	ChartDigest  string `json:"chartDigest,omitempty"`
	ValuesDigest string `json:"valuesDigest,omitempty"`
	Revision     int    `json:"revision,omitempty"`
	// Live says the deployed release runs the service under devctl's
	// live-update agent (a watched environment; see docs/live-update.md).
	Live  bool   `json:"live,omitempty"`
	URL   string `json:"url,omitempty"`
	Ready bool   `json:"ready"`
	// RED is what the daemon's scrapes of the service's /metrics say; nil
	// when it exposes no standard HTTP metrics.
	RED *RED `json:"red,omitempty"`
	// Secrets are the Secrets the deployed release injects into the
	// service's containers (its dependencies' connection Secrets, its
	// ExternalSecret's target): names only, never a value.
	Secrets []SecretRef `json:"secrets,omitempty"`
}

// SecretRef is a Secret a service's containers read, by name.
type SecretRef struct {
	Name string `json:"name"`
	// Env are the env vars set from single keys of the Secret.
	Env []string `json:"env,omitempty"`
	// AllKeys says every key of the Secret becomes an env var (envFrom).
	AllKeys bool `json:"allKeys,omitempty"`
}

// RED is a service's request rate, error ratio and latency percentiles
// over the last minute of scrapes (internal/metrics).
type RED struct {
	// At is when the newest scrape was taken; Window is the time covered.
	At            time.Time     `json:"at"`
	Window        time.Duration `json:"window"`
	Requests      float64       `json:"requests"`
	RatePerSecond float64       `json:"ratePerSecond"`
	ErrorRatio    float64       `json:"errorRatio"`
	// Percentiles are absent without a latency histogram or requests.
	P50 *time.Duration `json:"p50,omitempty"`
	P95 *time.Duration `json:"p95,omitempty"`
	P99 *time.Duration `json:"p99,omitempty"`
}

// RunKind says what a run does.
type RunKind string

// Run kinds. An up creates or updates everything; a rebuild builds and
// deploys some services of a ready environment; a resume re-attaches a
// ready environment after a daemon restart; a delete removes it.
const (
	RunUp      RunKind = "up"
	RunRebuild RunKind = "rebuild"
	RunResume  RunKind = "resume"
	RunDelete  RunKind = "delete"
)

// Request is a run asked for and not started yet.
type Request struct {
	Kind       RunKind `json:"kind"`
	Generation int64   `json:"generation"`
	// Services limits a rebuild to these services.
	Services []string `json:"services,omitempty"`
	// Reason says who asked: "devctl up", "3 files changed", ...
	Reason string    `json:"reason,omitempty"`
	At     time.Time `json:"at"`
	// Live asks for a live update of Services (Files synced into the
	// running containers) instead of an image rebuild.
	Live bool `json:"live,omitempty"`
	// Files are the changed files of a live update, relative to the
	// project folder.
	Files []string `json:"files,omitempty"`
	// Changed is when the first source change this request answers was
	// seen (zero when no change asked for it): save → serving starts here.
	Changed time.Time `json:"changed,omitzero"`
	// Recovered marks a run started again after the daemon stopped during
	// it: nothing the interrupted run may have done half (a cluster, a
	// delivery) is trusted.
	Recovered bool `json:"recovered,omitempty"`
	// Interrupted says, on a recovered run, what the daemon was doing when
	// it stopped ("up in step build").
	Interrupted string `json:"interrupted,omitempty"`
}

// Run is one execution of a list of steps for an environment.
type Run struct {
	ID      int64     `json:"id"`
	Request Request   `json:"request"`
	Started time.Time `json:"started"`
	// Ended is zero while the run is under way.
	Ended time.Time `json:"ended,omitzero"`
	Steps []Step    `json:"steps,omitempty"`
	// Error is why the run failed; empty when it succeeded or runs.
	Error string `json:"error,omitempty"`
}

// Active reports whether the run is under way.
func (r *Run) Active() bool { return r != nil && r.Ended.IsZero() }

// StepStatus says how a step ended.
type StepStatus string

// Step outcomes.
const (
	StepRunning StepStatus = "running"
	StepDone    StepStatus = "done"
	StepSkipped StepStatus = "skipped"
	StepFailed  StepStatus = "failed"
)

// Step is one timed step of a run (config, cluster, build, deliver, render,
// policy, deploy, ready, delete).
type Step struct {
	Name     string        `json:"name"`
	Status   StepStatus    `json:"status"`
	Detail   string        `json:"detail,omitempty"`
	Started  time.Time     `json:"started"`
	Duration time.Duration `json:"duration"`
}

// Rebuild is one finished rebuild or live update of some services, with the
// time each phase took and the time from the first saved change to the new
// version serving.
type Rebuild struct {
	Run      int64    `json:"run"`
	Services []string `json:"services"`
	// Mode is "live" (files synced into the running container) or "image"
	// (a new image built, delivered and rolled out).
	Mode string `json:"mode"`
	// Reason says what triggered it: "main.go changed", "3 files changed".
	Reason  string    `json:"reason,omitempty"`
	Started time.Time `json:"started"`
	// Phases are detect, build, deliver, update and ready, in order.
	Phases []PhaseTime `json:"phases,omitempty"`
	// SaveToServing is from the first change seen to the new version
	// answering; zero when the rebuild failed.
	SaveToServing time.Duration `json:"saveToServing"`
	// Error is the failure (compiler output with file:line); the previous
	// version keeps serving.
	Error string `json:"error,omitempty"`
}

// PhaseTime is how long one phase of a rebuild took.
type PhaseTime struct {
	Name     string        `json:"name"`
	Duration time.Duration `json:"duration"`
}

// Finding is a policy finding as the daemon reports it.
type Finding struct {
	Rule     string `json:"rule"`
	Severity string `json:"severity"`
	Object   string `json:"object"`
	Path     string `json:"path,omitempty"`
	Source   string `json:"source,omitempty"`
	Message  string `json:"message"`
	Fix      string `json:"fix,omitempty"`
	Waived   bool   `json:"waived,omitempty"`
	// Waiver says who waived the finding and until when (set when Waived).
	Waiver *Waiver `json:"waiver,omitempty"`
}

// Waiver is the waiver a finding is waived by.
type Waiver struct {
	Approver string    `json:"approver"`
	Reason   string    `json:"reason,omitempty"`
	Ticket   string    `json:"ticket,omitempty"`
	Expires  time.Time `json:"expires,omitzero"`
}

// ResourceKind is the kind of a resource GET /v1/envs/{name}/resources lists.
type ResourceKind string

// Resource kinds.
const (
	KindDeployment ResourceKind = "Deployment"
	KindPod        ResourceKind = "Pod"
	KindService    ResourceKind = "Service"
)

// Resource is one Deployment, Pod or Service of an environment, with its
// readiness and, when it is not ready, the real reason: a container's
// waiting or terminated reason, a failing probe, the scheduler's message or
// the last warning event.
type Resource struct {
	Kind      ResourceKind `json:"kind"`
	Namespace string       `json:"namespace"`
	Name      string       `json:"name"`
	// Service is the release (app.kubernetes.io/instance) the object belongs to.
	Service string `json:"service,omitempty"`
	// Ready is "ready/desired": replicas, containers or endpoints.
	Ready string `json:"ready"`
	OK    bool   `json:"ok"`
	// Status is a short state: Running, CrashLoopBackOff, ClusterIP, ...
	Status   string    `json:"status"`
	Restarts int32     `json:"restarts,omitempty"`
	Reason   string    `json:"reason,omitempty"`
	Created  time.Time `json:"created,omitzero"`
}

// Resources is what GET /v1/envs/{name}/resources answers.
type Resources struct {
	Env        string     `json:"env"`
	Namespaces []string   `json:"namespaces"`
	Items      []Resource `json:"items"`
}

// ProjectRef says where a project is and which branch; the daemon resolves
// it into an environment name and spec.
type ProjectRef struct {
	// Dir is the absolute directory the command ran in (or -C).
	Dir string `json:"dir"`
	// Config is the path of devctl.yaml (-f); empty finds it from Dir.
	Config string `json:"config,omitempty"`
	// Name overrides the environment name derived from repo and branch.
	Name string `json:"name,omitempty"`
	// Branch overrides the git branch of Dir.
	Branch string `json:"branch,omitempty"`
	// NameOnly asks only for the environment name (from git), without
	// loading devctl.yaml: `devctl down` works even when it is broken.
	NameOnly bool `json:"nameOnly,omitempty"`
}

// Resolved is what the daemon made of a ProjectRef.
type Resolved struct {
	Name string  `json:"name"`
	Spec EnvSpec `json:"spec"`
	// Services are the project's service names.
	Services []string `json:"services,omitempty"`
	// Notes are the choices made for a project without devctl.yaml.
	Notes []string `json:"notes,omitempty"`
}

// UpRequest asks the daemon to bring an environment up (create it, or update
// it when it exists).
type UpRequest struct {
	ProjectRef
	// NodeImage is the kind node image (--node-image, DEVCTL_NODE_IMAGE).
	NodeImage string `json:"nodeImage,omitempty"`
	// Watch, when set, says whether to rebuild on source changes; unset
	// keeps the environment's current setting (on for a new one).
	Watch *bool `json:"watch,omitempty"`
	// Provider, when set, overrides devctl.yaml's cluster provider.
	Provider string `json:"provider,omitempty"`
	// Host, when set, is the host cluster of a vcluster environment.
	Host *HostCluster `json:"host,omitempty"`
	// Labels are added to the spec's (a preview's devctl.dev/* labels).
	Labels map[string]string `json:"labels,omitempty"`
}

// WatchRequest is the body of PUT /v1/envs/{name}/watch.
type WatchRequest struct {
	Watch bool `json:"watch"`
}

// Health is what GET /v1/health answers.
type Health struct {
	Version   string    `json:"version"`
	PID       int       `json:"pid"`
	StartedAt time.Time `json:"startedAt"`
	Socket    string    `json:"socket"`
	// StateError is why the daemon could not save its state file last
	// time it tried (the disk full, the folder read-only), or empty. The
	// file keeps the last state saved; the daemon keeps trying.
	StateError string `json:"stateError,omitempty"`
}

// EventType says what an Event carries.
type EventType string

// Event types.
const (
	// EventSnapshot carries the environment as it is when a stream starts.
	EventSnapshot EventType = "snapshot"
	// EventEnv carries an environment after it changed.
	EventEnv EventType = "env"
	// EventDeleted says an environment is gone.
	EventDeleted EventType = "deleted"
	// EventLog carries one line of output: progress, build output, a pod's
	// log, a policy finding.
	EventLog EventType = "log"
)

// Level is the importance of a log event.
type Level string

// Levels.
const (
	LevelDebug Level = "debug"
	LevelInfo  Level = "info"
	LevelWarn  Level = "warn"
	LevelError Level = "error"
)

// Source says where a log event's line comes from.
type Source string

// Sources.
const (
	// SourceProgress is devctl's own progress (what a step is doing).
	SourceProgress Source = "progress"
	// SourceBuild is compiler and image build output.
	SourceBuild Source = "build"
	// SourcePod is a line a service's pod printed.
	SourcePod Source = "pod"
	// SourcePolicy is a policy finding.
	SourcePolicy Source = "policy"
	// SourceConfig is a note about the project's configuration.
	SourceConfig Source = "config"
)

// Event is one item of the daemon's event stream (GET /v1/events), sent as
// newline-delimited JSON.
type Event struct {
	Seq  uint64    `json:"seq"`
	Time time.Time `json:"time"`
	Type EventType `json:"type"`
	Env  string    `json:"env"`
	// Environment is set for snapshot and env events.
	Environment *Environment `json:"environment,omitempty"`
	// The fields of a log event.
	Run     int64  `json:"run,omitempty"`
	Step    string `json:"step,omitempty"`
	Service string `json:"service,omitempty"`
	Level   Level  `json:"level,omitempty"`
	Source  Source `json:"source,omitempty"`
	Message string `json:"message,omitempty"`
}

// Error is the body of every non-2xx answer.
type Error struct {
	Message string `json:"message"`
	// Code is a stable machine-readable reason, e.g. "not_found".
	Code string `json:"code,omitempty"`
}

// Error codes.
const (
	CodeNotFound          = "not_found"
	CodeBadRequest        = "bad_request"
	CodeConfigInvalid     = "config_invalid"
	CodeDockerUnavailable = "docker_unavailable"
	CodeConflict          = "conflict"
	CodeInternal          = "internal"
)
