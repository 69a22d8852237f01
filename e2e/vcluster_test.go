//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/kind/pkg/cluster"

	"github.com/devctl/devctl/e2e/harness"
	"github.com/devctl/devctl/internal/api"
	"github.com/devctl/devctl/internal/kube"
)

// TestVClusterEnvironments runs `cluster.provider: vcluster` on one kind host
// cluster for the whole test: the first `devctl up` makes the host and a
// vcluster in it and examples/hello serves; the provider then starts a spare
// vcluster, which `devctl ls` does not list; a second branch's environment
// on the now warm host claims the spare and serves, and the next spare
// starts; after a daemon restart both environments are found, and `devctl
// down` of both leaves no namespace, PVC or ConfigMap of theirs on the host
// (checked with client-go) and the unclaimed spare in place. The timings
// are logged as FIGURE lines, with the timeline of the vcluster pods. The
// images of e2e/images/vcluster.sh must be built.
func TestVClusterEnvironments(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 25*time.Minute)
	defer cancel()
	requireVClusterImages(ctx, t)
	dir := copyExample(t)
	cfgPath := filepath.Join(dir, "devctl.yaml")
	cfg, err := os.ReadFile(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfgPath, append(cfg, "cluster:\n  provider: vcluster\n"...), 0o644); err != nil {
		t.Fatal(err)
	}

	e := newDevctlEnv(t, ctx, dir)
	// $DEVCTL_VCLUSTER_HOST names the host cluster on a machine shared with
	// other runs; it is deleted at the end either way.
	host := os.Getenv("DEVCTL_VCLUSTER_HOST")
	if host == "" {
		host = fmt.Sprintf("devctl-host-e2e-%d", os.Getpid())
	}
	e.environ = append(e.environ, "DEVCTL_VCLUSTER_HOST="+host)
	kindProvider := cluster.NewProvider(cluster.ProviderWithLogger(harness.KindLogger(t, 0)))
	harness.ExportLogsOnFailure(t, kindProvider, host)
	// Runs after the daemon's cleanup below (cleanups run last-in first-out).
	t.Cleanup(func() {
		if err := harness.DeleteCluster(context.Background(), t, kindProvider, host, ""); err != nil {
			t.Errorf("delete host cluster %s: %v", host, err)
		}
	})
	e.cleanupAtEnd(t, false)

	// 1. A cold host: the kind host cluster, then the first vcluster.
	start := time.Now()
	out := e.mustRun(ctx, "up", "--ci")
	first := serve(ctx, t, e, out, dir)
	t.Logf("FIGURE cold host + first vcluster env -> serving: %.1fs", time.Since(start).Seconds())
	logSteps(t, "first", first)

	hc, err := kube.NewClient(filepath.Join(e.state, "hosts", host, "kubeconfig"))
	if err != nil {
		t.Fatal(err)
	}
	logClusterTimeline(ctx, t, hc, "devctl-vc-"+first.Name, first.Name, out)
	ns := "devctl-vc-" + first.Name
	nsObj, err := hc.Set.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("host namespace %s: %v", ns, err)
	}
	if nsObj.Labels["devctl.dev/env"] != first.Name || nsObj.Labels["devctl.dev/managed-by"] != "devctl" {
		t.Errorf("host namespace labels %v", nsObj.Labels)
	}
	if q, err := hc.Set.CoreV1().ResourceQuotas(ns).List(ctx, metav1.ListOptions{}); err != nil || len(q.Items) == 0 {
		t.Errorf("no ResourceQuota in %s (%v)", ns, err)
	}
	if l, err := hc.Set.CoreV1().LimitRanges(ns).List(ctx, metav1.ListOptions{}); err != nil || len(l.Items) == 0 {
		t.Errorf("no LimitRange in %s (%v)", ns, err)
	}
	// The service's pod runs on the host, synced from the virtual cluster.
	if pods, err := hc.Set.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{}); err != nil || len(pods.Items) < 2 {
		t.Errorf("pods in %s: %v (%v); want the vcluster and the synced hello pod", ns, pods, err)
	}

	// The daemon's port-forward to the virtual API follows a new vcluster
	// pod: the environment's kubeconfig answers again, and so does the URL.
	old, err := hc.Set.CoreV1().Pods(ns).Get(ctx, first.Name+"-0", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	start = time.Now()
	if err := hc.Set.CoreV1().Pods(ns).Delete(ctx, old.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	vc, err := kube.NewClient(first.Status.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	var lastErr error
	for deadline := time.Now().Add(3 * time.Minute); ; time.Sleep(time.Second) {
		if time.Now().After(deadline) {
			t.Fatalf("the vcluster does not answer through %s 3 minutes after its pod was replaced: %v", first.Status.Kubeconfig, lastErr)
		}
		pod, err := hc.Set.CoreV1().Pods(ns).Get(ctx, old.Name, metav1.GetOptions{})
		if err != nil {
			lastErr = err
			continue
		}
		if pod.UID == old.UID {
			lastErr = errors.New("the pod is not replaced yet")
			continue
		}
		if _, lastErr = vc.Set.CoreV1().Namespaces().Get(ctx, "kube-public", metav1.GetOptions{}); lastErr != nil {
			continue
		}
		if _, lastErr = get(ctx, first.Status.Service("hello").URL); lastErr == nil {
			break
		}
	}
	t.Logf("FIGURE vcluster pod replaced -> API and URL answer again: %.1fs", time.Since(start).Seconds())

	// 2. The warm spare: once the first environment serves, the provider
	// starts one vcluster ahead of time. It is not an environment.
	start = time.Now()
	spare := waitSpare(ctx, t, hc, "", true)
	t.Logf("FIGURE spare vcluster started after the first env served -> Ready: %.1fs (from this point of the test)", time.Since(start).Seconds())
	logClusterTimeline(ctx, t, hc, spare.Name, spare.Labels["devctl.dev/vcluster-release"], "")
	for _, env := range mineList(ctx, t, e, dir) {
		if env.Name != first.Name {
			t.Errorf("devctl ls lists %s besides %s (the spare must not be an environment)", env.Name, first.Name)
		}
	}
	if table := e.mustRun(ctx, "ls"); !strings.Contains(table, "spare vcluster "+spare.Name+" on host "+host) {
		t.Errorf("devctl ls does not note spare %s under its table:\n%s", spare.Name, table)
	}

	// 3. A second branch on the warm host claims the spare.
	gitRun(t, dir, "checkout", "-q", "-b", "e2e/second")
	start = time.Now()
	out = e.mustRun(ctx, "up", "--ci")
	second := serve(ctx, t, e, out, dir)
	t.Logf("FIGURE new branch env on a warm host (spare claimed) -> serving: %.1fs", time.Since(start).Seconds())
	logSteps(t, "second", second)
	if second.Name == first.Name {
		t.Fatalf("both branches got environment %s", first.Name)
	}
	for _, s := range runSteps(second) {
		if s.Name == "cluster" {
			t.Logf("FIGURE the cluster step, warm host, spare claimed: %.1fs", s.Duration.Seconds())
		}
	}
	if !strings.Contains(out, "claimed the ") {
		t.Errorf("up of %s does not report claiming the spare", second.Name)
	}
	claimed, err := hc.Set.CoreV1().Namespaces().Get(ctx, spare.Name, metav1.GetOptions{})
	switch {
	case err != nil:
		t.Fatalf("the claimed spare's namespace %s: %v", spare.Name, err)
	case claimed.Labels["devctl.dev/env"] != second.Name || claimed.Labels["devctl.dev/managed-by"] != "devctl" ||
		claimed.Labels["devctl.dev/vcluster-spare"] != "" || claimed.Labels["devctl.dev/vcluster-release"] == "":
		t.Errorf("claimed namespace %s labels %v: want devctl.dev/env=%s and the release, no spare label", spare.Name, claimed.Labels, second.Name)
	}
	// The environment's API is the spare's virtual cluster, reached
	// through the daemon's port-forward.
	vc2, err := kube.NewClient(second.Status.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := vc2.Set.CoreV1().Namespaces().Get(ctx, second.Status.Namespace, metav1.GetOptions{}); err != nil {
		t.Errorf("namespace %s in the claimed vcluster: %v", second.Status.Namespace, err)
	}
	// The next spare starts once the second environment serves (its
	// install done before the daemon stops below: a stop cuts it short).
	next := waitSpare(ctx, t, hc, spare.Name, false)

	// A restarted daemon finds the claimed spare by its label.
	e.mustRun(ctx, "daemon", "stop")
	if got := e.status(ctx, second.Name); got.Status.Kubeconfig == "" {
		t.Errorf("after a daemon restart, %s has no kubeconfig: %+v", second.Name, got.Status)
	}
	names := map[string]bool{}
	for _, env := range mineList(ctx, t, e, dir) {
		names[env.Name] = true
	}
	if len(names) != 2 || !names[first.Name] || !names[second.Name] {
		t.Errorf("after a daemon restart devctl ls lists %v, want %s and %s", names, first.Name, second.Name)
	}

	// 4. down leaves nothing of either on the host, and never touches the
	// unclaimed spare.
	for _, env := range []api.Environment{second, first} {
		e.mustRun(ctx, "down", env.Name)
	}
	places := map[string][2]string{ // environment: namespace, release
		first.Name:  {"devctl-vc-" + first.Name, first.Name},
		second.Name: {spare.Name, claimed.Labels["devctl.dev/vcluster-release"]},
	}
	for env, at := range places {
		ns, release := at[0], at[1]
		if _, err := hc.Set.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{}); err == nil {
			t.Errorf("namespace %s of %s is still there after down", ns, env)
		}
		if pvcs, err := hc.Set.CoreV1().PersistentVolumeClaims("").List(ctx, metav1.ListOptions{}); err != nil {
			t.Error(err)
		} else {
			for _, p := range pvcs.Items {
				if p.Namespace == ns || strings.Contains(p.Name, release) {
					t.Errorf("PVC %s/%s is left after down", p.Namespace, p.Name)
				}
			}
		}
		if cms, err := hc.Set.CoreV1().ConfigMaps("").List(ctx, metav1.ListOptions{}); err != nil {
			t.Error(err)
		} else {
			for _, c := range cms.Items {
				if c.Namespace == ns || strings.Contains(c.Name, release) {
					t.Errorf("ConfigMap %s/%s is left after down", c.Namespace, c.Name)
				}
			}
		}
		sel := metav1.ListOptions{LabelSelector: "release=" + release}
		if cms, err := hc.Set.CoreV1().ConfigMaps("").List(ctx, sel); err == nil && len(cms.Items) > 0 {
			t.Errorf("ConfigMaps labelled %s left: %d", sel.LabelSelector, len(cms.Items))
		}
	}
	if pvs, err := hc.Set.CoreV1().PersistentVolumes().List(ctx, metav1.ListOptions{}); err == nil {
		for _, pv := range pvs.Items {
			if ref := pv.Spec.ClaimRef; ref != nil && ref.Namespace != next.Name && strings.HasPrefix(ref.Namespace, "devctl-") && pv.Status.Phase != "Released" {
				t.Errorf("PV %s still bound to %s/%s", pv.Name, ref.Namespace, ref.Name)
			}
		}
	}
	if ns, err := hc.Set.CoreV1().Namespaces().Get(ctx, next.Name, metav1.GetOptions{}); err != nil || ns.DeletionTimestamp != nil {
		t.Errorf("the unclaimed spare %s did not survive the environments' down: %v", next.Name, err)
	}
}

// waitSpare waits (3 minutes at most) for an unclaimed spare vcluster's
// namespace on the host other than not, with its Helm release deployed, and
// its vcluster pod ready when ready is set, and returns the namespace.
func waitSpare(ctx context.Context, t *testing.T, hc *kube.Client, not string, ready bool) corev1.Namespace {
	t.Helper()
	var last string
	for deadline := time.Now().Add(3 * time.Minute); time.Now().Before(deadline); time.Sleep(time.Second) {
		nss, err := hc.Set.CoreV1().Namespaces().List(ctx, metav1.ListOptions{LabelSelector: "devctl.dev/managed-by=devctl,devctl.dev/vcluster-spare=true"})
		if err != nil {
			last = err.Error()
			continue
		}
		last = fmt.Sprintf("%d spare namespace(s)", len(nss.Items))
		for _, ns := range nss.Items {
			if ns.Name == not || ns.Labels["devctl.dev/env"] != "" {
				continue
			}
			rel, err := hc.Set.CoreV1().Secrets(ns.Name).List(ctx, metav1.ListOptions{LabelSelector: "owner=helm,status=deployed"})
			if err != nil || len(rel.Items) == 0 {
				last = fmt.Sprintf("spare %s: release not deployed yet (%v)", ns.Name, err)
				continue
			}
			if !ready {
				return ns
			}
			pods, err := hc.Set.CoreV1().Pods(ns.Name).List(ctx, metav1.ListOptions{LabelSelector: "app=vcluster"})
			if err != nil || len(pods.Items) == 0 {
				last = fmt.Sprintf("spare %s: no vcluster pod yet (%v)", ns.Name, err)
				continue
			}
			for _, c := range pods.Items[0].Status.Conditions {
				if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
					return ns
				}
			}
			last = fmt.Sprintf("spare %s: pod %s not ready", ns.Name, pods.Items[0].Name)
		}
	}
	t.Fatalf("no spare vcluster (ready: %v) on the host after 3 minutes: %s", ready, last)
	return corev1.Namespace{}
}

// serve finds the URL in up's output, checks hello answers there and
// returns the environment.
func serve(ctx context.Context, t *testing.T, e *devctlEnv, out, dir string) api.Environment {
	t.Helper()
	m := urlLine.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no URL for hello in:\n%s", out)
	}
	body, err := get(ctx, m[1])
	if err != nil || !strings.Contains(body, "hello") {
		t.Fatalf("GET %s = %q, %v", m[1], body, err)
	}
	branch := strings.TrimSpace(gitRun(t, dir, "rev-parse", "--abbrev-ref", "HEAD"))
	for _, env := range mineList(ctx, t, e, dir) {
		if env.Spec.Branch == branch {
			if env.Spec.Provider != api.ProviderVCluster {
				t.Errorf("environment %s has provider %q", env.Name, env.Spec.Provider)
			}
			return e.status(ctx, env.Name)
		}
	}
	t.Fatalf("no environment for branch %s", branch)
	return api.Environment{}
}

func mineList(ctx context.Context, t *testing.T, e *devctlEnv, dir string) []api.Environment {
	t.Helper()
	var list []api.Environment
	if err := json.Unmarshal([]byte(e.mustRun(ctx, "ls", "-o", "json")), &list); err != nil {
		t.Fatal(err)
	}
	return mine(list, dir)
}

func logSteps(t *testing.T, what string, env api.Environment) {
	t.Helper()
	for _, s := range runSteps(env) {
		t.Logf("%s: step %-8s %6.1fs %s", what, s.Name, s.Duration.Seconds(), s.Detail)
	}
}

// logClusterTimeline logs where the start of the vcluster release in ns went: the times
// of the vcluster pod's conditions and containers (from the host's API,
// second resolution) relative to the host namespace's creation, and the
// provider's timed progress lines from up's output.
func logClusterTimeline(ctx context.Context, t *testing.T, hc *kube.Client, ns, release, upOut string) {
	t.Helper()
	env := release
	nsObj, err := hc.Set.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
	if err != nil {
		t.Logf("timeline: %v", err)
		return
	}
	t0 := nsObj.CreationTimestamp.Time
	at := func(what string, ts metav1.Time) {
		if !ts.IsZero() {
			t.Logf("timeline %s: +%2.0fs %s", env, ts.Sub(t0).Seconds(), what)
		}
	}
	at("namespace created", nsObj.CreationTimestamp)
	if sts, err := hc.Set.AppsV1().StatefulSets(ns).Get(ctx, release, metav1.GetOptions{}); err == nil {
		at("StatefulSet created (helm install)", sts.CreationTimestamp)
	}
	if pods, err := hc.Set.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{}); err == nil {
		for _, pod := range pods.Items {
			at("pod "+pod.Name+" created", pod.CreationTimestamp)
			for _, c := range pod.Status.Conditions {
				at(fmt.Sprintf("pod %s %s", pod.Name, c.Type), c.LastTransitionTime)
			}
			for _, cs := range append(pod.Status.InitContainerStatuses, pod.Status.ContainerStatuses...) {
				if r := cs.State.Running; r != nil {
					at(fmt.Sprintf("pod %s container %s started", pod.Name, cs.Name), r.StartedAt)
				}
				if tm := cs.State.Terminated; tm != nil {
					at(fmt.Sprintf("pod %s container %s started", pod.Name, cs.Name), tm.StartedAt)
					at(fmt.Sprintf("pod %s container %s finished", pod.Name, cs.Name), tm.FinishedAt)
				}
			}
		}
	}
	if sec, err := hc.Set.CoreV1().Secrets(ns).Get(ctx, "vc-"+env, metav1.GetOptions{}); err == nil {
		at("Secret vc-"+env+" written", sec.CreationTimestamp)
	}
	for _, l := range strings.Split(upOut, "\n") {
		if strings.Contains(l, "s)") && (strings.Contains(l, "vcluster") || strings.Contains(l, "cluster")) {
			t.Logf("timeline %s: %s", env, strings.TrimSpace(l))
		}
	}
}

func gitRun(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %v: %v %s", args, err, out)
	}
	return string(out)
}

func runSteps(env api.Environment) []api.Step {
	if env.Status.Run == nil {
		return nil
	}
	return env.Status.Run.Steps
}

// requireVClusterImages fails t unless the images devctl's vcluster
// provider runs are in the Docker engine (e2e/images/vcluster.sh makes them).
func requireVClusterImages(ctx context.Context, t *testing.T) {
	t.Helper()
	for _, img := range []string{"devctl.local/vcluster:0.30.0", "devctl.local/vcluster-kubernetes:v1.35.4"} {
		if err := exec.CommandContext(ctx, "docker", "image", "inspect", img).Run(); err != nil {
			t.Fatalf("image %s is missing: build it with e2e/images/vcluster.sh (make e2e-images)", img)
		}
	}
}
