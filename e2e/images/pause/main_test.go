package main

import (
	"bytes"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestWaitReapsUntilStopSignal(t *testing.T) {
	t.Parallel()
	for _, stop := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		t.Run(stop.String(), func(t *testing.T) {
			t.Parallel()
			sigs := make(chan os.Signal, 2)
			sigs <- syscall.SIGCHLD // must not stop it
			sigs <- stop
			var log bytes.Buffer
			done := make(chan struct{})
			go func() { wait(sigs, &log); close(done) }()
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				t.Fatalf("wait did not return after %v", stop)
			}
			if !strings.Contains(log.String(), "shutting down, got signal "+stop.String()) {
				t.Errorf("log %q does not report %v", log.String(), stop)
			}
		})
	}
}

// Not parallel: reap collects any child of the test process.
func TestReapCollectsExitedChildren(t *testing.T) {
	cmd := exec.Command("true")
	if err := cmd.Start(); err != nil {
		t.Fatalf("start child: %v", err)
	}
	pid := cmd.Process.Pid
	// wait until the child has exited (it is a zombie until reaped)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		if err != nil {
			t.Fatalf("child %d: %v", pid, err)
		}
		if strings.Contains(string(b), ") Z ") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("child %d did not exit: %s", pid, b)
		}
	}
	reap()
	if _, err := os.Stat("/proc/" + strconv.Itoa(pid)); !os.IsNotExist(err) {
		t.Errorf("child %d still exists after reap: %v", pid, err)
	}
}
