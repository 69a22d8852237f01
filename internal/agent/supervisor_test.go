//go:build unix

package agent

import (
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// newSupervisor supervises the test binary as a fake app with args.
func newSupervisor(t *testing.T, port int, o SupervisorOptions, args ...string) *Supervisor {
	t.Helper()
	if o.Argv == nil {
		o.Argv = append([]string{testExe(t)}, args...)
	}
	o.Env = appEnv()
	o.Port = port
	o.Stdout, o.Stderr = io.Discard, io.Discard
	if o.Backoff == 0 {
		o.Backoff = 20 * time.Millisecond
	}
	s, err := NewSupervisor(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

func get(t *testing.T, port int) string {
	t.Helper()
	resp, err := http.Get("http://127.0.0.1:" + strconv.Itoa(port))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func waitListening(t *testing.T, s *Supervisor) AppStatus {
	t.Helper()
	var st AppStatus
	eventually(t, "app listens", func() bool { st = s.Status(); return st.Listening })
	return st
}

func TestSupervisorRestart(t *testing.T) {
	t.Parallel()
	port := freePort(t)
	s := newSupervisor(t, port, SupervisorOptions{}, "listen="+strconv.Itoa(port))
	s.Start()
	before := waitListening(t, s)
	if before.State != StateRunning || before.Restarts != 0 || before.PID == 0 {
		t.Fatalf("status before = %+v", before)
	}

	stop, start, err := s.Restart(t.Context())
	if err != nil {
		t.Fatalf("Restart: %v", err)
	}
	if stop <= 0 || start <= 0 {
		t.Errorf("timings stop=%v start=%v, want both measured", stop, start)
	}
	after := s.Status()
	if !after.Listening {
		t.Errorf("Restart returned before the app listened: %+v", after)
	}
	if after.PID == before.PID || after.Restarts != 1 {
		t.Errorf("after restart pid %d (was %d), restarts %d; want a new pid and 1 restart", after.PID, before.PID, after.Restarts)
	}
	if after.LastExit == nil || after.LastExit.Signal != "SIGTERM" {
		t.Errorf("last exit = %+v, want killed by SIGTERM", after.LastExit)
	}
	if got := get(t, port); got != "ok" {
		t.Errorf("app answered %q", got)
	}
	// The old process is gone, not a zombie: we reaped it.
	if _, err := os.Stat("/proc/" + strconv.Itoa(before.PID)); err == nil {
		t.Errorf("old app (pid %d) still has a /proc entry", before.PID)
	}
}

func TestSupervisorRestartKillsAfterGrace(t *testing.T) {
	t.Parallel()
	port := freePort(t)
	s := newSupervisor(t, port, SupervisorOptions{StopGrace: 100 * time.Millisecond}, "listen="+strconv.Itoa(port), "ignore-term")
	s.Start()
	waitListening(t, s)
	if _, _, err := s.Restart(t.Context()); err != nil {
		t.Fatalf("Restart: %v", err)
	}
	if e := s.Status().LastExit; e == nil || e.Signal != "SIGKILL" || e.Code != 128+9 {
		t.Errorf("last exit = %+v, want killed by SIGKILL after ignoring SIGTERM", e)
	}
}

func TestSupervisorStartFailures(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		args     []string
		timeout  time.Duration
		want     error
		wantLogs string
		wantMsg  string
	}{
		{"exits before listening", []string{"eprint=panic: boom", "exit=3"}, 0, ErrStartFailed, "panic: boom", "exit code 3"},
		// Long enough for a loaded machine to start the helper and read its
		// line before the deadline (CI once missed it at 200ms).
		{"never listens", []string{"print=busy elsewhere"}, 3 * time.Second, ErrStartTimeout, "busy elsewhere", "did not listen"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			port := freePort(t)
			s := newSupervisor(t, port, SupervisorOptions{StartTimeout: tt.timeout, Backoff: time.Hour}, tt.args...)
			_, _, err := s.Restart(t.Context())
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			var ae *ActionError
			if !errors.As(err, &ae) {
				t.Fatalf("err %T is not an *ActionError", err)
			}
			if !strings.Contains(ae.Failure.Message, tt.wantMsg) {
				t.Errorf("message %q does not say %q", ae.Failure.Message, tt.wantMsg)
			}
			if !slices.Contains(ae.Failure.Logs, tt.wantLogs) {
				t.Errorf("logs %q do not hold the app's line %q", ae.Failure.Logs, tt.wantLogs)
			}
		})
	}
}

func TestSupervisorStartsAppThatCannotExecLater(t *testing.T) {
	t.Parallel()
	s := newSupervisor(t, 0, SupervisorOptions{Argv: []string{filepath.Join(t.TempDir(), "missing")}, Backoff: time.Hour})
	s.Start() // must not fail: a sync can still bring the binary
	st := s.Status()
	if st.State != StateBackoff || st.LastExit == nil || st.LastExit.Code != 127 {
		t.Errorf("status = %+v, want backoff after exit 127", st)
	}
	_, _, err := s.Restart(t.Context())
	if !errors.Is(err, ErrStartFailed) || !strings.Contains(err.Error(), "missing") {
		t.Errorf("Restart err = %v, want ErrStartFailed naming the file", err)
	}
}

func TestSupervisorRestartsAppThatExits(t *testing.T) {
	t.Parallel()
	s := newSupervisor(t, 0, SupervisorOptions{}, "sleep=10ms")
	s.Start()
	eventually(t, "two restarts", func() bool { return s.Status().Restarts >= 2 })
	if e := s.Status().LastExit; e == nil || e.Code != 0 {
		t.Errorf("last exit = %+v, want code 0", e)
	}
}

func TestSupervisorExitWithApp(t *testing.T) {
	t.Parallel()
	s := newSupervisor(t, 0, SupervisorOptions{ExitWithApp: true}, "exit=7")
	s.Start()
	<-s.Done()
	if e := s.Exit(); e.Code != 7 {
		t.Errorf("exit = %+v, want code 7", e)
	}
	if st := s.Status(); st.State != StateStopped {
		t.Errorf("state = %s, want stopped", st.State)
	}
}

func TestSupervisorTerminateForwardsSignal(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		sig      syscall.Signal
		args     []string
		wantCode int
	}{
		{"SIGTERM, app exits 5", syscall.SIGTERM, []string{"term-exit=5"}, 5},
		{"SIGINT, app exits 0", syscall.SIGINT, []string{"term-exit=0"}, 0},
		{"SIGTERM, app dies by it", syscall.SIGTERM, nil, 128 + 15},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			port := freePort(t)
			s := newSupervisor(t, port, SupervisorOptions{}, append(tt.args, "listen="+strconv.Itoa(port))...)
			s.Start()
			waitListening(t, s)
			s.Terminate(tt.sig)
			<-s.Done()
			if e := s.Exit(); e.Code != tt.wantCode {
				t.Errorf("exit = %+v, want code %d", e, tt.wantCode)
			}
			if _, _, err := s.Restart(t.Context()); !errors.Is(err, ErrStopping) {
				t.Errorf("Restart after Terminate: %v, want ErrStopping", err)
			}
		})
	}
}

func TestSupervisorSignal(t *testing.T) {
	t.Parallel()
	port := freePort(t)
	s := newSupervisor(t, port, SupervisorOptions{}, "listen="+strconv.Itoa(port))
	s.Start()
	waitListening(t, s)
	if err := s.Signal(syscall.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the app reports SIGUSR1", func() bool {
		return slices.Contains(s.logs.texts(0, 0), "got user defined signal 1")
	})
}

func TestSupervisorOverride(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	override := filepath.Join(dir, "app", "srv", "hello")
	port := freePort(t)
	// The image's entrypoint does not even exist; the synced copy does.
	argv := []string{"/srv/hello", "listen=" + strconv.Itoa(port), "body=synced"}
	s := newSupervisor(t, port, SupervisorOptions{Argv: argv, Override: override, Backoff: time.Hour})
	if _, _, err := s.Restart(t.Context()); !errors.Is(err, ErrStartFailed) {
		t.Fatalf("without the synced copy: %v, want ErrStartFailed", err)
	}
	copyTestExe(t, override)
	if _, _, err := s.Restart(t.Context()); err != nil {
		t.Fatalf("Restart: %v", err)
	}
	st := s.Status()
	if st.Executable != override || st.Command[0] != "/srv/hello" {
		t.Errorf("executable %q command %q, want the override run as /srv/hello", st.Executable, st.Command)
	}
	if got := get(t, port); got != "synced" {
		t.Errorf("app answered %q", got)
	}
}

func TestSupervisorRun(t *testing.T) {
	t.Parallel()
	s := newSupervisor(t, 0, SupervisorOptions{})
	exe := testExe(t)
	res, err := s.Run(t.Context(), []string{exe, "print=migrated", "exit=0"})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if res.ExitCode != 0 || !slices.Equal(res.Output, []string{"migrated"}) {
		t.Errorf("result = %+v", res)
	}
	res, err = s.Run(t.Context(), []string{exe, "eprint=no such table", "exit=2"})
	if !errors.Is(err, ErrRunFailed) || res == nil || res.ExitCode != 2 || !strings.Contains(err.Error(), "no such table") {
		t.Errorf("failing run: res %+v err %v, want ErrRunFailed with exit 2 and the output", res, err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := s.Run(ctx, []string{exe, "sleep=1h"}); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled run: %v", err)
	}
}

// copyTestExe copies the test binary (the fake app) to dst.
func copyTestExe(t testing.TB, dst string) {
	t.Helper()
	b, err := os.ReadFile(testExe(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, b, 0o755); err != nil {
		t.Fatal(err)
	}
}

// TestSupervisorTerminateDuringRun stops an agent whose app is not running
// while a run action holds the supervisor: it must still finish.
func TestSupervisorTerminateDuringRun(t *testing.T) {
	t.Parallel()
	s := newSupervisor(t, 0, SupervisorOptions{Argv: []string{filepath.Join(t.TempDir(), "missing")}, Backoff: time.Hour})
	s.Start()
	ran := make(chan error, 1)
	go func() {
		_, err := s.Run(t.Context(), []string{testExe(t), "sleep=300ms"})
		ran <- err
	}()
	eventually(t, "the run holds the supervisor", func() bool { return len(s.op) == 1 })
	s.Terminate(syscall.SIGTERM)
	select {
	case <-s.Done():
	case <-time.After(20 * time.Second):
		t.Fatal("Terminate during a run action never finished")
	}
	if e := s.Exit(); e.Code != 127 {
		t.Errorf("exit = %+v, want the app's last (127: it could not start)", e)
	}
	if err := <-ran; err != nil {
		t.Errorf("run: %v", err)
	}
}
