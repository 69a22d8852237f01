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

func TestWaitRollout(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		objs    []any
		wantErr string
	}{
		{"rolled out", []any{deployment(true)}, ""},
		{"image cannot be pulled", []any{deployment(false), waitingPod("ErrImagePull", 0)}, "pod web-1: ErrImagePull: details"},
		{"crash loop", []any{deployment(false), waitingPod("CrashLoopBackOff", 3)}, "CrashLoopBackOff after 3 restarts"},
		{"not yet", []any{deployment(false), waitingPod("CrashLoopBackOff", 1)}, "not rolled out"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
			defer cancel()
			err := fakeClient(tt.objs...).WaitRollout(ctx, "hello", "web")
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
	if why := fakeClient(pod(time.Second)).stuckReason(ctx, "ns", "web"); why != "" {
		t.Errorf("a new pod waiting for its Secret is stuck: %s", why)
	}
	if why := fakeClient(pod(2*ConfigGrace)).stuckReason(ctx, "ns", "web"); !strings.Contains(why, `secret "web-secrets" not found`) {
		t.Errorf("stuckReason after the grace = %q", why)
	}
}
