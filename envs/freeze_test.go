package envs

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/devctl/devctl/envs/internal/providers"
	"github.com/devctl/devctl/envs/internal/providers/fake"
	"github.com/devctl/devctl/internal/api"
)

// frozenProvider is a backend whose containers cannot be removed while a
// freezer cgroup under them is FROZEN, as Docker on a cgroup v1 host.
type frozenProvider struct {
	*fake.Provider
	root string
	ids  []string
}

var _ providers.Containerized = frozenProvider{}

func (p frozenProvider) Containers(context.Context, string) ([]string, error) { return p.ids, nil }

func (p frozenProvider) Delete(ctx context.Context, name string) error {
	for _, id := range p.ids {
		b, err := os.ReadFile(filepath.Join(p.root, id, "pod", "freezer.state"))
		if err == nil && strings.TrimSpace(string(b)) == "FROZEN" {
			return errors.New(`delete kind cluster: command "docker rm -f -v ` + name + `-control-plane" failed: tried to kill container, but did not receive an exit event`)
		}
	}
	return p.Provider.Delete(ctx, name)
}

func TestDeleteThawsFrozenCgroups(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	root := t.TempDir()
	state := filepath.Join(root, "c0ffee", "pod", "freezer.state")
	if err := os.MkdirAll(filepath.Dir(state), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(state, []byte("FROZEN\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	fp := frozenProvider{Provider: fake.New(api.ProviderKind), root: root, ids: []string{"c0ffee"}}
	h := newHarness(t, fp)
	h.m.freezerRoot = root
	if _, err := h.m.Up(ctx, "hello-main", helloSpec); err != nil {
		t.Fatal(err)
	}
	h.progress = &progressLog{}
	h.m.progress = h.progress.add
	d, err := h.m.Delete(ctx, "hello-main", "")
	if err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if d != (Deleted{Cluster: true, Files: true, Thawed: 1}) {
		t.Errorf("Deleted = %+v", d)
	}
	if b, _ := os.ReadFile(state); strings.TrimSpace(string(b)) != "THAWED" {
		t.Errorf("freezer.state = %q", b)
	}
	if !strings.Contains(strings.Join(h.progress.lines(), "\n"), "thawed 1 frozen cgroup(s)") {
		t.Errorf("progress does not say what was done:\n%s", strings.Join(h.progress.lines(), "\n"))
	}
	if _, ok := fp.Created("hello-main"); ok {
		t.Error("the cluster is still there")
	}
}

func TestOrphans(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	h := newHarness(t)
	if _, err := h.m.Up(ctx, "hello-main", helloSpec); err != nil {
		t.Fatal(err)
	}
	// Begun by devctl, metadata gone.
	if err := os.MkdirAll(h.envDir("half-main"), 0o700); err != nil {
		t.Fatal(err)
	}
	h.p.Add("half-main")
	// Not devctl's: no state directory.
	h.p.Add("someone-else")
	// Files left without a cluster.
	if err := os.MkdirAll(h.envDir("files-main"), 0o700); err != nil {
		t.Fatal(err)
	}
	got, err := h.m.Orphans(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := []Orphan{{Name: "files-main", Provider: "kind"}, {Name: "half-main", Provider: "kind", Cluster: true}}
	if !slices.Equal(got, want) {
		t.Errorf("Orphans = %+v, want %+v", got, want)
	}
	for _, o := range got {
		if _, err := h.m.Delete(ctx, o.Name, o.Provider); err != nil {
			t.Errorf("delete orphan %s: %v", o.Name, err)
		}
	}
	if got, _ := h.m.Orphans(ctx); len(got) != 0 || !h.hasCluster("someone-else") || !h.hasCluster("hello-main") {
		t.Errorf("after deleting the orphans: %+v", got)
	}
}

// busyProvider fails deletes while Docker "is already removing" the node.
type busyProvider struct {
	*fake.Provider
	busy *int
}

func (p busyProvider) Delete(ctx context.Context, name string) error {
	if *p.busy > 0 {
		*p.busy--
		return errors.New(`Error response from daemon: removal of container ` + name + `-control-plane is already in progress`)
	}
	return p.Provider.Delete(ctx, name)
}

func TestDeleteWaitsForARemovalInProgress(t *testing.T) {
	busy := 2
	bp := busyProvider{Provider: fake.New(api.ProviderKind), busy: &busy}
	h := newHarness(t, bp)
	removalPoll = time.Millisecond
	t.Cleanup(func() { removalPoll = time.Second })
	ctx := context.Background()
	if _, err := h.m.Up(ctx, "hello-main", helloSpec); err != nil {
		t.Fatal(err)
	}
	d, err := h.m.Delete(ctx, "hello-main", "")
	if err != nil || !d.Cluster || busy != 0 {
		t.Fatalf("Delete = %+v, %v (busy %d)", d, err, busy)
	}
}
