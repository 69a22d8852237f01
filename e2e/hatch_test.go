//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/kind/pkg/cluster"

	"github.com/devctl/devctl/e2e/harness"
	"github.com/devctl/devctl/internal/api"
	"github.com/devctl/devctl/internal/kube"
)

// hatchProject is one repository holding examples/chart-svc (its own Helm
// chart) and examples/kustomize-svc (a Kustomize overlay) as two services,
// so that both run in one environment, on one kind cluster. The chart is
// given a violation: a writable root filesystem, at failOn medium.
const hatchProject = `apiVersion: devctl.dev/v1alpha1
kind: Project
name: hatch
team: platform-dx
owner: dx@example.com
costCenter: cc-0042
policy:
  failOn: medium
  waivers: waivers.yaml
services:
  - name: chart-svc
    context: chart-svc
    go: {package: ., output: bin/chart-svc}
    port: 9090
    chart: chart-svc/chart
    image: ghcr.io/acme/chart-svc
    valuesFiles: [chart-svc/chart/values-dev.yaml]
    values: {replicas: 1, readOnlyRootFilesystem: false}
  - name: kustomize-svc
    context: kustomize-svc
    go: {package: ., output: bin/kustomize-svc}
    port: 8081
    kustomize: kustomize-svc/deploy/overlays/dev
    image: registry.example.com/shop/kustomize-svc
`

func hatchRepo(t *testing.T) string {
	t.Helper()
	root, err := harness.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(t.TempDir(), "hatch")
	if err := os.Mkdir(dst, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, ex := range []string{"chart-svc", "kustomize-svc"} {
		if out, err := exec.Command("cp", "-r", filepath.Join(root, "examples", ex), dst).CombinedOutput(); err != nil {
			t.Fatalf("copy %s: %v %s", ex, err, out)
		}
		_ = os.RemoveAll(filepath.Join(dst, ex, "bin"))
		// The services are deployed by the project's devctl.yaml.
		_ = os.Remove(filepath.Join(dst, ex, "devctl.yaml"))
	}
	writeFile(t, filepath.Join(dst, "devctl.yaml"), hatchProject)
	writeFile(t, filepath.Join(dst, "waivers.yaml"), "waivers: []\n")
	for _, args := range [][]string{
		{"init", "-q", "-b", "e2e/hatch"},
		{"-c", "user.email=e2e@example.com", "-c", "user.name=e2e", "commit", "-q", "--allow-empty", "-m", "init"},
	} {
		cmd := exec.Command("git", args...)
		cmd.Dir = dst
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v %s", args, err, out)
		}
	}
	return dst
}

func writeFile(t *testing.T, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

func waiverFile(expires time.Time) string {
	return fmt.Sprintf(`waivers:
  - rule: read-only-root-filesystem
    target: {kind: Deployment, name: chart-svc}
    reason: the vendor's profiler writes to /var/profiles until PLAT-7 ships an emptyDir
    ticket: PLAT-7
    approver: lead@example.com
    expires: %s
`, expires.UTC().Format(time.DateOnly))
}

// TestEscapeHatchesOnKind: a service with its own Helm chart and one with
// a Kustomize overlay, in one environment on one kind cluster. The chart's
// violation fails `devctl up` before anything is installed, with the
// findings `devctl check` gives; a waiver with an expiry lets it through
// (up and admission), for that object only; both services then serve,
// are Helm releases, and a second up changes no revision; once the waiver
// has expired, up fails again and admission denies the object.
func TestEscapeHatchesOnKind(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 25*time.Minute)
	defer cancel()
	dir := hatchRepo(t)
	e := newDevctlEnv(t, ctx, dir)
	e.cleanupAtEnd(t, true)

	// devctl check sees the violation in the chart, at its template line.
	out, _, code := e.run(ctx, "check")
	if code != 1 || !strings.Contains(out, "read-only-root-filesystem") || !strings.Contains(out, "chart-svc/chart/templates/deployment.yaml") {
		t.Fatalf("devctl check: exit %d, want 1 with the finding at the chart's template:\n%s", code, out)
	}

	// up fails at the policy step with the same finding: nothing installed.
	out, errOut, code := e.run(ctx, "up", "--ci")
	if code == 0 || !strings.Contains(out+errOut, "read-only-root-filesystem") {
		t.Fatalf("up with the violation: exit %d, want a policy failure\n%s\n%s", code, out, errOut)
	}
	var list []api.Environment
	if err := json.Unmarshal([]byte(e.mustRun(ctx, "ls", "-o", "json")), &list); err != nil {
		t.Fatal(err)
	}
	if list = mine(list, dir); len(list) != 1 {
		t.Fatalf("ls: %+v", list)
	}
	name := list[0].Name
	kindProvider := cluster.NewProvider(cluster.ProviderWithLogger(harness.KindLogger(t, 0)))
	harness.ExportLogsOnFailure(t, kindProvider, name)
	st := e.status(ctx, name)
	for _, s := range st.Status.Run.Steps {
		if s.Name == "deploy" {
			t.Errorf("deploy ran after the policy failure: %s %s", s.Status, s.Detail)
		}
	}
	if rels := helmList(ctx, t, st); len(rels) != 0 {
		t.Fatalf("the violation was installed: %s", describeReleases(rels))
	}
	kc, err := kube.NewClient(st.Status.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	ns := st.Status.Namespace

	// A waiver that expires in a month: up deploys both and they serve.
	writeFile(t, filepath.Join(dir, "waivers.yaml"), waiverFile(time.Now().AddDate(0, 1, 0)))
	e.mustRun(ctx, "up", "--ci")
	st = e.status(ctx, name)
	for svc, want := range map[string]string{"chart-svc": "hello from chart-svc", "kustomize-svc": "hello from kustomize-svc"} {
		s := st.Status.Service(svc)
		if s == nil || s.URL == "" {
			t.Fatalf("%s has no URL: %+v", svc, st.Status.Services)
		}
		if body, err := get(ctx, s.URL); err != nil || !strings.Contains(body, want) {
			t.Errorf("GET %s (%s) = %q, %v", s.URL, svc, body, err)
		}
	}
	rels := helmList(ctx, t, st)
	charts := map[string]string{}
	for _, r := range rels {
		charts[r.Name] = fmt.Sprintf("%s-%s rev %d %s", r.Chart.Metadata.Name, r.Chart.Metadata.Version, r.Version, r.Info.Status)
	}
	if charts["chart-svc"] != "chart-svc-1.2.0 rev 1 deployed" || charts["kustomize-svc"] != "kustomize-svc-0.1.0 rev 1 deployed" || len(rels) != 2 {
		t.Errorf("helm ls: %v", charts)
	}
	// The built image runs, not the one the chart names.
	dep, err := kc.Set.AppsV1().Deployments(ns).Get(ctx, "chart-svc", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if img := dep.Spec.Template.Spec.Containers[0].Image; !strings.HasPrefix(img, "devctl.local/hatch/chart-svc:") {
		t.Errorf("chart-svc runs %s, want the image devctl built", img)
	}

	// Admission: the waived object may change; a copy of it under another
	// name may not (no exemption for a hatch, only the waiver's target).
	if err := touch(ctx, kc, dep); err != nil {
		t.Errorf("update of the waived Deployment: %v, want admitted", err)
	}
	cp := dep.DeepCopy()
	cp.ObjectMeta = metav1.ObjectMeta{Name: "chart-svc-copy", Namespace: ns, Labels: dep.Labels}
	cp.Status = appsv1.DeploymentStatus{}
	_, err = kc.Set.AppsV1().Deployments(ns).Create(ctx, cp, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
	if err == nil || !strings.Contains(err.Error(), "readOnlyRootFilesystem") {
		t.Errorf("create of an unwaived copy: err = %v, want an admission denial", err)
	} else {
		t.Logf("admission: %v", err)
	}

	// Nothing changed: a second up makes no new revision.
	e.mustRun(ctx, "up", "--ci")
	for _, r := range helmList(ctx, t, e.status(ctx, name)) {
		if r.Version != 1 {
			t.Errorf("second up upgraded %s to revision %d", r.Name, r.Version)
		}
	}

	// The waiver expired yesterday: up fails and says so, the release is
	// not touched, and admission denies the object again.
	writeFile(t, filepath.Join(dir, "waivers.yaml"), waiverFile(time.Now().AddDate(0, 0, -1)))
	out, errOut, code = e.run(ctx, "up", "--ci")
	if code == 0 || !strings.Contains(out+errOut, "waiver expired") {
		t.Errorf("up with an expired waiver: exit %d, want a failure naming the expired waiver\n%s\n%s", code, out, errOut)
	}
	// The API server applies a changed policy binding through its informers:
	// the denial comes within moments, not necessarily at once.
	if err := denied(ctx, kc, dep, 15*time.Second); err == nil || !strings.Contains(err.Error(), "readOnlyRootFilesystem") {
		t.Errorf("update with an expired waiver: err = %v, want an admission denial", err)
	}
	for _, r := range helmList(ctx, t, e.status(ctx, name)) {
		if r.Version != 1 {
			t.Errorf("after the failed up %s is at revision %d", r.Name, r.Version)
		}
	}

	out = e.mustRun(ctx, "down")
	if !strings.Contains(out, "deleted kind cluster "+name) {
		t.Errorf("down says:\n%s", out)
	}
	harness.AssertNoClusterContainers(ctx, t, name)
}

// touch updates a Deployment's annotation, as a person's kubectl apply
// would, without persisting it (server-side dry run: admission still runs).
// denied touches d until admission denies it or within has passed, and
// returns the last answer.
func denied(ctx context.Context, kc *kube.Client, d *appsv1.Deployment, within time.Duration) error {
	deadline := time.Now().Add(within)
	for {
		err := touch(ctx, kc, d)
		if (err != nil && strings.Contains(err.Error(), "denied request")) || time.Now().After(deadline) {
			return err
		}
		time.Sleep(500 * time.Millisecond)
	}
}

func touch(ctx context.Context, kc *kube.Client, d *appsv1.Deployment) error {
	cur, err := kc.Set.AppsV1().Deployments(d.Namespace).Get(ctx, d.Name, metav1.GetOptions{})
	if err != nil {
		return err
	}
	if cur.Annotations == nil {
		cur.Annotations = map[string]string{}
	}
	cur.Annotations["e2e.devctl.dev/touched"] = time.Now().Format(time.RFC3339Nano)
	_, err = kc.Set.AppsV1().Deployments(d.Namespace).Update(ctx, cur, metav1.UpdateOptions{DryRun: []string{metav1.DryRunAll}})
	return err
}
