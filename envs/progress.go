package envs

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/devctl/devctl/envs/internal/providers"
)

// StepState is where a Progress step is in its life.
type StepState int

// Step states.
const (
	StepStarted StepState = iota + 1
	StepDone
	StepFailed
)

func (s StepState) String() string {
	switch s {
	case StepStarted:
		return "started"
	case StepDone:
		return "done"
	case StepFailed:
		return "failed"
	}
	return fmt.Sprintf("StepState(%d)", int(s))
}

// Progress reports a slow step of a Manager operation, for the CLI's status
// line or the daemon's event stream. Each step is sent once when it starts
// and once when it ends.
type Progress struct {
	Env     string
	Message string
	State   StepState
	// Elapsed is the step's duration, set when State is StepDone or StepFailed.
	Elapsed time.Duration
}

// tracker times the steps of one operation on one environment.
type tracker struct {
	env  string
	send func(Progress)
	now  func() time.Time

	mu      sync.Mutex
	started map[string]time.Time
}

type progressKey struct{}

// ContextWithProgress returns a context whose Manager operations report
// their slow steps to f instead of the Manager's WithProgress function, so
// one Manager can serve several callers that each see their own progress.
func ContextWithProgress(ctx context.Context, f func(Progress)) context.Context {
	return context.WithValue(ctx, progressKey{}, f)
}

type apiReadyKey struct{}

// ContextWithAPIReady returns a context in which a Manager's Up of a new
// environment calls f with the environment's kubeconfig path as soon as its
// API server answers to it, before the backend has finished (kind then still
// installs the CNI and the storage class, and writes its own kubeconfig):
// the caller can deploy while the cluster is finished. Up still returns only
// once the environment is made, and f is never called for an environment
// that exists, nor by backends that cannot tell.
func ContextWithAPIReady(ctx context.Context, f func(kubeconfig string)) context.Context {
	return context.WithValue(ctx, apiReadyKey{}, f)
}

// APIReadyFunc is the function ContextWithAPIReady put in ctx, or nil:
// what a backend (or a stand-in for the Manager) calls.
func APIReadyFunc(ctx context.Context) func(kubeconfig string) {
	f, _ := ctx.Value(apiReadyKey{}).(func(string))
	return f
}

func (m *Manager) track(ctx context.Context, env string) *tracker {
	send := m.progress
	if f, ok := ctx.Value(progressKey{}).(func(Progress)); ok && f != nil {
		send = f
	}
	return &tracker{env: env, send: send, now: m.now, started: map[string]time.Time{}}
}

func (t *tracker) emit(message string, state StepState) {
	t.mu.Lock()
	p := Progress{Env: t.env, Message: message, State: state}
	if state == StepStarted {
		t.started[message] = t.now()
	} else if s, ok := t.started[message]; ok {
		p.Elapsed = t.now().Sub(s)
		delete(t.started, message)
	}
	t.mu.Unlock()
	if t.send != nil {
		t.send(p)
	}
}

// start reports message as started and returns the function that ends it.
func (t *tracker) start(message string) func(err error) {
	t.emit(message, StepStarted)
	return func(err error) {
		if err != nil {
			t.emit(message, StepFailed)
			return
		}
		t.emit(message, StepDone)
	}
}

// backend forwards a backend's steps.
func (t *tracker) backend(s providers.Step) {
	switch s.State {
	case providers.StepStarted:
		t.emit(s.Message, StepStarted)
	case providers.StepDone:
		t.emit(s.Message, StepDone)
	case providers.StepFailed:
		t.emit(s.Message, StepFailed)
	}
}
