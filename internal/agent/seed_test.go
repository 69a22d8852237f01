package agent

import (
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

type entry struct {
	mode   fs.FileMode // type and permission bits
	data   string      // content, or a link's target
	mtime  time.Time
	noTime bool
}

// tree lists dir as path → entry, without dir itself.
func tree(t *testing.T, dir string) map[string]entry {
	t.Helper()
	out := map[string]entry{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == dir {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		fi, err := d.Info()
		if err != nil {
			return err
		}
		e := entry{mode: fi.Mode().Type() | fi.Mode().Perm(), mtime: fi.ModTime()}
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			e.data, err = os.Readlink(p)
			e.noTime = true
		case fi.Mode().IsRegular():
			var b []byte
			b, err = os.ReadFile(p)
			e.data = string(b)
		}
		out[rel] = e
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// makeTree builds the image side of a seed: files of several modes, a
// read-only directory, relative and absolute links, all with an old mtime.
func makeTree(t *testing.T) string {
	t.Helper()
	src := filepath.Join(t.TempDir(), "static")
	old := time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)
	files := []struct {
		path string
		mode fs.FileMode
		data string
	}{
		{"index.html", 0o644, "<h1>hi</h1>"},
		{"bin/tool", 0o755, "#!tool"},
		{"private/key", 0o600, "secret"},
		{"ro/frozen.txt", 0o444, "frozen"},
		{"empty", 0o644, ""},
	}
	for _, f := range files {
		p := filepath.Join(src, f.path)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(f.data), f.mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, f.mode); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("index.html", filepath.Join(src, "home.html")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/etc/hostname", filepath.Join(src, "bin", "abs")); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(src, "emptydir"), 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(src, "emptydir"), 0o750); err != nil {
		t.Fatal(err)
	}
	_ = filepath.WalkDir(src, func(p string, d fs.DirEntry, _ error) error {
		if d.Type()&fs.ModeSymlink == 0 {
			_ = os.Chtimes(p, old, old)
		}
		return nil
	})
	if err := os.Chmod(filepath.Join(src, "ro"), 0o555); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.Chmod(filepath.Join(src, "ro"), 0o755) })
	return src
}

func TestSeedDirectory(t *testing.T) {
	t.Parallel()
	src := makeTree(t)
	dst := filepath.Join(t.TempDir(), "sync", "0")
	if err := os.MkdirAll(dst, 0o777); err != nil { // the emptyDir's mount point
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.Chmod(filepath.Join(dst, "ro"), 0o755) })
	st, err := Seed(src, dst)
	if err != nil {
		t.Fatal(err)
	}
	if st.Files != 5 || st.Links != 2 || st.Dirs != 5 || st.Bytes != int64(len("<h1>hi</h1>#!toolsecretfrozen")) {
		t.Errorf("stats = %+v", st)
	}
	want, got := tree(t, src), tree(t, dst)
	for p, w := range want {
		g, ok := got[p]
		if !ok {
			t.Errorf("%s: not copied", p)
			continue
		}
		if w.mode.IsDir() {
			w.mode |= 0o200 // directories get owner write
		}
		if g.mode != w.mode || g.data != w.data {
			t.Errorf("%s: got %v %q, want %v %q", p, g.mode, g.data, w.mode, w.data)
		}
		if !w.noTime && !g.mtime.Equal(w.mtime) {
			t.Errorf("%s: mtime %v, want %v", p, g.mtime, w.mtime)
		}
	}
	if len(got) != len(want) {
		t.Errorf("dst has %d entries, src %d", len(got), len(want))
	}
	assertNoTempFiles(t, dst)
}

func TestSeedAgain(t *testing.T) {
	t.Parallel()
	src := makeTree(t)
	dst := filepath.Join(t.TempDir(), "dst")
	t.Cleanup(func() { _ = os.Chmod(filepath.Join(dst, "ro"), 0o755) })
	if _, err := Seed(src, dst); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dst, "index.html"), []byte("changed"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dst, "extra.js"), []byte("extra"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Seed(src, dst); err != nil {
		t.Fatalf("second seed: %v", err)
	}
	got := tree(t, dst)
	if got["index.html"].data != "<h1>hi</h1>" || got["extra.js"].data != "extra" {
		t.Errorf("after a second seed: index %q extra %q; want the image's index and the extra file kept", got["index.html"].data, got["extra.js"].data)
	}
}

func TestSeedFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	src := filepath.Join(dir, "devctl-agent")
	if err := os.WriteFile(src, bytes.Repeat([]byte{0x7f}, 1<<20), 0o755); err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(dir, "devctl", "bin", "devctl-agent")
	if _, err := Seed(src, dst); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(dst)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Size() != 1<<20 || fi.Mode().Perm() != 0o755 {
		t.Errorf("copy: %d bytes mode %v", fi.Size(), fi.Mode())
	}
	if _, err := Seed(filepath.Join(dir, "missing"), filepath.Join(dir, "x")); err == nil {
		t.Error("seeding a missing file succeeded")
	}
}

func TestSeedCommand(t *testing.T) {
	t.Parallel()
	src := makeTree(t)
	dir := t.TempDir()
	dst0, dst1 := filepath.Join(dir, "sync", "0"), filepath.Join(dir, "sync", "1")
	t.Cleanup(func() { _ = os.Chmod(filepath.Join(dst0, "ro"), 0o755) })
	marker := filepath.Join(dir, "seeded")
	var out, errOut strings.Builder
	args := []string{"--marker", marker, src, dst0, filepath.Join(dir, "not-in-image"), dst1}
	if err := runSeed(args, &out, &errOut); err != nil {
		t.Fatalf("seed: %v\n%s", err, errOut.String())
	}
	if _, err := os.Stat(marker); err != nil {
		t.Errorf("marker not written: %v", err)
	}
	if len(tree(t, dst0)) == 0 {
		t.Error("nothing seeded")
	}
	if ents, err := os.ReadDir(dst1); err != nil || len(ents) != 0 {
		t.Errorf("a source missing from the image: %v %v, want an empty directory", ents, err)
	}
	if !strings.Contains(out.String(), "starts empty") {
		t.Errorf("output does not say the directory starts empty:\n%s", out.String())
	}

	// With the marker present (a pod whose volumes survived), synced
	// changes are not overwritten.
	if err := os.WriteFile(filepath.Join(dst0, "index.html"), []byte("synced"), 0o644); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	if err := runSeed(args, &out, &errOut); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, filepath.Join(dst0, "index.html")); got != "synced" {
		t.Errorf("seed with the marker present overwrote a synced file: %q", got)
	}
	if !strings.Contains(out.String(), "already seeded") {
		t.Errorf("output: %s", out.String())
	}

	if err := runSeed([]string{src}, &out, &errOut); err == nil {
		t.Error("seed with an odd number of paths succeeded")
	}
}
