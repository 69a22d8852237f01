package watch

import (
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/fsnotify/fsnotify"
)

const (
	quiet = 200 * time.Millisecond
	limit = 2 * time.Second
)

func TestQuietWindow(t *testing.T) {
	t.Parallel()
	h := start(t, t.TempDir(), Options{Quiet: quiet, Cap: limit})

	h.send(fsnotify.Write, "a.go")
	h.step(quiet - time.Millisecond)
	h.none()
	h.send(fsnotify.Write, "b.go") // restarts the window
	h.step(quiet - time.Millisecond)
	h.none()
	h.step(time.Millisecond)
	b := h.next()
	if want := map[string][]string{"app": {"a.go", "b.go"}}; !reflect.DeepEqual(b.Changes, want) {
		t.Errorf("Changes = %v, want %v", b.Changes, want)
	}
	if !b.First.Equal(epoch) || !b.Last.Equal(epoch.Add(quiet-time.Millisecond)) {
		t.Errorf("First, Last = %v, %v; want the times of the two events", b.First, b.Last)
	}
	if b.Overflow {
		t.Error("Overflow set")
	}

	// The next change starts a new batch.
	h.send(fsnotify.Create, "c.go")
	h.step(quiet)
	if b := h.next(); !reflect.DeepEqual(b.Changes, map[string][]string{"app": {"c.go"}}) {
		t.Errorf("second batch = %v", b.Changes)
	}
	h.step(limit)
	h.none()
}

func TestCapEndsContinuousBurst(t *testing.T) {
	t.Parallel()
	h := start(t, t.TempDir(), Options{Quiet: quiet, Cap: limit})

	// A change every 150 ms never leaves a 200 ms quiet window.
	const every = 150 * time.Millisecond
	var first []string
	for i := 0; time.Duration(i)*every < limit; i++ {
		name := fmt.Sprintf("f%02d", i)
		first = append(first, name)
		h.send(fsnotify.Write, name)
		h.step(every)
	}
	// 14 events at 0..1950 ms; the clock is at 2100 ms, past the cap.
	b := h.next()
	if got := b.Changes["app"]; !reflect.DeepEqual(got, first) {
		t.Errorf("capped batch = %v, want %v", got, first)
	}
	if got := b.Last.Sub(b.First); got != 1950*time.Millisecond {
		t.Errorf("batch spans %v, want 1950ms", got)
	}
	h.send(fsnotify.Write, "late")
	h.step(quiet)
	if b := h.next(); !reflect.DeepEqual(b.Changes["app"], []string{"late"}) {
		t.Errorf("after the cap: %v", b.Changes)
	}
}

func TestDefaults(t *testing.T) {
	t.Parallel()
	h := start(t, t.TempDir(), Options{})
	if h.w.quiet != DefaultQuiet || h.w.maxWait != DefaultCap {
		t.Fatalf("quiet, cap = %v, %v", h.w.quiet, h.w.maxWait)
	}
	h.send(fsnotify.Write, "a")
	h.step(DefaultQuiet - time.Millisecond)
	h.none()
	h.step(time.Millisecond)
	h.next()
}

// A branch switch writes thousands of files in one go: one batch.
func TestCheckoutIsOneBatchFakeClock(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for i := range 50 {
		writeTree(t, dir, map[string]string{fmt.Sprintf("pkg%02d/", i): ""})
	}
	h := start(t, dir, Options{Quiet: quiet, Cap: 10 * time.Second})
	const files = 2500
	for i := range files {
		op := fsnotify.Write
		if i%3 == 0 {
			op = fsnotify.Create
		}
		h.send(op, fmt.Sprintf("pkg%02d/file%04d.go", i%50, i))
		h.send(fsnotify.Chmod, fmt.Sprintf("pkg%02d/file%04d.go", i%50, i))
		if i%10 == 0 {
			h.step(time.Millisecond)
		}
	}
	h.step(quiet)
	b := h.next()
	if n := len(b.Changes["app"]); n != files {
		t.Errorf("batch has %d paths, want %d", n, files)
	}
	h.step(time.Minute)
	h.none()
}

func TestUnreceivedBatchKeepsGrowing(t *testing.T) {
	t.Parallel()
	h := start(t, t.TempDir(), Options{Quiet: quiet, Cap: limit})
	h.send(fsnotify.Write, "a")
	h.step(quiet) // ready, nobody receives
	h.send(fsnotify.Write, "b")
	h.step(quiet)
	b := h.next()
	if want := []string{"a", "b"}; !reflect.DeepEqual(b.Changes["app"], want) {
		t.Errorf("Changes = %v, want %v", b.Changes["app"], want)
	}
	if b.Last.Sub(b.First) != quiet {
		t.Errorf("First %v, Last %v", b.First, b.Last)
	}
	h.none()
}

func TestIgnoredEventsDoNotStartBatches(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{".gitignore": "*.log\n"})
	h := start(t, dir, Options{Quiet: quiet, Cap: limit})
	h.send(fsnotify.Write, "debug.log")
	h.send(fsnotify.Write, ".git")
	h.step(limit)
	h.none()
}

func TestOverflow(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{"svc/main.go": ""})
	h := start(t, dir, Options{Quiet: quiet, Cap: limit, Roots: []Root{{Name: "project", Dir: "."}, {Name: "svc", Dir: "svc"}}})

	// Folders made while events were lost are found by the rescan.
	writeTree(t, dir, map[string]string{"svc/new/deep/x.go": ""})
	h.fake.SendError(fmt.Errorf("read: %w", fsnotify.ErrEventOverflow))
	h.step(quiet)
	b := h.next()
	if !b.Overflow || !b.Changed("svc") || !b.Changed("project") {
		t.Errorf("batch = %+v, want Overflow and every root changed", b)
	}
	if got, want := h.watched(), []string{".", "svc", "svc/new", "svc/new/deep"}; !reflect.DeepEqual(got, want) {
		t.Errorf("watched after the rescan = %v, want %v", got, want)
	}

	// Other errors are logged, not batched.
	h.fake.SendError(errors.New("boom"))
	h.step(limit)
	h.none()
}

func TestPauseHoldsChangesUntilResume(t *testing.T) {
	t.Parallel()
	h := start(t, t.TempDir(), Options{Quiet: quiet, Cap: limit})

	h.w.Pause()
	h.send(fsnotify.Write, "a")
	h.step(quiet)
	h.none()
	h.send(fsnotify.Write, "b")
	h.step(limit)
	h.none()

	h.w.Resume()
	b := h.next()
	if want := []string{"a", "b"}; !reflect.DeepEqual(b.Changes["app"], want) {
		t.Errorf("on resume: %v, want %v", b.Changes["app"], want)
	}
	if !b.First.Equal(epoch) {
		t.Errorf("First = %v, want the first held change", b.First)
	}
	h.step(limit)
	h.none()

	// Resuming with nothing held hands out nothing.
	h.w.Pause()
	h.w.Resume()
	h.step(limit)
	h.none()
}

func TestPauseHoldsAReadyBatch(t *testing.T) {
	t.Parallel()
	h := start(t, t.TempDir(), Options{Quiet: quiet, Cap: limit})
	h.send(fsnotify.Write, "a")
	h.step(quiet) // ready, nobody receives
	h.w.Pause()
	h.fake.Sync()
	h.none()
	h.w.Resume()
	if b := h.next(); !reflect.DeepEqual(b.Changes["app"], []string{"a"}) {
		t.Errorf("on resume: %v", b.Changes)
	}
}

func TestCloseEndsRun(t *testing.T) {
	t.Parallel()
	fake := NewFakeNotifier()
	w, err := New(t.Context(), Options{Roots: []Root{{Name: "app", Dir: t.TempDir()}}, NewNotifier: func() (Notifier, error) { return fake, nil }})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- w.Run(t.Context()) }()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Errorf("Run = %v, want nil after Close", err)
	}
	if _, ok := <-w.Batches(); ok {
		t.Error("Batches still open")
	}
	if err := w.Run(t.Context()); err == nil {
		t.Error("second Run: no error")
	}
	if err := w.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestOptionErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{"file": "", ".dockerignore": "[\n"})
	for name, o := range map[string]Options{
		"no roots":          {},
		"missing folder":    {Roots: []Root{{Name: "a", Dir: dir + "/nope"}}},
		"file":              {Roots: []Root{{Name: "a", Dir: dir + "/file"}}},
		"duplicate name":    {Roots: []Root{{Name: "a", Dir: dir}, {Name: "a", Dir: dir}}},
		"empty name":        {Roots: []Root{{Dir: dir}}},
		"cap under quiet":   {Roots: []Root{{Name: "a", Dir: dir}}, Quiet: time.Second, Cap: time.Millisecond},
		"negative":          {Roots: []Root{{Name: "a", Dir: dir}}, Quiet: -1},
		"bad pattern":       {Roots: []Root{{Name: "a", Dir: dir, Ignore: []string{"["}}}},
		"bad .dockerignore": {Roots: []Root{{Name: "a", Dir: dir, Dockerignore: true}}},
	} {
		o.NewNotifier = func() (Notifier, error) { return NewFakeNotifier(), nil }
		if w, err := New(t.Context(), o); err == nil {
			_ = w.Close()
			t.Errorf("%s: no error", name)
		}
	}
}

// A batch of one file (a save) waits only Single; a second file brings the
// window back to Quiet, so a burst still comes out as one batch.
func TestSingleFileWindow(t *testing.T) {
	t.Parallel()
	const single = 50 * time.Millisecond
	h := start(t, t.TempDir(), Options{Quiet: quiet, Cap: limit, Single: single})

	h.send(fsnotify.Write, "main.go")
	h.step(single - time.Millisecond)
	h.none()
	h.step(time.Millisecond)
	if b := h.next(); !reflect.DeepEqual(b.Changes, map[string][]string{"app": {"main.go"}}) {
		t.Errorf("save = %v", b.Changes)
	}

	// The same file written twice is still one file.
	h.send(fsnotify.Write, "main.go")
	h.step(single - 10*time.Millisecond)
	h.send(fsnotify.Write, "main.go")
	h.step(single - time.Millisecond)
	h.none()
	h.step(time.Millisecond)
	if b := h.next(); !reflect.DeepEqual(b.Changes, map[string][]string{"app": {"main.go"}}) {
		t.Errorf("twice-written save = %v", b.Changes)
	}

	// A second file: the window is Quiet again, from the last change.
	h.send(fsnotify.Write, "a.go")
	h.step(10 * time.Millisecond)
	h.send(fsnotify.Create, "b.go")
	h.step(quiet - time.Millisecond)
	h.none()
	h.step(time.Millisecond)
	if b := h.next(); !reflect.DeepEqual(b.Changes, map[string][]string{"app": {"a.go", "b.go"}}) {
		t.Errorf("burst = %v", b.Changes)
	}
}

// A save seen by two roots (the project and a service in its folder) is
// still one file.
func TestSingleFileWindowOverlappingRoots(t *testing.T) {
	t.Parallel()
	const single = 50 * time.Millisecond
	h := start(t, t.TempDir(), Options{Quiet: quiet, Cap: limit, Single: single,
		Roots: []Root{{Name: "project", Dir: "."}, {Name: "web", Dir: "."}}})
	h.send(fsnotify.Write, "main.go")
	h.step(single)
	b := h.next()
	if want := map[string][]string{"project": {"main.go"}, "web": {"main.go"}}; !reflect.DeepEqual(b.Changes, want) {
		t.Errorf("Changes = %v, want %v", b.Changes, want)
	}
}

// An editor's or `sed -i`'s save writes a temporary file and renames it
// over the saved one: the batch is the saved file alone, after the
// one-file window; a file made and removed within a batch (vim's write
// probe) is no change at all; a file that was there and is removed is one.
func TestTemporaryFilesAreNoChange(t *testing.T) {
	t.Parallel()
	const single = 50 * time.Millisecond
	h := start(t, t.TempDir(), Options{Quiet: quiet, Cap: limit, Single: single})

	h.send(fsnotify.Create, "sedAb12x")
	h.send(fsnotify.Write, "sedAb12x")
	h.send(fsnotify.Rename, "sedAb12x")
	h.send(fsnotify.Create, "main.go")
	h.step(single - time.Millisecond)
	h.none()
	h.step(time.Millisecond)
	if b := h.next(); !reflect.DeepEqual(b.Changes, map[string][]string{"app": {"main.go"}}) {
		t.Errorf("sed -i save = %v", b.Changes)
	}

	h.send(fsnotify.Create, "4913")
	h.send(fsnotify.Remove, "4913")
	h.step(quiet)
	h.none()

	h.send(fsnotify.Remove, "old.go")
	h.step(quiet)
	if b := h.next(); !reflect.DeepEqual(b.Changes, map[string][]string{"app": {"old.go"}}) {
		t.Errorf("removed file = %v", b.Changes)
	}

	// Made, gone, and made again: it is there, so it changed.
	h.send(fsnotify.Create, "x.go")
	h.send(fsnotify.Remove, "x.go")
	h.send(fsnotify.Create, "x.go")
	h.step(quiet)
	if b := h.next(); !reflect.DeepEqual(b.Changes, map[string][]string{"app": {"x.go"}}) {
		t.Errorf("made again = %v", b.Changes)
	}
}
