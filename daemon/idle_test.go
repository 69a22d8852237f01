package daemon

import (
	"context"
	"log/slog"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The daemon trims once a run has ended and it stayed idle, never while a
// run is under way, and once per idle spell.
func TestTrimWhenIdleWaitsForRunsToEnd(t *testing.T) {
	t.Parallel()
	st := apply(nil, up("a")) // a run under way
	s := NewStore(st, slog.New(slog.DiscardHandler))
	defer s.Close()
	trims := make(chan struct{}, 8)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	changes := s.Watch()
	go trimWhenIdle(ctx, s, changes, 50*time.Millisecond, func() { trims <- struct{}{} })
	s.Dispatch(Logged{Name: "a", Message: "x"})
	s.Dispatch(ServicesDeclared{Name: "a"})
	select {
	case <-trims:
		t.Fatal("trimmed while a run was under way")
	case <-time.After(300 * time.Millisecond):
	}
	if _, err := s.DispatchSync(ctx, finish(st, "a", "")); err != nil {
		t.Fatal(err)
	}
	select {
	case <-trims:
	case <-time.After(5 * time.Second):
		t.Fatal("not trimmed after the run ended")
	}
	select {
	case <-trims:
		t.Fatal("trimmed twice in one idle spell")
	case <-time.After(300 * time.Millisecond):
	}
}

// releaseBinaryPages lowers the file-backed resident memory of the process
// (here the test binary), which goes on running the code it unmapped.
func TestReleaseBinaryPages(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("madvise of the binary's pages is Linux only")
	}
	before := rssFileKB(t)
	n, err := releaseBinaryPages()
	if err != nil || n == 0 {
		t.Fatalf("releaseBinaryPages = %d, %v", n, err)
	}
	after := rssFileKB(t)
	if after >= before {
		t.Errorf("RssFile %d kB before, %d kB after: nothing released", before, after)
	}
	t.Logf("RssFile %d kB → %d kB", before, after)
}

func rssFileKB(t *testing.T) int {
	t.Helper()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "RssFile:"); ok {
			n, err := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")))
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatal("no RssFile in /proc/self/status")
	return 0
}
