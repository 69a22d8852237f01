// Package status shows the progress of slow steps: a spinner on a terminal,
// plain timestamped lines otherwise (CI logs, pipes).
package status

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"golang.org/x/term"
)

// Status prints one step at a time.
type Status struct {
	w        io.Writer
	tty      bool
	mu       sync.Mutex // guards the step
	wmu      sync.Mutex // serialises writes (the spinner writes without mu)
	msg      string
	started  time.Time
	stopSpin chan struct{}
	spinDone chan struct{}
}

// New returns a Status writing to w; it spins only when w is a terminal and
// plain is false.
func New(w io.Writer, plain bool) *Status {
	s := &Status{w: w}
	if f, ok := w.(*os.File); ok && !plain && term.IsTerminal(int(f.Fd())) && os.Getenv("TERM") != "dumb" {
		s.tty = true
	}
	return s
}

// IsTTY reports whether the status animates.
func (s *Status) IsTTY() bool { return s.tty }

// Start begins a step, ending any running one as done.
func (s *Status) Start(msg string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stopLocked()
	s.msg, s.started = msg, time.Now()
	if !s.tty {
		s.printf("• %s ...\n", msg)
		return
	}
	s.stopSpin, s.spinDone = make(chan struct{}), make(chan struct{})
	go s.spin(s.stopSpin, s.spinDone, msg, s.started)
}

// End finishes the running step with a result line.
func (s *Status) End(ok bool, detail string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.endLocked(ok, detail, time.Since(s.started))
}

// Step prints a finished step with its own duration (for steps that ran
// elsewhere, e.g. in the daemon).
func (s *Status) Step(ok bool, name string, d time.Duration, detail string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stopLocked()
	s.msg = name
	s.endLocked(ok, detail, d)
}

// Printf prints a line above the spinner.
func (s *Status) Printf(format string, args ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.tty && s.stopSpin != nil {
		s.printf("\r\033[K")
	}
	s.printf(format, args...)
}

func (s *Status) endLocked(ok bool, detail string, d time.Duration) {
	if s.msg == "" {
		return
	}
	s.stopLocked()
	mark := "✓"
	if !ok {
		mark = "✗"
	}
	if !s.tty {
		mark = map[bool]string{true: "done", false: "FAILED"}[ok]
		s.printf("  %s %-8s %6.1fs  %s\n", mark, s.msg, d.Seconds(), detail)
	} else {
		s.printf("\r\033[K %s %-8s %6.1fs  %s\n", mark, s.msg, d.Seconds(), detail)
	}
	s.msg = ""
}

func (s *Status) stopLocked() {
	if s.stopSpin != nil {
		close(s.stopSpin)
		<-s.spinDone
		s.stopSpin = nil
		s.printf("\r\033[K")
	}
}

func (s *Status) spin(stop <-chan struct{}, done chan<- struct{}, msg string, started time.Time) {
	defer close(done)
	frames := []string{"⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"}
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for i := 0; ; i++ {
		s.printf("\r\033[K %s %s (%.0fs)", frames[i%len(frames)], msg, time.Since(started).Seconds())
		select {
		case <-stop:
			return
		case <-t.C:
		}
	}
}

func (s *Status) printf(format string, args ...any) {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	_, _ = fmt.Fprintf(s.w, format, args...)
}
