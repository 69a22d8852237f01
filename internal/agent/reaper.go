//go:build unix

package agent

import (
	"errors"
	"fmt"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"
)

// reaper starts child processes and collects their exit statuses. As PID 1
// (or a child subreaper) it also reaps orphans it never started; otherwise
// it waits only for its own children, so it does not steal the statuses of
// processes started elsewhere in the same program (tests).
//
// It cannot use os/exec's Wait: a wait4(-1) for orphans would race with it.
type reaper struct {
	all bool

	mu      sync.Mutex // held across fork and registration, see spawn
	waiting map[int]chan syscall.WaitStatus
	orphans int

	sigc chan os.Signal
	stop chan struct{}
	done chan struct{}
}

func newReaper(all bool) *reaper {
	r := &reaper{
		all:     all,
		waiting: map[int]chan syscall.WaitStatus{},
		sigc:    make(chan os.Signal, 1),
		stop:    make(chan struct{}),
		done:    make(chan struct{}),
	}
	signal.Notify(r.sigc, syscall.SIGCHLD)
	go r.loop()
	return r
}

// close stops reaping. Children still running are not waited for.
func (r *reaper) close() {
	signal.Stop(r.sigc)
	close(r.stop)
	<-r.done
}

func (r *reaper) loop() {
	defer close(r.done)
	for {
		select {
		case <-r.stop:
			return
		case <-r.sigc:
			r.reap()
		}
	}
}

// reap collects every child that has exited. SIGCHLD coalesces, so it loops
// until nothing is left; a child exiting during the loop raises a new signal.
func (r *reaper) reap() {
	if r.all {
		for {
			var ws syscall.WaitStatus
			pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
			if errors.Is(err, syscall.EINTR) {
				continue
			}
			if err != nil || pid <= 0 {
				return
			}
			r.dispatch(pid, ws)
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for pid, ch := range r.waiting {
		var ws syscall.WaitStatus
		got, err := syscall.Wait4(pid, &ws, syscall.WNOHANG, nil)
		if err == nil && got == pid {
			delete(r.waiting, pid)
			ch <- ws
		}
	}
}

// dispatch hands a status to whoever started pid. Taking mu here, after
// wait4, means a child that exits right after fork is dispatched only once
// spawn has registered it.
func (r *reaper) dispatch(pid int, ws syscall.WaitStatus) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if ch, ok := r.waiting[pid]; ok {
		delete(r.waiting, pid)
		ch <- ws
		return
	}
	r.orphans++
}

func (r *reaper) reaped() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.orphans
}

// spawnSpec describes a process to start.
type spawnSpec struct {
	// Exe is the path of the file to execute; Argv[0] is what the process
	// sees.
	Exe  string
	Argv []string
	Env  []string
	// Files become the child's stdin, stdout and stderr.
	Files [3]*os.File
}

// spawn starts a process in its own process group. The channel receives its
// wait status once.
func (r *reaper) spawn(s spawnSpec) (int, <-chan syscall.WaitStatus, error) {
	exe := s.Exe
	attr := &syscall.ProcAttr{
		Env:   s.Env,
		Files: []uintptr{s.Files[0].Fd(), s.Files[1].Fd(), s.Files[2].Fd()},
		Sys:   &syscall.SysProcAttr{Setpgid: true},
	}
	ch := make(chan syscall.WaitStatus, 1)
	r.mu.Lock()
	defer r.mu.Unlock()
	var (
		pid int
		err error
	)
	// A file that was just written can be briefly busy (ETXTBSY) when
	// another fork inherited its descriptor before exec; retry a little.
	for try := 0; ; try++ {
		pid, err = syscall.ForkExec(exe, s.Argv, attr)
		if !errors.Is(err, syscall.ETXTBSY) || try == 20 {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err != nil {
		return 0, nil, fmt.Errorf("start %s: %w", exe, &os.PathError{Op: "fork/exec", Path: exe, Err: err})
	}
	r.waiting[pid] = ch
	return pid, ch, nil
}

// exitOf turns a wait status into an Exit.
func exitOf(ws syscall.WaitStatus, at time.Time) Exit {
	if ws.Signaled() {
		return Exit{Code: 128 + int(ws.Signal()), Signal: signalName(ws.Signal()), At: at}
	}
	return Exit{Code: ws.ExitStatus(), At: at}
}

func signalName(s syscall.Signal) string {
	switch s {
	case syscall.SIGTERM:
		return "SIGTERM"
	case syscall.SIGKILL:
		return "SIGKILL"
	case syscall.SIGINT:
		return "SIGINT"
	case syscall.SIGQUIT:
		return "SIGQUIT"
	case syscall.SIGHUP:
		return "SIGHUP"
	case syscall.SIGSEGV:
		return "SIGSEGV"
	case syscall.SIGABRT:
		return "SIGABRT"
	default:
		return s.String()
	}
}

// signalGroup signals the process group led by pid; a group that is already
// gone is not an error.
func signalGroup(pid int, sig syscall.Signal) error {
	err := syscall.Kill(-pid, sig)
	if errors.Is(err, syscall.ESRCH) {
		return nil
	}
	return err
}
