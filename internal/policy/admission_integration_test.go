package policy

import (
	"context"
	"strings"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/devctl/devctl/internal/k8stest"
)

// TestIntegrationAdmissionDenies installs AdmissionPolicies in a real
// kube-apiserver and proves a violating Deployment is rejected with the
// local rule's message while a compliant one is accepted.
func TestIntegrationAdmissionDenies(t *testing.T) {
	if testing.Short() {
		t.Skip("integration: needs a kube-apiserver (make k8s-tools)")
	}
	cp := k8stest.Start(t)
	client := cp.Client()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	const ns = "policy-it"
	if _, err := client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	objs, err := AdmissionPolicies(ns)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range objs {
		switch v := o.(type) {
		case *admissionv1.ValidatingAdmissionPolicy:
			_, err = client.AdmissionregistrationV1().ValidatingAdmissionPolicies().Create(ctx, v, metav1.CreateOptions{})
		case *admissionv1.ValidatingAdmissionPolicyBinding:
			_, err = client.AdmissionregistrationV1().ValidatingAdmissionPolicyBindings().Create(ctx, v, metav1.CreateOptions{})
		}
		if err != nil {
			t.Fatalf("install policy: %v", err)
		}
	}

	var compliant, violating appsv1.Deployment
	for _, d := range golden(t, nil) {
		if d.Object.GetKind() == "Deployment" {
			if err := fromUnstructured(d.Object.Object, &compliant); err != nil {
				t.Fatal(err)
			}
		}
	}
	compliant.Namespace = ns
	violating = *compliant.DeepCopy()
	violating.Name = "web-writable"
	f := false
	violating.Spec.Template.Spec.Containers[0].SecurityContext.ReadOnlyRootFilesystem = &f

	// The local engine's message for the violation.
	e := newTestEngine(t, Options{})
	docs := golden(t, func(d map[string]any) []Document {
		container(d)["securityContext"].(map[string]any)["readOnlyRootFilesystem"] = false
		return nil
	})
	r, err := e.Check(ctx, docs, nil)
	if err != nil {
		t.Fatal(err)
	}
	var want string
	for _, f := range r.Findings {
		if f.Rule == RuleReadOnlyRootFilesystem {
			want = f.Message
		}
	}
	if want == "" {
		t.Fatal("local engine found no read-only-root-filesystem violation")
	}

	// Policies take effect once the API server's informers see them:
	// retry the violating create (dry run) until it is denied.
	var denyErr error
	for ctx.Err() == nil {
		_, denyErr = client.AppsV1().Deployments(ns).Create(ctx, &violating, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		if denyErr != nil {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if denyErr == nil || !strings.Contains(denyErr.Error(), want) {
		t.Fatalf("violating Deployment: error %v, want a denial containing %q", denyErr, want)
	}
	if !strings.Contains(denyErr.Error(), AdmissionPolicyPrefix+RuleReadOnlyRootFilesystem) {
		t.Errorf("denial does not name the policy: %v", denyErr)
	}
	if _, err := client.AppsV1().Deployments(ns).Create(ctx, &compliant, metav1.CreateOptions{}); err != nil {
		t.Fatalf("compliant Deployment rejected: %v", err)
	}
}
