package helm

import (
	"context"
	"testing"
	"time"

	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/release"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/devctl/devctl/internal/k8stest"
	"github.com/devctl/devctl/internal/kube"
)

// TestIntegrationDeployOnControlPlane installs the golden-path chart on a real
// kube-apiserver (pods made Ready by kwok), waits for the rollout, checks
// that a second identical deploy is a no-op and that a change upgrades.
func TestIntegrationDeployOnControlPlane(t *testing.T) {
	if testing.Short() {
		t.Skip("integration: needs the control plane binaries from `make k8s-tools`")
	}
	cp := k8stest.Start(t)
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	const ns, name = "shop-itest", "shop" // the namespace does not exist yet: Deploy creates it

	cfg, err := NewConfig(cp.Kubeconfig, ns)
	if err != nil {
		t.Fatal(err)
	}
	ch := goldenPath(t)
	vals := values("v1")
	vals["replicas"] = 2

	d := NewDeploy(cfg)
	d.ReleaseName = name
	d.Timeout = 2 * time.Minute
	d.Labels = map[string]string{"devctl.dev/branch": "main"}
	start := time.Now()
	res, err := d.Run(ctx, ch, vals)
	if err != nil {
		t.Fatalf("install: %v", err)
	}
	kc := &kube.Client{Set: cp.Client()}
	if err := kc.WaitRollout(ctx, ns, name); err != nil {
		t.Fatal(err)
	}
	t.Logf("install and rollout took %v", time.Since(start).Round(time.Millisecond))
	if !res.Changed || res.Revision != 1 {
		t.Errorf("install: revision %d changed %v, want 1 true", res.Revision, res.Changed)
	}

	dep, err := cp.Client().AppsV1().Deployments(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !available(dep) || dep.Status.ReadyReplicas != 2 {
		t.Errorf("deployment not available after the rollout: %+v", dep.Status)
	}
	if got := dep.Spec.Template.Spec.Containers[0].Image; got != "localhost:5001/shop:v1" {
		t.Errorf("image = %q", got)
	}
	for _, get := range []func() error{
		func() error {
			_, err := cp.Client().CoreV1().Services(ns).Get(ctx, name, metav1.GetOptions{})
			return err
		},
		func() error {
			_, err := cp.Client().PolicyV1().PodDisruptionBudgets(ns).Get(ctx, name, metav1.GetOptions{})
			return err
		},
		func() error {
			_, err := cp.Client().NetworkingV1().NetworkPolicies(ns).Get(ctx, name, metav1.GetOptions{})
			return err
		},
	} {
		if err := get(); err != nil {
			t.Errorf("chart object missing: %v", err)
		}
	}

	rel, err := action.NewGet(cfg.action).Run(name)
	if err != nil {
		t.Fatal(err)
	}
	if rel.Info.Status != release.StatusDeployed || rel.Labels[DigestLabel] != res.Digest || rel.Labels["devctl.dev/branch"] != "main" {
		t.Errorf("release = %s %v, want deployed with digest %s", rel.Info.Status, rel.Labels, res.Digest)
	}

	// Same chart and values: nothing applied, revision unchanged.
	again, err := d.Run(ctx, ch, vals)
	if err != nil {
		t.Fatalf("second run: %v", err)
	}
	if again.Changed || again.Revision != 1 {
		t.Errorf("second run: revision %d changed %v, want 1 false", again.Revision, again.Changed)
	}

	// A new image tag upgrades and rolls out.
	vals["image"] = map[string]any{"repository": "localhost:5001/shop", "tag": "v2"}
	up, err := d.Run(ctx, ch, vals)
	if err != nil {
		t.Fatalf("upgrade: %v", err)
	}
	if err := kc.WaitRollout(ctx, ns, name); err != nil {
		t.Fatal(err)
	}
	if !up.Changed || up.Revision != 2 {
		t.Errorf("upgrade: revision %d changed %v, want 2 true", up.Revision, up.Changed)
	}
	dep, err = cp.Client().AppsV1().Deployments(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if dep.Spec.Template.Spec.Containers[0].Image != "localhost:5001/shop:v2" || !available(dep) {
		t.Errorf("after upgrade: image %s, status %+v", dep.Spec.Template.Spec.Containers[0].Image, dep.Status)
	}

}

func available(d *appsv1.Deployment) bool {
	for _, c := range d.Status.Conditions {
		if c.Type == appsv1.DeploymentAvailable {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}
