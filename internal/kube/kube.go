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
// observed, all replicas updated and available. It fails early when a pod
// cannot start (image pull, crash loop, config error) and says why.
func (c *Client) WaitRollout(ctx context.Context, ns, release string) error {
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
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
			if why := c.stuckReason(ctx, ns, release); why != "" {
				return fmt.Errorf("deployment %s/%s cannot start: %s", ns, release, why)
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("deployment %s/%s not rolled out: %w", ns, release, ctx.Err())
		case <-tick.C:
		}
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

// stuckReason names a container waiting reason that will not fix itself.
func (c *Client) stuckReason(ctx context.Context, ns, release string) string {
	pods, err := c.Set.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: InstanceLabel + "=" + release})
	if err != nil {
		return ""
	}
	for _, p := range pods.Items {
		for _, cs := range p.Status.ContainerStatuses {
			w := cs.State.Waiting
			if w == nil {
				continue
			}
			switch w.Reason {
			case "CreateContainerConfigError":
				// A Secret or ConfigMap a controller writes (External
				// Secrets) may appear just after the pod; the kubelet
				// retries, so only a lasting absence is stuck.
				if strings.Contains(w.Message, "not found") && time.Since(p.CreationTimestamp.Time) < ConfigGrace {
					continue
				}
				return fmt.Sprintf("pod %s: %s: %s", p.Name, w.Reason, w.Message)
			case "ErrImagePull", "ImagePullBackOff", "InvalidImageName", "CreateContainerError":
				return fmt.Sprintf("pod %s: %s: %s", p.Name, w.Reason, w.Message)
			case "CrashLoopBackOff":
				if cs.RestartCount >= 3 {
					return fmt.Sprintf("pod %s: %s after %d restarts (see `devctl logs`)", p.Name, w.Reason, cs.RestartCount)
				}
			}
		}
	}
	return ""
}

// ReadyPod returns a running, ready pod of release.
func (c *Client) ReadyPod(ctx context.Context, ns, release string) (*corev1.Pod, error) {
	pods, err := c.Set.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: InstanceLabel + "=" + release})
	if err != nil {
		return nil, err
	}
	for i := range pods.Items {
		p := &pods.Items[i]
		if p.DeletionTimestamp == nil && p.Status.Phase == corev1.PodRunning && podReady(p) {
			return p, nil
		}
	}
	return nil, fmt.Errorf("no ready pod of %s in namespace %s", release, ns)
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
		sort.Slice(evs.Items, func(i, j int) bool { return eventTime(&evs.Items[i]).Before(eventTime(&evs.Items[j])) })
		items := evs.Items
		if len(items) > 20 {
			items = items[len(items)-20:]
		}
		b.WriteString("Events:\n")
		for _, e := range items {
			fmt.Fprintf(&b, "  %s %s %s/%s: %s: %s\n", eventTime(&e).Format(time.TimeOnly), e.Type, strings.ToLower(e.InvolvedObject.Kind), e.InvolvedObject.Name, e.Reason, strings.TrimSpace(e.Message))
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

func eventTime(e *corev1.Event) time.Time {
	switch {
	case !e.LastTimestamp.IsZero():
		return e.LastTimestamp.Time
	case !e.EventTime.IsZero():
		return e.EventTime.Time
	default:
		return e.CreationTimestamp.Time
	}
}
