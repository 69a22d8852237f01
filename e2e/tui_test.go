//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/devctl/devctl/internal/api"
)

// badManifest is a Deployment devctl.yaml lists under manifests: it is
// checked, not deployed, and breaks a medium-severity rule (no resource
// limits), so the environment comes up and the finding shows.
const badManifest = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: bad-worker
  labels:
    app.kubernetes.io/name: bad-worker
    devctl.dev/team: platform-dx
    devctl.dev/owner: dx-team
    devctl.dev/cost-center: cc-0042
spec:
  replicas: 1
  selector:
    matchLabels: {app: bad-worker}
  template:
    metadata:
      labels: {app: bad-worker}
    spec:
      securityContext:
        runAsNonRoot: true
        runAsUser: 1000
        runAsGroup: 1000
        seccompProfile: {type: RuntimeDefault}
      containers:
        - name: worker
          image: registry.example.com/worker:1.0.0
          resources:
            requests: {cpu: 10m, memory: 16Mi}
          readinessProbe:
            tcpSocket: {port: 9000}
          livenessProbe:
            tcpSocket: {port: 9000}
          securityContext:
            readOnlyRootFilesystem: true
            allowPrivilegeEscalation: false
            capabilities: {drop: [ALL]}
`

// tmuxSession is one tmux session on a private tmux server.
type tmuxSession struct {
	t      *testing.T
	socket string
	name   string
	exited bool
}

// startTmux runs script in a new detached tmux session of the given size.
// The pane stays after the program exits, so its last words can be read.
func startTmux(t *testing.T, ctx context.Context, socket, name, dir, script string, w, h int) *tmuxSession {
	t.Helper()
	s := &tmuxSession{t: t, socket: socket, name: name}
	path := filepath.Join(t.TempDir(), name+".sh")
	if err := os.WriteFile(path, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	s.tmux(ctx, "new-session", "-d", "-s", name, "-x", fmt.Sprint(w), "-y", fmt.Sprint(h), "-c", dir, "sh "+path)
	s.tmux(ctx, "set-option", "-t", name, "remain-on-exit", "on")
	return s
}

func (s *tmuxSession) tmux(ctx context.Context, args ...string) string {
	s.t.Helper()
	out, err := exec.CommandContext(ctx, "tmux", append([]string{"-L", s.socket}, args...)...).CombinedOutput()
	if err != nil {
		s.t.Fatalf("tmux %v: %v\n%s", args, err, out)
	}
	return string(out)
}

func (s *tmuxSession) keys(ctx context.Context, keys ...string) {
	s.t.Helper()
	s.tmux(ctx, append([]string{"send-keys", "-t", s.name}, keys...)...)
}

// capture is the screen; once the program has exited, it is the whole
// pane history with wrapped lines joined.
func (s *tmuxSession) capture(ctx context.Context) string {
	s.t.Helper()
	if s.exited {
		return s.tmux(ctx, "capture-pane", "-p", "-J", "-S", "-", "-t", s.name)
	}
	return s.tmux(ctx, "capture-pane", "-p", "-t", s.name)
}

// waitFor polls the screen until every want is on it and returns it.
func (s *tmuxSession) waitFor(ctx context.Context, timeout time.Duration, want ...string) string {
	s.t.Helper()
	deadline := time.Now().Add(timeout)
	var screen string
	for {
		screen = s.capture(ctx)
		missing := ""
		for _, w := range want {
			if !strings.Contains(screen, w) {
				missing = w
				break
			}
		}
		if missing == "" {
			return screen
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("after %s the screen has no %q:\n%s", timeout, missing, screen)
		}
		time.Sleep(300 * time.Millisecond)
	}
}

// waitForMatch polls the screen until every pattern matches it and
// returns it.
func (s *tmuxSession) waitForMatch(ctx context.Context, timeout time.Duration, want ...*regexp.Regexp) string {
	s.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		screen := s.capture(ctx)
		var missing *regexp.Regexp
		for _, w := range want {
			if !w.MatchString(screen) {
				missing = w
				break
			}
		}
		if missing == nil {
			return screen
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("after %s the screen does not match %s:\n%s", timeout, missing, screen)
		}
		time.Sleep(300 * time.Millisecond)
	}
}

// shellScript exports the sandbox's environment and runs the command.
func shellScript(environ []string, cmd string) string {
	var b strings.Builder
	for _, kv := range environ {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || strings.ContainsAny(k, " -.(){}") || strings.HasPrefix(k, "TMUX") {
			continue
		}
		fmt.Fprintf(&b, "export %s='%s'\n", k, strings.ReplaceAll(v, "'", `'\''`))
	}
	b.WriteString("unset NO_COLOR\n")
	b.WriteString(cmd + "\necho \"[exit $?]\"\n")
	return b.String()
}

// TestTUIOnKind runs `devctl tui` in tmux against a real daemon and a real
// kind environment of examples/hello with a bad manifest: the environment's
// status, a log line the service printed, the resources, the policy
// finding and the last run appear; a save that breaks a rule shows its
// finding and a save of main.go its rebuild, with no key pressed; every
// view is captured at 120x40 and the environments view at 80x24 after a resize; u runs an up from the
// TUI; a daemon restart is shown and survived; q leaves the environment running; and `devctl up` on a terminal
// opens the TUI.
func TestTUIOnKind(t *testing.T) {
	if _, err := exec.LookPath("tmux"); err != nil {
		t.Fatal("tmux is not installed: the TUI end-to-end test drives devctl in tmux. Install it with `make test-deps` (Debian: apt-get install tmux)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	dir := copyExample(t)
	if err := os.MkdirAll(filepath.Join(dir, "k8s"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "k8s", "bad.yaml"), []byte(badManifest), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := os.ReadFile(filepath.Join(dir, "devctl.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	cfg = append(cfg, "manifests: [k8s/bad.yaml]\npolicy:\n  failOn: critical\n"...)
	if err := os.WriteFile(filepath.Join(dir, "devctl.yaml"), cfg, 0o644); err != nil {
		t.Fatal(err)
	}
	// A branch of its own: an environment no other test names.
	if out, err := exec.Command("git", "-C", dir, "checkout", "-q", "-b", "e2e/tui").CombinedOutput(); err != nil {
		t.Fatalf("git checkout: %v %s", err, out)
	}
	e := newDevctlEnv(t, ctx, dir)
	socket := fmt.Sprintf("devctl-e2e-tui-%d", os.Getpid())
	e.cleanupAtEnd(t, true)
	t.Cleanup(func() { _ = exec.Command("tmux", "-L", socket, "kill-server").Run() }) // runs first

	// Watched, as `devctl up` on a terminal would: the saves below are
	// picked up with no command run.
	out := e.mustRun(ctx, "up", "--ci", "--watch")
	m := urlLine.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no URL for hello in:\n%s", out)
	}
	url := m[1]
	// The daemon also rediscovers clusters other tests left on this
	// machine: find ours by its directory.
	var list []api.Environment
	if err := json.Unmarshal([]byte(e.mustRun(ctx, "ls", "-o", "json")), &list); err != nil {
		t.Fatal(err)
	}
	var env *api.Environment
	for i := range list {
		if list[i].Spec.Dir == dir {
			env = &list[i]
		}
	}
	if env == nil || !strings.HasPrefix(env.Name, "hello-e2e-tui-") {
		t.Fatalf("no environment for %s in %+v", dir, list)
	}
	name := env.Name
	if len(env.Status.Findings) == 0 {
		t.Fatalf("the bad manifest gave no findings: %+v", env.Status)
	}

	// Attach from another directory, naming the environment (other
	// environments on this machine may come first in the list).
	tui := startTmux(t, ctx, socket, "tui", "/", shellScript(e.environ, e.bin+" tui "+name), 120, 40)
	show := func(view, screen string) { t.Logf("%s view at 120x40:\n%s", view, screen) }
	show("environments", tui.waitFor(ctx, time.Minute, name, "Ready", url, "1 Environments"))

	tui.keys(ctx, "2")
	show("resources", tui.waitFor(ctx, time.Minute, "Deployment", "Pod", "Service", "ClusterIP 8080/TCP", "is ready"))

	tui.keys(ctx, "3")
	tui.waitFor(ctx, time.Minute, "[pods of hello]", "listening")
	if _, err := get(ctx, url+"/from-the-tui-e2e"); err != nil {
		t.Logf("GET %s/from-the-tui-e2e: %v (a 404 is fine: the request is logged)", url, err)
	}
	show("logs", tui.waitFor(ctx, time.Minute, "path=/from-the-tui-e2e"))
	tui.keys(ctx, "/")
	tui.keys(ctx, "-l", "from-the")
	tui.keys(ctx, "Enter")
	screen := tui.waitFor(ctx, 30*time.Second, "filter /from-the/")
	if strings.Contains(screen, "listening") {
		t.Errorf("the filter shows a line that does not match:\n%s", screen)
	}
	show("logs, filtered", screen)
	tui.keys(ctx, "Escape")
	// Wait for the escape to land: an escape and a key sent together read
	// as alt+key.
	tui.waitFor(ctx, 30*time.Second, "msg=listening")
	tui.keys(ctx, "s")
	show("logs, build source", tui.waitFor(ctx, 30*time.Second, "[build]"))
	// devctl's own lines come with runs: ask for one from the TUI (u).
	tui.keys(ctx, "u")
	tui.keys(ctx, "s")
	show("logs, devctl source", tui.waitFor(ctx, 3*time.Minute, "[devctl]", "policy: [medium] resource-limits"))
	tui.waitFor(ctx, 3*time.Minute, "Ready")

	tui.keys(ctx, "4")
	show("findings", tui.waitFor(ctx, 30*time.Second, "MEDIUM", "resource-limits", "Deployment", "bad-worker", "k8s/bad.yaml", "fix:"))

	// A save that breaks a rule: the new HIGH finding shows in the open
	// findings view by itself (the watcher asks for an up, which renders
	// and checks again; no key is pressed).
	bad := filepath.Join(dir, "k8s", "bad.yaml")
	writeE2EFile(t, bad, strings.Replace(badManifest, "worker:1.0.0", "worker:latest", 1))
	show("findings after a save", tui.waitFor(ctx, 3*time.Minute, "HIGH (", "image-tag", `"registry.example.com/worker:latest"`, "MEDIUM"))

	// A save of the service's source: a rebuild, recorded with its phases.
	mainGo := filepath.Join(dir, "main.go")
	src := readE2EFile(t, mainGo)
	const greeting = `c.Greeting = "hello"`
	if !strings.Contains(src, greeting) {
		t.Fatalf("examples/hello/main.go no longer sets %s: update this test", greeting)
	}
	writeE2EFile(t, mainGo, strings.Replace(src, greeting, `c.Greeting = "from the tui e2e"`, 1))
	tui.keys(ctx, "5")
	row := regexp.MustCompile(`#\d+\s+\d+[smh]\s+hello\s+(image|live)\s+[\d.]+m?s\s+detect \S+ build \S+ deliver \S+ update \S+ ready \S+\s+\S`)
	show("rebuilds", tui.waitForMatch(ctx, 3*time.Minute, row,
		regexp.MustCompile(`\d+ rebuild\(s\); save → serving p50 [\d.]+m?s`),
		// A live update syncs; an image rebuild deploys.
		regexp.MustCompile(`last run #\d+: rebuild \(main\.go changed\), took \S+\n(.*\n)*\s+✓ (sync|deploy) `)))

	tui.keys(ctx, "?")
	show("help", tui.waitFor(ctx, 30*time.Second, "keys", "follow / pause"))
	tui.keys(ctx, "x")
	tui.keys(ctx, "1")
	tui.waitFor(ctx, 30*time.Second, "BRANCH", "PROVIDER")

	// The daemon restarts: the TUI says so, reconnects by itself and shows
	// the environment the new daemon rediscovered.
	e.mustRun(ctx, "daemon", "stop")
	show("environments, daemon stopped", tui.waitFor(ctx, 30*time.Second, "daemon unreachable", "reconnecting"))
	e.mustRun(ctx, "up", "--ci")
	show("environments, daemon back", tui.waitFor(ctx, time.Minute, "reconnected to the daemon", name, "Ready"))

	tui.tmux(ctx, "resize-window", "-t", "tui", "-x", "80", "-y", "24")
	// Wait for the pane to be 80x24 and the TUI to have drawn into it.
	deadline := time.Now().Add(30 * time.Second)
	for {
		screen = tui.waitFor(ctx, 30*time.Second, name, "Ready", "BRANCH")
		lines := strings.Split(strings.TrimRight(screen, "\n"), "\n")
		wide := ""
		for _, l := range lines {
			if len([]rune(l)) > 80 {
				wide = l
			}
		}
		// The narrow layout puts PHASE before BRANCH.
		narrow := strings.Index(screen, "PHASE") < strings.Index(screen, "BRANCH")
		if len(lines) <= 24 && wide == "" && narrow {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the resize to 80x24: %d lines, a line of %d cells:\n%s", len(lines), len([]rune(wide)), screen)
		}
		time.Sleep(300 * time.Millisecond)
	}
	t.Logf("environments view at 80x24:\n%s", screen)

	tui.keys(ctx, "q")
	tui.exited = true
	screen = tui.waitFor(ctx, 30*time.Second, name+" keeps running", "devctl tui "+name, "[exit 0]")
	t.Logf("after q:\n%s", screen)
	if st := e.status(ctx, name); st.Status.Phase != api.PhaseReady {
		t.Errorf("after q the environment is %s, want Ready", st.Status.Phase)
	}

	// `devctl up` on a terminal follows the run in the TUI.
	up := startTmux(t, ctx, socket, "up", dir, shellScript(e.environ, e.bin+" up"), 120, 40)
	screen = up.waitFor(ctx, 5*time.Minute, "1 Environments", "* "+name)
	t.Logf("devctl up on a terminal:\n%s", screen)
	up.waitFor(ctx, 5*time.Minute, "Ready")
	up.keys(ctx, "q")
	up.exited = true
	t.Logf("after q:\n%s", up.waitFor(ctx, 30*time.Second, name+" keeps running", "[exit 0]"))
}
