package daemon

import (
	"context"
	"sync"
	"time"

	"github.com/devctl/devctl/internal/api"
)

// probeTimeout bounds how long a list or status waits for a cluster's API
// server to answer.
const probeTimeout = 3 * time.Second

// probeReady asks the API server of every environment in list that is
// Ready (no run under way) whether it still answers. It runs when a user
// lists or asks for status, so the daemon needs no polling while idle. When
// one does not answer (its node was stopped or killed), the environments
// are listed again from their clusters and the stopped ones are marked
// Stopped with the command that starts them; it reports whether it changed
// anything.
func (d *Daemon) probeReady(ctx context.Context, list []api.Environment) bool {
	var (
		mu   sync.Mutex
		lost []string
		wg   sync.WaitGroup
	)
	for _, e := range list {
		if e.Status.Phase != api.PhaseReady || e.Status.Run.Active() || e.Status.Queued != nil || e.Status.Kubeconfig == "" {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			pctx, cancel := context.WithTimeout(ctx, probeTimeout)
			defer cancel()
			if err := d.deps.Cluster.Reachable(pctx, e.Status.Kubeconfig); err != nil && ctx.Err() == nil {
				d.log.Info("environment does not answer", "env", e.Name, "err", err)
				mu.Lock()
				lost = append(lost, e.Name)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(lost) == 0 {
		return false
	}
	lctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	live, err := d.deps.Environments.List(lctx)
	if err != nil {
		d.log.Warn("list environments", "err", err)
		return false
	}
	changed := false
	for _, e := range live {
		if !e.Stopped {
			continue
		}
		for _, name := range lost {
			if name == e.Name {
				d.store.Dispatch(Discovered{Name: e.Name, Spec: e.Spec, Kubeconfig: e.Kubeconfig, Created: e.Created, Stopped: true, Start: e.Start})
				changed = true
			}
		}
	}
	if changed {
		_, _ = d.store.DispatchSync(ctx, Forgotten{})
	}
	return changed
}
