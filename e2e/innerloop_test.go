//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/kind/pkg/cluster"

	"github.com/devctl/devctl/e2e/harness"
	"github.com/devctl/devctl/internal/api"
	"github.com/devctl/devctl/internal/kube"
)

// pulledBaseDockerfile needs two images from a registry; this machine has
// none. The Go builder compiles and assembles hello without it.
const pulledBaseDockerfile = `FROM golang:1.24 AS build
WORKDIR /src
COPY . .
RUN CGO_ENABLED=0 go build -o /hello .
FROM gcr.io/distroless/static-debian12
COPY --from=build /hello /hello
ENTRYPOINT ["/hello"]
`

// TestInnerLoopOnKind is the inner loop on a real kind cluster, on one
// environment: after `devctl up` the daemon watches examples/hello (here
// with a Dockerfile that needs pulled base images, never used: the Go
// builder makes a base-less image); a saved edit changes what the service
// answers; a broken edit keeps the old version serving while `devctl status`
// shows the compiler's main.go:L:C; the fix lands; 2,000 files written at
// once (a branch switch) are one rebuild. The daemon's save → serving
// figures are printed.
func TestInnerLoopOnKind(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	dir := copyExample(t)
	// Its own branch, so its own cluster name beside the other e2e tests.
	if out, err := exec.Command("git", "-C", dir, "checkout", "-q", "-b", "e2e/innerloop").CombinedOutput(); err != nil {
		t.Fatalf("git checkout: %v %s", err, out)
	}
	writeE2EFile(t, filepath.Join(dir, "Dockerfile"), pulledBaseDockerfile)
	// Image rebuilds first: live update is turned on half-way.
	configPath := filepath.Join(dir, "devctl.yaml")
	liveConfig := readE2EFile(t, configPath)
	liveBlock := regexp.MustCompile(`(?m)^    live:\n(?:      .*\n)*`)
	if !liveBlock.MatchString(liveConfig) {
		t.Fatal("examples/hello/devctl.yaml has no live: block: update this test")
	}
	writeE2EFile(t, configPath, liveBlock.ReplaceAllString(liveConfig, ""))
	e := newDevctlEnv(t, ctx, dir)
	e.environ = append(e.environ, "DEVCTL_AGENT_BINARY="+buildAgent(ctx, t))
	e.cleanupAtEnd(t, true)

	out := e.mustRun(ctx, "up", "--ci", "--watch")
	m := urlLine.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no URL for hello in:\n%s", out)
	}
	url := m[1]
	c := e.client()
	list, err := c.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// Other tests' clusters on this Docker engine are listed too.
	var name string
	for _, env := range list {
		if strings.HasPrefix(env.Name, "hello-e2e-innerloop-") {
			name = env.Name
		}
	}
	if name == "" {
		t.Fatalf("ls: no hello-e2e-innerloop-* in %+v", list)
	}
	kindProvider := cluster.NewProvider(cluster.ProviderWithLogger(harness.KindLogger(t, 0)))
	harness.ExportLogsOnFailure(t, kindProvider, name)
	t.Cleanup(func() {
		if t.Failed() {
			_ = kindProvider.Delete(name, "")
		}
	})
	st := e.status(ctx, name)
	if !st.Status.Watching {
		t.Fatalf("up --ci --watch: not watching (%s)", st.Status.WatchError)
	}
	if img := st.Status.Service("hello").Image; !strings.HasPrefix(img, "devctl.local/hello/hello:") {
		t.Errorf("image %q, want the Go builder's devctl.local/hello/hello:<digest>", img)
	}
	if body, err := get(ctx, url); err != nil || !strings.Contains(body, "hello") {
		t.Fatalf("GET %s = %q, %v", url, body, err)
	}
	// Delivered by the daemon's registry, which the cluster announces
	// (KEP-1755) for other tools.
	if d := stepDetail(st.Status.Run, "deliver"); !strings.Contains(d, "pushed 1 image(s)") {
		t.Errorf("deliver: %q, want a push to the registry", d)
	}
	kc, err := (&kube.Clients{}).For(st.Status.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	cm, err := kc.Set.CoreV1().ConfigMaps("kube-public").Get(ctx, "local-registry-hosting", metav1.GetOptions{})
	if err != nil || !strings.Contains(cm.Data["localRegistryHosting.v1"], "hostFromContainerRuntime: devctl.local") {
		t.Errorf("kube-public/local-registry-hosting: %v %v", cm.Data, err)
	}

	// An edit is served, with no command run.
	mainGo := filepath.Join(dir, "main.go")
	src := readE2EFile(t, mainGo)
	const greeting = `c.Greeting = "hello"`
	if !strings.Contains(src, greeting) {
		t.Fatalf("examples/hello/main.go no longer sets %s: update this test", greeting)
	}
	writeE2EFile(t, mainGo, strings.Replace(src, greeting, `c.Greeting = "howdy"`, 1))
	waitBody(ctx, t, url, "howdy", 3*time.Minute)
	rebuilds := len(waitRebuilds(ctx, t, e, name, 1).Status.Rebuilds)

	// A broken edit: the old version keeps serving; status shows where.
	broken := strings.Replace(src, greeting, `c.Greeting = "broken" + 1`, 1)
	line := 1 + strings.Count(broken[:strings.Index(broken, `"broken" + 1`)], "\n")
	writeE2EFile(t, mainGo, broken)
	st = waitRebuilds(ctx, t, e, name, rebuilds+1)
	last := st.Status.Rebuilds[len(st.Status.Rebuilds)-1]
	pos := regexp.MustCompile(fmt.Sprintf(`main\.go:%d:\d+`, line))
	if last.Error == "" || !pos.MatchString(last.Error) {
		t.Errorf("broken edit: rebuild error %q, want the compiler's main.go:%d:C", last.Error, line)
	}
	if text := e.mustRun(ctx, "status", name); !pos.MatchString(text) {
		t.Errorf("devctl status does not show main.go:%d:C", line)
	}
	if body, err := getFresh(ctx, url); err != nil || !strings.Contains(body, "howdy") {
		t.Errorf("after a broken edit GET = %q, %v; want the previous version serving", body, err)
	}

	// The next save retries and lands.
	writeE2EFile(t, mainGo, strings.Replace(src, greeting, `c.Greeting = "fixed"`, 1))
	waitBody(ctx, t, url, "fixed", 3*time.Minute)
	st = waitRebuilds(ctx, t, e, name, rebuilds+2)
	if d := stepDetail(st.Status.Run, "deliver"); !strings.Contains(d, "pushed 1 image(s)") {
		t.Errorf("rebuild deliver: %q, want a push of the changed layer", d)
	}

	// A version that builds but crashes at start: the first crash fails
	// the rollout (no waiting out CrashLoopBackOff's back-offs) and the
	// previous version is deployed again; it never stopped serving.
	const mainFunc = "func main() {\n"
	if !strings.Contains(src, mainFunc) {
		t.Fatalf("examples/hello/main.go has no %q: update this test", mainFunc)
	}
	fixed := strings.Replace(src, greeting, `c.Greeting = "fixed"`, 1)
	crashStart := time.Now()
	writeE2EFile(t, mainGo, strings.Replace(fixed, mainFunc, mainFunc+"\tos.Exit(3)\n", 1))
	st = waitRebuilds(ctx, t, e, name, len(st.Status.Rebuilds)+1)
	last = st.Status.Rebuilds[len(st.Status.Rebuilds)-1]
	t.Logf("a crashing version was declared failed and rolled back %.1fs after the save", time.Since(crashStart).Seconds())
	// Seen as it exits ("exited") or after its first restart ("crashed").
	if !strings.Contains(last.Error, "exit code 3") || !strings.Contains(last.Error, "rolled back to") {
		t.Errorf("crashing version: rebuild error %q, want the crash (exit code 3) and the rollback", last.Error)
	}
	if body, err := getFresh(ctx, url); err != nil || !strings.Contains(body, "fixed") {
		t.Errorf("after a crashing version GET = %q, %v; want the previous version serving", body, err)
	}
	if svc := st.Status.Service("hello"); svc.Image == svc.DesiredImage {
		t.Errorf("status says the crashing image %s runs", svc.Image)
	}
	writeE2EFile(t, mainGo, fixed) // the image that serves: nothing to roll out
	st = waitRebuilds(ctx, t, e, name, len(st.Status.Rebuilds)+1)
	if last := st.Status.Rebuilds[len(st.Status.Rebuilds)-1]; last.Error != "" {
		t.Errorf("back to the serving version: %s", last.Error)
	}

	// A branch switch: 2,000 files at once are one rebuild.
	before := len(st.Status.Rebuilds)
	gen := filepath.Join(dir, "generated")
	for i := range 2000 {
		writeE2EFile(t, filepath.Join(gen, fmt.Sprintf("d%02d", i%40), fmt.Sprintf("f%04d.txt", i)), fmt.Sprintf("file %d\n", i))
	}
	st = waitRebuilds(ctx, t, e, name, before+1)
	time.Sleep(3 * time.Second) // fifteen quiet windows: a second rebuild would have been asked for
	st = e.status(ctx, name)
	if n := len(st.Status.Rebuilds) - before; n != 1 || st.Status.Queued != nil || st.Status.Run.Active() {
		t.Errorf("2,000 files: %d rebuild(s), queued %+v; want exactly one", n, st.Status.Queued)
	}
	var files int
	if got := st.Status.Rebuilds[len(st.Status.Rebuilds)-1].Reason; !regexp.MustCompile(`^\d+ files changed$`).MatchString(got) {
		t.Errorf("reason %q, want N files changed", got)
	} else if _, _ = fmt.Sscanf(got, "%d", &files); files < 2000 {
		t.Errorf("reason %q: fewer than the 2,000 files written", got)
	}

	// Live update: devctl.yaml changed, so an up deploys live mode; then a
	// saved .go file is compiled and the binary alone goes to the agent in
	// the scratch container: no new image, no new Helm revision.
	upsBefore := st.Status.Run.ID
	writeE2EFile(t, configPath, liveConfig)
	st = waitRun(ctx, t, e, name, upsBefore, api.RunUp)
	if st.Status.Run.Error != "" {
		t.Fatalf("up for live mode: %s", st.Status.Run.Error)
	}
	if !st.Status.Service("hello").Live {
		t.Errorf("a watched environment with live: in devctl.yaml: hello not deployed in live mode")
	}
	revision := st.Status.Service("hello").Revision
	for i, word := range []string{"live-one", "live-two", "live-three"} {
		n := len(st.Status.Rebuilds)
		writeE2EFile(t, mainGo, strings.Replace(src, greeting, `c.Greeting = "`+word+`"`, 1))
		waitBody(ctx, t, url, word, 2*time.Minute)
		st = waitRebuilds(ctx, t, e, name, n+1)
		last := st.Status.Rebuilds[len(st.Status.Rebuilds)-1]
		if last.Mode != "live" || last.Error != "" {
			t.Fatalf("edit %d: %s rebuild %q, want a live update", i, last.Mode, last.Error)
		}
	}
	// A static file under live.sync: written into the running container,
	// no compile, no restart.
	n := len(st.Status.Rebuilds)
	writeE2EFile(t, filepath.Join(dir, "static", "greeting.txt"), "static-one\n")
	waitBody(ctx, t, url+"/static/greeting.txt", "static-one", 2*time.Minute)
	st = waitRebuilds(ctx, t, e, name, n+1)
	if last := st.Status.Rebuilds[len(st.Status.Rebuilds)-1]; last.Mode != "live" || last.Error != "" || !strings.Contains(stepDetail(st.Status.Run, "sync"), "1 file(s) synced in") {
		t.Errorf("static file: %+v (sync: %q), want a live update without a restart", last, stepDetail(st.Status.Run, "sync"))
	}
	if body, err := getFresh(ctx, url); err != nil || !strings.Contains(body, "live-three") {
		t.Errorf("after the static file GET / = %q, %v; want the last live binary still serving", body, err)
	}
	// A new binary that does not start is taken back: the last one that
	// did keeps serving.
	n = len(st.Status.Rebuilds)
	writeE2EFile(t, mainGo, strings.Replace(strings.Replace(src, greeting, `c.Greeting = "crash"`, 1), "func main() {\n", "func main() {\n\tpanic(\"boom\")\n", 1))
	st = waitRebuilds(ctx, t, e, name, n+1)
	if last := st.Status.Rebuilds[len(st.Status.Rebuilds)-1]; !strings.Contains(last.Error, "does not start (the previous binary serves again)") || !strings.Contains(last.Error, "boom") {
		t.Errorf("crashing binary: %q, want the start failure with the app's output, and the previous binary back", last.Error)
	}
	if body, err := getFresh(ctx, url); err != nil || !strings.Contains(body, "live-three") {
		t.Errorf("after a crashing binary GET / = %q, %v; want live-three still serving", body, err)
	}
	if rels := helmList(ctx, t, st); len(rels) != 1 || rels[0].Version != revision {
		t.Errorf("helm ls after live updates: %s, want revision %d still", describeReleases(rels), revision)
	}

	// The daemon's own figures.
	for _, rb := range st.Status.Rebuilds {
		var phases []string
		for _, p := range rb.Phases {
			phases = append(phases, fmt.Sprintf("%s %dms", p.Name, p.Duration.Milliseconds()))
		}
		t.Logf("rebuild #%d %s (%s): save→serving %dms [%s] %s", rb.Run, rb.Mode, rb.Reason, rb.SaveToServing.Milliseconds(), strings.Join(phases, ", "), firstLineOf(rb.Error))
	}
	for _, s := range st.Status.RebuildStats {
		t.Logf("%s: %d served, p50 %dms, p95 %dms, %d failed", s.Mode, s.Count, s.P50.Milliseconds(), s.P95.Milliseconds(), s.Failed)
	}
}

// waitBody polls url until its answer contains want.
func waitBody(ctx context.Context, t *testing.T, url, want string, timeout time.Duration) {
	t.Helper()
	start := time.Now()
	deadline := start.Add(timeout)
	var body string
	var err error
	for time.Now().Before(deadline) {
		body, err = getFresh(ctx, url)
		if err == nil && strings.Contains(body, want) {
			t.Logf("serving %q %.2fs after the save (seen by polling)", want, time.Since(start).Seconds())
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("GET %s never answered %q (last %q, %v)", url, want, body, err)
}

// fresh opens a new connection for every request, as a reload does: a kept
// connection goes on to the pod it was opened to.
var fresh = &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}

func getFresh(ctx context.Context, url string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	resp, err := fresh.Do(req)
	if err != nil {
		return "", err
	}
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

// waitRun polls until a run of kind after run `after` has ended.
func waitRun(ctx context.Context, t *testing.T, e *devctlEnv, name string, after int64, kind api.RunKind) api.Environment {
	t.Helper()
	deadline := time.Now().Add(5 * time.Minute)
	c := e.client()
	for {
		got, err := c.Get(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		if r := got.Status.Run; r != nil && r.ID > after && r.Request.Kind == kind && !r.Active() && got.Status.Queued == nil {
			return *got
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s run after #%d", kind, after)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// buildAgent compiles the live-update agent for the nodes (make build
// embeds it in devctl; the test's devctl is a plain go build).
func buildAgent(ctx context.Context, t *testing.T) string {
	t.Helper()
	return buildLinuxTool(ctx, t, "devctl-agent")
}

// buildLinuxTool compiles ./cmd/<name> as a static Linux binary into a
// temporary folder and returns its path.
func buildLinuxTool(ctx context.Context, t *testing.T, name string) string {
	t.Helper()
	root, err := harness.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), name)
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-o", bin, "./cmd/"+name)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build %s: %v\n%s", name, err, out)
	}
	return bin
}

// waitRebuilds polls devctl status until n rebuilds are recorded and none
// runs.
func waitRebuilds(ctx context.Context, t *testing.T, e *devctlEnv, name string, n int) api.Environment {
	t.Helper()
	deadline := time.Now().Add(3 * time.Minute)
	c := e.client()
	for {
		got, err := c.Get(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		st := *got
		if len(st.Status.Rebuilds) >= n && !st.Status.Run.Active() && st.Status.Queued == nil {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d rebuild(s) recorded, want %d", len(st.Status.Rebuilds), n)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// client talks to the sandbox's daemon without logging every call.
func (e *devctlEnv) client() *api.Client {
	for _, kv := range e.environ {
		if sock, ok := strings.CutPrefix(kv, "DEVCTL_SOCKET="); ok {
			return api.NewClient(sock)
		}
	}
	e.t.Fatal("no DEVCTL_SOCKET in the sandbox")
	return nil
}

func stepDetail(run *api.Run, name string) string {
	if run == nil {
		return ""
	}
	for _, s := range run.Steps {
		if s.Name == name {
			return s.Detail
		}
	}
	return ""
}

func writeE2EFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func readE2EFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func firstLineOf(s string) string {
	first, _, _ := strings.Cut(s, "\n")
	return first
}
