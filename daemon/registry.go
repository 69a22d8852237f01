package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/moby/moby/client"
	corev1 "k8s.io/api/core/v1"

	"github.com/devctl/devctl/internal/api"
	"github.com/devctl/devctl/internal/registry"
)

// Registry is the image registry the daemon serves to the nodes of the
// clusters it creates: a push sends only the layers it lacks, a node pulls
// only the layers it lacks. Clusters made without it (by an older devctl)
// get images by `kind load`.
type Registry interface {
	// Prepare makes the registry reachable from the clusters' network and
	// returns the KEP-1755 ConfigMap that describes it.
	Prepare(ctx context.Context) (*corev1.ConfigMap, error)
	// Push stores img as ref (devctl.local/<repository>:<tag>) and says how
	// many bytes it sent.
	Push(ctx context.Context, img v1.Image, ref string) (int64, error)
}

// localRegistry is internal/registry served on loopback (pushes) and on the
// kind network's gateway (pulls), with the nodes' hosts files in HostsDir.
type localRegistry struct {
	reg      *registry.Registry
	hostsDir string
	log      *slog.Logger

	mu       sync.Mutex
	endpoint netip.AddrPort
}

// newLocalRegistry opens the registry stored under stateDir and serves it
// on loopback. HostsDir must exist before a cluster mounts it.
func newLocalRegistry(ctx context.Context, stateDir string, log *slog.Logger) (*localRegistry, error) {
	reg, err := registry.New(filepath.Join(stateDir, "registry"), registry.WithLogger(log))
	if err != nil {
		return nil, err
	}
	if _, err := reg.Listen(ctx, netip.MustParseAddr("127.0.0.1")); err != nil {
		_ = reg.Shutdown(ctx)
		return nil, err
	}
	l := &localRegistry{reg: reg, hostsDir: filepath.Join(stateDir, "registry-hosts"), log: log}
	if err := os.MkdirAll(l.hostsDir, 0o755); err != nil {
		_ = reg.Shutdown(ctx)
		return nil, err
	}
	return l, nil
}

func (l *localRegistry) Prepare(ctx context.Context) (*corev1.ConfigMap, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.endpoint.IsValid() {
		api, err := client.New(client.FromEnv)
		if err != nil {
			return nil, fmt.Errorf("registry: docker client: %w", err)
		}
		defer func() { _ = api.Close() }()
		gw, err := registry.NetworkGateway(ctx, api, registry.KindNetwork)
		if err != nil {
			return nil, err
		}
		ep, err := l.reg.Listen(ctx, gw)
		if err != nil {
			return nil, err
		}
		if err := registry.WriteHostsDir(l.hostsDir, l.reg.NodeHosts(ep)); err != nil {
			return nil, err
		}
		l.endpoint = ep
		l.log.Info("registry serving the kind network", "endpoint", ep.String(), "hosts", l.hostsDir)
	}
	h := l.reg.Hosting(l.endpoint)
	h.Help = "https://github.com/devctl/devctl/blob/main/docs/live-update.md"
	return h.ConfigMap()
}

func (l *localRegistry) Push(ctx context.Context, img v1.Image, ref string) (int64, error) {
	res, err := l.reg.Push(ctx, img, ref)
	if err != nil {
		return 0, err
	}
	return res.Bytes, nil
}

func (l *localRegistry) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = l.reg.Shutdown(ctx)
}

// earlyPush is a push to the registry begun before the cluster exists.
type earlyPush struct {
	done chan struct{}
	sent int64
	err  error
}

// pushEarly starts pushing img as ref while the cluster is being made: the
// registry is the daemon's own, so the deliver step of a cluster that pulls
// from it finds the image there and has nothing left to send. A push that
// fails is done again by the deliver step.
func (run *Run) pushEarly(ctx context.Context, img v1.Image, ref string) {
	reg := run.r.deps.Registry
	if reg == nil {
		return
	}
	p := &earlyPush{done: make(chan struct{})}
	run.mu.Lock()
	if run.early == nil {
		run.early = map[string]*earlyPush{}
	}
	if _, ok := run.early[ref]; ok {
		run.mu.Unlock()
		return
	}
	run.early[ref] = p
	run.mu.Unlock()
	// Not cancelled with the step that began it: the parallel group ends
	// when the cluster is made, perhaps before the push.
	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
	go func() {
		defer close(p.done)
		defer cancel()
		p.sent, p.err = reg.Push(pctx, img, ref)
	}()
}

// push stores img as ref in the registry, waiting for the early push of ref
// when there was one.
func (run *Run) push(ctx context.Context, img v1.Image, ref string) (sent int64, early bool, err error) {
	run.mu.Lock()
	p := run.early[ref]
	run.mu.Unlock()
	if p != nil {
		select {
		case <-p.done:
		case <-ctx.Done():
			return 0, false, ctx.Err()
		}
		if p.err == nil {
			return p.sent, true, nil
		}
	}
	sent, err = run.r.deps.Registry.Push(ctx, img, ref)
	return sent, false, err
}

// pushGo delivers the Go-built images among refs by registry when the
// environment's nodes pull from it, and says which refs are left to load.
func (run *Run) pushGo(ctx context.Context, refs []string) (rest []string, pushed []string, err error) {
	reg := run.r.deps.Registry
	if reg == nil {
		return refs, nil, nil
	}
	var goRefs []string
	for _, ref := range refs {
		if _, ok := run.goImages[ref]; ok {
			goRefs = append(goRefs, ref)
		} else {
			rest = append(rest, ref)
		}
	}
	if len(goRefs) == 0 {
		return refs, nil, nil
	}
	ok, err := run.r.pullsFromRegistry(ctx, run)
	if err != nil || !ok {
		if err != nil {
			run.logf(StepDeliver, "", api.SourceProgress, api.LevelWarn, "images are loaded, not pushed: %v", err)
		}
		return refs, nil, nil
	}
	var sent int64
	early := 0
	for _, ref := range goRefs {
		n, e, err := run.push(ctx, run.goImages[ref].image, ref)
		if err != nil {
			return nil, nil, err
		}
		sent += n
		if e {
			early++
		}
	}
	what := fmt.Sprintf("pushed %d image(s), %d KiB sent", len(goRefs), sent/1024)
	if early > 0 {
		what += fmt.Sprintf(" (%d while the cluster was made)", early)
	}
	return rest, []string{what}, nil
}

// pullsFromRegistry says (once per cluster) whether the run's cluster was
// made to pull from the registry, and then points it there and announces
// it in kube-public/local-registry-hosting (KEP-1755).
func (r *runner) pullsFromRegistry(ctx context.Context, run *Run) (bool, error) {
	r.regMu.Lock()
	defer r.regMu.Unlock()
	if v, ok := r.regPulls[run.kubeconfig]; ok && !run.newCluster {
		return v, nil
	}
	ok, err := r.deps.Environments.PullsFromRegistry(ctx, run.Env, run.Spec.Provider)
	if err != nil {
		return false, err
	}
	if ok {
		cm, err := r.deps.Registry.Prepare(ctx)
		if err != nil {
			return false, err
		}
		if err := r.deps.Cluster.ApplyConfigMap(ctx, run.kubeconfig, cm); err != nil {
			return false, fmt.Errorf("announce the registry (KEP-1755): %w", err)
		}
	}
	if r.regPulls == nil {
		r.regPulls = map[string]bool{}
	}
	r.regPulls[run.kubeconfig] = ok
	return ok, nil
}

// prepull has a new cluster's nodes pull the pushed images and the agent
// while the releases are rendered, checked and installed, instead of each
// pod pulling them one after the other as its containers start (on a
// cold up, 0.7 s for each). It does not hold up the run; a pull that fails
// is the kubelet's to do again.
func (run *Run) prepull(ctx context.Context, refs []string) {
	run.mu.Lock()
	if run.agentRef != "" {
		refs = append(refs, run.agentRef)
	}
	run.mu.Unlock()
	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	go func() {
		defer cancel()
		began := time.Now()
		if err := run.r.deps.Environments.Prepull(pctx, run.Env, run.Spec.Provider, refs); err != nil {
			run.r.log.Warn("images not pulled ahead (the kubelet pulls them)", "env", run.Env, "images", refs, "err", err)
			return
		}
		run.r.log.Info("images pulled ahead into the new cluster", "env", run.Env, "images", refs, "duration", time.Since(began).Round(time.Millisecond))
	}()
}
