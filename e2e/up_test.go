//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/release"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"sigs.k8s.io/kind/pkg/cluster"

	"github.com/devctl/devctl/e2e/harness"
	"github.com/devctl/devctl/internal/api"
	"github.com/devctl/devctl/internal/kube"
)

// devctlEnv is a sandbox for the devctl binary: its own socket, state dir
// and config dir, the node image, and the docker wrapper first on PATH.
type devctlEnv struct {
	t       *testing.T
	bin     string
	dir     string
	environ []string
	state   string
}

func newDevctlEnv(t *testing.T, ctx context.Context, projectDir string) *devctlEnv {
	t.Helper()
	bin := os.Getenv("DEVCTL_BIN")
	if bin == "" {
		dir := t.TempDir()
		bin = filepath.Join(dir, "devctl")
		root, err := harness.RepoRoot()
		if err != nil {
			t.Fatal(err)
		}
		// The front and, beside it, the full build it runs (see make build).
		for _, args := range [][]string{{"-o", filepath.Join(dir, "devctl-core"), "./cmd/devctl-core"}, {"-tags", "devctl_lean", "-o", bin, "./cmd/devctl"}} {
			cmd := exec.CommandContext(ctx, "go", append([]string{"build"}, args...)...)
			cmd.Dir = root
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("build devctl: %v\n%s", err, out)
			}
		}
	}
	image, err := harness.NodeImage(ctx)
	if err != nil {
		t.Fatalf("node image: %v (run `make e2e-images`)", err)
	}
	sockDir, err := os.MkdirTemp("", "dve2e")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(sockDir) })
	state := t.TempDir()
	environ, err := harness.Env(os.Environ())
	if err != nil {
		t.Fatal(err)
	}
	environ = append(environ,
		"DEVCTL_SOCKET="+filepath.Join(sockDir, "devctl.sock"),
		"DEVCTL_STATE_DIR="+state,
		"XDG_CONFIG_HOME="+t.TempDir(),
		"DEVCTL_NODE_IMAGE="+image,
	)
	return &devctlEnv{t: t, bin: bin, dir: projectDir, environ: environ, state: state}
}

// run runs devctl and returns stdout, stderr and the exit code.
// cleanupAtEnd stops the test's daemon when the test ends (first deleting
// its environment when down is set) and, when the test failed, logs the
// daemon's log.
func (e *devctlEnv) cleanupAtEnd(t *testing.T, down bool) {
	t.Cleanup(func() {
		cctx, ccancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer ccancel()
		if t.Failed() {
			if b, err := os.ReadFile(filepath.Join(e.state, "daemon.log")); err == nil {
				t.Logf("daemon.log:\n%s", b)
			}
		}
		if down {
			e.run(cctx, "down")
		}
		e.run(cctx, "daemon", "stop")
	})
}

func (e *devctlEnv) run(ctx context.Context, args ...string) (string, string, int) {
	e.t.Helper()
	return e.runWith(ctx, nil, args...)
}

// runWith is run with extra environment variables (KEY=value), which a
// daemon this command starts inherits.
func (e *devctlEnv) runWith(ctx context.Context, env []string, args ...string) (string, string, int) {
	e.t.Helper()
	cmd := exec.CommandContext(ctx, e.bin, args...)
	cmd.Dir = e.dir
	cmd.Env = append(slices.Clip(e.environ), env...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		e.t.Fatalf("run devctl %v: %v", args, err)
	}
	e.t.Logf("$ devctl %s (exit %d)\n%s%s", strings.Join(args, " "), code, out.String(), errOut.String())
	return out.String(), errOut.String(), code
}

func (e *devctlEnv) mustRun(ctx context.Context, args ...string) string {
	e.t.Helper()
	out, errOut, code := e.run(ctx, args...)
	if code != 0 {
		e.t.Fatalf("devctl %v: exit %d\n%s", args, code, errOut)
	}
	return out
}

func (e *devctlEnv) status(ctx context.Context, env string) api.Environment {
	e.t.Helper()
	var got api.Environment
	if err := json.Unmarshal([]byte(e.mustRun(ctx, "status", env, "-o", "json")), &got); err != nil {
		e.t.Fatal(err)
	}
	return got
}

// copyExample copies examples/hello into a fresh git repository.
func copyExample(t *testing.T) string {
	t.Helper()
	root, err := harness.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(t.TempDir(), "hello")
	src := filepath.Join(root, "examples", "hello")
	if out, err := exec.Command("cp", "-r", src, dst).CombinedOutput(); err != nil {
		t.Fatalf("copy example: %v %s", err, out)
	}
	_ = os.RemoveAll(filepath.Join(dst, "bin"))
	for _, args := range [][]string{
		{"init", "-q", "-b", "e2e/up"},
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

var urlLine = regexp.MustCompile(`(?m)^\s+hello\s+(http://127\.0\.0\.1:\d+)\s*$`)

func get(ctx context.Context, url string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return string(b), fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return string(b), err
}

// TestUpOnKind is the product's main path on a real kind cluster, on one
// environment from start to end: two `devctl up --ci` at once (one
// environment, one Helm revision), the app serving on the URL, the release
// and the cluster visible to helm and kind, a second up that changes
// nothing, a changed services[].port served on the next up, the admission
// policies rejecting a violating Deployment, the daemon surviving kill -9,
// the port-forward following a new pod, logs, and `devctl down` then
// `devctl up` in the same daemon serving again.
func TestUpOnKind(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	dir := copyExample(t)
	e := newDevctlEnv(t, ctx, dir)
	const env = "hello-e2e-up-"

	// A daemon that is not stopped would leak; stop it whatever happens.
	e.cleanupAtEnd(t, false)

	// Two ups at once: both succeed, on one environment with one release
	// revision (the second is queued behind the first, not raced).
	start := time.Now()
	type result struct {
		out, errOut string
		code        int
	}
	results := make(chan result, 2)
	for range 2 {
		go func() {
			out, errOut, code := e.run(ctx, "up", "--ci")
			results <- result{out, errOut, code}
		}()
	}
	var url string
	for range 2 {
		r := <-results
		if r.code != 0 {
			t.Fatalf("devctl up --ci: exit %d\n%s\n%s", r.code, r.out, r.errOut)
		}
		m := urlLine.FindStringSubmatch(r.out)
		if m == nil {
			t.Fatalf("no URL for hello in:\n%s", r.out)
		}
		if url != "" && m[1] != url {
			t.Errorf("the two ups gave different URLs: %s and %s", url, m[1])
		}
		url = m[1]
	}
	t.Logf("two cold devctl up --ci at once: %.1fs", time.Since(start).Seconds())

	var list []api.Environment
	if err := json.Unmarshal([]byte(e.mustRun(ctx, "ls", "-o", "json")), &list); err != nil {
		t.Fatal(err)
	}
	// Only this test's: the daemon also rediscovers other devctl clusters
	// on the Docker engine.
	if list = mine(list, dir); len(list) != 1 || !strings.HasPrefix(list[0].Name, env) || list[0].Status.Phase != api.PhaseReady {
		t.Fatalf("ls: %+v", list)
	}
	name := list[0].Name
	kindProvider := cluster.NewProvider(cluster.ProviderWithLogger(harness.KindLogger(t, 0)))
	harness.ExportLogsOnFailure(t, kindProvider, name)
	t.Cleanup(func() {
		if t.Failed() {
			_ = harness.DeleteCluster(context.Background(), t, kindProvider, name, "")
		}
	})

	body, err := get(ctx, url)
	if err != nil || !strings.Contains(body, "hello") {
		t.Fatalf("GET %s = %q, %v", url, body, err)
	}

	// What kind and helm see.
	clusters, err := kindProvider.List()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(clusters, name) {
		t.Errorf("kind get clusters = %v, want %s", clusters, name)
	}
	st := e.status(ctx, name)
	if st.Generation != 2 || st.Status.ObservedGeneration != 2 {
		t.Errorf("generation %d observed %d, want 2 and 2", st.Generation, st.Status.ObservedGeneration)
	}
	if rels := helmList(ctx, t, st); len(rels) != 1 || rels[0].Name != "hello" || rels[0].Info.Status.String() != "deployed" || rels[0].Version != 1 {
		t.Errorf("helm ls after two ups: %s", describeReleases(rels))
	}
	for _, s := range st.Status.Run.Steps {
		t.Logf("step %-8s %6.1fs %s", s.Name, s.Duration.Seconds(), s.Detail)
	}

	// A second up with nothing changed builds nothing and upgrades nothing.
	start = time.Now()
	e.mustRun(ctx, "up", "--ci")
	t.Logf("warm devctl up --ci: %.2fs", time.Since(start).Seconds())
	st = e.status(ctx, name)
	for _, s := range st.Status.Run.Steps {
		t.Logf("warm step %-8s %6.2fs %s %s", s.Name, s.Duration.Seconds(), s.Status, s.Detail)
		switch s.Name {
		case "build":
			if !strings.Contains(s.Detail, "cached") {
				t.Errorf("second up rebuilt: %s", s.Detail)
			}
		case "deliver", "deploy":
			if s.Status != api.StepSkipped {
				t.Errorf("second up: %s = %s (%s), want skipped", s.Name, s.Status, s.Detail)
			}
		}
	}
	if rels := helmList(ctx, t, st); len(rels) != 1 || rels[0].Version != 1 {
		t.Errorf("second up upgraded the release: %s", describeReleases(rels))
	}

	// A changed services[].port is served on the next up, on the same URL.
	cfgPath := filepath.Join(dir, "devctl.yaml")
	cfg, err := os.ReadFile(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfgPath, []byte(strings.Replace(string(cfg), "port: 8080", "port: 9090", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	e.mustRun(ctx, "up", "--ci")
	st = e.status(ctx, name)
	if svc := st.Status.Service("hello"); svc == nil || svc.Port != 9090 || svc.URL != url || svc.Revision != 2 {
		t.Errorf("after the port change: %+v (URL was %s)", svc, url)
	}
	if body, err := get(ctx, url); err != nil || !strings.Contains(body, "hello") {
		t.Fatalf("after the port change GET %s = %q, %v", url, body, err)
	}

	// The cluster enforces the same rules: a privileged Deployment applied by
	// hand is rejected by admission.
	kc, err := kube.NewClient(st.Status.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	ns := st.Status.Namespace
	// Nobody watches an `up --ci` environment: hello (live: in devctl.yaml)
	// runs as in production, without the live-update agent and its init
	// containers.
	dep, err := kc.Set.AppsV1().Deployments(ns).Get(ctx, "hello", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if pod := dep.Spec.Template.Spec; len(pod.InitContainers) != 0 || len(pod.Containers[0].Command) != 0 || st.Status.Service("hello").Live {
		t.Errorf("up --ci deployed hello in live mode (status live %v): init containers %d, command %q",
			st.Status.Service("hello").Live, len(pod.InitContainers), pod.Containers[0].Command)
	}
	_, err = kc.Set.AppsV1().Deployments(ns).Create(ctx, violatingDeployment(ns), metav1.CreateOptions{})
	if err == nil || !strings.Contains(err.Error(), "denied") {
		t.Errorf("violating deployment: err = %v, want an admission denial", err)
	} else {
		t.Logf("admission: %v", err)
	}

	// kill -9 the daemon: ls still lists the environment and the URL comes back.
	var ds struct {
		Health api.Health `json:"health"`
	}
	if err := json.Unmarshal([]byte(e.mustRun(ctx, "daemon", "status", "-o", "json")), &ds); err != nil || ds.Health.PID == 0 {
		t.Fatalf("daemon status: %v %+v", err, ds)
	}
	if err := syscall.Kill(ds.Health.PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	list = nil
	if err := json.Unmarshal([]byte(e.mustRun(ctx, "ls", "-o", "json")), &list); err != nil {
		t.Fatal(err)
	}
	if list = mine(list, dir); len(list) != 1 || list[0].Name != name {
		t.Fatalf("after kill -9, ls = %+v", list)
	}
	st = waitServing(ctx, t, e, name, 90*time.Second)
	url = st.Status.Service("hello").URL

	// The port-forward follows the service to a new pod: delete the pod and
	// the same URL answers again once the replacement is ready.
	pods, err := kc.Set.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: kube.InstanceLabel + "=hello"})
	if err != nil || len(pods.Items) == 0 {
		t.Fatalf("pods of hello: %v %d", err, len(pods.Items))
	}
	old := pods.Items[0].Name
	if err := kc.Set.CoreV1().Pods(ns).Delete(ctx, old, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	start = time.Now()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		body, err := get(ctx, url)
		if err == nil && strings.Contains(body, "hello") {
			cur, _ := kc.Set.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: kube.InstanceLabel + "=hello"})
			moved := len(cur.Items) > 0
			for _, p := range cur.Items {
				moved = moved && p.Name != old
			}
			if moved {
				t.Logf("port-forward reconnected to the new pod after %.1fs", time.Since(start).Seconds())
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s does not answer from the new pod 2m after pod %s was deleted: %v", url, old, err)
		}
		time.Sleep(500 * time.Millisecond)
	}

	logs := e.mustRun(ctx, "logs", "hello", "--tail", "50")
	if !strings.Contains(logs, "method=GET path=/ ") {
		t.Errorf("logs do not show the request:\n%s", logs)
	}

	// down, then up in the same daemon: a new cluster (a new API port and
	// CA under the same kubeconfig path) serves again.
	out := e.mustRun(ctx, "down")
	if !strings.Contains(out, "deleted kind cluster "+name) {
		t.Errorf("down says:\n%s", out)
	}
	harness.AssertNoClusterContainers(ctx, t, name)
	if clusters, _ := kindProvider.List(); slices.Contains(clusters, name) {
		t.Errorf("kind still lists %s after down", name)
	}
	if out := e.mustRun(ctx, "ls"); strings.Contains(out, name) {
		t.Errorf("ls after down:\n%s", out)
	}
	if out := e.mustRun(ctx, "down"); !strings.Contains(out, "nothing to delete") {
		t.Errorf("second down says:\n%s", out)
	}
	out = e.mustRun(ctx, "up", "--ci")
	m := urlLine.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no URL after down and up:\n%s", out)
	}
	if body, err := get(ctx, m[1]); err != nil || !strings.Contains(body, "hello") {
		t.Fatalf("after down and up GET %s = %q, %v", m[1], body, err)
	}
	e.mustRun(ctx, "down")
	harness.AssertNoClusterContainers(ctx, t, name)
}

// waitServing waits until the environment is ready and its first service
// answers on its URL.
func waitServing(ctx context.Context, t *testing.T, e *devctlEnv, name string, timeout time.Duration) api.Environment {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		st := e.status(ctx, name)
		if st.Status.Phase == api.PhaseReady && len(st.Status.Services) > 0 && st.Status.Services[0].URL != "" {
			if body, err := get(ctx, st.Status.Services[0].URL); err == nil && strings.Contains(body, "hello") {
				return st
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("environment not serving after %s: %+v", timeout, st.Status)
		}
		time.Sleep(time.Second)
	}
}

// helmList lists the releases in the environment's namespace as `helm ls`
// does.
func helmList(ctx context.Context, t *testing.T, e api.Environment) []*release.Release {
	t.Helper()
	getter := genericclioptions.NewConfigFlags(false)
	getter.KubeConfig = &e.Status.Kubeconfig
	getter.Namespace = &e.Status.Namespace
	cfg := new(action.Configuration)
	if err := cfg.Init(getter, e.Status.Namespace, "secrets", func(string, ...any) {}); err != nil {
		t.Fatal(err)
	}
	l := action.NewList(cfg)
	l.All = true
	rels, err := l.Run()
	if err != nil {
		t.Fatalf("helm ls: %v", err)
	}
	_ = ctx
	return rels
}

func describeReleases(rels []*release.Release) string {
	var parts []string
	for _, r := range rels {
		parts = append(parts, fmt.Sprintf("%s rev %d %s", r.Name, r.Version, r.Info.Status))
	}
	return strings.Join(parts, ", ")
}

func violatingDeployment(ns string) *appsv1.Deployment {
	labels := map[string]string{"app": "bad"}
	priv := true
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "bad", Namespace: ns, Labels: labels},
		Spec: appsv1.DeploymentSpec{
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{
					Name: "bad", Image: "devctl.local/bad:latest",
					SecurityContext: &corev1.SecurityContext{Privileged: &priv},
				}}},
			},
		},
	}
}
