// Package vcluster is the environment backend that runs each environment as
// a virtual cluster (github.com/loft-sh/vcluster) in its own namespace of a
// host cluster: the vcluster chart is installed there with the Helm SDK, and
// the virtual API server is reached through a port-forward this process
// holds (it follows the vcluster pod when the pod is replaced).
//
// The host is devctl's own kind cluster (HostName), created on first use and
// shared by every environment, or a cluster named by a kubeconfig and
// context (api.HostCluster), as CI previews use.
package vcluster

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/devctl/devctl/envs/internal/providers"
	"github.com/devctl/devctl/internal/api"
	"github.com/devctl/devctl/internal/helm"
	"github.com/devctl/devctl/internal/kube"
)

// Labels on the host namespace of an environment.
const (
	// LabelEnv carries the environment name.
	LabelEnv = "devctl.dev/env"
	// LabelManagedBy is "devctl" on every namespace devctl made.
	LabelManagedBy = "devctl.dev/managed-by"
	// ManagedBy is LabelManagedBy's value.
	ManagedBy = "devctl"
	// labelPrefix: spec labels with this prefix are copied to the namespace.
	labelPrefix = "devctl.dev/"
)

// HostName is the kind cluster devctl creates once as the local host of
// every vcluster environment; $DEVCTL_VCLUSTER_HOST names another (tests
// use their own).
const HostName = "devctl-host"

// EnvHostName overrides HostName.
const EnvHostName = "DEVCTL_VCLUSTER_HOST"

// hostCacheFor is how long the local host's existence and kubeconfig, once
// read from kind, are trusted without asking again.
const hostCacheFor = 30 * time.Second

// namespacePrefix starts every host namespace devctl makes.
const namespacePrefix = "devctl-vc-"

// Namespace is the host namespace of the environment envName: the prefix
// "devctl-vc-" and the name (environment names are DNS labels of at most 40
// characters, so the result is one too). The namespace holds one vcluster,
// the Helm release named envName, and its Secret vc-<envName>.
func Namespace(envName string) string { return namespacePrefix + envName }

// KindHost is what the provider needs of the kind backend for its local
// host cluster.
type KindHost interface {
	providers.Provider
	providers.ImageLoader
	providers.RegistryPuller
	providers.Starter
}

// Options configure a Provider.
type Options struct {
	Logger *slog.Logger
	// StateDir is devctl's state directory: the local host's kubeconfig
	// lives under hosts/, an environment's host kubeconfig under envs/<name>/.
	StateDir string
	// Kind makes the local host cluster.
	Kind KindHost
	// HostName is the local host's kind cluster name (default: $DEVCTL_VCLUSTER_HOST, else HostName).
	HostName string
	// Host, when set, is the host cluster of every environment whose spec
	// names none; nil is the local kind host.
	Host *api.HostCluster
	// Images overrides DefaultImages().
	Images *Images
	// ImagePresent reports whether the local Docker engine has an image; the
	// local host loads the vcluster images from there. Nil uses `docker
	// image inspect`.
	ImagePresent func(ctx context.Context, ref string) bool
	// SaveImages streams `docker save` of refs. Nil runs the docker CLI.
	SaveImages func(ctx context.Context, refs ...string) (io.ReadCloser, error)
	// NoSpare turns off the spare vcluster the provider otherwise keeps
	// started on the local host for the next new environment (as
	// $DEVCTL_VCLUSTER_SPARE=0 does).
	NoSpare bool
}

// Provider runs environments as vclusters.
type Provider struct {
	o      Options
	logger *slog.Logger

	hostMu     sync.Mutex // serialises the creation of the local host; guards hostSeen
	hostSeen   host
	hostSeenAt time.Time

	mu       sync.Mutex
	forwards map[string]heldForward // by environment name
	// located are the claimed spares this process knows: environment name
	// to location (every other environment is at envLocation).
	located map[string]location
	// loaded are the images known to be in the local host's nodes, by
	// kind cluster name and image; emptied when the host's kubeconfig
	// changes (it was made again).
	loaded map[string]bool
	// spareBusy is true while a spare is being prepared.
	spareBusy bool
	spareWG   sync.WaitGroup
	// bg is the context of background work (spares); Close cancels it.
	bg     context.Context
	stopBG context.CancelFunc
}

var (
	_ providers.Provider       = (*Provider)(nil)
	_ providers.ImageLoader    = (*Provider)(nil)
	_ providers.RegistryPuller = (*Provider)(nil)
	_ providers.Starter        = (*Provider)(nil)
)

// New returns a vcluster backend.
func New(o Options) *Provider {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.HostName == "" {
		o.HostName = os.Getenv(EnvHostName)
	}
	if o.HostName == "" {
		o.HostName = HostName
	}
	if o.ImagePresent == nil {
		o.ImagePresent = dockerImagePresent
	}
	if o.SaveImages == nil {
		o.SaveImages = dockerSave
	}
	bg, stop := context.WithCancel(context.Background())
	return &Provider{o: o, logger: o.Logger, forwards: map[string]heldForward{},
		located: map[string]location{}, loaded: map[string]bool{}, bg: bg, stopBG: stop}
}

// Name implements providers.Provider.
func (p *Provider) Name() string { return api.ProviderVCluster }

func (p *Provider) images() Images {
	if p.o.Images != nil {
		return *p.o.Images
	}
	return DefaultImages()
}

// host is a resolved host cluster.
type host struct {
	// kubeconfig is a file with the host as its current context.
	kubeconfig string
	// kind is the local kind cluster the host is, or "".
	kind string
}

func (p *Provider) localHostKubeconfig() string {
	return filepath.Join(p.o.StateDir, "hosts", p.o.HostName, "kubeconfig")
}

func (p *Provider) envHostKubeconfig(name string) string {
	return filepath.Join(p.o.StateDir, "envs", name, "host-kubeconfig")
}

// hostOf resolves the host of the existing environment name: the host its
// Create recorded, else the default host. ok is false when the default host
// is the local kind host and it does not exist.
func (p *Provider) hostOf(ctx context.Context, name string) (host, bool, error) {
	if name != "" {
		if path := p.envHostKubeconfig(name); fileExists(path) {
			h := host{kubeconfig: path}
			if cfg, err := clientcmd.LoadFromFile(path); err == nil {
				h.kind = p.kindHost(cfg.CurrentContext)
			}
			return h, true, nil
		}
	}
	if p.o.Host != nil {
		h, err := p.externalHost(p.o.Host, filepath.Join(p.o.StateDir, "hosts", "default", "kubeconfig"))
		return h, err == nil, err
	}
	return p.localHost(ctx, nil, false)
}

// localHost returns devctl's kind host; with create set it makes it (and
// loads the vcluster images into it) when missing.
func (p *Provider) localHost(ctx context.Context, o *providers.CreateOptions, create bool) (host, bool, error) {
	if p.o.Kind == nil {
		if !create {
			return host{}, false, nil
		}
		return host{}, false, errors.New("no kind backend to make the local host cluster")
	}
	p.hostMu.Lock()
	defer p.hostMu.Unlock()
	// Asking kind (docker ps, docker exec) costs seconds on a busy machine
	// and every operation needs the host: a recent answer is reused.
	if p.hostSeen.kubeconfig != "" && time.Since(p.hostSeenAt) < hostCacheFor {
		return p.hostSeen, true, nil
	}
	// Later, a host whose API server answers on the kubeconfig read
	// before is the same cluster (one made again has a new CA).
	if p.hostSeen.kubeconfig != "" && hostAnswers(ctx, p.hostSeen.kubeconfig) {
		p.hostSeenAt = time.Now()
		return p.hostSeen, true, nil
	}
	names, err := p.o.Kind.List(ctx)
	if err != nil {
		return host{}, false, err
	}
	path := p.localHostKubeconfig()
	if !slices.Contains(names, p.o.HostName) {
		if !create {
			return host{}, false, nil
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return host{}, false, fmt.Errorf("host state directory: %w", err)
		}
		ho := *o
		ho.KubeconfigPath = path
		ho.Spec.Provider = api.ProviderKind
		// The host answering is not the environment answering: the
		// environment's API is the vcluster's, made after the host.
		ho.APIReady = nil
		done := report(o, "creating kind host cluster "+p.o.HostName+" (once; every vcluster environment shares it)")
		err := p.o.Kind.Create(ctx, p.o.HostName, ho)
		done(err)
		if err != nil && !errors.Is(err, providers.ErrExists) {
			return host{}, false, fmt.Errorf("create the local host cluster: %w", err)
		}
	}
	kc, err := p.o.Kind.Kubeconfig(ctx, p.o.HostName)
	if err != nil {
		return host{}, false, fmt.Errorf("kubeconfig of host cluster %s: %w", p.o.HostName, err)
	}
	if old, err := os.ReadFile(path); err != nil || !bytes.Equal(old, kc) {
		p.mu.Lock()
		clear(p.loaded)
		p.mu.Unlock()
	}
	if err := writeFile(path, kc); err != nil {
		return host{}, false, err
	}
	p.hostSeen, p.hostSeenAt = host{kubeconfig: path, kind: p.o.HostName}, time.Now()
	return p.hostSeen, true, nil
}

// externalHost writes the context hc names, with everything it refers to,
// into path, so that one file reaches the host.
func (p *Provider) externalHost(hc *api.HostCluster, path string) (host, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	if hc.Kubeconfig != "" {
		rules.ExplicitPath = hc.Kubeconfig
	}
	raw, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules,
		&clientcmd.ConfigOverrides{CurrentContext: hc.Context}).RawConfig()
	if err != nil {
		return host{}, fmt.Errorf("read the host cluster's kubeconfig: %w", err)
	}
	if hc.Context != "" {
		if _, ok := raw.Contexts[hc.Context]; !ok {
			return host{}, fmt.Errorf("host cluster: context %q is not in the kubeconfig (`kubectl config get-contexts` lists them)", hc.Context)
		}
		raw.CurrentContext = hc.Context
	}
	if raw.CurrentContext == "" {
		return host{}, errors.New("host cluster: the kubeconfig has no current context; name one with --host-context")
	}
	if err := clientcmdMinifyFlatten(&raw); err != nil {
		return host{}, fmt.Errorf("host cluster: %w", err)
	}
	b, err := clientcmd.Write(raw)
	if err != nil {
		return host{}, fmt.Errorf("host cluster: %w", err)
	}
	if err := writeFile(path, b); err != nil {
		return host{}, err
	}
	return host{kubeconfig: path, kind: p.kindHost(raw.CurrentContext)}, nil
}

// kindHost is the kind cluster of this Docker engine a kubeconfig context
// ("kind-<name>") points at, into which images can be loaded; "" for any
// other cluster.
func (p *Provider) kindHost(kubeContext string) string {
	name, ok := strings.CutPrefix(kubeContext, "kind-")
	if !ok || p.o.Kind == nil {
		return ""
	}
	if names, err := p.o.Kind.List(context.Background()); err == nil && slices.Contains(names, name) {
		return name
	}
	return ""
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

func report(o *providers.CreateOptions, msg string) func(error) {
	if o == nil {
		return func(error) {}
	}
	o.Report(msg, providers.StepStarted)
	return func(err error) {
		if err != nil {
			o.Report(msg, providers.StepFailed)
			return
		}
		o.Report(msg, providers.StepDone)
	}
}

// Create implements providers.Provider: it makes the host namespace, installs
// the vcluster release in it, waits for the virtual API server (reporting
// why it is not ready yet as it goes) and starts the port-forward.
func (p *Provider) Create(ctx context.Context, name string, o providers.CreateOptions) error {
	var (
		h   host
		err error
	)
	switch {
	case o.Spec.Host != nil:
		if err := os.MkdirAll(filepath.Dir(p.envHostKubeconfig(name)), 0o700); err != nil {
			return fmt.Errorf("create vcluster %q: %w", name, err)
		}
		h, err = p.externalHost(o.Spec.Host, p.envHostKubeconfig(name))
	case p.o.Host != nil:
		h, _, err = p.hostOf(ctx, "")
	default:
		// Before the host is made: a missing image is a quick, clear error
		// (images already in the host's nodes need no check).
		if im := p.images(); !p.imagesLoaded(p.o.HostName, im.Syncer, im.Kubernetes) {
			if err := p.checkLocalImages(ctx); err != nil {
				return fmt.Errorf("create vcluster %q: %w", name, err)
			}
		}
		h, _, err = p.localHost(ctx, &o, true)
	}
	if err != nil {
		return fmt.Errorf("create vcluster %q: %w", name, err)
	}
	images := p.images()
	if h.kind != "" {
		if err := p.loadImages(ctx, h.kind, &o, images.Syncer, images.Kubernetes); err != nil {
			return fmt.Errorf("create vcluster %q: %w", name, err)
		}
	}
	c, err := kube.NewClient(h.kubeconfig)
	if err != nil {
		return fmt.Errorf("create vcluster %q: %w", name, err)
	}
	// A spare is only for devctl's own local host, never a given one.
	spares := o.Spec.Host == nil && p.o.Host == nil && p.sparesEnabled()
	existing, loc, err := findNamespace(ctx, c, name)
	claimed := false
	switch {
	case err != nil:
		return fmt.Errorf("create vcluster %q: reach the host cluster: %w", name, err)
	case existing != nil && existing.DeletionTimestamp != nil:
		return fmt.Errorf("create vcluster %q: namespace %s is still being deleted; try again in a minute", name, existing.Name)
	case existing != nil && o.Spec.Host != nil && existing.Labels[LabelManagedBy] == ManagedBy && existing.Labels[LabelEnv] == name:
		// On a given host the namespace is the only record: another devctl
		// (an earlier CI job of the same preview) made it. Adopt it: its
		// labels are brought up to date and the release upgraded in place.
		if err := adoptNamespace(ctx, c, existing.Name, NamespaceLabels(name, o.Spec.Labels)); err != nil {
			return fmt.Errorf("create vcluster %q: %w", name, err)
		}
	case existing != nil:
		return fmt.Errorf("create vcluster %q: namespace %s: %w", name, existing.Name, providers.ErrExists)
	default:
		if spares {
			var sl location
			if sl, claimed = p.claimSpare(ctx, c, name, NamespaceLabels(name, o.Spec.Labels), &o); claimed {
				loc = sl
				break
			}
		}
		nsObj := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: loc.ns, Labels: NamespaceLabels(name, o.Spec.Labels)}}
		if _, err := c.Set.CoreV1().Namespaces().Create(ctx, nsObj, metav1.CreateOptions{}); err != nil {
			if apierrors.IsAlreadyExists(err) {
				return fmt.Errorf("create vcluster %q: namespace %s: %w", name, loc.ns, providers.ErrExists)
			}
			return fmt.Errorf("create vcluster %q: namespace %s: %w", name, loc.ns, err)
		}
	}
	if !claimed {
		images.CoreDNS = hostCoreDNSImage(ctx, c)
		if err := p.install(ctx, h, loc, images, &o); err != nil {
			return fmt.Errorf("create vcluster %q: %w", name, err)
		}
	}
	wait := o.WaitForReady
	if wait <= 0 {
		wait = 3 * time.Minute
	}
	wctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	if err := p.waitReady(wctx, c, loc, &o); err != nil {
		if ctx.Err() == nil && wctx.Err() != nil {
			return fmt.Errorf("create vcluster %q: not ready after %s: %w\n%s", name, wait, err, c.Diagnose(context.WithoutCancel(ctx), loc.ns))
		}
		return fmt.Errorf("create vcluster %q: %w", name, err)
	}
	done := report(&o, "connecting to the virtual API server")
	err = p.waitAPI(wctx, name)
	done(err)
	if err != nil {
		return fmt.Errorf("create vcluster %q: %w", name, err)
	}
	if spares {
		p.replenish(h, loc)
	}
	return nil
}

// adoptNamespace merges labels into an existing namespace's.
func adoptNamespace(ctx context.Context, c *kube.Client, ns string, labels map[string]string) error {
	patch, err := json.Marshal(map[string]any{"metadata": map[string]any{"labels": labels}})
	if err != nil {
		return err
	}
	if _, err := c.Set.CoreV1().Namespaces().Patch(ctx, ns, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		return fmt.Errorf("label namespace %s: %w", ns, err)
	}
	return nil
}

// NamespaceLabels are the labels of name's host namespace: the environment,
// the manager, and every spec label under devctl.dev/.
func NamespaceLabels(name string, spec map[string]string) map[string]string {
	l := map[string]string{}
	for k, v := range spec {
		if strings.HasPrefix(k, labelPrefix) {
			l[k] = v
		}
	}
	l[LabelEnv] = name
	l[LabelManagedBy] = ManagedBy
	return l
}

func (p *Provider) install(ctx context.Context, h host, loc location, images Images, o *providers.CreateOptions) error {
	ch, err := Chart()
	if err != nil {
		return err
	}
	cfg, err := helm.NewConfig(h.kubeconfig, loc.ns, helm.WithLogger(p.logger))
	if err != nil {
		return err
	}
	d := helm.NewDeploy(cfg)
	d.ReleaseName = loc.release
	d.Labels = map[string]string{LabelManagedBy: ManagedBy}
	done := report(o, fmt.Sprintf("installing vcluster %s chart (syncer %s)", Version, images.Syncer))
	_, err = d.Run(ctx, ch, Values(images))
	done(err)
	return err
}

// hostCoreDNSImage is the image the host cluster's CoreDNS runs ("" when
// there is none to read).
func hostCoreDNSImage(ctx context.Context, c *kube.Client) string {
	d, err := c.Set.AppsV1().Deployments("kube-system").Get(ctx, "coredns", metav1.GetOptions{})
	if err != nil || len(d.Spec.Template.Spec.Containers) == 0 {
		return ""
	}
	return d.Spec.Template.Spec.Containers[0].Image
}

// waitReady waits for the vcluster pod to be ready and its kubeconfig Secret
// to exist. Each new reason it is not ready yet (the pod's phase, a
// container's waiting reason, the newest warning event) is reported as a
// step; the error of a timeout is the last reason.
func (p *Provider) waitReady(ctx context.Context, c *kube.Client, loc location, o *providers.CreateOptions) error {
	var (
		reason   string
		reported time.Time
		done     = func(error) {}
	)
	defer func() { done(nil) }()
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	for {
		r, ready, fatal := p.podState(ctx, c, loc)
		if ready {
			if _, err := c.Set.CoreV1().Secrets(loc.ns).Get(ctx, loc.secret(), metav1.GetOptions{}); err == nil {
				return nil
			}
			r = "waiting for the vcluster to write its kubeconfig Secret " + loc.secret()
		}
		// Log lines change quickly while the control plane starts: one
		// every few seconds is news, more is noise.
		quiet := strings.Contains(r, startingPrefix) && strings.Contains(reason, startingPrefix) && time.Since(reported) < 3*time.Second
		if r != reason && !quiet {
			done(nil)
			reason, reported = r, time.Now()
			done = report(o, "vcluster: "+r)
		}
		if fatal != "" {
			done(errors.New(fatal))
			done = func(error) {}
			return errors.New(fatal)
		}
		select {
		case <-ctx.Done():
			done(ctx.Err())
			done = func(error) {}
			return fmt.Errorf("%s: %w", reason, ctx.Err())
		case <-tick.C:
		}
	}
}

// podState describes the vcluster pod: why it is not ready, whether it is,
// and a reason that will not fix itself (an image that cannot be pulled).
func (p *Provider) podState(ctx context.Context, c *kube.Client, loc location) (reason string, ready bool, fatal string) {
	ns := loc.ns
	pods, err := c.Set.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=vcluster,release=" + loc.release})
	if err != nil {
		return "listing pods: " + err.Error(), false, ""
	}
	if len(pods.Items) == 0 {
		if ev := newestWarning(ctx, c, ns, ""); ev != "" {
			return "no pod yet: " + ev, false, ""
		}
		return "waiting for the StatefulSet to create pod " + loc.pod(), false, ""
	}
	pod := &pods.Items[0]
	for _, cond := range pod.Status.Conditions {
		if cond.Type == corev1.PodReady && cond.Status == corev1.ConditionTrue {
			return "", true, ""
		}
	}
	statuses := append(slices.Clone(pod.Status.InitContainerStatuses), pod.Status.ContainerStatuses...)
	for _, cs := range statuses {
		if w := cs.State.Waiting; w != nil && w.Reason != "" && w.Reason != "PodInitializing" {
			msg := fmt.Sprintf("pod %s: container %s: %s", pod.Name, cs.Name, w.Reason)
			if w.Message != "" {
				msg += ": " + w.Message
			}
			switch w.Reason {
			case "ErrImageNeverPull", "InvalidImageName":
				return msg, false, msg
			case "ErrImagePull", "ImagePullBackOff":
				return msg, false, msg + fmt.Sprintf(" (the host's nodes cannot pull it offline: build the images with %s, or set $%s and $%s)",
					BuildImagesCommand, EnvSyncerImage, EnvKubernetesImage)
			}
			return msg, false, ""
		}
		if t := cs.State.Terminated; t != nil && t.ExitCode != 0 {
			return fmt.Sprintf("pod %s: container %s exited %d (%s)", pod.Name, cs.Name, t.ExitCode, t.Reason), false, ""
		}
	}
	if ev := newestWarning(ctx, c, ns, pod.Name); ev != "" {
		return fmt.Sprintf("pod %s: %s", pod.Name, ev), false, ""
	}
	if pod.Status.Phase == corev1.PodRunning {
		// The control plane is starting inside the pod: what it last
		// logged says how far it got.
		if line := lastLogLine(ctx, c, pod); line != "" {
			return fmt.Sprintf("pod %s: %s%s", pod.Name, startingPrefix, line), false, ""
		}
	}
	for _, cond := range pod.Status.Conditions {
		if cond.Status != corev1.ConditionTrue && cond.Reason != "" {
			return fmt.Sprintf("pod %s: %s: %s", pod.Name, cond.Type, cond.Reason), false, ""
		}
	}
	if pod.Status.Phase == corev1.PodRunning {
		return fmt.Sprintf("pod %s: running, control plane starting (readiness probe not passed yet)", pod.Name), false, ""
	}
	return fmt.Sprintf("pod %s: %s", pod.Name, pod.Status.Phase), false, ""
}

// startingPrefix starts the reasons that quote the syncer's log.
const startingPrefix = "starting: "

// lastLogLine is the syncer container's last log line, made readable
// (logLine); "" when there is none.
func lastLogLine(ctx context.Context, c *kube.Client, pod *corev1.Pod) string {
	tail := int64(1)
	raw, err := c.Set.CoreV1().Pods(pod.Namespace).GetLogs(pod.Name, &corev1.PodLogOptions{Container: "syncer", TailLines: &tail}).DoRaw(ctx)
	if err != nil {
		return ""
	}
	return logLine(string(raw))
}

var (
	ansiEscape = regexp.MustCompile(`\x1b\[[0-9;]*m`)
	// logNoise are the leading fields of a syncer log line: a time, a
	// level, the caller.
	logNoise = regexp.MustCompile(`^([0-9][0-9:.TZ+-]*|(?i:info|warn|warning|error|debug)|[\w./-]+\.go:[0-9]+)$`)
)

// logLine keeps the message of a syncer log line: no colours, time, level,
// caller or trailing structured fields, at most 120 characters.
func logLine(raw string) string {
	f := strings.Fields(ansiEscape.ReplaceAllString(raw, ""))
	for len(f) > 0 && logNoise.MatchString(f[0]) {
		f = f[1:]
	}
	line := strings.Join(f, " ")
	if i := strings.Index(line, "{\""); i >= 0 {
		line = strings.TrimSpace(line[:i])
	}
	if len(line) > 120 {
		line = line[:117] + "..."
	}
	return line
}

// newestWarning is the newest Warning event in ns (about object, when set).
func newestWarning(ctx context.Context, c *kube.Client, ns, object string) string {
	opts := metav1.ListOptions{FieldSelector: "type=Warning"}
	if object != "" {
		opts.FieldSelector += ",involvedObject.name=" + object
	}
	evs, err := c.Set.CoreV1().Events(ns).List(ctx, opts)
	if err != nil || len(evs.Items) == 0 {
		return ""
	}
	newest := slices.MaxFunc(evs.Items, func(a, b corev1.Event) int { return kube.EventTime(&a).Compare(kube.EventTime(&b)) })
	if newest.Reason == "Unhealthy" {
		// Readiness probe failures while the control plane starts are the
		// normal way up, not news.
		return ""
	}
	return fmt.Sprintf("%s: %s", newest.Reason, strings.TrimSpace(newest.Message))
}

// waitAPI waits until the virtual API server answers through the forward.
func (p *Provider) waitAPI(ctx context.Context, name string) error {
	var last error
	for {
		kc, err := p.Kubeconfig(ctx, name)
		if err == nil {
			var cfg *kube.Client
			cfg, err = clientFromBytes(kc)
			if err == nil {
				err = cfg.Ready(ctx)
				if err == nil {
					_, err = cfg.Set.CoreV1().Namespaces().Get(ctx, "kube-public", metav1.GetOptions{})
				}
			}
		}
		if err == nil {
			return nil
		}
		last = err
		select {
		case <-ctx.Done():
			return fmt.Errorf("the virtual API server does not answer through the port-forward: %w", errors.Join(last, ctx.Err()))
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// forward returns the port-forward to name's vcluster pod, starting it when
// this process holds none. It lives until Delete or Close, not ctx; ctx (and
// a minute) bound only the wait for its first connection.
func (p *Provider) forward(ctx context.Context, h host, name, ns string) (*kube.Forward, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if f, ok := p.forwards[name]; ok {
		return f.Forward, nil
	}
	c, err := kube.NewClient(h.kubeconfig)
	if err != nil {
		return nil, err
	}
	fctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	started := make(chan struct{})
	go func() {
		select {
		case <-started:
		case <-ctx.Done():
			cancel()
		case <-time.After(time.Minute):
			cancel()
		}
	}()
	f, err := c.StartForward(fctx, ns, ControlPlaneInstance, APIPort, 0, p.logger.With("env", name))
	close(started)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("port-forward to the vcluster pod in %s: %w", ns, err)
	}
	p.forwards[name] = heldForward{Forward: f, cancel: cancel}
	return f, nil
}

// heldForward is a port-forward and the cancel of its context.
type heldForward struct {
	*kube.Forward
	cancel context.CancelFunc
}

func (p *Provider) stopForward(name string) {
	p.mu.Lock()
	f, ok := p.forwards[name]
	delete(p.forwards, name)
	p.mu.Unlock()
	if ok {
		f.Close()
		f.cancel()
	}
}

// Close stops every port-forward and the preparation of a spare.
func (p *Provider) Close() {
	p.stopBG()
	p.spareWG.Wait()
	p.mu.Lock()
	names := slices.Collect(maps.Keys(p.forwards))
	p.mu.Unlock()
	for _, n := range names {
		p.stopForward(n)
	}
}

// Kubeconfig implements providers.Provider: the kubeconfig vcluster writes
// into Secret vc-<name>, pointed at this process's port-forward.
func (p *Provider) Kubeconfig(ctx context.Context, name string) ([]byte, error) {
	h, ok, err := p.hostOf(ctx, name)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("vcluster %q: the host cluster %s does not exist: %w", name, p.o.HostName, providers.ErrNotFound)
	}
	c, err := kube.NewClient(h.kubeconfig)
	if err != nil {
		return nil, err
	}
	loc, err := p.locate(ctx, c, name)
	if err != nil {
		return nil, err
	}
	sec, err := c.Set.CoreV1().Secrets(loc.ns).Get(ctx, loc.secret(), metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, fmt.Errorf("vcluster %q: no Secret %s in namespace %s: %w", name, loc.secret(), loc.ns, providers.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("vcluster %q: read Secret %s: %w", name, loc.secret(), err)
	}
	raw, ok := sec.Data["config"]
	if !ok {
		return nil, fmt.Errorf("vcluster %q: Secret %s has no config key", name, loc.secret())
	}
	f, err := p.forward(ctx, h, name, loc.ns)
	if err != nil {
		return nil, fmt.Errorf("vcluster %q: %w", name, err)
	}
	return pointAt(raw, name, fmt.Sprintf("https://127.0.0.1:%d", f.LocalPort()))
}

// pointAt rewrites every cluster of the kubeconfig to server and names the
// context after the environment.
func pointAt(raw []byte, name, server string) ([]byte, error) {
	cfg, err := clientcmd.Load(raw)
	if err != nil {
		return nil, fmt.Errorf("vcluster %q: parse the kubeconfig in Secret vc-%s: %w", name, name, err)
	}
	for _, c := range cfg.Clusters {
		c.Server = server
	}
	if ctx, ok := cfg.Contexts[cfg.CurrentContext]; ok {
		delete(cfg.Contexts, cfg.CurrentContext)
		cfg.Contexts["vcluster-"+name] = ctx
		cfg.CurrentContext = "vcluster-" + name
	}
	return clientcmd.Write(*cfg)
}

// List implements providers.Provider: the environments of the default host,
// from its namespaces labelled devctl.dev/managed-by=devctl and
// devctl.dev/env: devctl-vc-<env>, or a claimed spare's (labelled with its
// release). Unclaimed spares are not environments. Without a local host
// cluster there are none.
func (p *Provider) List(ctx context.Context) ([]string, error) {
	h, ok, err := p.hostOf(ctx, "")
	if err != nil || !ok {
		return nil, err
	}
	c, err := kube.NewClient(h.kubeconfig)
	if err != nil {
		return nil, err
	}
	return p.listEnvs(ctx, c)
}

// listEnvs lists the environments on the host c reaches.
func (p *Provider) listEnvs(ctx context.Context, c *kube.Client) ([]string, error) {
	nss, err := c.Set.CoreV1().Namespaces().List(ctx, metav1.ListOptions{LabelSelector: LabelManagedBy + "=" + ManagedBy + "," + LabelEnv})
	if err != nil {
		return nil, fmt.Errorf("list vclusters on the host cluster: %w", err)
	}
	var names []string
	for _, ns := range nss.Items {
		n := ns.Labels[LabelEnv]
		switch r := ns.Labels[LabelRelease]; {
		case Namespace(n) == ns.Name:
			names = append(names, n)
		case r != "" && strings.HasPrefix(ns.Name, sparePrefix):
			p.remember(n, location{ns: ns.Name, release: r})
			names = append(names, n)
		}
	}
	slices.Sort(names)
	return names, nil
}

// Delete implements providers.Provider: the port-forward stops and the host
// namespace goes, with the vcluster, its PVCs and ConfigMaps; Delete returns
// once the namespace is gone.
func (p *Provider) Delete(ctx context.Context, name string) error {
	p.stopForward(name)
	defer p.forget(name)
	h, ok, err := p.hostOf(ctx, name)
	if err != nil {
		return fmt.Errorf("delete vcluster %q: %w", name, err)
	}
	if !ok {
		return nil
	}
	c, err := kube.NewClient(h.kubeconfig)
	if err != nil {
		return fmt.Errorf("delete vcluster %q: %w", name, err)
	}
	return DeleteNamespace(ctx, c, name)
}

// DeleteNamespace deletes name's host namespace (devctl-vc-<name>, or the
// claimed spare's labelled devctl.dev/env=<name>), refusing one devctl did
// not label as its own, and waits until it is gone. An unclaimed spare is
// never any environment's.
func DeleteNamespace(ctx context.Context, c *kube.Client, name string) error {
	obj, _, err := findNamespace(ctx, c, name)
	if err != nil {
		return fmt.Errorf("delete vcluster %q: %w", name, err)
	}
	if obj == nil {
		return nil
	}
	ns := obj.Name
	if obj.Labels[LabelManagedBy] != ManagedBy || obj.Labels[LabelEnv] != name {
		return fmt.Errorf("delete vcluster %q: namespace %s is not labelled %s=%s, %s=%s; devctl leaves it alone",
			name, ns, LabelManagedBy, ManagedBy, LabelEnv, name)
	}
	policy := metav1.DeletePropagationForeground
	if err := c.Set.CoreV1().Namespaces().Delete(ctx, ns, metav1.DeleteOptions{PropagationPolicy: &policy}); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("delete vcluster %q: namespace %s: %w", name, ns, err)
	}
	for {
		_, err := c.Set.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("delete vcluster %q: namespace %s is still terminating: %w", name, ns, ctx.Err())
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// LoadImages implements providers.ImageLoader: the images go into the host
// cluster's nodes, where the environment's pods run.
func (p *Provider) LoadImages(ctx context.Context, name string, archive func() (io.ReadCloser, error)) error {
	h, ok, err := p.hostOf(ctx, name)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("vcluster %q: no host cluster: %w", name, providers.ErrNotFound)
	}
	if h.kind == "" {
		return fmt.Errorf("vcluster %q: the host cluster is not a kind cluster of this Docker engine; push images to a registry its nodes pull from", name)
	}
	return p.o.Kind.LoadImages(ctx, h.kind, archive)
}

// PullsFromRegistry implements providers.RegistryPuller: the host's nodes
// read the daemon's registry hosts files.
func (p *Provider) PullsFromRegistry(ctx context.Context, name string) (bool, error) {
	h, ok, err := p.hostOf(ctx, name)
	if err != nil || !ok || h.kind == "" {
		return false, err
	}
	return p.o.Kind.PullsFromRegistry(ctx, h.kind)
}

// StartCommand implements providers.Starter.
func (p *Provider) StartCommand(ctx context.Context, name string) string {
	if _, err := os.Stat(p.envHostKubeconfig(name)); err == nil || p.o.Host != nil {
		return "devctl down && devctl up"
	}
	return p.o.Kind.StartCommand(ctx, p.o.HostName)
}

// Start implements providers.Starter: an environment on the local host is
// started by starting the host's kind cluster (the vcluster pod comes back
// with it); one on a given host cannot be started from here.
func (p *Provider) Start(ctx context.Context, name string) error {
	if _, err := os.Stat(p.envHostKubeconfig(name)); err == nil || p.o.Host != nil || p.o.Kind == nil {
		return fmt.Errorf("the vcluster of %s is on a host cluster devctl did not make: check the host, or run `devctl down && devctl up`", name)
	}
	return p.o.Kind.Start(ctx, p.o.HostName)
}

// loadImages puts the vcluster images into the kind host's nodes unless they
// are there; a missing local image fails with the command that builds it.
func (p *Provider) loadImages(ctx context.Context, kindName string, o *providers.CreateOptions, refs ...string) error {
	if p.imagesLoaded(kindName, refs...) {
		return nil
	}
	if err := p.checkLocalImages(ctx, refs...); err != nil {
		return err
	}
	have := nodeImages(ctx, kindName+"-control-plane")
	var load []string
	for _, r := range refs {
		if !have[r] && !have["docker.io/"+r] && !have["docker.io/library/"+r] {
			load = append(load, r)
		}
	}
	if len(load) == 0 {
		p.markLoaded(kindName, refs...)
		return nil
	}
	done := report(o, fmt.Sprintf("loading the vcluster images into host cluster %s", kindName))
	err := p.o.Kind.LoadImages(ctx, kindName, func() (io.ReadCloser, error) { return p.o.SaveImages(ctx, load...) })
	done(err)
	if err != nil {
		return fmt.Errorf("load the vcluster images into %s: %w", kindName, err)
	}
	p.markLoaded(kindName, refs...)
	return nil
}

// imagesLoaded says whether this process saw refs in the kind cluster's
// nodes since its kubeconfig last changed.
func (p *Provider) imagesLoaded(kindName string, refs ...string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, r := range refs {
		if !p.loaded[kindName+"\x00"+r] {
			return false
		}
	}
	return true
}

func (p *Provider) markLoaded(kindName string, refs ...string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, r := range refs {
		p.loaded[kindName+"\x00"+r] = true
	}
}

// checkLocalImages fails, saying how to build them, when the local Docker
// engine lacks refs (default: the vcluster images).
func (p *Provider) checkLocalImages(ctx context.Context, refs ...string) error {
	if len(refs) == 0 {
		im := p.images()
		refs = []string{im.Syncer, im.Kubernetes}
	}
	var missing []string
	for _, r := range refs {
		if !p.o.ImagePresent(ctx, r) {
			missing = append(missing, r)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("the vcluster image(s) %s are not in the local Docker engine: build them with %s, or name others with $%s and $%s",
			strings.Join(missing, ", "), BuildImagesCommand, EnvSyncerImage, EnvKubernetesImage)
	}
	return nil
}
