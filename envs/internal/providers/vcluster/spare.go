package vcluster

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/devctl/devctl/envs/internal/providers"
	"github.com/devctl/devctl/internal/kube"
)

// A spare is a vcluster the provider starts ahead of time on its local
// host, so that the next new environment claims a running control plane
// (a label change and a port-forward) instead of waiting half a minute for
// one to start. It is only made on devctl's local kind host, never on a
// given host cluster (CI previews), and it is never an environment: List,
// Delete and the daemon see it only once an environment has claimed it.
const (
	// LabelSpare is "true" on the namespace of an unclaimed spare.
	LabelSpare = "devctl.dev/vcluster-spare"
	// LabelRelease names the vcluster's Helm release in a namespace not
	// called Namespace(env): a claimed spare keeps its namespace and
	// release, and is found by its devctl.dev/env label.
	LabelRelease = "devctl.dev/vcluster-release"
	// sparePrefix starts a spare's namespace; it cannot clash with an
	// environment's ("devctl-vc-").
	sparePrefix = "devctl-spare-"
	// LabelSpareSpec is a digest of the chart version and values a spare
	// was installed with: only a spare of the current ones is claimed, and
	// others are replaced.
	LabelSpareSpec = "devctl.dev/vcluster-spec"
	// EnvSpare set to 0 (or "off", "false") turns spares off.
	EnvSpare = "DEVCTL_VCLUSTER_SPARE"
)

// location is where an environment's vcluster lives on its host: the
// namespace and the Helm release in it (pod <release>-0, Secret
// vc-<release>).
type location struct{ ns, release string }

// envLocation is the location of an environment made for it: namespace
// devctl-vc-<name>, release <name>.
func envLocation(name string) location { return location{ns: Namespace(name), release: name} }

func (l location) secret() string { return "vc-" + l.release }
func (l location) pod() string    { return l.release + "-0" }

// sparesEnabled: on unless $DEVCTL_VCLUSTER_SPARE says off, or the options do.
func (p *Provider) sparesEnabled() bool {
	if p.o.NoSpare {
		return false
	}
	switch strings.ToLower(os.Getenv(EnvSpare)) {
	case "0", "off", "false", "no":
		return false
	}
	return true
}

// findNamespace finds the host namespace of environment name: the one
// labelled devctl.dev/env=<name> by devctl (a claimed spare's has another
// name), else devctl-vc-<name> whatever its labels (the caller checks them).
// It returns nil when there is neither.
func findNamespace(ctx context.Context, c *kube.Client, name string) (*corev1.Namespace, location, error) {
	obj, err := c.Set.CoreV1().Namespaces().Get(ctx, Namespace(name), metav1.GetOptions{})
	switch {
	case err == nil && obj.Labels[LabelEnv] == name:
		return obj, envLocation(name), nil
	case err != nil && !apierrors.IsNotFound(err):
		return nil, location{}, err
	}
	nss, lerr := c.Set.CoreV1().Namespaces().List(ctx, metav1.ListOptions{LabelSelector: LabelManagedBy + "=" + ManagedBy + "," + LabelEnv + "=" + name})
	if lerr != nil {
		return nil, location{}, lerr
	}
	for i := range nss.Items {
		ns := &nss.Items[i]
		if r := ns.Labels[LabelRelease]; r != "" {
			return ns, location{ns: ns.Name, release: r}, nil
		}
	}
	if err == nil {
		return obj, envLocation(name), nil
	}
	return nil, envLocation(name), nil
}

// locate is where name's vcluster is: a claimed spare's recorded location,
// else devctl-vc-<name>, asking the host only when name may be a claimed
// spare this process has not seen yet.
func (p *Provider) locate(ctx context.Context, c *kube.Client, name string) (location, error) {
	p.mu.Lock()
	loc, ok := p.located[name]
	p.mu.Unlock()
	if ok {
		return loc, nil
	}
	_, loc, err := findNamespace(ctx, c, name)
	if err != nil {
		return location{}, fmt.Errorf("vcluster %q: find its namespace on the host: %w", name, err)
	}
	if loc != envLocation(name) {
		p.remember(name, loc)
	}
	return loc, nil
}

func (p *Provider) remember(name string, loc location) {
	p.mu.Lock()
	p.located[name] = loc
	p.mu.Unlock()
}

func (p *Provider) forget(name string) {
	p.mu.Lock()
	delete(p.located, name)
	p.mu.Unlock()
}

// Spare is an unclaimed spare vcluster on the local host.
type Spare struct {
	Namespace string    `json:"namespace"`
	Release   string    `json:"release"`
	Created   time.Time `json:"created"`
	Ready     bool      `json:"ready"`
	// Current is false for a spare of other images or another devctl
	// (chart values): it is not claimed, and replaced.
	Current bool `json:"current"`
	// Installed: its Helm release is deployed. A spare whose install was
	// cut short (the daemon stopped) is never claimed, and goes once it
	// is older than staleSpare.
	Installed bool `json:"installed"`
	// resourceVersion is the namespace's when listed: a delete of an
	// outdated spare is conditional on it, so that a spare claimed
	// meanwhile (its labels changed) is never deleted.
	resourceVersion string
	// fatal is why its pod will never start (an image that cannot be
	// pulled), if so: such a spare is not claimed.
	fatal string
}

// staleSpare is the age after which a spare whose install never finished
// is deleted.
const staleSpare = 5 * time.Minute

// released says whether release in ns is deployed, by Helm's record of it
// (a Secret labelled owner=helm, name=<release>, status=deployed).
func released(ctx context.Context, c *kube.Client, ns, release string) bool {
	secs, err := c.Set.CoreV1().Secrets(ns).List(ctx, metav1.ListOptions{LabelSelector: "owner=helm,status=deployed,name=" + release})
	return err == nil && len(secs.Items) > 0
}

// spareSpec is the LabelSpareSpec value of a spare installed now: the
// chart version and the values (the host's CoreDNS image aside, which
// is the same for every spare of a host).
func (p *Provider) spareSpec() string {
	im := p.images()
	im.CoreDNS = ""
	b, _ := json.Marshal(Values(im))
	sum := sha256.Sum256(append([]byte(Version+"\n"), b...))
	return hex.EncodeToString(sum[:6])
}

// listSpares lists the unclaimed spares on a host, oldest first, without
// the ones being deleted.
func (p *Provider) listSpares(ctx context.Context, c *kube.Client) ([]Spare, error) {
	nss, err := c.Set.CoreV1().Namespaces().List(ctx, metav1.ListOptions{LabelSelector: LabelManagedBy + "=" + ManagedBy + "," + LabelSpare + "=true"})
	if err != nil {
		return nil, fmt.Errorf("list spare vclusters: %w", err)
	}
	var out []Spare
	spec := p.spareSpec()
	for _, ns := range nss.Items {
		r := ns.Labels[LabelRelease]
		if ns.DeletionTimestamp != nil || r == "" || ns.Labels[LabelEnv] != "" {
			continue
		}
		_, ready, fatal := p.podState(ctx, c, location{ns: ns.Name, release: r})
		out = append(out, Spare{Namespace: ns.Name, Release: r, Created: ns.CreationTimestamp.Time, Ready: ready,
			Current: ns.Labels[LabelSpareSpec] == spec, Installed: released(ctx, c, ns.Name, r), resourceVersion: ns.ResourceVersion, fatal: fatal})
	}
	slices.SortFunc(out, func(a, b Spare) int { return a.Created.Compare(b.Created) })
	return out, nil
}

// Spares lists the unclaimed spare vclusters on the local host: none when
// devctl never made one (no host kubeconfig) or the host does not answer
// within two seconds. It asks no kind or docker command, so listing
// environments stays quick.
func (p *Provider) Spares(ctx context.Context) ([]Spare, error) {
	path := p.localHostKubeconfig()
	if p.o.Host != nil || !fileExists(path) {
		return nil, nil
	}
	c, err := kube.NewClient(path)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	return p.listSpares(ctx, c)
}

// HostName is the local host's kind cluster name.
func (p *Provider) HostName() string { return p.o.HostName }

// claimSpare makes a spare environment name's: its namespace is relabelled
// (devctl.dev/env=<name> and labels; the spare label goes) with an update
// that fails if anyone changed it since it was read, so two claims never
// get the same spare. Ready spares go first, then the oldest; one whose pod
// cannot start is left alone. ok is false when there was none to claim.
func (p *Provider) claimSpare(ctx context.Context, c *kube.Client, name string, labels map[string]string, o *providers.CreateOptions) (location, bool) {
	spares, err := p.listSpares(ctx, c)
	if err != nil {
		p.logger.WarnContext(ctx, "no spare vcluster claimed", "env", name, "error", err)
		return location{}, false
	}
	slices.SortStableFunc(spares, func(a, b Spare) int {
		switch {
		case a.Ready == b.Ready:
			return 0
		case a.Ready:
			return -1
		}
		return 1
	})
	for _, s := range spares {
		loc := location{ns: s.Namespace, release: s.Release}
		if !s.Current || !s.Installed || s.fatal != "" {
			continue
		}
		ns, err := c.Set.CoreV1().Namespaces().Get(ctx, s.Namespace, metav1.GetOptions{})
		if err != nil || ns.Labels[LabelSpare] != "true" || ns.DeletionTimestamp != nil {
			continue
		}
		l := map[string]string{}
		for k, v := range ns.Labels {
			if k != LabelSpare && k != LabelSpareSpec {
				l[k] = v
			}
		}
		for k, v := range labels {
			l[k] = v
		}
		l[LabelRelease] = s.Release
		ns.Labels = l
		// The update carries the resourceVersion read above: a concurrent
		// claim of the same spare makes it fail with a conflict.
		if _, err := c.Set.CoreV1().Namespaces().Update(ctx, ns, metav1.UpdateOptions{}); err != nil {
			p.logger.DebugContext(ctx, "spare vcluster not claimed", "namespace", s.Namespace, "error", err)
			continue
		}
		p.remember(name, loc)
		state := "starting"
		if s.Ready {
			state = "running"
		}
		done := report(o, fmt.Sprintf("claimed the %s spare vcluster in namespace %s", state, s.Namespace))
		done(nil)
		return loc, true
	}
	return location{}, false
}

// spareWorkloadWait bounds how long a new spare waits for the environment
// that used the last one to serve before it starts.
const spareWorkloadWait = 2 * time.Minute

// replenish makes sure one spare exists on the local host h, in the
// background. It first waits (at most spareWorkloadWait) until a workload
// pod of environment after runs, so that the spare's control plane does not
// compete for CPU with that environment's first deploy.
func (p *Provider) replenish(h host, after location) {
	p.mu.Lock()
	if p.spareBusy || p.bg.Err() != nil {
		p.mu.Unlock()
		return
	}
	p.spareBusy = true
	p.spareWG.Add(1)
	p.mu.Unlock()
	go func() {
		defer p.spareWG.Done()
		defer func() {
			p.mu.Lock()
			p.spareBusy = false
			p.mu.Unlock()
		}()
		c, err := kube.NewClient(h.kubeconfig)
		if err == nil {
			err = p.makeSpare(p.bg, h, c, after)
		}
		if err != nil && p.bg.Err() == nil {
			p.logger.Warn("prepare a spare vcluster", "error", err)
		}
	}()
}

// makeSpare prepares the next spare on host h, which c reaches (see
// replenish).
func (p *Provider) makeSpare(ctx context.Context, h host, c *kube.Client, after location) error {
	waitWorkload(ctx, c, after.ns, spareWorkloadWait)
	spares, err := p.listSpares(ctx, c)
	if err != nil {
		return err
	}
	current := 0
	for _, s := range spares {
		stale := !s.Installed && time.Since(s.Created) > staleSpare
		if s.Current && !stale {
			current++
			continue
		}
		// Made with other images or by another devctl, or its install
		// never finished: never claimed, so it goes. Only an unclaimed
		// spare's namespace carries the spare label the list selected on.
		p.logger.Info("deleting an outdated spare vcluster", "namespace", s.Namespace)
		rv := s.resourceVersion
		err := c.Set.CoreV1().Namespaces().Delete(ctx, s.Namespace, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{ResourceVersion: &rv}})
		if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
			return fmt.Errorf("delete the outdated spare %s: %w", s.Namespace, err)
		}
	}
	if current > 0 {
		return nil
	}
	b := make([]byte, 3)
	if _, err := rand.Read(b); err != nil {
		return err
	}
	loc := location{ns: sparePrefix + hex.EncodeToString(b), release: "spare-" + hex.EncodeToString(b)}
	nsObj := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: loc.ns, Labels: map[string]string{
		LabelManagedBy: ManagedBy, LabelSpare: "true", LabelRelease: loc.release, LabelSpareSpec: p.spareSpec(),
	}}}
	if _, err := c.Set.CoreV1().Namespaces().Create(ctx, nsObj, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("namespace %s: %w", loc.ns, err)
	}
	images := p.images()
	images.CoreDNS = hostCoreDNSImage(ctx, c)
	p.logger.Info("starting a spare vcluster for the next environment", "namespace", loc.ns)
	if err := p.install(ctx, h, loc, images, nil); err != nil {
		policy := metav1.DeletePropagationForeground
		_ = c.Set.CoreV1().Namespaces().Delete(context.WithoutCancel(ctx), loc.ns, metav1.DeleteOptions{PropagationPolicy: &policy})
		return fmt.Errorf("install the spare vcluster in %s: %w", loc.ns, err)
	}
	return nil
}

// waitWorkload waits until a pod synced from the virtual cluster in ns,
// other than its DNS, is running, or for at most d.
func waitWorkload(ctx context.Context, c *kube.Client, ns string, d time.Duration) {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	for {
		pods, err := c.Set.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "vcluster.loft.sh/namespace,vcluster.loft.sh/namespace!=kube-system"})
		if err == nil {
			for _, pod := range pods.Items {
				if pod.Status.Phase == corev1.PodRunning {
					return
				}
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(2 * time.Second):
		}
	}
}
