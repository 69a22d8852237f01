//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
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

	out = e.mustRun(ctx, "down")
	if !strings.Contains(out, "deleted kind cluster "+name) {
		t.Errorf("down says:\n%s", out)
	}
	harness.AssertNoClusterContainers(ctx, t, name)
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
