package kube

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/devctl/devctl/internal/policy"
)

func fakeClient(objs ...any) *Client {
	set := fake.NewClientset()
	for _, o := range objs {
		switch o := o.(type) {
		case *corev1.Namespace:
			_, _ = set.CoreV1().Namespaces().Create(context.Background(), o, metav1.CreateOptions{})
		case *corev1.Pod:
			_, _ = set.CoreV1().Pods(o.Namespace).Create(context.Background(), o, metav1.CreateOptions{})
		case *appsv1.Deployment:
			_, _ = set.AppsV1().Deployments(o.Namespace).Create(context.Background(), o, metav1.CreateOptions{})
		case *appsv1.ReplicaSet:
			_, _ = set.AppsV1().ReplicaSets(o.Namespace).Create(context.Background(), o, metav1.CreateOptions{})
		}
	}
	return &Client{Set: set}
}

func TestEnsureNamespace(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c := fakeClient(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "old", Labels: map[string]string{"keep": "me"}}})
	for _, ns := range []string{"new", "old"} {
		if err := c.EnsureNamespace(ctx, ns, map[string]string{"pod-security.kubernetes.io/enforce": "restricted"}); err != nil {
			t.Fatal(err)
		}
		got, err := c.Set.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if got.Labels["pod-security.kubernetes.io/enforce"] != "restricted" {
			t.Errorf("%s labels = %v", ns, got.Labels)
		}
		if ns == "old" && got.Labels["keep"] != "me" {
			t.Errorf("existing labels dropped: %v", got.Labels)
		}
	}
}

// Applying the admission policies twice creates them and then updates them
// in place.
func TestApplyAdmissionIsIdempotent(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c := fakeClient()
	for range 2 {
		objs, err := policy.AdmissionPolicies("hello")
		if err != nil {
			t.Fatal(err)
		}
		if err := c.ApplyAdmission(ctx, objs); err != nil {
			t.Fatal(err)
		}
	}
	pols, err := c.Set.AdmissionregistrationV1().ValidatingAdmissionPolicies().List(ctx, metav1.ListOptions{})
	if err != nil || len(pols.Items) == 0 {
		t.Fatalf("policies = %v, %v", pols, err)
	}
	binds, err := c.Set.AdmissionregistrationV1().ValidatingAdmissionPolicyBindings().List(ctx, metav1.ListOptions{})
	if err != nil || len(binds.Items) == 0 {
		t.Fatalf("bindings = %v, %v", binds, err)
	}
}

func deployment(ready bool) *appsv1.Deployment {
	one := int32(1)
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "hello", Generation: 1},
		Spec:       appsv1.DeploymentSpec{Replicas: &one},
	}
	d.Status.ObservedGeneration = 1 // the controller has seen the spec
	if ready {
		d.Status = appsv1.DeploymentStatus{ObservedGeneration: 1, Replicas: 1, UpdatedReplicas: 1, AvailableReplicas: 1}
	}
	return d
}

func waitingPod(reason string, restarts int32) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "web-1", Namespace: "hello", Labels: map[string]string{InstanceLabel: "web"}},
		Status: corev1.PodStatus{ContainerStatuses: []corev1.ContainerStatus{{
			Name: "app", RestartCount: restarts,
			State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: reason, Message: "details"}},
		}}},
	}
}

// crashedPod is a pod whose app container exited with 2 and was started
// again restarts times.
func crashedPod(restarts int32) *corev1.Pod {
	p := waitingPod("CrashLoopBackOff", restarts)
	p.Status.ContainerStatuses[0].LastTerminationState.Terminated = &corev1.ContainerStateTerminated{Reason: "Error", ExitCode: 2}
	return p
}

// runningPod is a pod whose app container has run for age without passing
// its readiness probe (every second, three failures).
func runningPod(age time.Duration) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "web-1", Namespace: "hello", Labels: map[string]string{InstanceLabel: "web"}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", ReadinessProbe: &corev1.Probe{
			PeriodSeconds: 1, TimeoutSeconds: 1, FailureThreshold: 3,
		}}}},
		Status: corev1.PodStatus{ContainerStatuses: []corev1.ContainerStatus{{
			Name:  "app",
			State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: metav1.NewTime(time.Now().Add(-age))}},
		}}},
	}
}

// nodeRestartedPod is a pod whose node was killed and started again: its
// container is reported lost, and was lost once before.
func nodeRestartedPod() *corev1.Pod {
	p := waitingPod("", 1)
	lost := &corev1.ContainerStateTerminated{Reason: "Unknown", ExitCode: 255}
	p.Status.ContainerStatuses[0].State = corev1.ContainerState{Terminated: lost}
	p.Status.ContainerStatuses[0].LastTerminationState.Terminated = lost
	return p
}

// serving marks d as having an available replica (of an older version).
func serving(d *appsv1.Deployment) *appsv1.Deployment {
	d.Status.AvailableReplicas = 1
	d.Status.Replicas = 2
	return d
}

func TestWaitRollout(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		objs    func() []any // made when the subtest runs: ages count from then
		wantErr string
	}{
		{"rolled out", func() []any { return []any{deployment(true)} }, ""},
		{"image cannot be pulled", func() []any { return []any{deployment(false), waitingPod("ErrImagePull", 0)} }, "pod web-1: ErrImagePull: details"},
		{"crash loop", func() []any { return []any{deployment(false), crashedPod(3)} }, "container app crashed (Error, exit code 2; restarted 3 time(s)"},
		// A first install gets a second try (a dependency may be starting).
		{"first install, one crash", func() []any { return []any{deployment(false), crashedPod(1)} }, "not rolled out"},
		{"first install, two crashes", func() []any { return []any{deployment(false), crashedPod(2)} }, "crashed"},
		{"rollout while the old version serves, one crash", func() []any { return []any{serving(deployment(false)), crashedPod(1)} }, "crashed"},
		{"starting", func() []any { return []any{deployment(false), runningPod(time.Second)} }, "not rolled out"},
		// A node killed and started again: the kubelet reports the app
		// terminated (Unknown, 255) until it runs it in a new sandbox.
		{"node restarted", func() []any { return []any{serving(deployment(false)), nodeRestartedPod()} }, "not rolled out"},
		{"readiness probe failing", func() []any { return []any{deployment(false), runningPod(time.Minute)} }, "without passing its readiness probe"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
			defer cancel()
			err := fakeClient(tt.objs()...).WaitRollout(ctx, "hello", "web")
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("err = %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("err = %v, want %q", err, tt.wantErr)
			}
		})
	}
}

func TestDiagnose(t *testing.T) {
	t.Parallel()
	out := fakeClient(waitingPod("ImagePullBackOff", 0)).Diagnose(context.Background(), "hello")
	if !strings.Contains(out, "web-1: ") || !strings.Contains(out, "app waiting (ImagePullBackOff: details)") {
		t.Errorf("diagnose:\n%s", out)
	}
}

const kubeconfigTmpl = `apiVersion: v1
kind: Config
clusters:
- name: c
  cluster:
    server: https://127.0.0.1:PORT
contexts:
- name: c
  context: {cluster: c, user: u}
current-context: c
users:
- name: u
  user: {token: t}
`

// A cluster made again under the same kubeconfig path (new API port) gets
// a new client; an unchanged file keeps its client.
func TestClientsFollowTheKubeconfigContent(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "kubeconfig")
	write := func(port string) {
		if err := os.WriteFile(path, []byte(strings.Replace(kubeconfigTmpl, "PORT", port, 1)), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	var cs Clients
	write("6443")
	a, err := cs.For(path)
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := cs.For(path); b != a {
		t.Error("same content, new client")
	}
	write("7443")
	b, err := cs.For(path)
	if err != nil {
		t.Fatal(err)
	}
	if b == a || b.Config.Host != "https://127.0.0.1:7443" {
		t.Errorf("new content: host %s, same client %v", b.Config.Host, b == a)
	}
	cs.Forget(path)
	if c, _ := cs.For(path); c == b {
		t.Error("Forget kept the client")
	}
	if _, err := cs.For(filepath.Join(t.TempDir(), "missing")); err == nil || !strings.Contains(err.Error(), "devctl up") {
		t.Errorf("missing kubeconfig: %v", err)
	}
}

// A Secret that an External Secrets controller has not written yet is
// waited for; one missing for longer than ConfigGrace is stuck.
func TestStuckReasonWaitsForAMissingSecret(t *testing.T) {
	t.Parallel()
	pod := func(age time.Duration) *corev1.Pod {
		return &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: "web-1", Namespace: "ns", Labels: map[string]string{InstanceLabel: "web"},
				CreationTimestamp: metav1.NewTime(time.Now().Add(-age))},
			Status: corev1.PodStatus{ContainerStatuses: []corev1.ContainerStatus{{Name: "app", State: corev1.ContainerState{
				Waiting: &corev1.ContainerStateWaiting{Reason: "CreateContainerConfigError", Message: `secret "web-secrets" not found`}}}}},
		}
	}
	ctx := context.Background()
	d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "ns"}}
	if why := fakeClient(pod(time.Second)).stuckReason(ctx, d); why != "" {
		t.Errorf("a new pod waiting for its Secret is stuck: %s", why)
	}
	if why := fakeClient(pod(2*ConfigGrace)).stuckReason(ctx, d); !strings.Contains(why, `secret "web-secrets" not found`) {
		t.Errorf("stuckReason after the grace = %q", why)
	}
}

// Only the pods of the Deployment's current revision count: an old pod that
// crashed once, long ago, does not fail the rollout of a new one, and a
// crash of the new one does.
func TestStuckReasonLooksAtTheCurrentRevision(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	d := serving(deployment(false))
	d.UID = "d-uid"
	d.Annotations = map[string]string{revisionAnnotation: "2"}
	yes := true
	rs := func(rev, hash string) *appsv1.ReplicaSet {
		return &appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{
			Name: "web-" + hash, Namespace: "hello",
			Labels:          map[string]string{InstanceLabel: "web", appsv1.DefaultDeploymentUniqueLabelKey: hash},
			Annotations:     map[string]string{revisionAnnotation: rev},
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "Deployment", Name: "web", UID: "d-uid", Controller: &yes}},
		}}
	}
	pod := func(name, hash string, crashed bool) *corev1.Pod {
		p := runningPod(time.Second)
		if crashed {
			p = crashedPod(1)
		}
		p.Name = name
		p.Labels[appsv1.DefaultDeploymentUniqueLabelKey] = hash
		return p
	}
	oldCrashed := fakeClient(d, rs("1", "aaa"), rs("2", "bbb"), pod("web-aaa-1", "aaa", true), pod("web-bbb-1", "bbb", false))
	if why := oldCrashed.stuckReason(ctx, d); why != "" {
		t.Errorf("an old pod's crash fails the new rollout: %s", why)
	}
	newCrashed := fakeClient(d, rs("1", "aaa"), rs("2", "bbb"), pod("web-aaa-1", "aaa", false), pod("web-bbb-1", "bbb", true))
	if why := newCrashed.stuckReason(ctx, d); !strings.Contains(why, "pod web-bbb-1: container app crashed") {
		t.Errorf("stuckReason = %q, want the new pod's crash", why)
	}
	// Just upgraded: the controller has not seen generation 2, so revision
	// 2's pod (restarted once with its node) is the old version's.
	unseen := d.DeepCopy()
	unseen.Generation = 2
	if why := newCrashed.stuckReason(ctx, unseen); why != "" {
		t.Errorf("a spec the controller has not seen is judged by the old pods: %s", why)
	}
	// The new revision's ReplicaSet is not made yet: no pod is its.
	noRS := fakeClient(d, rs("1", "aaa"), pod("web-aaa-1", "aaa", true))
	if why := noRS.stuckReason(ctx, d); why != "" {
		t.Errorf("an old pod's crash fails a rollout whose ReplicaSet is not made yet: %s", why)
	}
}

// WaitRollout answers when the Deployment changes, not on its next poll.
func TestWaitRolloutFollowsWatchEvents(t *testing.T) {
	t.Parallel()
	c := fakeClient(deployment(false))
	done := make(chan error, 1)
	go func() { done <- c.WaitRollout(context.Background(), "hello", "web") }()
	time.Sleep(100 * time.Millisecond) // WaitRollout has looked once and waits
	start := time.Now()
	if _, err := c.Set.AppsV1().Deployments("hello").UpdateStatus(context.Background(), deployment(true), metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
		if d := time.Since(start); d >= rolloutPoll {
			t.Errorf("rolled out seen after %v: the poll, not the watch", d)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("WaitRollout did not return")
	}
}

// During a rollout both versions' pods are ready: the forward goes to the
// new one.
func TestReadyPodPrefersTheNewest(t *testing.T) {
	t.Parallel()
	pod := func(name string, age time.Duration, ready bool) *corev1.Pod {
		st := corev1.ConditionFalse
		if ready {
			st = corev1.ConditionTrue
		}
		return &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "hello", Labels: map[string]string{InstanceLabel: "web"},
				CreationTimestamp: metav1.NewTime(time.Now().Add(-age).Truncate(time.Second))},
			Status: corev1.PodStatus{Phase: corev1.PodRunning, Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: st}}},
		}
	}
	c := fakeClient(pod("web-old", time.Hour, true), pod("web-new", time.Minute, true), pod("web-starting", 0, false))
	p, err := c.ReadyPod(context.Background(), "hello", "web")
	if err != nil || p.Name != "web-new" {
		t.Fatalf("ReadyPod = %v, %v; want web-new", p, err)
	}
}
