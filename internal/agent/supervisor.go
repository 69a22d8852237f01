//go:build unix

package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// ErrStopping means the agent is shutting down and starts nothing new.
var ErrStopping = errors.New("agent is stopping")

const (
	failureLogLines = 30                     // output lines in a Failure
	drainWait       = 200 * time.Millisecond // how long an exit waits for the pipes to drain
	stableRun       = 10 * time.Second       // a run this long resets the crash backoff
)

// SupervisorOptions configure a Supervisor.
type SupervisorOptions struct {
	// Argv is the app's command (the image's entrypoint and arguments).
	Argv []string
	// Override, if set and the file exists, is executed instead of Argv[0]
	// (the synced copy of the entrypoint binary). Argv[0] is unchanged.
	Override string
	// Env is the app's environment; nil means the agent's own without
	// TokenEnv.
	Env []string
	// Port is where the app listens on 127.0.0.1; 0 skips the check and a
	// restart is done once the process started.
	Port int
	// StopGrace is how long a restart waits after SIGTERM before SIGKILL
	// (default 5s).
	StopGrace time.Duration
	// StartTimeout bounds the wait for the app to listen (default 30s).
	StartTimeout time.Duration
	// Backoff is the delay before starting an app that exited on its own;
	// it doubles on each exit up to MaxBackoff (defaults 250ms and 10s).
	Backoff, MaxBackoff time.Duration
	// ExitWithApp ends the supervisor when the app exits on its own
	// instead of starting it again.
	ExitWithApp bool
	// ReapAll reaps every child, not only the app: set it when the agent is
	// PID 1 or a child subreaper.
	ReapAll bool
	// Stdout and Stderr receive the app's output (default os.Stdout and
	// os.Stderr: the container's, for kubectl logs).
	Stdout, Stderr io.Writer
	// Logger receives the agent's own messages; silent when nil.
	Logger *slog.Logger
}

// Supervisor runs the app as a child process: it starts it, restarts it on
// request or when it exits, forwards signals and reports its state. Methods
// are safe for concurrent use; restarts and run actions happen one at a time.
type Supervisor struct {
	o    SupervisorOptions
	r    *reaper
	logs *logBuffer
	log  *slog.Logger
	op   chan struct{} // one restart, run or delayed start at a time
	quit chan struct{} // closed by Close

	mu       sync.Mutex
	cur      *proc
	epoch    int // bumped by every start; a delayed start for an old epoch is dropped
	backoff  time.Duration
	restarts int
	lastExit *Exit
	stopping bool
	final    Exit
	done     chan struct{} // closed when the supervisor has finished
}

// proc is one process the supervisor started.
type proc struct {
	pid     int
	exe     string
	started time.Time
	done    chan struct{} // closed once exited and its output drained
	exit    Exit          // set before done is closed
}

// NewSupervisor returns a supervisor; Start starts the app.
func NewSupervisor(o SupervisorOptions) (*Supervisor, error) {
	if len(o.Argv) == 0 || o.Argv[0] == "" {
		return nil, errors.New("no command to supervise: pass the app's command after --")
	}
	if o.Env == nil {
		o.Env = slices.DeleteFunc(os.Environ(), func(kv string) bool { return strings.HasPrefix(kv, TokenEnv+"=") })
	}
	if o.StopGrace <= 0 {
		o.StopGrace = 5 * time.Second
	}
	if o.StartTimeout <= 0 {
		o.StartTimeout = 30 * time.Second
	}
	if o.Backoff <= 0 {
		o.Backoff = 250 * time.Millisecond
	}
	if o.MaxBackoff < o.Backoff {
		o.MaxBackoff = max(o.Backoff, 10*time.Second)
	}
	if o.Stdout == nil {
		o.Stdout = os.Stdout
	}
	if o.Stderr == nil {
		o.Stderr = os.Stderr
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Supervisor{
		o:       o,
		r:       newReaper(o.ReapAll),
		logs:    newLogBuffer(),
		log:     log,
		op:      make(chan struct{}, 1),
		quit:    make(chan struct{}),
		backoff: o.Backoff,
		done:    make(chan struct{}),
	}, nil
}

// Start starts the app. A command that cannot be executed counts as an exit
// with code 127 and is retried with backoff, so the agent stays reachable
// for a sync that fixes it.
func (s *Supervisor) Start() {
	s.op <- struct{}{}
	defer s.release()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopping || s.cur != nil {
		return
	}
	_, _ = s.startLocked() // a failure is logged and retried
}

// startLocked starts the app and records it as current; on failure it
// schedules a delayed start. s.mu is held.
func (s *Supervisor) startLocked() (*proc, error) {
	s.epoch++
	p, err := s.spawn(s.o.Argv, s.logs)
	if err != nil {
		s.log.Error("start app", "err", err)
		s.lastExit = &Exit{Code: 127, At: time.Now()}
		s.scheduleLocked()
		return nil, err
	}
	s.cur = p
	s.log.Info("app started", "pid", p.pid, "exe", p.exe)
	go s.watch(p)
	return p, nil
}

// exe is the file to execute for argv: the synced entrypoint when argv
// starts with the app's command and the copy exists.
func (s *Supervisor) exe(argv []string) string {
	if s.o.Override != "" && argv[0] == s.o.Argv[0] {
		if fi, err := os.Stat(s.o.Override); err == nil && fi.Mode().IsRegular() {
			return s.o.Override
		}
	}
	return argv[0]
}

// spawn starts argv with its output copied to the container's streams and
// recorded in logs.
func (s *Supervisor) spawn(argv []string, logs *logBuffer) (*proc, error) {
	outR, outW, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", argv[0], err)
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		closeAll(outR, outW)
		return nil, fmt.Errorf("start %s: %w", argv[0], err)
	}
	exe := s.exe(argv)
	if !strings.Contains(exe, "/") {
		p, err := exec.LookPath(exe)
		if err != nil {
			closeAll(outR, outW, errR, errW)
			return nil, fmt.Errorf("start %s: %w", exe, err)
		}
		exe = p
	}
	pid, status, err := s.r.spawn(spawnSpec{Exe: exe, Argv: argv, Env: s.o.Env, Files: [3]*os.File{os.Stdin, outW, errW}})
	closeAll(outW, errW) // the child has its own copies
	if err != nil {
		closeAll(outR, errR)
		return nil, err
	}
	p := &proc{pid: pid, exe: exe, started: time.Now(), done: make(chan struct{})}
	var wg sync.WaitGroup
	wg.Go(func() { logs.copy("stdout", outR, s.o.Stdout); _ = outR.Close() })
	wg.Go(func() { logs.copy("stderr", errR, s.o.Stderr); _ = errR.Close() })
	drained := make(chan struct{})
	go func() { wg.Wait(); close(drained) }()
	go func() {
		ws := <-status
		p.exit = exitOf(ws, time.Now())
		// The output usually ends with the process; a child that kept the
		// pipes open must not hold the exit up.
		t := time.NewTimer(drainWait)
		select {
		case <-drained:
		case <-t.C:
		}
		t.Stop()
		close(p.done)
	}()
	return p, nil
}

// watch handles the app exiting on its own.
func (s *Supervisor) watch(p *proc) {
	<-p.done
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cur != p {
		return // a restart or stop took it down
	}
	s.cur = nil
	e := p.exit
	s.lastExit = &e
	switch {
	case s.stopping:
		s.finishLocked(e)
	case s.o.ExitWithApp:
		s.log.Info("app exited", "pid", p.pid, "exit", e.String())
		s.stopping = true
		s.finishLocked(e)
	default:
		if e.At.Sub(p.started) >= stableRun {
			s.backoff = s.o.Backoff
		}
		s.log.Warn("app exited, starting it again", "pid", p.pid, "exit", e.String(), "delay", s.backoff)
		s.scheduleLocked()
	}
}

// scheduleLocked starts the app again after the backoff. s.mu is held.
func (s *Supervisor) scheduleLocked() {
	delay, epoch := s.backoff, s.epoch
	s.backoff = min(2*s.backoff, s.o.MaxBackoff)
	go func() {
		t := time.NewTimer(delay)
		defer t.Stop()
		select {
		case <-t.C:
		case <-s.quit:
			return
		}
		select {
		case s.op <- struct{}{}:
		case <-s.quit:
			return
		}
		defer s.release()
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.stopping || s.cur != nil || s.epoch != epoch {
			return
		}
		s.restarts++
		_, _ = s.startLocked() // a failure is logged and retried
	}()
}

// release ends an operation. Terminate leaves finishing to an operation
// under way; when the operation did not start the app, it finishes here.
func (s *Supervisor) release() {
	<-s.op
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopping && s.cur == nil {
		s.finishLocked(s.lastExitLocked())
	}
}

func (s *Supervisor) finishLocked(e Exit) {
	select {
	case <-s.done:
	default:
		s.final = e
		close(s.done)
	}
}

// Restart stops the app (SIGTERM to its process group, SIGKILL after the
// grace period), starts it again and waits until it listens. It returns how
// long stopping and starting took; a start that fails is an *ActionError
// with the app's last output.
func (s *Supervisor) Restart(ctx context.Context) (stop, start time.Duration, err error) {
	select {
	case s.op <- struct{}{}:
	case <-ctx.Done():
		return 0, 0, ctx.Err()
	}
	defer s.release()

	s.mu.Lock()
	if s.stopping {
		s.mu.Unlock()
		return 0, 0, ErrStopping
	}
	old := s.cur
	s.cur = nil
	s.epoch++ // drops a pending delayed start
	s.mu.Unlock()

	t0 := time.Now()
	if old != nil {
		s.terminate(old)
	}
	stop = time.Since(t0)

	t1 := time.Now()
	mark := s.logs.mark()
	s.mu.Lock()
	if s.stopping {
		if old != nil {
			s.finishLocked(old.exit)
		} else {
			s.finishLocked(s.lastExitLocked())
		}
		s.mu.Unlock()
		return stop, 0, ErrStopping
	}
	if old != nil {
		e := old.exit
		s.lastExit = &e
	}
	s.restarts++
	s.backoff = s.o.Backoff
	p, err := s.startLocked()
	s.mu.Unlock()
	if err != nil {
		return stop, time.Since(t1), &ActionError{Failure{Reason: ReasonExited, Message: err.Error()}}
	}
	err = s.waitListening(ctx, p, mark)
	return stop, time.Since(t1), err
}

// terminate stops p and its process group and waits for it.
func (s *Supervisor) terminate(p *proc) {
	if err := signalGroup(p.pid, syscall.SIGTERM); err != nil {
		s.log.Warn("signal app", "pid", p.pid, "err", err)
	}
	t := time.NewTimer(s.o.StopGrace)
	defer t.Stop()
	select {
	case <-p.done:
	case <-t.C:
		s.log.Warn("app ignored SIGTERM, killing it", "pid", p.pid, "grace", s.o.StopGrace)
		_ = signalGroup(p.pid, syscall.SIGKILL)
		<-p.done
	}
	// Children it left behind would keep the port or the files busy.
	_ = signalGroup(p.pid, syscall.SIGKILL)
}

// waitListening waits until the app accepts connections on its port.
func (s *Supervisor) waitListening(ctx context.Context, p *proc, mark uint64) error {
	if s.o.Port == 0 {
		return nil
	}
	deadline := time.NewTimer(s.o.StartTimeout)
	defer deadline.Stop()
	delay := time.Millisecond
	for {
		if s.listening(50 * time.Millisecond) {
			return nil
		}
		t := time.NewTimer(delay)
		select {
		case <-p.done:
			t.Stop()
			logs := s.logs.texts(mark, failureLogLines)
			return &ActionError{Failure{
				Reason:  ReasonExited,
				Message: fmt.Sprintf("app exited (%s) before listening on port %d", p.exit, s.o.Port),
				Logs:    logs,
			}}
		case <-deadline.C:
			t.Stop()
			return &ActionError{Failure{
				Reason:  ReasonTimeout,
				Message: fmt.Sprintf("app did not listen on port %d within %s: check the port it binds (live.port/service.port)", s.o.Port, s.o.StartTimeout),
				Logs:    s.logs.texts(mark, failureLogLines),
			}}
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
		delay = min(2*delay, 20*time.Millisecond)
	}
}

func (s *Supervisor) listening(timeout time.Duration) bool {
	c, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(s.o.Port)), timeout)
	if err != nil {
		return false
	}
	_ = c.Close()
	return true
}

// Run executes argv directly (no shell) with the app's environment and
// waits for it. A non-zero exit is an *ActionError (ErrRunFailed).
func (s *Supervisor) Run(ctx context.Context, argv []string) (*RunResult, error) {
	if len(argv) == 0 || argv[0] == "" {
		return nil, fmt.Errorf("%w: empty run command", ErrBadRequest)
	}
	select {
	case s.op <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	defer s.release()
	logs := newLogBuffer()
	res := &RunResult{Argv: argv}
	p, err := s.spawn(argv, logs)
	if err != nil {
		res.ExitCode = 127
		return res, &ActionError{Failure{Reason: ReasonRun, Message: err.Error()}}
	}
	select {
	case <-p.done:
	case <-ctx.Done():
		_ = signalGroup(p.pid, syscall.SIGKILL)
		<-p.done
		return nil, ctx.Err()
	}
	_ = signalGroup(p.pid, syscall.SIGKILL)
	res.ExitCode = p.exit.Code
	res.Output = logs.texts(0, failureLogLines)
	if p.exit.Code != 0 {
		return res, &ActionError{Failure{
			Reason:  ReasonRun,
			Message: fmt.Sprintf("%s: %s", strings.Join(argv, " "), p.exit),
			Logs:    res.Output,
		}}
	}
	return res, nil
}

// Signal forwards sig to the app's process group.
func (s *Supervisor) Signal(sig syscall.Signal) error {
	s.mu.Lock()
	p := s.cur
	s.mu.Unlock()
	if p == nil {
		return nil
	}
	return signalGroup(p.pid, sig)
}

// Terminate forwards sig (SIGTERM, SIGINT) to the app and stops
// supervising: once the app exits, Done is closed and Exit holds its exit.
func (s *Supervisor) Terminate(sig syscall.Signal) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stopping = true
	if s.cur != nil {
		if err := signalGroup(s.cur.pid, sig); err != nil {
			s.log.Warn("signal app", "pid", s.cur.pid, "err", err)
		}
		return
	}
	select {
	case s.op <- struct{}{}:
		// Nothing runs and no restart is under way.
		<-s.op
		s.finishLocked(s.lastExitLocked())
	default:
		// An operation is under way: it sees stopping, starts nothing and
		// finishes when it releases.
	}
}

func (s *Supervisor) lastExitLocked() Exit {
	if s.lastExit != nil {
		return *s.lastExit
	}
	return Exit{At: time.Now()}
}

// Done is closed when the supervisor has finished: after Terminate, or
// when the app exited with ExitWithApp set.
func (s *Supervisor) Done() <-chan struct{} { return s.done }

// Exit is the app's final exit, once Done is closed.
func (s *Supervisor) Exit() Exit {
	<-s.done
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.final
}

// Status reports the app's state; Listening is checked now.
func (s *Supervisor) Status() AppStatus {
	s.mu.Lock()
	st := AppStatus{
		Command:  slices.Clone(s.o.Argv),
		Port:     s.o.Port,
		Restarts: s.restarts,
		Reaped:   s.r.reaped(),
	}
	if s.lastExit != nil {
		e := *s.lastExit
		st.LastExit = &e
	}
	switch {
	case s.cur != nil:
		st.State, st.PID, st.Executable, st.Started = StateRunning, s.cur.pid, s.cur.exe, s.cur.started
	case s.stopping:
		st.State = StateStopped
	default:
		st.State = StateBackoff
	}
	s.mu.Unlock()
	if st.State == StateRunning && s.o.Port != 0 {
		st.Listening = s.listening(200 * time.Millisecond)
	}
	return st
}

// FollowLogs calls fn with the app's last tail output lines (tail < 0:
// every line kept) and, with follow, every later line until ctx ends.
func (s *Supervisor) FollowLogs(ctx context.Context, tail int, follow bool, fn func(LogLine) error) error {
	return s.logs.tail(ctx, tail, follow, fn)
}

// Close kills the app if it still runs and releases the supervisor.
func (s *Supervisor) Close() {
	s.mu.Lock()
	s.stopping = true
	p := s.cur
	s.mu.Unlock()
	if p != nil {
		_ = signalGroup(p.pid, syscall.SIGKILL)
		<-p.done
	}
	close(s.quit)
	s.r.close()
}

func closeAll(fs ...*os.File) {
	for _, f := range fs {
		_ = f.Close()
	}
}
