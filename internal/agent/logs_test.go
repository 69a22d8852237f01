package agent

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"testing/iotest"
)

func TestLogBufferCopy(t *testing.T) {
	t.Parallel()
	b := newLogBuffer()
	var raw strings.Builder
	long := strings.Repeat("x", logLineMax+10)
	in := "one\ntwo\n\nthree " + long + "\nno newline"
	// One byte at a time: lines are split across reads.
	b.copy("stderr", iotest.OneByteReader(strings.NewReader(in)), &raw)
	if raw.String() != in {
		t.Errorf("forwarded output differs from the input")
	}
	got := b.texts(0, 0)
	want := []string{"one", "two", "", ("three " + long)[:logLineMax], "no newline"}
	if !slices.Equal(got, want) {
		t.Errorf("lines = %q", got)
	}
	if got := b.texts(b.mark()-2, 0); !slices.Equal(got, want[3:]) {
		t.Errorf("lines since a mark = %q", got)
	}
	if got := b.texts(0, 1); !slices.Equal(got, want[4:]) {
		t.Errorf("last line = %q", got)
	}
}

func TestLogBufferRing(t *testing.T) {
	t.Parallel()
	b := newLogBuffer()
	for i := range logLines + 5 {
		b.add("stdout", fmt.Appendf(nil, "%d", i))
	}
	got := b.texts(0, 0)
	if len(got) != logLines || got[0] != "5" || got[len(got)-1] != fmt.Sprint(logLines+4) {
		t.Errorf("kept %d lines, %s..%s", len(got), got[0], got[len(got)-1])
	}
	var tail []string
	err := b.tail(context.Background(), 3, false, func(l LogLine) error { tail = append(tail, l.Text); return nil })
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{fmt.Sprint(logLines + 2), fmt.Sprint(logLines + 3), fmt.Sprint(logLines + 4)}; !slices.Equal(tail, want) {
		t.Errorf("tail 3 = %q, want %q", tail, want)
	}
}

func TestLogBufferFollow(t *testing.T) {
	t.Parallel()
	b := newLogBuffer()
	b.add("stdout", []byte("before"))
	ctx, cancel := context.WithCancel(t.Context())
	got := make(chan string)
	done := make(chan error)
	from := b.mark()
	go func() {
		done <- b.follow(ctx, from, func(l LogLine) error { got <- l.Text; return nil })
	}()
	b.add("stdout", []byte("after"))
	if l := <-got; l != "after" {
		t.Errorf("followed line = %q, want only the new one", l)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("follow: %v", err)
	}
}
