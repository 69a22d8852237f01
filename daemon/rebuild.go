package daemon

import (
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/devctl/devctl/internal/api"
	"github.com/devctl/devctl/internal/build"
)

// MaxRebuilds bounds the rebuild history kept per environment.
const MaxRebuilds = 50

// Rebuild phases, in order.
const (
	RebuildDetect  = "detect"
	RebuildBuild   = "build"
	RebuildDeliver = "deliver"
	RebuildUpdate  = "update"
	RebuildReady   = "ready"
)

// Rebuild modes.
const (
	ModeImage = "image"
	ModeLive  = "live"
)

// StepSync is the step of a live update that sends files to the agent.
const StepSync = "sync"

// RebuildRecorded appends a finished rebuild or live update to an
// environment's history.
type RebuildRecorded struct {
	Name    string
	Rebuild api.Rebuild
}

// WatchRequested turns watching an environment's sources on or off (devctl
// watch pause|resume). Changes seen while paused are not lost: they are
// handed out as one batch on resume.
type WatchRequested struct {
	Name  string
	Watch bool
}

// appendRebuild adds r to h, keeping the last MaxRebuilds.
func appendRebuild(h []api.Rebuild, r api.Rebuild) []api.Rebuild {
	h = append(h, r)
	if n := len(h) - MaxRebuilds; n > 0 {
		h = slices.Clone(h[n:])
	}
	return h
}

// earliest returns the earlier of two times, ignoring zero ones.
func earliest(a, b time.Time) time.Time {
	switch {
	case a.IsZero():
		return b
	case b.IsZero() || a.Before(b):
		return a
	}
	return b
}

// noteStep records how long a step took, for the rebuild record.
func (run *Run) noteStep(name string, d time.Duration) {
	run.mu.Lock()
	defer run.mu.Unlock()
	if run.stepTimes == nil {
		run.stepTimes = map[string]time.Duration{}
	}
	run.stepTimes[name] += d
}

// rebuildRecord describes this run, which ended with err, as a rebuild.
func (run *Run) rebuildRecord(mode string, err error, now time.Time) api.Rebuild {
	run.mu.Lock()
	defer run.mu.Unlock()
	rb := api.Rebuild{Run: run.ID, Services: slices.Clone(run.Services), Mode: mode, Reason: run.Request.Reason, Started: run.started}
	if len(rb.Services) == 0 && run.project != nil {
		rb.Services = run.project.ServiceNames()
	}
	since := run.Request.Changed
	if since.IsZero() || since.After(run.started) {
		since = run.started
	}
	st := run.stepTimes
	rb.Phases = []api.PhaseTime{
		{Name: RebuildDetect, Duration: run.started.Sub(since)},
		{Name: RebuildBuild, Duration: st[StepBuild]},
		{Name: RebuildDeliver, Duration: st[StepDeliver]},
		{Name: RebuildUpdate, Duration: st[StepRender] + st[StepPolicy] + st[StepDeploy] + st[StepSync]},
		{Name: RebuildReady, Duration: st[StepReady]},
	}
	if err != nil {
		rb.Error = err.Error()
		return rb
	}
	rb.SaveToServing = now.Sub(since)
	return rb
}

// buildFailure adds the last lines of a Docker build's output (where the
// compiler's file:line errors are) to err. A Go compile error names them
// already.
func buildFailure(err error) error {
	var be *build.BuildError
	if !errors.As(err, &be) || len(be.Output) == 0 {
		return err
	}
	return &outputError{err: err, output: strings.Join(be.Output, "\n")}
}

type outputError struct {
	err    error
	output string
}

func (e *outputError) Error() string { return e.err.Error() + "\n" + e.output }
func (e *outputError) Unwrap() error { return e.err }

// mergeFiles adds the files of b missing from a.
func mergeFiles(a, b []string) []string {
	for _, f := range b {
		if !slices.Contains(a, f) {
			a = append(a, f)
		}
	}
	return a
}
