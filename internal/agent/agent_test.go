//go:build linux

package agent

import (
	"bufio"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
)

// agentProc is the agent running as its own process (the test binary with
// roleEnv=agent), as it runs in a pod: a child subreaper supervising the
// fake app.
type agentProc struct {
	cmd    *exec.Cmd
	client *Client
	mu     sync.Mutex
	lines  []string // stdout and stderr, the container's log
	api    chan string
	exited chan struct{}
}

var apiAddr = regexp.MustCompile(`msg="agent started".* api=(\S+)`)

func startAgent(t *testing.T, args ...string) *agentProc {
	t.Helper()
	cmd := exec.Command(testExe(t), args...)
	cmd.Env = append(os.Environ(), roleEnv+"=agent", TokenEnv+"="+testToken)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	a := &agentProc{cmd: cmd, api: make(chan string, 1), exited: make(chan struct{})}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for _, r := range []io.Reader{stdout, stderr} {
		wg.Go(func() {
			sc := bufio.NewScanner(r)
			for sc.Scan() {
				line := sc.Text()
				if m := apiAddr.FindStringSubmatch(line); m != nil {
					a.api <- m[1]
				}
				a.mu.Lock()
				a.lines = append(a.lines, line)
				a.mu.Unlock()
			}
		})
	}
	go func() { wg.Wait(); _ = cmd.Wait(); close(a.exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-a.exited
		if t.Failed() {
			t.Logf("agent output:\n%s", strings.Join(a.output(), "\n"))
		}
	})
	select {
	case addr := <-a.api:
		a.client = &Client{BaseURL: "http://" + addr, Token: testToken}
	case <-a.exited:
		t.Fatalf("agent exited: %s", strings.Join(a.output(), "\n"))
	}
	return a
}

func (a *agentProc) output() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.lines)
}

func (a *agentProc) logged(prefix string) string {
	for _, l := range a.output() {
		if strings.HasPrefix(l, prefix) {
			return l
		}
	}
	return ""
}

func TestAgentProcess(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	static := filepath.Join(dir, "static")
	if err := os.Mkdir(static, 0o755); err != nil {
		t.Fatal(err)
	}
	port := freePort(t)
	exe := testExe(t)
	a := startAgent(t, "--listen=127.0.0.1:0", "--port="+strconv.Itoa(port), "--sync="+static, "--dir="+filepath.Join(dir, "devctl"),
		"--", exe, "listen="+strconv.Itoa(port), "term-exit=5", "orphan", "print-env="+TokenEnv)

	var st *Status
	eventually(t, "app listens", func() bool {
		var err error
		st, err = a.client.Status(t.Context())
		return err == nil && st.App.Listening
	})
	if !slices.Equal(st.App.Command[:2], []string{exe, "listen=" + strconv.Itoa(port)}) {
		t.Errorf("command = %q", st.App.Command)
	}

	t.Run("token is not passed to the app", func(t *testing.T) {
		eventually(t, "the app prints its environment", func() bool { return a.logged("env ") != "" })
		if l := a.logged("env "); l != "env "+TokenEnv+"=" {
			t.Errorf("app saw %q", l)
		}
	})

	t.Run("reaps orphans", func(t *testing.T) {
		eventually(t, "the orphan reports", func() bool { return a.logged("orphan ") != "" })
		pid, err := strconv.Atoi(strings.TrimPrefix(a.logged("orphan "), "orphan "))
		if err != nil {
			t.Fatal(err)
		}
		// A zombie keeps its /proc entry until its parent (the agent, once
		// the middle process is gone) reaps it.
		eventually(t, "the orphan is reaped", func() bool {
			_, err := os.Stat("/proc/" + strconv.Itoa(pid))
			return errors.Is(err, os.ErrNotExist)
		})
		st, err := a.client.Status(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if st.App.Reaped < 1 {
			t.Errorf("status reaped = %d, want the orphan counted", st.App.Reaped)
		}
	})

	t.Run("forwards signals", func(t *testing.T) {
		if err := a.cmd.Process.Signal(syscall.SIGUSR1); err != nil {
			t.Fatal(err)
		}
		eventually(t, "the app gets SIGUSR1", func() bool { return a.logged("got user defined signal 1") != "" })
		if err := a.cmd.Process.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		eventually(t, "the app gets SIGHUP", func() bool { return a.logged("got hangup") != "" })
	})

	t.Run("syncs the entrypoint and restarts", func(t *testing.T) {
		f, err := LocalFile(exe, exe)
		if err != nil {
			t.Fatal(err)
		}
		res, err := a.client.Sync(t.Context(), Batch{
			Files:  []File{f, DataFile(static+"/app.css", []byte("body{}"), 0)},
			Action: Action{Restart: true},
		})
		if err != nil {
			t.Fatalf("sync: %v", err)
		}
		override := OverridePath(filepath.Join(dir, "devctl", "app"), exe)
		if res.App.Executable != override || !res.App.Listening || res.App.PID == st.App.PID {
			t.Errorf("after the sync: %+v; want the synced entrypoint %s listening", res.App, override)
		}
		if res.Generation != 1 || res.Written != 2 {
			t.Errorf("result = %+v", res)
		}
		t.Logf("timings: %+v", res.Timings)
	})

	t.Run("exits with the app's code on SIGTERM", func(t *testing.T) {
		if err := a.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		<-a.exited
		if code := a.cmd.ProcessState.ExitCode(); code != 5 {
			t.Errorf("agent exit code = %d, want the app's 5", code)
		}
	})
}

func TestAgentRefusesToStartWithoutToken(t *testing.T) {
	t.Parallel()
	cmd := exec.Command(testExe(t), "--listen=127.0.0.1:0", "--", "/bin/true")
	cmd.Env = append(slices.DeleteFunc(os.Environ(), func(kv string) bool { return strings.HasPrefix(kv, TokenEnv+"=") }), roleEnv+"=agent")
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 || !strings.Contains(string(out), TokenEnv) {
		t.Errorf("err %v, output %q; want exit 1 naming %s", err, out, TokenEnv)
	}
}
