package charts_test

import (
	"context"
	"strings"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/devctl/devctl/charts"
	"github.com/devctl/devctl/internal/helm"
	"github.com/devctl/devctl/internal/k8stest"
	"github.com/devctl/devctl/internal/kube"
	"github.com/devctl/devctl/internal/policy"
)

// TestIntegrationLiveOnControlPlane installs the chart in live mode on a real
// kube-apiserver, in a namespace enforcing Pod Security "restricted" with
// devctl's admission policies installed, and waits until the Deployment is
// available (kwok runs no containers: this proves the API server and
// admission accept the live pod, not that it starts).
func TestIntegrationLiveOnControlPlane(t *testing.T) {
	if testing.Short() {
		t.Skip("integration: needs the control plane binaries from `make k8s-tools`")
	}
	cp := k8stest.Start(t)
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	ns := cp.NewNamespace(t, policy.PodSecurityLabels())
	objs, err := policy.AdmissionPolicies(ns)
	if err != nil {
		t.Fatal(err)
	}
	client := cp.Client()
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
	// Policies take effect once the API server's informers see them.
	waitForPolicies(ctx, t, cp, ns)

	cfg, err := helm.NewConfig(cp.Kubeconfig, ns)
	if err != nil {
		t.Fatal(err)
	}
	ch, err := charts.GoldenPath()
	if err != nil {
		t.Fatal(err)
	}
	d := helm.NewDeploy(cfg)
	d.ReleaseName = release
	d.Timeout = 2 * time.Minute
	if _, err := d.Run(ctx, ch, liveValues()); err != nil {
		t.Fatalf("install in live mode: %v", err)
	}
	if err := (&kube.Client{Set: client}).WaitRollout(ctx, ns, release); err != nil {
		t.Fatal(err)
	}
	pods, err := client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/name=" + release})
	if err != nil {
		t.Fatal(err)
	}
	if len(pods.Items) != 1 || len(pods.Items[0].Spec.InitContainers) != 2 {
		t.Fatalf("pods = %d, want one with the two live init containers", len(pods.Items))
	}
	sec, err := client.CoreV1().Secrets(ns).Get(ctx, release+"-devctl-agent", metav1.GetOptions{})
	if err != nil || string(sec.Data["token"]) != "s3cret" {
		t.Errorf("token Secret: %v", err)
	}
}

// waitForPolicies creates a violating Deployment (dry run) until admission
// denies it.
func waitForPolicies(ctx context.Context, t *testing.T, cp *k8stest.ControlPlane, ns string) {
	t.Helper()
	v := liveValues()
	v["live"].(map[string]any)["initResources"] = nil
	docs, err := policy.ParseManifests("violating.yaml", []byte(render(t, v)))
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range docs {
		if d.Object.GetKind() != "Deployment" {
			continue
		}
		d.Object.SetNamespace(ns)
		res := cp.Client().AppsV1().RESTClient().Post().Namespace(ns).Resource("deployments").Param("dryRun", "All")
		for ctx.Err() == nil {
			b, err := d.Object.MarshalJSON()
			if err != nil {
				t.Fatal(err)
			}
			err = res.Body(b).SetHeader("Content-Type", "application/json").Do(ctx).Error()
			if err != nil && strings.Contains(err.Error(), `container "devctl-agent-install" must set resources.`) {
				t.Logf("admission is on: %v", err)
				return // denied: the init containers have no resources
			}
			if err != nil {
				t.Fatalf("dry-run create: %v", err)
			}
			time.Sleep(200 * time.Millisecond)
		}
		t.Fatal("admission policies never took effect")
	}
}
