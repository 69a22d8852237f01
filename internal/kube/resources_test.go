package kube

import (
	"context"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/devctl/devctl/internal/api"
)

func TestResourcesSayWhyNotReady(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ns := "hello"
	lbl := map[string]string{InstanceLabel: "web"}
	one := int32(1)
	ready := true
	set := fake.NewClientset(
		&appsv1.Deployment{
			ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: ns, Labels: lbl},
			Spec:       appsv1.DeploymentSpec{Replicas: &one},
			Status: appsv1.DeploymentStatus{Conditions: []appsv1.DeploymentCondition{{
				Type: appsv1.DeploymentProgressing, Status: corev1.ConditionFalse,
				Reason: "ProgressDeadlineExceeded", Message: `ReplicaSet "web-1" has timed out progressing.`,
			}}},
		},
		&appsv1.Deployment{
			ObjectMeta: metav1.ObjectMeta{Name: "s3", Namespace: ns, Labels: map[string]string{InstanceLabel: "mocks"}},
			Spec:       appsv1.DeploymentSpec{Replicas: &one},
			Status:     appsv1.DeploymentStatus{Replicas: 1, UpdatedReplicas: 1, AvailableReplicas: 1, ReadyReplicas: 1},
		},
		// Crash loop: the waiting reason and the last exit.
		&corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: "web-crash", Namespace: ns, Labels: lbl},
			Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app"}}},
			Status: corev1.PodStatus{Phase: corev1.PodRunning, ContainerStatuses: []corev1.ContainerStatus{{
				Name: "app", RestartCount: 4,
				State:                corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff", Message: "back-off 40s restarting failed container"}},
				LastTerminationState: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 2, Reason: "Error"}},
			}}},
		},
		// Running, not ready: the failing probe from the events.
		&corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: "web-probe", Namespace: ns, Labels: lbl},
			Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app"}}},
			Status: corev1.PodStatus{Phase: corev1.PodRunning,
				Conditions:        []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionFalse}},
				ContainerStatuses: []corev1.ContainerStatus{{Name: "app", State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}}}},
		},
		// Pending: the scheduler's message.
		&corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: "web-pending", Namespace: ns, Labels: lbl},
			Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app"}}},
			Status: corev1.PodStatus{Phase: corev1.PodPending, Conditions: []corev1.PodCondition{{
				Type: corev1.PodScheduled, Status: corev1.ConditionFalse, Reason: "Unschedulable",
				Message: "0/1 nodes are available: 1 Insufficient memory.",
			}}},
		},
		&corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: "s3-0", Namespace: ns, Labels: map[string]string{InstanceLabel: "mocks"}},
			Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "s3"}}},
			Status: corev1.PodStatus{Phase: corev1.PodRunning,
				Conditions:        []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}},
				ContainerStatuses: []corev1.ContainerStatus{{Name: "s3", Ready: true, RestartCount: 1}}},
		},
		&corev1.Event{
			ObjectMeta:     metav1.ObjectMeta{Name: "ev1", Namespace: ns},
			InvolvedObject: corev1.ObjectReference{Kind: "Pod", Name: "web-probe"},
			Type:           corev1.EventTypeWarning, Reason: "Unhealthy",
			Message: "Readiness probe failed: HTTP probe failed with statuscode: 503",
		},
		&corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: ns, Labels: lbl},
			Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeClusterIP, Selector: lbl,
				Ports: []corev1.ServicePort{{Port: 8080, Protocol: corev1.ProtocolTCP}}},
		},
		&corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Name: "s3", Namespace: ns, Labels: map[string]string{InstanceLabel: "mocks"}},
			Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeClusterIP, Selector: map[string]string{"app": "s3"},
				Ports: []corev1.ServicePort{{Port: 9000, Protocol: corev1.ProtocolTCP}}},
		},
		&discoveryv1.EndpointSlice{
			ObjectMeta: metav1.ObjectMeta{Name: "s3-abc", Namespace: ns, Labels: map[string]string{discoveryv1.LabelServiceName: "s3"}},
			Endpoints:  []discoveryv1.Endpoint{{Addresses: []string{"10.0.0.1"}, Conditions: discoveryv1.EndpointConditions{Ready: &ready}}},
		},
	)
	c := &Client{Set: set}
	items, err := c.Resources(ctx, ns)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]api.Resource{}
	for _, r := range items {
		got[string(r.Kind)+"/"+r.Name] = r
	}
	if len(got) != 8 {
		t.Fatalf("want 8 resources, got %d: %+v", len(got), items)
	}
	cases := []struct {
		key, ready, status, reason string
		ok                         bool
		restarts                   int32
	}{
		{"Deployment/web", "0/1", "ProgressDeadlineExceeded", "timed out progressing", false, 0},
		{"Deployment/s3", "1/1", "Available", "", true, 0},
		{"Pod/web-crash", "0/1", "CrashLoopBackOff", "last exited with code 2 (Error)", false, 4},
		{"Pod/web-probe", "0/1", "NotReady", "Readiness probe failed: HTTP probe failed with statuscode: 503", false, 0},
		{"Pod/web-pending", "0/1", "Unschedulable", "Insufficient memory", false, 0},
		{"Pod/s3-0", "1/1", "Running", "", true, 1},
		{"Service/web", "0/0", "ClusterIP 8080/TCP", "no ready endpoints", false, 0},
		{"Service/s3", "1/1", "ClusterIP 9000/TCP", "", true, 0},
	}
	for _, tc := range cases {
		r, ok := got[tc.key]
		if !ok {
			t.Errorf("%s missing", tc.key)
			continue
		}
		if r.Ready != tc.ready || r.Status != tc.status || r.OK != tc.ok || r.Restarts != tc.restarts {
			t.Errorf("%s = ready %q status %q ok %v restarts %d; want %q %q %v %d", tc.key, r.Ready, r.Status, r.OK, r.Restarts, tc.ready, tc.status, tc.ok, tc.restarts)
		}
		if tc.reason == "" && r.Reason != "" || !strings.Contains(r.Reason, tc.reason) {
			t.Errorf("%s reason = %q, want it to contain %q", tc.key, r.Reason, tc.reason)
		}
	}
	if got["Pod/s3-0"].Service != "mocks" {
		t.Errorf("the mocks' pod belongs to service %q, want mocks", got["Pod/s3-0"].Service)
	}
}
