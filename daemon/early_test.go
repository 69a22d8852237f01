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
// and its rollout waited for while the provider finishes, and the
// environment is Ready only once the provider is done.
func TestDaemonDeploysWhileTheClusterIsFinished(t *testing.T) {
	t.Parallel()
	f := newFakeDeps()
	f.EarlyAPI, f.RestGate = true, make(chan struct{})
	c := startDaemon(t, f, t.TempDir())
	dir := writeProject(t, "web")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	name, events, gen := beginUp(ctx, t, c, dir)
	// The release is installed, and its rollout waited for, while Up has
	// not returned.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		f.mu.Lock()
		deploys, waited, ups := f.deploys, len(f.waited), f.ups
		f.mu.Unlock()
		if ups != 0 {
			t.Fatalf("Up returned before its rest was let through")
		}
		if deploys == 1 && waited == 1 {
			break
		}
		if time.Now().After(deadline) {
			close(f.RestGate) // let the daemon stop
			t.Fatalf("while the cluster was being finished: %d deploys, %d rollouts waited for; want 1 and 1", deploys, waited)
		}
	}
	e, err := c.Get(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	if !e.Status.Run.Active() || e.Status.Phase == api.PhaseReady {
		t.Fatalf("the run ended (phase %s) before the provider finished", e.Status.Phase)
	}
	if e.Status.Kubeconfig != "/kube/"+name {
		t.Errorf("kubeconfig while finishing = %q", e.Status.Kubeconfig)
	}
	close(f.RestGate)
	e = settled(t, events, gen)
	if e.Status.Phase != api.PhaseReady {
		t.Fatalf("phase %s: %s", e.Status.Phase, e.Status.Message)
	}
	if got := stepList(e.Status.Run); !strings.Contains(got, "cluster:done") || !strings.Contains(got, "ready:done") {
		t.Errorf("steps %s", got)
	}
	for _, s := range e.Status.Run.Steps {
		if s.Name == StepCluster && !strings.Contains(s.Detail, "its API answers") {
			t.Errorf("cluster step detail %q does not say it ended early", s.Detail)
		}
	}
}

// When the provider fails after the API answered (kind's last phases),
// the run fails with the cluster's error, not with whatever step was
// running then, and it ends only once the provider has.
func TestDaemonClusterFailingAfterItsAPIAnsweredFailsTheRun(t *testing.T) {
	t.Parallel()
	f := newFakeDeps()
	f.EarlyAPI, f.RestGate, f.RestErr = true, make(chan struct{}), errFake
	close(f.RestGate)
	c := startDaemon(t, f, t.TempDir())
	e := upAndWait(t, c, writeProject(t, "web"))
	if e.Status.Phase != api.PhaseFailed || !strings.Contains(e.Status.Message, "cluster") || !strings.Contains(e.Status.Message, "fake failure") {
		t.Fatalf("phase %s message %q", e.Status.Phase, e.Status.Message)
	}
}
