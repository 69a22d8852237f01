package harness

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"testing"

	"github.com/devctl/devctl/internal/freezer"
)

// Deleter deletes a kind cluster (sigs.k8s.io/kind's *cluster.Provider).
type Deleter interface {
	Delete(name, explicitKubeconfigPath string) error
}

// DeleteCluster deletes a kind cluster with p and recovers, as `devctl
// down` does, from a node container that a frozen freezer cgroup keeps
// from being removed on a cgroup v1 host ("did not receive an exit
// event"): it thaws the cgroups, removes the containers and says so in
// the test log.
func DeleteCluster(ctx context.Context, t testing.TB, p Deleter, name, kubeconfig string) error {
	t.Helper()
	err := p.Delete(name, kubeconfig)
	if !freezer.Stuck(err) {
		return err
	}
	ids, lerr := ClusterContainers(ctx, name)
	if lerr != nil {
		return fmt.Errorf("%w; %w", err, lerr)
	}
	for _, id := range ids {
		thawed, terr := freezer.Thaw(freezer.DefaultRoot, id)
		if terr != nil {
			return fmt.Errorf("%w; thaw %s: %w", err, id, terr)
		}
		t.Logf("cluster %q: thawed %d frozen cgroup(s) of container %.12s that blocked its removal", name, len(thawed), id)
	}
	if len(ids) > 0 {
		args := append([]string{"rm", "-f", "-v"}, ids...)
		if out, rerr := exec.CommandContext(ctx, "docker", args...).CombinedOutput(); rerr != nil {
			return fmt.Errorf("%w; after thawing, docker rm: %w: %s", err, rerr, strings.TrimSpace(string(out)))
		}
	}
	// Let kind finish what it began (the kubeconfig entry).
	return p.Delete(name, kubeconfig)
}
