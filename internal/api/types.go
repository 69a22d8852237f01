// Package api holds the types of the devctl daemon's HTTP API and the typed
// client that the CLI and the TUI use. The daemon is the only server.
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
	PhaseDeleted    Phase = "Deleted"
	// PhaseUnknown is an environment rediscovered in a cluster whose state the
	// daemon has not checked yet.
	PhaseUnknown Phase = "Unknown"
)

// Settled reports whether p is a phase that no running step will change.
func (p Phase) Settled() bool {
	switch p {
	case PhaseReady, PhaseFailed, PhaseDeleted, PhaseUnknown:
		return true
	default:
		return false
	}
}

// Environment is one ephemeral environment: a cluster for a project's branch
// with the project's services installed in it.
type Environment struct {
	Name       string    `json:"name"`
	Provider   string    `json:"provider"`
	Project    string    `json:"project,omitempty"`
	Repo       string    `json:"repo,omitempty"`
	Branch     string    `json:"branch,omitempty"`
	Dir        string    `json:"dir,omitempty"`
	Kubeconfig string    `json:"kubeconfig,omitempty"`
	Namespace  string    `json:"namespace,omitempty"`
	NodeImage  string    `json:"nodeImage,omitempty"`
	Phase      Phase     `json:"phase"`
	Message    string    `json:"message,omitempty"`
	Services   []Service `json:"services,omitempty"`
	// Steps are the timed phases of the last `up`, in order.
	Steps []Step `json:"steps,omitempty"`
	// Findings are the policy findings of the last render.
	Findings []Finding `json:"findings,omitempty"`
	// Diagnostics holds what to read when the environment failed: pod events
	// and the last log lines of the services.
	Diagnostics string    `json:"diagnostics,omitempty"`
	Generation  int64     `json:"generation"`
	CreatedAt   time.Time `json:"createdAt"`
	UpdatedAt   time.Time `json:"updatedAt"`
}

// Service is one service of an environment.
type Service struct {
	Name     string `json:"name"`
	Image    string `json:"image,omitempty"`
	Port     int    `json:"port"`
	URL      string `json:"url,omitempty"`
	Ready    bool   `json:"ready"`
	Revision int    `json:"revision,omitempty"`
}

// StepStatus says how a step ended.
type StepStatus string

// Step outcomes.
const (
	StepRunning StepStatus = "running"
	StepDone    StepStatus = "done"
	StepSkipped StepStatus = "skipped"
	StepFailed  StepStatus = "failed"
)

// Step is one timed phase of bringing an environment up (cluster, build,
// deliver, policy, deploy, ready).
type Step struct {
	Name     string        `json:"name"`
	Status   StepStatus    `json:"status"`
	Detail   string        `json:"detail,omitempty"`
	Started  time.Time     `json:"started"`
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
}

// UpRequest asks the daemon to bring an environment up (create it, or update
// it when it exists).
type UpRequest struct {
	// Dir is the absolute directory of the project (where devctl.yaml is,
	// or the repository root when there is none).
	Dir string `json:"dir"`
	// Config is the path of devctl.yaml; empty means defaults detected in Dir.
	Config string `json:"config,omitempty"`
	// Name overrides the environment name derived from repo and branch.
	Name      string `json:"name,omitempty"`
	Repo      string `json:"repo"`
	Branch    string `json:"branch"`
	NodeImage string `json:"nodeImage,omitempty"`
}

// Health is what GET /v1/health answers.
type Health struct {
	Version   string    `json:"version"`
	PID       int       `json:"pid"`
	StartedAt time.Time `json:"startedAt"`
	Socket    string    `json:"socket"`
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
	// EventLog carries a line of progress or build output.
	EventLog EventType = "log"
)

// Event is one item of the daemon's event stream (GET /v1/events), sent as
// newline-delimited JSON.
type Event struct {
	Seq         uint64       `json:"seq"`
	Time        time.Time    `json:"time"`
	Type        EventType    `json:"type"`
	Env         string       `json:"env"`
	Environment *Environment `json:"environment,omitempty"`
	Line        string       `json:"line,omitempty"`
}

// Error is the body of every non-2xx answer.
type Error struct {
	Message string `json:"message"`
	// Code is a stable machine-readable reason, e.g. "not_found".
	Code string `json:"code,omitempty"`
}

// Error codes.
const (
	CodeNotFound   = "not_found"
	CodeBadRequest = "bad_request"
	CodeConflict   = "conflict"
	CodeInternal   = "internal"
)
