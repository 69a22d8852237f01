package tui

import (
	"time"

	"github.com/devctl/devctl/internal/api"
)

// Line is one log line the TUI holds.
type Line struct {
	Seq   uint64
	Time  time.Time
	Pod   string // the pod that printed it, for pod logs
	Level api.Level
	Text  string
}

// Ring is a bounded buffer of log lines: when full, each new line replaces
// the oldest, so a service printing 10,000 lines a second costs a fixed
// amount of memory. Lines are numbered; a number outside the ring was
// dropped.
type Ring struct {
	buf   []Line
	start int    // index of the oldest line
	n     int    // lines held
	next  uint64 // the number the next line gets
}

// NewRing returns a ring holding at most size lines.
func NewRing(size int) *Ring {
	if size < 1 {
		size = 1
	}
	return &Ring{buf: make([]Line, size)}
}

// Push adds a line, numbering it, and returns its number.
func (r *Ring) Push(l Line) uint64 {
	l.Seq = r.next
	r.next++
	if r.n < len(r.buf) {
		r.buf[(r.start+r.n)%len(r.buf)] = l
		r.n++
		return l.Seq
	}
	r.buf[r.start] = l
	r.start = (r.start + 1) % len(r.buf)
	return l.Seq
}

// Len is the number of lines held.
func (r *Ring) Len() int { return r.n }

// Cap is the most lines the ring holds.
func (r *Ring) Cap() int { return len(r.buf) }

// At returns the i-th line held, 0 the oldest.
func (r *Ring) At(i int) *Line { return &r.buf[(r.start+i)%len(r.buf)] }

// First is the number of the oldest line held (Next when empty).
func (r *Ring) First() uint64 { return r.next - uint64(r.n) }

// Next is the number the next line gets.
func (r *Ring) Next() uint64 { return r.next }

// BySeq returns the line numbered seq, or nil when it was dropped or is to come.
func (r *Ring) BySeq(seq uint64) *Line {
	if seq < r.First() || seq >= r.next {
		return nil
	}
	return r.At(int(seq - r.First()))
}

// Reset drops every line; numbering goes on.
func (r *Ring) Reset() { r.start, r.n = 0, 0 }
