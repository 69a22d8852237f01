package watch

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fsnotify/fsnotify"
)

// Folders created, moved in, moved and removed, with the events a kernel
// sends, delivered by hand.
func TestFolderLifecycle(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{".gitignore": "*.o\n"})
	h := start(t, dir, Options{Quiet: quiet, Cap: limit})
	expect := func(what string, paths, watched []string) {
		t.Helper()
		h.step(quiet)
		if b := h.next(); !reflect.DeepEqual(b.Changes["app"], paths) {
			t.Errorf("%s: Changes = %v, want %v", what, b.Changes["app"], paths)
		}
		if got := h.watched(); !reflect.DeepEqual(got, watched) {
			t.Errorf("%s: watched %v, want %v", what, got, watched)
		}
	}

	// mkdir -p a/b/c && touch a/b/c/f: only the Create of a arrives before
	// the watch on a is added; the scan finds the rest.
	writeTree(t, dir, map[string]string{"a/b/c/f": "", "a/b/c/f.o": ""})
	h.send(fsnotify.Create, "a")
	expect("mkdir -p", []string{"a", "a/b", "a/b/c", "a/b/c/f"}, []string{".", "a", "a/b", "a/b/c"})

	// A tree moved in arrives as one Create.
	other := t.TempDir()
	writeTree(t, other, map[string]string{"t/x/y.go": ""})
	if err := os.Rename(filepath.Join(other, "t"), filepath.Join(dir, "t")); err != nil {
		t.Fatal(err)
	}
	h.send(fsnotify.Create, "t")
	expect("move in", []string{"t", "t/x", "t/x/y.go"}, []string{".", "a", "a/b", "a/b/c", "t", "t/x"})

	// A rename within the tree: the old name goes, the new one is scanned.
	if err := os.Rename(filepath.Join(dir, "a"), filepath.Join(dir, "z")); err != nil {
		t.Fatal(err)
	}
	h.send(fsnotify.Rename, "a")
	h.send(fsnotify.Create, "z")
	expect("rename", []string{"a", "z", "z/b", "z/b/c", "z/b/c/f"}, []string{".", "t", "t/x", "z", "z/b", "z/b/c"})

	// Removed folders are forgotten, children first as rm -r goes.
	if err := os.RemoveAll(filepath.Join(dir, "z")); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"z/b/c/f", "z/b/c/f.o", "z/b/c", "z/b", "z"} {
		h.send(fsnotify.Remove, p)
	}
	expect("rm -r", []string{"z", "z/b", "z/b/c", "z/b/c/f"}, []string{".", "t", "t/x"})

	// A folder replaced by a file.
	if err := os.RemoveAll(filepath.Join(dir, "t")); err != nil {
		t.Fatal(err)
	}
	writeTree(t, dir, map[string]string{"t": "now a file"})
	h.send(fsnotify.Create, "t")
	expect("folder to file", []string{"t"}, []string{"."})

	// The root's own folder removed: reported as ".", nothing left watched.
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	h.fake.Send(fsnotify.Event{Name: dir, Op: fsnotify.Remove})
	expect("root removed", []string{"."}, nil)
}

// startReal runs a Watcher on fsnotify and the real clock.
func startReal(t testing.TB, o Options) *Watcher {
	t.Helper()
	w, err := New(t.Context(), o)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return w
}

// receive returns the next batch. The timeout only keeps a broken test
// from hanging.
func receive(t testing.TB, w *Watcher) Batch {
	t.Helper()
	select {
	case b := <-w.Batches():
		return b
	case <-time.After(30 * time.Second):
		t.Fatal("no batch within 30s")
		return Batch{}
	}
}

// waitFor receives batches until every path in want was reported for the
// root "app", and returns everything reported meanwhile.
func waitFor(t testing.TB, w *Watcher, want ...string) []string {
	t.Helper()
	var got []string
	for {
		got = append(got, receive(t, w).Changes["app"]...)
		if !slices.ContainsFunc(want, func(p string) bool { return !slices.Contains(got, p) }) {
			return got
		}
	}
}

func TestFSNotifyFolders(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	w := startReal(t, Options{Roots: []Root{{Name: "app", Dir: dir}}, Quiet: 50 * time.Millisecond})

	if err := os.MkdirAll(filepath.Join(dir, "a/b/c"), 0o755); err != nil {
		t.Fatal(err)
	}
	writeTree(t, dir, map[string]string{"a/b/c/f": ""})
	waitFor(t, w, "a", "a/b", "a/b/c", "a/b/c/f")
	writeTree(t, dir, map[string]string{"a/b/c/g": ""})
	waitFor(t, w, "a/b/c/g")

	other := t.TempDir()
	writeTree(t, other, map[string]string{"t/x/y/z.go": ""})
	if err := os.Rename(filepath.Join(other, "t"), filepath.Join(dir, "t")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, w, "t/x/y/z.go")
	writeTree(t, dir, map[string]string{"t/x/y/new.go": ""})
	waitFor(t, w, "t/x/y/new.go")

	// After a rename, changes below carry the new name.
	if err := os.Rename(filepath.Join(dir, "a"), filepath.Join(dir, "m")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, w, "a", "m/b/c/g")
	writeTree(t, dir, map[string]string{"m/b/c/h": ""})
	if got := waitFor(t, w, "m/b/c/h"); slices.ContainsFunc(got, func(p string) bool { return strings.HasPrefix(p, "a/") }) {
		t.Errorf("changes under the renamed folder reported under its old name: %v", got)
	}

	// Removed and made again: watched again.
	if err := os.RemoveAll(filepath.Join(dir, "m")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, w, "m")
	writeTree(t, dir, map[string]string{"m/b/again": ""})
	waitFor(t, w, "m/b/again")
}

// A branch switch rewriting, removing and adding thousands of files, with
// new folders, is one batch with the real notifier. The quiet window is
// long so that a busy machine does not split the burst.
func TestFSNotifyCheckoutIsOneBatch(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	const pkgs, perPkg = 40, 50
	tree := map[string]string{".gitignore": "*.o\n"}
	for i := range pkgs * perPkg {
		tree[fmt.Sprintf("pkg%02d/f%04d.go", i%pkgs, i)] = "package x\n"
	}
	writeTree(t, dir, tree)
	w := startReal(t, Options{Roots: []Root{{Name: "app", Dir: dir}}, Quiet: 2 * time.Second, Cap: time.Minute})

	var want []string
	for i := range pkgs * perPkg {
		p := fmt.Sprintf("pkg%02d/f%04d.go", i%pkgs, i)
		want = append(want, p)
		if i%10 == 0 {
			if err := os.Remove(filepath.Join(dir, p)); err != nil {
				t.Fatal(err)
			}
			continue
		}
		writeTree(t, dir, map[string]string{p: "package y\n"})
		if i%5 == 0 {
			writeTree(t, dir, map[string]string{p + ".o": ""}) // ignored
		}
	}
	for i := range 300 {
		d := fmt.Sprintf("new%d/sub", i%10)
		p := fmt.Sprintf("%s/n%03d.go", d, i)
		if i < 10 {
			want = append(want, fmt.Sprintf("new%d", i), d)
		}
		want = append(want, p)
		writeTree(t, dir, map[string]string{p: ""})
	}
	slices.Sort(want)

	b := receive(t, w)
	if b.Overflow {
		t.Fatal("events overflowed")
	}
	if got := b.Changes["app"]; !reflect.DeepEqual(got, want) {
		t.Errorf("first batch has %d paths, want %d", len(got), len(want))
	}
	// The next batch holds only what comes after: no tail of the burst.
	writeTree(t, dir, map[string]string{"after": ""})
	if b := receive(t, w); !reflect.DeepEqual(b.Changes["app"], []string{"after"}) {
		t.Errorf("second batch = %d paths (%.5v), want only the later change", len(b.Changes["app"]), b.Changes["app"])
	}
	if b.Last.Before(b.First) {
		t.Errorf("Last %v before First %v", b.Last, b.First)
	}
}
