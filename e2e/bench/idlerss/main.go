// Command idlerss measures the devctl daemon at rest: its resident memory
// and CPU use over a quiet window, with one environment up (examples/hello
// on kind) or none:
//
//	go run ./e2e/bench/idlerss -devctl bin/devctl -window 30s
//	go run ./e2e/bench/idlerss -devctl bin/devctl -env=false
//
// It runs the daemon in a sandbox (its own socket and state folder),
// deletes the environment at the end and stops the daemon.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/devctl/devctl/e2e/harness"
)

func main() {
	bin := flag.String("devctl", "bin/devctl", "the devctl binary")
	withEnv := flag.Bool("env", true, "bring up examples/hello first (one environment)")
	settle := flag.Duration("settle", 15*time.Second, "wait this long after the up before measuring")
	window := flag.Duration("window", 30*time.Second, "measure CPU over this long")
	flag.Parse()
	if err := run(*bin, *withEnv, *settle, *window); err != nil {
		fmt.Fprintln(os.Stderr, "idlerss:", err)
		os.Exit(1)
	}
}

type sandbox struct {
	bin, dir string
	environ  []string
}

func (s sandbox) devctl(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, s.bin, args...)
	cmd.Dir, cmd.Env = s.dir, s.environ
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("devctl %s: %w\n%s%s", strings.Join(args, " "), err, out.String(), errOut.String())
	}
	return out.String(), nil
}

func run(bin string, withEnv bool, settle, window time.Duration) error {
	ctx := context.Background()
	bin, err := filepath.Abs(bin)
	if err != nil {
		return err
	}
	root, err := harness.RepoRoot()
	if err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "idlerss")
	if err != nil {
		return err
	}
	defer func() { _ = os.RemoveAll(tmp) }()
	dir := filepath.Join(tmp, "hello")
	for _, args := range [][]string{
		{"cp", "-r", filepath.Join(root, "examples", "hello"), dir},
		{"git", "-C", dir, "init", "-q", "-b", "bench/idlerss"},
		{"git", "-C", dir, "-c", "user.email=b@example.com", "-c", "user.name=b", "commit", "-q", "--allow-empty", "-m", "init"},
	} {
		if out, err := exec.CommandContext(ctx, args[0], args[1:]...).CombinedOutput(); err != nil {
			return fmt.Errorf("%s: %w: %s", strings.Join(args, " "), err, out)
		}
	}
	environ, err := harness.Env(os.Environ())
	if err != nil {
		return err
	}
	environ = append(environ, "DEVCTL_SOCKET="+filepath.Join(tmp, "d.sock"), "DEVCTL_STATE_DIR="+filepath.Join(tmp, "state"))
	if image, err := harness.NodeImage(ctx); err == nil {
		environ = append(environ, "DEVCTL_NODE_IMAGE="+image)
	}
	s := sandbox{bin: bin, dir: dir, environ: environ}
	defer func() { _, _ = s.devctl(context.Background(), "daemon", "stop") }()
	envs := 0
	if withEnv {
		start := time.Now()
		if _, err := s.devctl(ctx, "up", "--ci"); err != nil {
			return err
		}
		defer func() { _, _ = s.devctl(context.Background(), "down") }()
		envs = 1
		fmt.Printf("up: %.1fs\n", time.Since(start).Seconds())
	} else if _, err := s.devctl(ctx, "ls"); err != nil {
		return err
	}
	out, err := s.devctl(ctx, "daemon", "status", "-o", "json")
	if err != nil {
		return err
	}
	var st struct {
		Health struct {
			PID int `json:"pid"`
		} `json:"health"`
	}
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		return fmt.Errorf("daemon status: %w: %s", err, out)
	}
	if st.Health.PID == 0 {
		return fmt.Errorf("daemon status names no pid: %s", out)
	}
	pid := st.Health.PID
	time.Sleep(settle)
	t0, err := cpuTicks(pid)
	if err != nil {
		return err
	}
	time.Sleep(window)
	t1, err := cpuTicks(pid)
	if err != nil {
		return err
	}
	m, err := memory(pid)
	if err != nil {
		return err
	}
	// Linux counts CPU time in clock ticks of 1/100 s (USER_HZ).
	cpu := float64(t1-t0) / 100 / window.Seconds() * 100
	fmt.Printf("environments: %d\nidle RSS: %.1f MB (peak %.1f MB; anonymous %.1f MB, file-backed %.1f MB)\nidle CPU: %.2f%% of one core over %s\n",
		envs, mb(m["VmRSS"]), mb(m["VmHWM"]), mb(m["RssAnon"]), mb(m["RssFile"]), cpu, window)
	return nil
}

func mb(kib int64) float64 { return float64(kib) / 1024 }

// cpuTicks is the process's user+system time in clock ticks.
func cpuTicks(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// Fields after the command name, which is in parentheses.
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("short /proc/%d/stat", pid)
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("parse /proc/%d/stat", pid)
	}
	return utime + stime, nil
}

// memory is the process's memory figures from /proc/<pid>/status in KiB:
// VmRSS, VmHWM (peak), RssAnon (heap, stacks), RssFile (the binary's pages).
func memory(pid int) (map[string]int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return nil, err
	}
	out := map[string]int64{}
	for _, l := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(l, ":")
		if !ok {
			continue
		}
		if n, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64); err == nil {
			out[k] = n
		}
	}
	return out, nil
}
