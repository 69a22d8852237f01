package agent

import (
	"bytes"
	"context"
	"io"
	"sync"
	"time"
)

const (
	logLines   = 2000 // lines kept for /v1/logs and failure reports
	logLineMax = 4096 // longer lines are cut
)

// logBuffer keeps the app's last output lines, numbered, and wakes followers.
type logBuffer struct {
	mu    sync.Mutex
	ring  []LogLine
	next  uint64 // seq of the next line; lines are 1-based
	wake  chan struct{}
	clock func() time.Time
}

func newLogBuffer() *logBuffer {
	return &logBuffer{next: 1, wake: make(chan struct{}), clock: time.Now}
}

func (b *logBuffer) add(stream string, text []byte) {
	if len(text) > logLineMax {
		text = text[:logLineMax]
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	l := LogLine{Seq: b.next, Stream: stream, Time: b.clock(), Text: string(text)}
	b.next++
	if len(b.ring) < logLines {
		b.ring = append(b.ring, l)
	} else {
		b.ring[int(l.Seq-1)%logLines] = l
	}
	close(b.wake)
	b.wake = make(chan struct{})
}

// mark is the seq the next line will get.
func (b *logBuffer) mark() uint64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.next
}

// since returns the kept lines with seq >= from, at most the last limit
// (limit <= 0: all), and a channel closed when more arrive.
func (b *logBuffer) since(from uint64, limit int) ([]LogLine, <-chan struct{}) {
	b.mu.Lock()
	defer b.mu.Unlock()
	oldest := b.next - uint64(len(b.ring))
	from = max(from, oldest)
	n := int(b.next - from)
	if limit > 0 && n > limit {
		n = limit
		from = b.next - uint64(n)
	}
	out := make([]LogLine, 0, n)
	for seq := from; seq < b.next; seq++ {
		out = append(out, b.ring[int(seq-1)%logLines])
	}
	return out, b.wake
}

// texts returns the text of the lines since from, the last limit of them.
func (b *logBuffer) texts(from uint64, limit int) []string {
	lines, _ := b.since(from, limit)
	out := make([]string, len(lines))
	for i, l := range lines {
		out[i] = l.Text
	}
	return out
}

// tail calls fn with the last n kept lines (n < 0: all) and, with follow,
// every later line until ctx ends or fn fails.
func (b *logBuffer) tail(ctx context.Context, n int, follow bool, fn func(LogLine) error) error {
	b.mu.Lock()
	if n < 0 || n > len(b.ring) {
		n = len(b.ring)
	}
	from := b.next - uint64(n)
	b.mu.Unlock()
	if !follow {
		lines, _ := b.since(from, 0)
		for _, l := range lines {
			if err := fn(l); err != nil {
				return err
			}
		}
		return nil
	}
	return b.follow(ctx, from, fn)
}

// follow calls fn with every line from seq on until ctx ends or fn fails.
func (b *logBuffer) follow(ctx context.Context, from uint64, fn func(LogLine) error) error {
	for {
		lines, wake := b.since(from, 0)
		for _, l := range lines {
			if err := fn(l); err != nil {
				return err
			}
			from = l.Seq + 1
		}
		select {
		case <-ctx.Done():
			return nil
		case <-wake:
		}
	}
}

// copy forwards r to w unchanged (the container's stdout or stderr, for
// kubectl logs) as it arrives, and records it line by line. It returns when
// r ends.
func (b *logBuffer) copy(stream string, r io.Reader, w io.Writer) {
	buf := make([]byte, 32<<10)
	var partial []byte
	for {
		n, err := r.Read(buf)
		if n > 0 {
			_, _ = w.Write(buf[:n]) // the container's own stream: nowhere to report to
			data := buf[:n]
			for {
				i := bytes.IndexByte(data, '\n')
				if i < 0 {
					if len(partial) < logLineMax {
						partial = append(partial, data...)
					}
					break
				}
				if len(partial) > 0 {
					b.add(stream, append(partial, data[:i]...))
					partial = partial[:0]
				} else {
					b.add(stream, data[:i])
				}
				data = data[i+1:]
			}
		}
		if err != nil {
			if len(partial) > 0 {
				b.add(stream, partial)
			}
			return
		}
	}
}
