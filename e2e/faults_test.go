//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/devctl/devctl/e2e/harness"
	"github.com/devctl/devctl/internal/api"
)

// mine returns the environments of list made from the project folders
// dirs: the Docker engine may hold other devctl clusters, which a daemon
// rediscovers too.
func mine(list []api.Environment, dirs ...string) []api.Environment {
	var out []api.Environment
	for _, e := range list {
		for _, d := range dirs {
			if e.Spec.Dir == d {
				out = append(out, e)
			}
		}
	}
	return out
}

// daemonPID is the pid of the sandbox's running daemon.
func daemonPID(ctx context.Context, t *testing.T, e *devctlEnv) int {
	t.Helper()
	var ds struct {
		Health api.Health `json:"health"`
	}
	if err := json.Unmarshal([]byte(e.mustRun(ctx, "daemon", "status", "-o", "json")), &ds); err != nil || ds.Health.PID == 0 {
		t.Fatalf("daemon status: %v %+v", err, ds)
	}
	return ds.Health.PID
}

// TestFaultsOnKind breaks one environment the ways a laptop does and checks
// that nothing is lost and `devctl up` repairs it: kill -9 of the daemon
// while kind creates the cluster, then a corrupt state.json.
func TestFaultsOnKind(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	dir := copyExample(t)
	// Its own branch, so its environment is never another test's.
	if out, err := exec.Command("git", "-C", dir, "checkout", "-q", "-b", "e2e/faults").CombinedOutput(); err != nil {
		t.Fatalf("git checkout: %v %s", err, out)
	}
	e := newDevctlEnv(t, ctx, dir)
	mountedTmpfs := mountStateTmpfs(t, e.state)
	e.cleanupAtEnd(t, true)

	// kill -9 of the daemon during cluster creation: once kind has made the
	// node container and is still setting it up.
	upDone := make(chan int, 1)
	go func() {
		_, _, code := e.run(ctx, "up", "--ci")
		upDone <- code
	}()
	var name string
	deadline := time.Now().Add(3 * time.Minute)
	for name == "" {
		if time.Now().After(deadline) {
			t.Fatal("no cluster container appeared within 3 minutes")
		}
		time.Sleep(500 * time.Millisecond)
		out, _, code := e.run(ctx, "ls", "-o", "json")
		var list []api.Environment
		if code != 0 || json.Unmarshal([]byte(out), &list) != nil {
			continue
		}
		if list = mine(list, dir); len(list) != 1 {
			continue
		}
		if ids, _ := harness.ClusterContainers(ctx, list[0].Name); len(ids) > 0 {
			name = list[0].Name
		}
	}
	time.Sleep(3 * time.Second) // kind is inside kubeadm init by now
	if err := syscall.Kill(daemonPID(ctx, t, e), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if code := <-upDone; code == 0 {
		t.Log("the first up finished before the daemon was killed; the test still checks the repair path")
	}
	start := time.Now()
	out := e.mustRun(ctx, "up", "--ci")
	if urlLine.FindStringSubmatch(out) == nil {
		t.Fatalf("no URL after kill -9 during creation and up:\n%s", out)
	}
	st := waitServing(ctx, t, e, name, 2*time.Minute)
	t.Logf("up after kill -9 during cluster creation: %.1fs", time.Since(start).Seconds())
	if st.Status.Run == nil || st.Status.Run.Error != "" {
		t.Errorf("last run: %+v", st.Status.Run)
	}

	// A corrupt state file is moved aside, and the environment is
	// rediscovered from its cluster and serves again.
	e.mustRun(ctx, "daemon", "stop")
	statePath := filepath.Join(e.state, "state.json")
	if err := os.WriteFile(statePath, []byte(`{"version": 2, "state": {"envs": {"`), 0o600); err != nil {
		t.Fatal(err)
	}
	var list []api.Environment
	if err := json.Unmarshal([]byte(e.mustRun(ctx, "ls", "-o", "json")), &list); err != nil {
		t.Fatal(err)
	}
	if list = mine(list, dir); len(list) != 1 || list[0].Name != name {
		t.Errorf("after a corrupt state file the first ls = %+v, want %s rediscovered", list, name)
	}
	aside, _ := filepath.Glob(statePath + ".corrupt-*")
	if len(aside) != 1 {
		t.Errorf("the corrupt state file was not kept aside: %v", aside)
	}
	waitServing(ctx, t, e, name, 2*time.Minute)

	// kill -9 of the daemon while a build, a delivery and a deploy are
	// under way (each held by DEVCTL_TEST_HOLD_STEP until the kill), each
	// with a change to main.go: the next up finishes the interrupted work
	// and serves the change, on the same cluster.
	for _, step := range []string{"build", "deliver", "deploy"} {
		killDuring(ctx, t, e, dir, name, step)
	}

	// The node container killed: ls and status show the environment
	// Stopped with how to start it, and up starts it and serves again.
	nodeKilled(ctx, t, e, name)

	// The daemon cannot save its state: the folder made unwritable, then
	// its disk full. The old state file stays as it was, every command says
	// why and what to do, and the state is saved once the cause is gone.
	stateUnwritable(ctx, t, e, name, statePath, mountedTmpfs)

	// The Docker engine goes away while an image builds: the up says so,
	// and the next up (with the engine back) works.
	dockerGoneDuringBuild(ctx, t, e, dir, name)

	out = e.mustRun(ctx, "down")
	if !strings.Contains(out, "deleted kind cluster "+name) {
		t.Errorf("down says:\n%s", out)
	}
	harness.AssertNoClusterContainers(ctx, t, name)
}

// greet makes examples/hello in dir greet with word, so a test can tell
// which build serves.
func greet(t *testing.T, dir, word string) {
	t.Helper()
	p := filepath.Join(dir, "main.go")
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(`c\.Greeting = "hello[^"]*"`)
	if !re.Match(b) {
		t.Fatalf("main.go has no default greeting to change")
	}
	if err := os.WriteFile(p, re.ReplaceAll(b, []byte(`c.Greeting = "hello `+word+`"`)), 0o600); err != nil {
		t.Fatal(err)
	}
}

// waitServes waits until the environment serves a body containing want.
func waitServes(ctx context.Context, t *testing.T, e *devctlEnv, name, want string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var body string
	for time.Now().Before(deadline) {
		st := e.status(ctx, name)
		if st.Status.Phase == api.PhaseReady && len(st.Status.Services) > 0 && st.Status.Services[0].URL != "" {
			if b, err := getFresh(ctx, st.Status.Services[0].URL); err == nil {
				if body = b; strings.Contains(body, want) {
					return
				}
			}
		}
		time.Sleep(time.Second)
	}
	t.Fatalf("environment %s does not serve %q after %s (last body %q)", name, want, timeout, body)
}

// killDuring restarts the daemon holding step, runs `devctl up` with a
// change to main.go, kills the daemon with SIGKILL once step runs, and
// checks that the next `devctl up` serves the change from the same single
// cluster.
func killDuring(ctx context.Context, t *testing.T, e *devctlEnv, dir, name, step string) {
	t.Helper()
	e.mustRun(ctx, "daemon", "stop")
	word := "after-kill-during-" + step
	greet(t, dir, word)
	upDone := make(chan int, 1)
	go func() {
		_, _, code := e.runWith(ctx, []string{"DEVCTL_TEST_HOLD_STEP=" + step}, "up", "--ci")
		upDone <- code
	}()
	deadline := time.Now().Add(3 * time.Minute)
	for held := false; !held; {
		if time.Now().After(deadline) {
			t.Fatalf("step %s did not start within 3 minutes", step)
		}
		time.Sleep(300 * time.Millisecond)
		out, _, code := e.run(ctx, "status", name, "-o", "json")
		var st api.Environment
		if code != 0 || json.Unmarshal([]byte(out), &st) != nil || !st.Status.Run.Active() {
			continue
		}
		for _, s := range st.Status.Run.Steps {
			held = held || (s.Name == step && s.Status == api.StepRunning)
		}
	}
	pid := daemonPID(ctx, t, e)
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if code := <-upDone; code == 0 {
		t.Errorf("the up whose daemon was killed during %s exited 0", step)
	}
	start := time.Now()
	out, errOut, code := e.run(ctx, "up", "--ci")
	if code != 0 || urlLine.FindStringSubmatch(out) == nil {
		t.Fatalf("up after kill -9 during %s: exit %d\n%s%s", step, code, out, errOut)
	}
	waitServes(ctx, t, e, name, word, 2*time.Minute)
	t.Logf("up after kill -9 during %s: %.1fs", step, time.Since(start).Seconds())
	if ids, err := harness.ClusterContainers(ctx, name); err != nil || len(ids) != 1 {
		t.Errorf("after kill -9 during %s the cluster has containers %v (%v), want one node", step, ids, err)
	}
	var list []api.Environment
	if err := json.Unmarshal([]byte(e.mustRun(ctx, "ls", "-o", "json")), &list); err != nil {
		t.Fatal(err)
	}
	if list = mine(list, dir); len(list) != 1 || list[0].Name != name {
		t.Errorf("after kill -9 during %s: ls = %+v, want only %s", step, list, name)
	}
}

// TestThreeBranchesAtOnce brings up three branches of one project from one
// daemon at the same time; all three serve. It needs three kind clusters
// at once.
func TestThreeBranchesAtOnce(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	base := copyExample(t)
	e := newDevctlEnv(t, ctx, base)
	var dirs []string
	for _, b := range []string{"e2e/one", "e2e/two", "e2e/three"} {
		dir := filepath.Join(t.TempDir(), "hello")
		if out, err := exec.Command("cp", "-r", base, dir).CombinedOutput(); err != nil {
			t.Fatalf("copy: %v %s", err, out)
		}
		if out, err := exec.Command("git", "-C", dir, "checkout", "-q", "-b", b).CombinedOutput(); err != nil {
			t.Fatalf("branch: %v %s", err, out)
		}
		dirs = append(dirs, dir)
	}
	t.Cleanup(func() {
		cctx, ccancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer ccancel()
		for _, d := range dirs {
			e.run(cctx, "down", "-C", d)
		}
		e.run(cctx, "daemon", "stop")
	})
	codes := make(chan string, len(dirs))
	for _, d := range dirs {
		go func() {
			out, errOut, code := e.run(ctx, "up", "--ci", "-C", d)
			if code != 0 {
				codes <- d + ": " + errOut
				return
			}
			if urlLine.FindStringSubmatch(out) == nil {
				codes <- d + ": no URL in\n" + out
				return
			}
			codes <- ""
		}()
	}
	for range dirs {
		if msg := <-codes; msg != "" {
			t.Error(msg)
		}
	}
	var list []api.Environment
	if err := json.Unmarshal([]byte(e.mustRun(ctx, "ls", "-o", "json")), &list); err != nil {
		t.Fatal(err)
	}
	if list = mine(list, dirs...); len(list) != 3 {
		t.Fatalf("ls: %+v", list)
	}
	for _, env := range list {
		waitServing(ctx, t, e, env.Name, time.Minute)
	}
}

// mountStateTmpfs puts the sandbox's state folder on a tmpfs of its own
// (root only), so the test can fill its disk without touching the host's.
// It reports whether it could.
func mountStateTmpfs(t *testing.T, dir string) bool {
	t.Helper()
	if os.Geteuid() != 0 {
		return false
	}
	if err := syscall.Mount("devctl-e2e-state", dir, "tmpfs", 0, "size=256m,mode=0700"); err != nil {
		t.Logf("no tmpfs for the state folder (%v): the full-disk check is skipped", err)
		return false
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, 0); err != nil {
			_ = syscall.Unmount(dir, syscall.MNT_DETACH)
		}
	})
	return true
}

// stateError waits until the daemon's health reports a state file it
// could not save that mentions want (or, with want "", none) and returns it.
func stateError(ctx context.Context, t *testing.T, e *devctlEnv, want string) string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var ds struct {
			Health api.Health `json:"health"`
		}
		if err := json.Unmarshal([]byte(e.mustRun(ctx, "daemon", "status", "-o", "json")), &ds); err != nil {
			t.Fatal(err)
		}
		got := ds.Health.StateError
		if (want == "" && got == "") || (want != "" && strings.Contains(got, want)) {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("daemon health stateError = %q, want %q", got, want)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

func stateUnwritable(ctx context.Context, t *testing.T, e *devctlEnv, name, statePath string, tmpfs bool) {
	t.Helper()
	check := func(how, want string, breakIt, repair func()) {
		before, err := os.ReadFile(statePath)
		if err != nil {
			t.Fatal(err)
		}
		breakIt()
		// An up changes the state (a new run), which the daemon cannot save.
		e.run(ctx, "up", "--ci")
		msg := stateError(ctx, t, e, want)
		if _, errOut, _ := e.run(ctx, "ls"); !strings.Contains(errOut, "cannot save its state") {
			t.Errorf("%s: ls does not warn that the state is not saved:\n%s", how, errOut)
		}
		if after, err := os.ReadFile(statePath); err != nil || !bytes.Equal(after, before) {
			t.Errorf("%s: the state file changed (%v)", how, err)
		}
		t.Logf("%s: %s", how, msg)
		repair()
		stateError(ctx, t, e, "")
		if after, _ := os.ReadFile(statePath); bytes.Equal(after, before) {
			t.Errorf("%s: the state was not saved once the cause was gone", how)
		}
		waitServing(ctx, t, e, name, time.Minute)
	}
	if os.Geteuid() == 0 {
		// Root writes through a folder's mode; an immutable folder it cannot.
		check("state folder immutable", "not writable", func() {
			if out, err := exec.Command("chattr", "+i", e.state).CombinedOutput(); err != nil {
				t.Fatalf("chattr +i: %v %s", err, out)
			}
		}, func() {
			if out, err := exec.Command("chattr", "-i", e.state).CombinedOutput(); err != nil {
				t.Fatalf("chattr -i: %v %s", err, out)
			}
		})
	} else {
		check("state folder read-only", "not writable", func() {
			if err := os.Chmod(e.state, 0o500); err != nil {
				t.Fatal(err)
			}
		}, func() {
			if err := os.Chmod(e.state, 0o700); err != nil {
				t.Fatal(err)
			}
		})
	}
	if !tmpfs {
		t.Log("the state folder is not on a tmpfs of the test's own: the full-disk check needs root")
		return
	}
	filler := filepath.Join(e.state, "filler")
	check("state disk full", "is full", func() {
		f, err := os.Create(filler)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = f.Close() }()
		chunk := make([]byte, 1<<20)
		for {
			if _, err := f.Write(chunk); err != nil {
				if !errors.Is(err, syscall.ENOSPC) {
					t.Fatalf("fill the state disk: %v", err)
				}
				break
			}
		}
	}, func() {
		if err := os.Remove(filler); err != nil {
			t.Fatal(err)
		}
	})
}

// dockerProxy forwards a unix socket to the Docker engine's. With
// breakOnBuild, the first image build request it sees is passed on and
// then every connection is cut and the socket removed: to its clients
// the engine went away in the middle of the build.
type dockerProxy struct {
	ln      net.Listener
	mu      sync.Mutex
	conns   []net.Conn
	tripped chan struct{}
	once    sync.Once
}

var buildRequest = regexp.MustCompile(`POST /(v[0-9.]+/)?build\?`)

func startDockerProxy(t *testing.T, path string, breakOnBuild bool) *dockerProxy {
	t.Helper()
	target := "/var/run/docker.sock"
	if h := os.Getenv("DOCKER_HOST"); strings.HasPrefix(h, "unix://") {
		target = strings.TrimPrefix(h, "unix://")
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	p := &dockerProxy{ln: ln, tripped: make(chan struct{})}
	t.Cleanup(p.close)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("unix", target)
			if err != nil {
				_ = c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, up)
			p.mu.Unlock()
			go func() {
				// The engine closing its side (the end of an exec's
				// output) is passed on.
				_, _ = io.Copy(c, up)
				_ = c.(*net.UnixConn).CloseWrite()
			}()
			go func() {
				buf := make([]byte, 64<<10)
				for {
					n, err := c.Read(buf)
					if n > 0 {
						if _, werr := up.Write(buf[:n]); werr != nil {
							return
						}
						if breakOnBuild && buildRequest.Match(buf[:n]) {
							p.trip()
							return
						}
					}
					if err != nil {
						_ = up.(*net.UnixConn).CloseWrite()
						return
					}
				}
			}()
		}
	}()
	return p
}

func (p *dockerProxy) trip() {
	p.once.Do(func() { close(p.tripped) })
	p.close()
}

func (p *dockerProxy) close() {
	_ = p.ln.Close()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		_ = c.Close()
	}
	p.conns = nil
}

func dockerGoneDuringBuild(ctx context.Context, t *testing.T, e *devctlEnv, dir, name string) {
	t.Helper()
	e.mustRun(ctx, "daemon", "stop")
	// Build hello with its Dockerfile (from a binary built here) rather
	// than with devctl's Go builder, which needs no engine.
	cfgPath := filepath.Join(dir, "devctl.yaml")
	raw, err := os.ReadFile(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	goBlock := regexp.MustCompile(`(?m)^    go:\n(      .*\n)+`)
	if !goBlock.Match(raw) {
		t.Fatal("devctl.yaml has no go: block to remove")
	}
	// Without the Go builder, live updates need the image's entrypoint.
	b := strings.Replace(string(goBlock.ReplaceAll(raw, nil)), "    live:\n", "    live:\n      entrypoint: [\"/hello\"]\n", 1)
	if !strings.Contains(b, "entrypoint:") {
		t.Fatal("devctl.yaml has no live: block")
	}
	if err := os.WriteFile(cfgPath, []byte(b), 0o600); err != nil {
		t.Fatal(err)
	}
	greet(t, dir, "built-by-docker")
	build := exec.CommandContext(ctx, "go", "build", "-o", "bin/hello", ".")
	build.Dir, build.Env = dir, append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build hello: %v\n%s", err, out)
	}

	sockDir, err := os.MkdirTemp("", "dvdocker")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(sockDir) })
	sock := filepath.Join(sockDir, "docker.sock")
	p := startDockerProxy(t, sock, true)
	// Cleanups run last first: should the test stop early, the daemon
	// that talks to the proxy is stopped before the proxy closes, so the
	// final down reaches the real engine.
	t.Cleanup(func() { e.run(context.Background(), "daemon", "stop") })
	dockerHost := []string{"DOCKER_HOST=unix://" + sock}
	_, errOut, code := e.runWith(ctx, dockerHost, "up", "--ci")
	select {
	case <-p.tripped:
	default:
		t.Fatalf("no image build went through the Docker proxy (up exit %d):\n%s", code, errOut)
	}
	if code == 0 {
		t.Error("up exited 0 though the Docker engine went away during the build")
	}
	if !strings.Contains(errOut, "docker engine is not reachable") {
		t.Errorf("up's error does not say the Docker engine went away:\n%s", errOut)
	}
	// The engine is back (on the same socket): the next up builds and serves.
	startDockerProxy(t, sock, false)
	out, errOut, code := e.runWith(ctx, dockerHost, "up", "--ci")
	if code != 0 || urlLine.FindStringSubmatch(out) == nil {
		t.Fatalf("up with the Docker engine back: exit %d\n%s%s", code, out, errOut)
	}
	waitServes(ctx, t, e, name, "built-by-docker", 2*time.Minute)
	e.mustRun(ctx, "daemon", "stop")
}

func nodeKilled(ctx context.Context, t *testing.T, e *devctlEnv, name string) {
	t.Helper()
	ids, err := harness.ClusterContainers(ctx, name)
	if err != nil || len(ids) != 1 {
		t.Fatalf("node containers of %s: %v %v", name, ids, err)
	}
	if out, err := exec.CommandContext(ctx, "docker", "kill", ids[0]).CombinedOutput(); err != nil {
		t.Fatalf("docker kill: %v %s", err, out)
	}
	var list []api.Environment
	if err := json.Unmarshal([]byte(e.mustRun(ctx, "ls", "-o", "json")), &list); err != nil {
		t.Fatal(err)
	}
	var got *api.Environment
	for i := range list {
		if list[i].Name == name {
			got = &list[i]
		}
	}
	if got == nil || got.Status.Phase != api.PhaseStopped || !strings.Contains(got.Status.Message, "docker start "+name+"-control-plane") {
		t.Fatalf("ls after the node was killed: %+v, want %s Stopped with how to start it", got, name)
	}
	if out := e.mustRun(ctx, "ls"); !strings.Contains(out, "Stopped") {
		t.Errorf("ls does not show the environment Stopped:\n%s", out)
	}
	if st := e.status(ctx, name); st.Status.Phase != api.PhaseStopped {
		t.Errorf("status after the node was killed: %s %s", st.Status.Phase, st.Status.Message)
	}
	start := time.Now()
	out := e.mustRun(ctx, "up", "--ci")
	if urlLine.FindStringSubmatch(out) == nil || !strings.Contains(out, "starting kind cluster "+name) {
		t.Errorf("up after the node was killed does not say it started the cluster, or has no URL:\n%s", out)
	}
	waitServing(ctx, t, e, name, 2*time.Minute)
	t.Logf("up after the node container was killed: %.1fs", time.Since(start).Seconds())
	// Started, not recreated: the same node container.
	if after, err := harness.ClusterContainers(ctx, name); err != nil || len(after) != 1 || after[0] != ids[0] {
		t.Errorf("after the repair the cluster has containers %v (%v), want the node %s started again", after, err, ids[0])
	}
}
