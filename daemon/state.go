package daemon

import (
	"sort"
	"time"

	"github.com/devctl/devctl/internal/api"
)

// State is everything the daemon knows. Only the store's loop reads or
// writes it; everyone else sees copies.
type State struct {
	Envs map[string]*api.Environment `json:"envs"`
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

// Action is a change to State. Actions are plain data; reduce applies them.
type Action interface{ envName() string }

// EnvAccepted records a request to bring an environment up: a new one, or a
// new generation of an existing one.
type EnvAccepted struct{ Env api.Environment }

// EnvDiscovered merges an environment found in a cluster (after a restart)
// or in the state file.
type EnvDiscovered struct{ Env api.Environment }

// PhaseChanged moves an environment to a phase with a message.
type PhaseChanged struct {
	Name    string
	Phase   api.Phase
	Message string
}

// StepStarted records that a timed step began.
type StepStarted struct {
	Name string
	Step string
	At   time.Time
}

// StepEnded records how a timed step ended.
type StepEnded struct {
	Name   string
	Step   string
	Status api.StepStatus
	Detail string
	At     time.Time
}

// EnvInfo updates the facts learnt while bringing an environment up.
type EnvInfo struct {
	Name       string
	Kubeconfig string
	Namespace  string
	Project    string
	NodeImage  string
}

// ServicesUpdated replaces an environment's services.
type ServicesUpdated struct {
	Name     string
	Services []api.Service
}

// ServiceReady updates one service's readiness and URL.
type ServiceReady struct {
	Name    string
	Service string
	Ready   bool
	URL     string
}

// FindingsUpdated replaces an environment's policy findings.
type FindingsUpdated struct {
	Name     string
	Findings []api.Finding
}

// EnvFailed settles an environment as failed.
type EnvFailed struct {
	Name        string
	Err         string
	Diagnostics string
}

// EnvDeleted removes an environment.
type EnvDeleted struct{ Name string }

// LogLine is a line of progress or build output. It changes no state; it
// goes to subscribers in order with the state changes.
type LogLine struct {
	Name string
	Line string
}

func (a EnvAccepted) envName() string     { return a.Env.Name }
func (a EnvDiscovered) envName() string   { return a.Env.Name }
func (a PhaseChanged) envName() string    { return a.Name }
func (a StepStarted) envName() string     { return a.Name }
func (a StepEnded) envName() string       { return a.Name }
func (a EnvInfo) envName() string         { return a.Name }
func (a ServicesUpdated) envName() string { return a.Name }
func (a ServiceReady) envName() string    { return a.Name }
func (a FindingsUpdated) envName() string { return a.Name }
func (a EnvFailed) envName() string       { return a.Name }
func (a EnvDeleted) envName() string      { return a.Name }
func (a LogLine) envName() string         { return a.Name }

// reduce applies a to s at time now and says whether the environment
// changed (and so must be published and persisted).
func reduce(s *State, a Action, now time.Time) bool {
	switch a := a.(type) {
	case EnvAccepted:
		e := copyEnv(&a.Env)
		if old, ok := s.Envs[e.Name]; ok {
			e.Generation = old.Generation + 1
			e.CreatedAt = old.CreatedAt
			if e.Kubeconfig == "" {
				e.Kubeconfig = old.Kubeconfig
			}
			if len(e.Services) == 0 {
				e.Services = old.Services
			}
			e.Findings = old.Findings
		} else {
			e.Generation = 1
			e.CreatedAt = now
		}
		e.Phase = api.PhasePending
		e.Message = ""
		e.Diagnostics = ""
		e.Steps = nil
		e.UpdatedAt = now
		s.Envs[e.Name] = &e
		return true
	case EnvDiscovered:
		if old, ok := s.Envs[a.Env.Name]; ok {
			// What the daemon recorded wins over what a cluster label says,
			// except facts only the cluster knows.
			if old.Kubeconfig == "" {
				old.Kubeconfig = a.Env.Kubeconfig
			}
			if old.Provider == "" {
				old.Provider = a.Env.Provider
			}
			old.UpdatedAt = now
			return true
		}
		e := copyEnv(&a.Env)
		if e.CreatedAt.IsZero() {
			e.CreatedAt = now
		}
		e.UpdatedAt = now
		s.Envs[e.Name] = &e
		return true
	}
	e, ok := s.Envs[a.envName()]
	if !ok {
		return false
	}
	switch a := a.(type) {
	case PhaseChanged:
		e.Phase = a.Phase
		e.Message = a.Message
	case StepStarted:
		e.Steps = append(e.Steps, api.Step{Name: a.Step, Status: api.StepRunning, Started: a.At})
	case StepEnded:
		for i := len(e.Steps) - 1; i >= 0; i-- {
			if e.Steps[i].Name == a.Step && e.Steps[i].Status == api.StepRunning {
				e.Steps[i].Status = a.Status
				e.Steps[i].Detail = a.Detail
				e.Steps[i].Duration = a.At.Sub(e.Steps[i].Started)
				break
			}
		}
	case EnvInfo:
		setIf(&e.Kubeconfig, a.Kubeconfig)
		setIf(&e.Namespace, a.Namespace)
		setIf(&e.Project, a.Project)
		setIf(&e.NodeImage, a.NodeImage)
	case ServicesUpdated:
		e.Services = append([]api.Service(nil), a.Services...)
	case ServiceReady:
		for i := range e.Services {
			if e.Services[i].Name == a.Service {
				e.Services[i].Ready = a.Ready
				if a.URL != "" {
					e.Services[i].URL = a.URL
				}
			}
		}
	case FindingsUpdated:
		e.Findings = append([]api.Finding(nil), a.Findings...)
	case EnvFailed:
		e.Phase = api.PhaseFailed
		e.Message = a.Err
		e.Diagnostics = a.Diagnostics
		for i := range e.Steps {
			if e.Steps[i].Status == api.StepRunning {
				e.Steps[i].Status = api.StepFailed
				e.Steps[i].Duration = now.Sub(e.Steps[i].Started)
			}
		}
	case EnvDeleted:
		delete(s.Envs, a.Name)
		return true
	case LogLine:
		return false
	}
	e.UpdatedAt = now
	return true
}

func setIf(dst *string, v string) {
	if v != "" {
		*dst = v
	}
}

func copyEnv(e *api.Environment) api.Environment {
	c := *e
	c.Services = append([]api.Service(nil), e.Services...)
	c.Steps = append([]api.Step(nil), e.Steps...)
	c.Findings = append([]api.Finding(nil), e.Findings...)
	return c
}

type storeError string

func (e storeError) Error() string { return string(e) }

const errStoreClosed = storeError("daemon state store is closed")
