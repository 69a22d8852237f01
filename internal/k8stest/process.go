package k8stest

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"syscall"
)

// logTailBytes is how much of a component's log an error carries.
const logTailBytes = 4 << 10

// process is one component running in its own process group.
type process struct {
	name    string
	logPath string
	cmd     *exec.Cmd

	done    chan struct{} // closed when the process has exited
	waitErr error         // valid after done
}

// exitError reports a component that exited before Stop, with its log tail.
type exitError struct {
	Component string
	Err       error
	LogTail   string
}

func (e *exitError) Error() string {
	return fmt.Sprintf("%s exited: %v\n%s", e.Component, e.Err, e.LogTail)
}

func (e *exitError) Unwrap() error { return e.Err }

func newProcess(name, bin, logPath string, args []string) *process {
	cmd := exec.Command(bin, args...)
	cmd.SysProcAttr = sysProcAttr()
	return &process{name: name, logPath: logPath, cmd: cmd, done: make(chan struct{})}
}

func (p *process) start() error {
	logFile, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("%w: %s log: %w", ErrStart, p.name, err)
	}
	defer func() { _ = logFile.Close() }() // the child keeps its own descriptor
	p.cmd.Stdout, p.cmd.Stderr = logFile, logFile
	if err := p.cmd.Start(); err != nil {
		close(p.done)
		return fmt.Errorf("%w: %s: %w", ErrStart, p.name, err)
	}
	go func() {
		p.waitErr = p.cmd.Wait()
		close(p.done)
	}()
	return nil
}

// exited returns an *exitError once the process has exited, else nil.
func (p *process) exited() error {
	select {
	case <-p.done:
		err := p.waitErr
		if err == nil {
			err = errors.New("exit status 0")
		}
		return &exitError{Component: p.name, Err: err, LogTail: p.logTail()}
	default:
		return nil
	}
}

// stop kills the process group and waits for the process. A test control
// plane keeps nothing worth a graceful shutdown, and SIGKILL makes Stop take
// milliseconds instead of the API server's shutdown sequence. It returns an
// error only if the process had already exited on its own.
func (p *process) stop() error {
	if p.cmd.Process == nil {
		return nil // never started
	}
	if err := p.exited(); err != nil {
		return err
	}
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	<-p.done
	return nil
}

// logTail returns the last few KiB of the component's log, labelled.
func (p *process) logTail() string {
	f, err := os.Open(p.logPath)
	if err != nil {
		return fmt.Sprintf("(no %s log: %v)", p.name, err)
	}
	defer func() { _ = f.Close() }()
	st, err := f.Stat()
	cut := err == nil && st.Size() > logTailBytes
	if cut {
		_, _ = f.Seek(-logTailBytes, io.SeekEnd)
	}
	b, _ := io.ReadAll(io.LimitReader(f, 2*logTailBytes))
	if i := bytes.IndexByte(b, '\n'); cut && i >= 0 {
		b = b[i+1:] // drop the partial first line
	}
	return fmt.Sprintf("--- tail of %s (%s) ---\n%s", p.name, p.logPath, bytes.TrimRight(b, "\n"))
}
