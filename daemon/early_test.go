package daemon

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/devctl/devctl/internal/api"
)

// A new cluster whose API answers before the provider is done: the
// cluster step ends there, the image is delivered, the release installed
// and its rollout waited for while the provider finishes, and the up ends
// Ready as soon as the service answers. The provider finishes after it: an
// unchanged up meanwhile does not wait for it, a down does.
func TestDaemonDeploysWhileTheClusterIsFinished(t *testing.T) {
	t.Parallel()
	f := newFakeDeps()
	f.EarlyAPI, f.RestGate = true, make(chan struct{})
	c := startDaemon(t, f, t.TempDir())
	defer func() {
		select {
		case <-f.RestGate:
		default:
			close(f.RestGate) // let the daemon stop
		}
	}()
	dir := writeProject(t, "web")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	name, events, gen := beginUp(ctx, t, c, dir)
	e := settled(t, events, gen)
	f.mu.Lock()
	deploys, waited, ups := f.deploys, len(f.waited), f.ups
	f.mu.Unlock()
	if e.Status.Phase != api.PhaseReady {
		t.Fatalf("phase %s: %s", e.Status.Phase, e.Status.Message)
	}
	if ups != 0 {
		t.Fatalf("Up returned before its rest was let through")
	}
	if deploys != 1 || waited != 1 {
		t.Fatalf("while the cluster was being finished: %d deploys, %d rollouts waited for; want 1 and 1", deploys, waited)
	}
	if e.Status.Kubeconfig != "/kube/"+name {
		t.Errorf("kubeconfig while finishing = %q", e.Status.Kubeconfig)
	}
	if got := stepList(e.Status.Run); !strings.Contains(got, "cluster:done") || !strings.Contains(got, "ready:done") {
		t.Errorf("steps %s", got)
	}
	for _, s := range e.Status.Run.Steps {
		if s.Name == StepCluster && !strings.Contains(s.Detail, "its API answers") {
			t.Errorf("cluster step detail %q does not say it ended early", s.Detail)
		}
	}

	// An unchanged up meanwhile only needs the API: it does not wait.
	e = upAndWait(t, c, dir)
	f.mu.Lock()
	ups = f.ups
	f.mu.Unlock()
	if e.Status.Phase != api.PhaseReady || ups != 0 {
		t.Fatalf("the second up: phase %s (%s), Up returned %d times; want Ready before the provider is done", e.Status.Phase, e.Status.Message, ups)
	}

	// A down now waits for the create, never runs beside it.
	if _, err := c.Down(ctx, name); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	f.mu.Lock()
	deletes := f.deletes
	f.mu.Unlock()
	if deletes != 0 {
		t.Fatalf("the delete ran while the provider was still creating the cluster")
	}
	close(f.RestGate)
	for ev := range events {
		if ev.Type == api.EventDeleted {
			break
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.ups != 1 || f.deletes != 1 {
		t.Errorf("Up returned %d times and Delete ran %d times; want 1 and 1", f.ups, f.deletes)
	}
}

// When the provider fails after the API answered (kind's last phases),
// the environment fails with the cluster's error, whether the run was
// still waiting for its services (the run fails with it, not with the step
// that was running) or they had answered (the environment is failed after
// the run).
func TestDaemonClusterFailingAfterItsAPIAnsweredFailsTheRun(t *testing.T) {
	t.Parallel()
	f := newFakeDeps()
	f.EarlyAPI, f.RestGate, f.RestErr = true, make(chan struct{}), errFake
	close(f.RestGate)
	c := startDaemon(t, f, t.TempDir())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, events, gen := beginUp(ctx, t, c, writeProject(t, "web"))
	e := failedAfter(t, events, gen)
	if !strings.Contains(e.Status.Message, "cluster") || !strings.Contains(e.Status.Message, "fake failure") {
		t.Fatalf("phase %s message %q", e.Status.Phase, e.Status.Message)
	}
}

// A provider that fails once the up has ended (its services answered)
// fails the environment, says so, and the next up makes the cluster again.
func TestDaemonClusterFailingAfterTheRunFailsTheEnvironment(t *testing.T) {
	t.Parallel()
	f := newFakeDeps()
	f.EarlyAPI, f.RestGate = true, make(chan struct{})
	c := startDaemon(t, f, t.TempDir())
	dir := writeProject(t, "web")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, events, gen := beginUp(ctx, t, c, dir)
	if e := settled(t, events, gen); e.Status.Phase != api.PhaseReady {
		t.Fatalf("phase %s: %s", e.Status.Phase, e.Status.Message)
	}
	f.mu.Lock()
	f.RestErr = errFake
	f.mu.Unlock()
	close(f.RestGate)
	var logged bool
	for ev := range events {
		if ev.Type == api.EventLog && ev.Level == api.LevelError && strings.Contains(ev.Message, "fake failure") {
			logged = true
		}
		if e := ev.Environment; e != nil && e.Status.Phase == api.PhaseFailed {
			if !strings.Contains(e.Status.Message, "create the cluster") || !strings.Contains(e.Status.Message, "fake failure") ||
				!strings.Contains(e.Status.Message, "devctl up") {
				t.Errorf("message %q does not say the cluster failed and what to do", e.Status.Message)
			}
			if e.Status.Run.Error != "" {
				t.Errorf("the up's run is rewritten as failed: %q", e.Status.Run.Error)
			}
			break
		}
	}
	if !logged {
		t.Errorf("no error line for subscribers before the environment failed")
	}
	f.mu.Lock()
	f.RestErr = nil
	f.mu.Unlock()
	if e := upAndWait(t, c, dir); e.Status.Phase != api.PhaseReady {
		t.Fatalf("the up after the failure: phase %s: %s", e.Status.Phase, e.Status.Message)
	}
}

// failedAfter follows events until the environment has observed gen and
// is failed (by its run or after it).
func failedAfter(t *testing.T, events <-chan api.Event, gen int64) *api.Environment {
	t.Helper()
	for ev := range events {
		e := ev.Environment
		if e != nil && e.Status.ObservedGeneration >= gen && e.Status.Phase == api.PhaseFailed {
			return e
		}
	}
	t.Fatal("event stream ended before the environment failed")
	return nil
}
