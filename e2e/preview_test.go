//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/kind/pkg/apis/config/v1alpha4"
	"sigs.k8s.io/kind/pkg/cluster"

	"github.com/devctl/devctl/e2e/harness"
	"github.com/devctl/devctl/internal/kube"
	"github.com/devctl/devctl/internal/preview"
)

// TestPreviews runs `devctl preview` against one kind cluster standing in
// for a CI host cluster: two PRs' previews serve different builds; pause
// scales a vcluster to zero and resume brings it back; an up after the TTL
// ran out is what gc deletes, leaving an unlabelled namespace alone; down
// leaves no namespace, PVC, ConfigMap or ClusterRole of the preview behind.
// The images of e2e/images/vcluster.sh must be built.
func TestPreviews(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 25*time.Minute)
	defer cancel()
	requireVClusterImages(ctx, t)
	dir := copyExample(t)
	commitAll(t, dir, "hello")
	e := newDevctlEnv(t, ctx, dir)
	e.cleanupAtEnd(t, false)

	// The host: a kind cluster of this engine, reached only through its
	// kubeconfig, as a CI job reaches its host.
	harness.UseDockerWrapper(t)
	name := fmt.Sprintf("devctl-preview-host-%d", os.Getpid())
	kc := filepath.Join(t.TempDir(), "host.yaml")
	image, err := harness.NodeImage(ctx)
	if err != nil {
		t.Fatal(err)
	}
	kp := cluster.NewProvider(cluster.ProviderWithLogger(harness.KindLogger(t, 0)))
	harness.ExportLogsOnFailure(t, kp, name)
	t.Cleanup(func() {
		if err := harness.DeleteCluster(context.Background(), t, kp, name, kc); err != nil {
			t.Errorf("delete host cluster %s: %v", name, err)
		}
	})
	start := time.Now()
	err = kp.Create(name,
		cluster.CreateWithV1Alpha4Config(&v1alpha4.Cluster{
			TypeMeta:             v1alpha4.TypeMeta{Kind: "Cluster", APIVersion: "kind.x-k8s.io/v1alpha4"},
			Nodes:                []v1alpha4.Node{{Role: v1alpha4.ControlPlaneRole}},
			KubeadmConfigPatches: []string{"kind: KubeletConfiguration\nfailCgroupV1: false\n"},
		}),
		cluster.CreateWithNodeImage(image),
		cluster.CreateWithKubeconfigPath(kc),
		cluster.CreateWithWaitForReady(3*time.Minute),
		cluster.CreateWithDisplayUsage(false),
		cluster.CreateWithDisplaySalutation(false),
	)
	if err != nil {
		t.Fatalf("create the host cluster: %v", err)
	}
	t.Logf("host cluster %s made in %.1fs", name, time.Since(start).Seconds())
	hc, err := kube.NewClient(kc)
	if err != nil {
		t.Fatal(err)
	}
	host := []string{"--kubeconfig", kc, "--repo", "acme/hello"}
	bystander := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "team-bystander", Labels: map[string]string{
		// Looks expired to a careless selector; not a preview.
		preview.LabelPR: "1", preview.LabelExpiresAt: "20000101T000000Z",
	}}}
	if _, err := hc.Set.CoreV1().Namespaces().Create(ctx, bystander, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	up := func(e *devctlEnv, pr int, ttl string, want string) (url, env, out string) {
		t.Helper()
		sha := strings.TrimSpace(gitRun(t, dir, "rev-parse", "HEAD"))
		summary := filepath.Join(t.TempDir(), "summary.md")
		start := time.Now()
		out = e.mustRun(ctx, append([]string{"preview", "up", "--pr", fmt.Sprint(pr), "--sha", sha, "--ttl", ttl, "--summary-file", summary}, host...)...)
		m := urlLine.FindStringSubmatch(out)
		if m == nil {
			t.Fatalf("no URL for hello in:\n%s", out)
		}
		body, err := get(ctx, m[1])
		if err != nil || !strings.Contains(body, want) {
			t.Fatalf("PR %d: GET %s = %q, %v; want %q", pr, m[1], body, err, want)
		}
		t.Logf("FIGURE preview up (PR %d) -> URL serving: %.1fs", pr, time.Since(start).Seconds())
		md, err := os.ReadFile(summary)
		if err != nil || !strings.Contains(string(md), "is ready") || !strings.Contains(string(md), m[1]) {
			t.Errorf("step summary (%v):\n%s", err, md)
		}
		return m[1], preview.EnvName("acme/hello", pr), out
	}

	// 1. Two PRs, two builds.
	url1, env1, _ := up(e, 1, "1s", "hello") // expires at once: gc's target below
	gitRun(t, dir, "checkout", "-q", "-b", "pr2")
	main := filepath.Join(dir, "main.go")
	src, err := os.ReadFile(main)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(main, []byte(strings.Replace(string(src), `c.Greeting = "hello"`, `c.Greeting = "hello from pr2"`, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	commitAll(t, dir, "pr2")
	_, env2, _ := up(e, 2, "72h", "hello from pr2")
	if body, err := get(ctx, url1); err != nil || strings.Contains(body, "pr2") {
		t.Errorf("PR 1's preview now serves %q (%v): the PRs share a build", body, err)
	}
	ns1, ns2 := "devctl-vc-"+env1, "devctl-vc-"+env2
	for _, ns := range []string{ns1, ns2} {
		obj, err := hc.Set.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
		if err != nil {
			t.Fatalf("namespace %s: %v", ns, err)
		}
		if _, ok := preview.FromNamespace(obj.ObjectMeta); !ok {
			t.Errorf("namespace %s is not labelled as a preview: %v", ns, obj.Labels)
		}
	}
	var items []struct {
		preview.Preview
		State preview.State `json:"state"`
	}
	if err := json.Unmarshal([]byte(e.mustRun(ctx, append([]string{"preview", "ls", "-o", "json"}, host...)...)), &items); err != nil {
		t.Fatal(err)
	}
	if len(items) != 2 || items[0].State != preview.StateExpired || items[1].State != preview.StateRunning {
		t.Errorf("ls = %+v, want PR 1 Expired and PR 2 Running", items)
	}

	// 2. Pause scales PR 2's vcluster to zero; resume brings it back.
	e.mustRun(ctx, append([]string{"preview", "pause", "--pr", "2"}, host...)...)
	sts, err := hc.Set.AppsV1().StatefulSets(ns2).List(ctx, metav1.ListOptions{})
	if err != nil || len(sts.Items) == 0 {
		t.Fatalf("StatefulSets in %s: %v", ns2, err)
	}
	for _, s := range sts.Items {
		if *s.Spec.Replicas != 0 {
			t.Errorf("StatefulSet %s has %d replicas after pause", s.Name, *s.Spec.Replicas)
		}
	}
	start = time.Now()
	e.mustRun(ctx, append([]string{"preview", "resume", "--pr", "2"}, host...)...)
	t.Logf("FIGURE preview resume -> vcluster ready: %.1fs", time.Since(start).Seconds())
	sts, _ = hc.Set.AppsV1().StatefulSets(ns2).List(ctx, metav1.ListOptions{})
	for _, s := range sts.Items {
		if s.Status.ReadyReplicas < 1 {
			t.Errorf("StatefulSet %s not ready after resume: %+v", s.Name, s.Status)
		}
	}
	// The next push's job runs on a fresh machine (a daemon with no state)
	// and finds PR 2 paused: its up adopts the namespace, wakes the
	// vcluster and serves.
	e.mustRun(ctx, append([]string{"preview", "pause", "--pr", "2"}, host...)...)
	fresh := newDevctlEnv(t, ctx, dir)
	fresh.cleanupAtEnd(t, false)
	if _, _, out := up(fresh, 2, "72h", "hello from pr2"); !strings.Contains(out, "wake") {
		t.Errorf("the up of a paused preview did not wake it:\n%s", out)
	}

	// 3. gc deletes the expired preview and nothing else.
	e.mustRun(ctx, append([]string{"preview", "gc"}, host...)...)
	if _, err := hc.Set.CoreV1().Namespaces().Get(ctx, ns1, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("expired preview's namespace %s after gc: %v", ns1, err)
	}
	for _, ns := range []string{ns2, bystander.Name} {
		if _, err := hc.Set.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{}); err != nil {
			t.Errorf("gc touched namespace %s: %v", ns, err)
		}
	}

	// 4. down leaves nothing of PR 2 on the host.
	e.mustRun(ctx, append([]string{"preview", "down", "--pr", "2"}, host...)...)
	for _, ns := range []string{ns1, ns2} {
		if _, err := hc.Set.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("namespace %s after down: %v", ns, err)
		}
		if pvcs, err := hc.Set.CoreV1().PersistentVolumeClaims(ns).List(ctx, metav1.ListOptions{}); err != nil || len(pvcs.Items) > 0 {
			t.Errorf("PVCs left in %s: %v", ns, err)
		}
		if cms, err := hc.Set.CoreV1().ConfigMaps(ns).List(ctx, metav1.ListOptions{}); err != nil || len(cms.Items) > 0 {
			t.Errorf("ConfigMaps left in %s: %v", ns, err)
		}
	}
	crs, err := hc.Set.RbacV1().ClusterRoles().List(ctx, metav1.ListOptions{LabelSelector: "app=vcluster"})
	if err != nil {
		t.Fatal(err)
	}
	for _, cr := range crs.Items {
		t.Errorf("ClusterRole %s left after down and gc", cr.Name)
	}
	if _, err := hc.Set.CoreV1().Namespaces().Get(ctx, bystander.Name, metav1.GetOptions{}); err != nil {
		t.Errorf("the unlabelled namespace: %v", err)
	}
}

// commitAll commits every change in dir: each preview is of a commit.
func commitAll(t *testing.T, dir, msg string) {
	t.Helper()
	gitRun(t, dir, "add", "-A")
	gitRun(t, dir, "-c", "user.email=e2e@example.com", "-c", "user.name=e2e", "commit", "-q", "-m", msg)
}
