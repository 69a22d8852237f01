package kube_test

import (
	"context"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/yaml"

	"github.com/devctl/devctl/internal/k8stest"
	"github.com/devctl/devctl/internal/kube"
	"github.com/devctl/devctl/internal/policy"
)

// writable is a Deployment that breaks read-only-root-filesystem only.
const writable = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: writable
  labels: {app.kubernetes.io/name: writable, devctl.dev/team: dx, devctl.dev/owner: dx, devctl.dev/cost-center: cc-1}
spec:
  selector: {matchLabels: {app: writable}}
  template:
    metadata: {labels: {app: writable}}
    spec:
      securityContext: {runAsNonRoot: true, runAsUser: 1000, seccompProfile: {type: RuntimeDefault}}
      containers:
      - name: app
        image: example.invalid/app:1
        readinessProbe: {httpGet: {path: /, port: 8080}}
        livenessProbe: {httpGet: {path: /, port: 8080}}
        resources: {requests: {cpu: 10m, memory: 16Mi}, limits: {cpu: 100m, memory: 32Mi}}
        securityContext: {allowPrivilegeEscalation: false, readOnlyRootFilesystem: false, capabilities: {drop: [ALL]}}
`

// AwaitAdmitted tells a denial by a policy binding from anything else, and
// returns once the API server enforces a binding changed by a waiver: the
// object it exempts is then created for real at once, with no retry.
func TestIntegrationAwaitAdmitted(t *testing.T) {
	if testing.Short() {
		t.Skip("integration: needs a kube-apiserver (make k8s-tools)")
	}
	cp := k8stest.Start(t)
	c := &kube.Client{Config: cp.RESTConfig(), Set: cp.Client()}
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	const ns = "await-it"
	if err := c.EnsureNamespace(ctx, ns, nil); err != nil {
		t.Fatal(err)
	}
	obj := &unstructured.Unstructured{}
	if err := yaml.Unmarshal([]byte(writable), &obj.Object); err != nil {
		t.Fatal(err)
	}

	objs, err := policy.AdmissionPolicies(ns)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.ApplyAdmission(ctx, objs); err != nil {
		t.Fatal(err)
	}
	// No waiver: once the API server enforces the new policies (it admits
	// everything before), the object stays denied, and the error says by
	// what.
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, err = c.AwaitAdmitted(ctx, ns, []*unstructured.Unstructured{obj}, time.Second)
		if err != nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if !kube.IsPolicyDenial(err) || !strings.Contains(err.Error(), "readOnlyRootFilesystem") {
		t.Fatalf("without a waiver: err = %v, want a denial by read-only-root-filesystem only", err)
	}
	t.Logf("denied: %v", err)

	w := policy.Waiver{Rule: policy.RuleReadOnlyRootFilesystem, Target: policy.WaiverTarget{Kind: "Deployment", Name: "writable"},
		Reason: "r", Approver: "a@example.com", Expires: time.Now().Add(time.Hour).UTC().Format(time.RFC3339)}
	objs, err = policy.AdmissionPoliciesWaived(ns, []policy.Waiver{w}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := c.ApplyAdmission(ctx, objs); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	probes, err := c.AwaitAdmitted(ctx, ns, []*unstructured.Unstructured{obj}, 15*time.Second)
	if err != nil {
		t.Fatalf("with the waiver applied: %v", err)
	}
	t.Logf("admitted after %d probe(s) in %s", probes, time.Since(start).Round(time.Millisecond))
	// Nothing was persisted by the probes; the real create now passes.
	if _, err := c.Set.AppsV1().Deployments(ns).Get(ctx, "writable", metav1.GetOptions{}); err == nil {
		t.Error("a dry-run probe created the Deployment")
	}
	var d appsv1.Deployment
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(obj.Object, &d); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Set.AppsV1().Deployments(ns).Create(ctx, &d, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create after AwaitAdmitted: %v", err)
	}

	// Other errors are not denials.
	if kube.IsPolicyDenial(context.DeadlineExceeded) {
		t.Error("a deadline is not a policy denial")
	}
	_, err = c.Set.CoreV1().Namespaces().Get(ctx, "missing", metav1.GetOptions{})
	if kube.IsPolicyDenial(err) {
		t.Errorf("%v is not a policy denial", err)
	}
}
