package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

// timeline records when a cold up's milestones were first seen, as offsets
// from the start of the up: the environment's kubeconfig written (as soon
// as the API answers, before kind returns), the node Ready, without its
// not-ready taint and without any NoSchedule taint (kubeadm's control-plane
// one, which kind lifts), and the service's pod created, scheduled, initialised, started and Ready. The API
// is polled every 100 ms once the kubeconfig exists (conditions carry
// seconds only), so each figure is at most ~0.1 s late.
type timeline struct {
	start time.Time
	mu    sync.Mutex
	seen  map[string]time.Duration
}

// milestones in the order they normally happen.
var milestones = []string{
	"kubeconfig written",
	"API answers",
	"node Ready",
	"node untainted",
	"node schedulable",
	"pod created",
	"pod scheduled",
	"pod initialised",
	"container started",
	"pod Ready",
}

// podMilestones name the pod conditions the timeline records.
var podMilestones = map[corev1.PodConditionType]string{
	corev1.PodScheduled:   "pod scheduled",
	corev1.PodInitialized: "pod initialised",
	corev1.PodReady:       "pod Ready",
}

func (t *timeline) mark(what string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, ok := t.seen[what]; !ok {
		t.seen[what] = time.Since(t.start)
	}
}

// watch polls until ctx ends. state is the daemon's state directory; the
// environment's kubeconfig appears under it as envs/NAME/kubeconfig.
func (t *timeline) watch(ctx context.Context, state, namespace string) {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	var cs *kubernetes.Clientset
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if cs == nil {
			files, _ := filepath.Glob(filepath.Join(state, "envs", "*", "kubeconfig"))
			if len(files) == 0 {
				continue
			}
			b, err := os.ReadFile(files[0])
			if err != nil || len(b) == 0 {
				continue
			}
			t.mark(milestones[0])
			cfg, err := clientcmd.RESTConfigFromKubeConfig(b)
			if err != nil {
				continue
			}
			cfg.Timeout = 2 * time.Second
			if cs, err = kubernetes.NewForConfig(cfg); err != nil {
				cs = nil
				continue
			}
		}
		t.poll(ctx, cs, namespace)
	}
}

func (t *timeline) poll(ctx context.Context, cs *kubernetes.Clientset, namespace string) {
	nodes, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return
	}
	t.mark("API answers")
	for _, n := range nodes.Items {
		for _, c := range n.Status.Conditions {
			if c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue {
				t.mark("node Ready")
			}
		}
		if !slices.ContainsFunc(n.Spec.Taints, func(tn corev1.Taint) bool { return tn.Key == corev1.TaintNodeNotReady }) {
			t.mark("node untainted")
		}
		// kind lifts kubeadm's control-plane taint once kubeadm is done.
		if !slices.ContainsFunc(n.Spec.Taints, func(tn corev1.Taint) bool { return tn.Effect == corev1.TaintEffectNoSchedule }) {
			t.mark("node schedulable")
		}
	}
	pods, err := cs.CoreV1().Pods(namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return
	}
	for _, p := range pods.Items {
		t.mark("pod created")
		for _, c := range p.Status.Conditions {
			if c.Status != corev1.ConditionTrue {
				continue
			}
			if m, ok := podMilestones[c.Type]; ok {
				t.mark(m)
			}
		}
		for _, s := range p.Status.ContainerStatuses {
			if s.State.Running != nil {
				t.mark("container started")
			}
		}
	}
}

// String is one line per milestone seen, in order of time.
func (t *timeline) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	names := slices.Clone(milestones)
	slices.SortStableFunc(names, func(a, b string) int {
		da, oka := t.seen[a]
		db, okb := t.seen[b]
		switch {
		case !oka || !okb:
			return 0
		case da < db:
			return -1
		case da > db:
			return 1
		}
		return 0
	})
	var b strings.Builder
	for _, n := range names {
		if d, ok := t.seen[n]; ok {
			fmt.Fprintf(&b, "  seen +%5.1fs  %s\n", d.Seconds(), n)
		} else {
			fmt.Fprintf(&b, "  never seen    %s\n", n)
		}
	}
	return b.String()
}
