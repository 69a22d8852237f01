// Package kube holds what devctl does inside an environment's cluster with
// client-go: wait for a rollout, hold a port-forward that follows pod
// restarts, stream logs, and collect diagnostics when something fails.
package kube

import (
	"context"
	"crypto/sha256"
	"fmt"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// InstanceLabel selects a release's pods (the golden-path chart sets it).
const InstanceLabel = "app.kubernetes.io/instance"

// Clients caches one client per kubeconfig file content. A cluster deleted
// and created again under the same kubeconfig path (a new API port, a new
// CA) gets a new client: the cache key is the file's content, and the
// client of its old content is dropped. It is safe for concurrent use.
type Clients struct {
	mu sync.Mutex
	m  map[string]cachedClient // by kubeconfig path
}

type cachedClient struct {
	sum    [sha256.Size]byte
	client *Client
}

// Client is a client-go clientset with its REST config.
type Client struct {
	Config *rest.Config
	Set    kubernetes.Interface
}

// For returns the client for the kubeconfig file's current content.
func (c *Clients) For(kubeconfig string) (*Client, error) {
	b, err := os.ReadFile(kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("read kubeconfig: %w (is the environment up? `devctl up` writes it)", err)
	}
	sum := sha256.Sum256(b)
	c.mu.Lock()
	defer c.mu.Unlock()
	if cc, ok := c.m[kubeconfig]; ok && cc.sum == sum {
		return cc.client, nil
	}
	cl, err := newClient(kubeconfig, b)
	if err != nil {
		return nil, err
	}
	if c.m == nil {
		c.m = map[string]cachedClient{}
	}
	c.m[kubeconfig] = cachedClient{sum: sum, client: cl}
	return cl, nil
}

// Forget drops the client of a kubeconfig file (after its cluster is deleted).
func (c *Clients) Forget(kubeconfig string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.m, kubeconfig)
}

// NewClient builds a client from a kubeconfig file (its current context).
func NewClient(kubeconfig string) (*Client, error) {
	b, err := os.ReadFile(kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("read kubeconfig: %w", err)
	}
	return newClient(kubeconfig, b)
}

// NewClientFromBytes builds a client from kubeconfig content (its current
// context), as NewClient does from a file.
func NewClientFromBytes(kubeconfig []byte) (*Client, error) {
	return newClient("(in memory)", kubeconfig)
}

func newClient(path string, kubeconfig []byte) (*Client, error) {
	cfg, err := clientcmd.RESTConfigFromKubeConfig(kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("load kubeconfig %s: %w", path, err)
	}
	cfg.QPS, cfg.Burst = 50, 100
	set, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("client for %s: %w", path, err)
	}
	return &Client{Config: cfg, Set: set}, nil
}

// WaitRollout waits until the Deployment named release in ns has rolled out:
// every replica updated and available. It returns early, with why, when a
// pod of the new revision cannot start (image pull, config error), crashes
// (the first restart, not the third back-off) or fails its readiness probe
// for longer than the probe allows. It reacts to watch events on the
// Deployment and its pods; a slow poll covers a watch that cannot be held.
func (c *Client) WaitRollout(ctx context.Context, ns, release string) error {
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	changed := make(chan struct{}, 1)
	c.notifyChanges(wctx, ns, release, changed)
	poll := time.NewTicker(rolloutPoll)
	defer poll.Stop()
	for {
		d, err := c.Set.AppsV1().Deployments(ns).Get(ctx, release, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
		case err != nil:
			if ctx.Err() != nil {
				return ctx.Err()
			}
		default:
			if rolledOut(d) {
				return nil
			}
			if why := c.stuckReason(ctx, d); why != "" {
				return fmt.Errorf("deployment %s/%s cannot start: %s", ns, release, why)
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("deployment %s/%s not rolled out: %w", ns, release, ctx.Err())
		case <-changed:
		case <-poll.C:
		}
	}
}

// rolloutPoll is how often WaitRollout looks again without a watch event.
const rolloutPoll = 2 * time.Second

// notifyChanges sends on changed (without blocking) whenever the
// Deployment named release or one of its pods changes, until ctx ends. A
// watch that cannot be opened leaves WaitRollout to its poll.
func (c *Client) notifyChanges(ctx context.Context, ns, release string, changed chan<- struct{}) {
	watches := []func() (watch.Interface, error){
		func() (watch.Interface, error) {
			return c.Set.AppsV1().Deployments(ns).Watch(ctx, metav1.ListOptions{FieldSelector: "metadata.name=" + release})
		},
		func() (watch.Interface, error) {
			return c.Set.CoreV1().Pods(ns).Watch(ctx, metav1.ListOptions{LabelSelector: InstanceLabel + "=" + release})
		},
	}
	for _, open := range watches {
		go notifyOnEvents(ctx, open, changed)
	}
}

// notifyOnEvents sends on changed (without blocking) for every event of the
// watch open starts, opening it again when the server ends it, until ctx
// ends or the watch cannot be opened.
func notifyOnEvents(ctx context.Context, open func() (watch.Interface, error), changed chan<- struct{}) {
	for ctx.Err() == nil {
		w, err := open()
		if err != nil {
			return
		}
		for more := true; more; {
			select {
			case <-ctx.Done():
				w.Stop()
				return
			case _, more = <-w.ResultChan():
				if more {
					select {
					case changed <- struct{}{}:
					default:
					}
				}
			}
		}
		w.Stop()
	}
}

func rolledOut(d *appsv1.Deployment) bool {
	want := int32(1)
	if d.Spec.Replicas != nil {
		want = *d.Spec.Replicas
	}
	s := d.Status
	return s.ObservedGeneration >= d.Generation && s.UpdatedReplicas >= want &&
		s.AvailableReplicas >= want && s.Replicas == s.UpdatedReplicas
}

// ConfigGrace is how long a pod may wait for a missing Secret or ConfigMap
// before WaitRollout calls it stuck.
var ConfigGrace = time.Minute

// revisionAnnotation is the Deployment controller's revision number, on
// the Deployment and on each of its ReplicaSets.
const revisionAnnotation = "deployment.kubernetes.io/revision"

// currentPods returns the pods of d's current revision: those of the
// ReplicaSet whose revision is d's: none while that ReplicaSet is not made
// yet; every pod of the release when d has no revision (an older controller).
func (c *Client) currentPods(ctx context.Context, d *appsv1.Deployment) ([]corev1.Pod, error) {
	sel := metav1.ListOptions{LabelSelector: InstanceLabel + "=" + d.Name}
	pods, err := c.Set.CoreV1().Pods(d.Namespace).List(ctx, sel)
	if err != nil {
		return nil, err
	}
	rev := d.Annotations[revisionAnnotation]
	if rev == "" {
		return pods.Items, nil
	}
	rss, err := c.Set.AppsV1().ReplicaSets(d.Namespace).List(ctx, sel)
	if err != nil {
		return pods.Items, nil
	}
	hash := ""
	for _, rs := range rss.Items {
		if rs.Annotations[revisionAnnotation] == rev && metav1.IsControlledBy(&rs, d) {
			hash = rs.Labels[appsv1.DefaultDeploymentUniqueLabelKey]
		}
	}
	if hash == "" {
		return nil, nil // the revision's ReplicaSet is not made yet: no pod of it either
	}
	var cur []corev1.Pod
	for _, p := range pods.Items {
		if p.Labels[appsv1.DefaultDeploymentUniqueLabelKey] == hash {
			cur = append(cur, p)
		}
	}
	return cur, nil
}

// stuckReason names what keeps a pod of d's current revision from ever
// becoming ready: a waiting reason that will not fix itself, a crash (no
// waiting for CrashLoopBackOff's growing back-offs), or a
// readiness probe failing for longer than its own settings allow.
func (c *Client) stuckReason(ctx context.Context, d *appsv1.Deployment) string {
	if d.Status.ObservedGeneration < d.Generation {
		// The controller has not seen the new spec: the pods of its
		// "current" revision are the old version's (which may have
		// restarted with their node), not the new one's.
		return ""
	}
	pods, err := c.currentPods(ctx, d)
	if err != nil {
		return ""
	}
	// While an older version serves (a rollout of a new one) one crash
	// fails the rollout, which is then taken back; a first install allows
	// a second try (a dependency still starting), about ten seconds later.
	crashes := int32(2)
	if d.Status.AvailableReplicas > 0 {
		crashes = 1
	}
	now := time.Now()
	for _, p := range pods {
		for _, cs := range p.Status.ContainerStatuses {
			if why := containerStuck(&p, &cs, crashes, now); why != "" {
				return fmt.Sprintf("pod %s: %s", p.Name, why)
			}
		}
	}
	return ""
}

func containerStuck(p *corev1.Pod, cs *corev1.ContainerStatus, crashes int32, now time.Time) string {
	if w := cs.State.Waiting; w != nil {
		switch w.Reason {
		case "CreateContainerConfigError":
			// A Secret or ConfigMap a controller writes (External
			// Secrets) may appear just after the pod; the kubelet
			// retries, so only a lasting absence is stuck.
			if strings.Contains(w.Message, "not found") && now.Sub(p.CreationTimestamp.Time) < ConfigGrace {
				return ""
			}
			return fmt.Sprintf("%s: %s", w.Reason, w.Message)
		case "ErrImagePull", "ImagePullBackOff", "InvalidImageName", "CreateContainerError":
			return fmt.Sprintf("%s: %s", w.Reason, w.Message)
		}
	}
	if t := cs.LastTerminationState.Terminated; t != nil && cs.RestartCount >= crashes && !lostWithItsNode(t) {
		return fmt.Sprintf("container %s crashed (%s, exit code %d; restarted %d time(s): CrashLoopBackOff follows; see `devctl logs`)",
			cs.Name, t.Reason, t.ExitCode, cs.RestartCount)
	}
	if t := cs.State.Terminated; t != nil && t.ExitCode != 0 && !lostWithItsNode(t) {
		return fmt.Sprintf("container %s exited (%s, exit code %d; see `devctl logs`)", cs.Name, t.Reason, t.ExitCode)
	}
	if r := cs.State.Running; r != nil && !cs.Ready {
		if grace, ok := readinessGrace(p, cs.Name); ok && now.Sub(r.StartedAt.Time) > grace {
			return fmt.Sprintf("container %s has been running for %s without passing its readiness probe (see `devctl logs`)",
				cs.Name, now.Sub(r.StartedAt.Time).Round(time.Second))
		}
	}
	return ""
}

// lostWithItsNode reports a container the runtime lost rather than one
// that exited: its node (or container runtime) stopped under it. The
// kubelet reports it terminated, reason Unknown, exit code 255, and starts
// it again in a new sandbox: not a crash of the app.
func lostWithItsNode(t *corev1.ContainerStateTerminated) bool {
	return t.Reason == "Unknown" && t.ExitCode == 255
}

// readinessGrace is how long a container may run before its readiness
// probe must have passed: the probe's initial delay plus twice its failure
// threshold of periods (and timeouts), at least ten seconds. A container
// without a readiness probe has none.
func readinessGrace(p *corev1.Pod, container string) (time.Duration, bool) {
	for _, ct := range p.Spec.Containers {
		if ct.Name != container || ct.ReadinessProbe == nil {
			continue
		}
		pr := ct.ReadinessProbe
		period, timeout, failures := max(pr.PeriodSeconds, 1), max(pr.TimeoutSeconds, 1), max(pr.FailureThreshold, 3)
		secs := pr.InitialDelaySeconds + 2*failures*(period+timeout)
		return max(time.Duration(secs)*time.Second, 10*time.Second), true
	}
	return 0, false
}

// ReadyPod returns the newest running, ready pod of release.
func (c *Client) ReadyPod(ctx context.Context, ns, release string) (*corev1.Pod, error) {
	pods, err := c.Set.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: InstanceLabel + "=" + release})
	if err != nil {
		return nil, err
	}
	// The newest: during a rollout the new version's pod is ready while
	// the old one still runs, about to be stopped.
	var best *corev1.Pod
	for i := range pods.Items {
		p := &pods.Items[i]
		if p.DeletionTimestamp == nil && p.Status.Phase == corev1.PodRunning && podReady(p) &&
			(best == nil || best.CreationTimestamp.Before(&p.CreationTimestamp)) {
			best = p
		}
	}
	if best == nil {
		return nil, fmt.Errorf("no ready pod of %s in namespace %s", release, ns)
	}
	return best, nil
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// Diagnose describes what went wrong in ns: the pods' states, the recent
// warning events and the last log lines of each pod's containers.
func (c *Client) Diagnose(ctx context.Context, ns string) string {
	var b strings.Builder
	pods, err := c.Set.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return fmt.Sprintf("(cannot list pods in %s: %v)\n", ns, err)
	}
	fmt.Fprintf(&b, "Pods in namespace %s:\n", ns)
	if len(pods.Items) == 0 {
		b.WriteString("  (none)\n")
	}
	for _, p := range pods.Items {
		fmt.Fprintf(&b, "  %s: %s%s\n", p.Name, p.Status.Phase, containerStates(&p))
	}
	evs, err := c.Set.CoreV1().Events(ns).List(ctx, metav1.ListOptions{})
	if err == nil && len(evs.Items) > 0 {
		sort.Slice(evs.Items, func(i, j int) bool { return EventTime(&evs.Items[i]).Before(EventTime(&evs.Items[j])) })
		items := evs.Items
		if len(items) > 20 {
			items = items[len(items)-20:]
		}
		b.WriteString("Events:\n")
		for _, e := range items {
			fmt.Fprintf(&b, "  %s %s %s/%s: %s: %s\n", EventTime(&e).Format(time.TimeOnly), e.Type, strings.ToLower(e.InvolvedObject.Kind), e.InvolvedObject.Name, e.Reason, strings.TrimSpace(e.Message))
		}
	}
	tail := int64(20)
	for _, p := range pods.Items {
		for _, ct := range p.Spec.Containers {
			raw, err := c.Set.CoreV1().Pods(ns).GetLogs(p.Name, &corev1.PodLogOptions{Container: ct.Name, TailLines: &tail}).DoRaw(ctx)
			if err != nil || len(raw) == 0 {
				continue
			}
			fmt.Fprintf(&b, "Last log lines of %s/%s:\n", p.Name, ct.Name)
			for _, l := range strings.Split(strings.TrimRight(string(raw), "\n"), "\n") {
				fmt.Fprintf(&b, "  %s\n", l)
			}
		}
	}
	return b.String()
}

func containerStates(p *corev1.Pod) string {
	var parts []string
	for _, cs := range p.Status.ContainerStatuses {
		switch {
		case cs.State.Waiting != nil:
			parts = append(parts, fmt.Sprintf("%s waiting (%s: %s)", cs.Name, cs.State.Waiting.Reason, cs.State.Waiting.Message))
		case cs.State.Terminated != nil:
			parts = append(parts, fmt.Sprintf("%s terminated (%s, exit %d)", cs.Name, cs.State.Terminated.Reason, cs.State.Terminated.ExitCode))
		case !cs.Ready:
			parts = append(parts, cs.Name+" not ready")
		}
		if cs.RestartCount > 0 {
			parts = append(parts, fmt.Sprintf("%d restarts", cs.RestartCount))
		}
	}
	if len(parts) == 0 {
		return ""
	}
	return ", " + strings.Join(parts, ", ")
}

// EventTime is when e last happened: its last timestamp, its event time,
// or when it was made, whichever it has.
func EventTime(e *corev1.Event) time.Time {
	switch {
	case !e.LastTimestamp.IsZero():
		return e.LastTimestamp.Time
	case !e.EventTime.IsZero():
		return e.EventTime.Time
	default:
		return e.CreationTimestamp.Time
	}
}

// Ready asks the API server's /readyz: nil when it answers ready.
func (c *Client) Ready(ctx context.Context) error {
	_, err := c.Set.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
	return err
}
