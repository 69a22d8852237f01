package build

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// writeTree creates files (path → content) under dir; a content starting with
// "->" makes a symlink to the rest.
func writeTree(t testing.TB, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if target, ok := strings.CutPrefix(content, "->"); ok {
			if err := os.Symlink(target, p); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func baseTree() map[string]string {
	return map[string]string{
		"Dockerfile":    "FROM scratch\nCOPY . /app\n",
		".dockerignore": "*.log\nignored/\n",
		"main.go":       "package main\n",
		"sub/a.txt":     "a\n",
		"debug.log":     "noise\n",
		"ignored/x":     "x\n",
		"link":          "->main.go",
	}
}

func TestContextHash(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		change      func(t *testing.T, dir string)
		wantChanged bool
	}{
		{"same tree elsewhere", func(*testing.T, string) {}, false},
		{"edit source file", func(t *testing.T, dir string) {
			writeTree(t, dir, map[string]string{"main.go": "package main // edited\n"})
		}, true},
		{"edit ignored file", func(t *testing.T, dir string) { writeTree(t, dir, map[string]string{"debug.log": "more noise\n"}) }, false},
		{"add file in ignored dir", func(t *testing.T, dir string) { writeTree(t, dir, map[string]string{"ignored/y": "y\n"}) }, false},
		{"edit Dockerfile", func(t *testing.T, dir string) {
			writeTree(t, dir, map[string]string{"Dockerfile": "FROM scratch\nCOPY . /srv\n"})
		}, true},
		{"edit .dockerignore", func(t *testing.T, dir string) { writeTree(t, dir, map[string]string{".dockerignore": "*.log\n"}) }, true},
		{"make file executable", func(t *testing.T, dir string) {
			if err := os.Chmod(filepath.Join(dir, "main.go"), 0o755); err != nil {
				t.Fatal(err)
			}
		}, true},
		{"retarget symlink", func(t *testing.T, dir string) {
			if err := os.Remove(filepath.Join(dir, "link")); err != nil {
				t.Fatal(err)
			}
			writeTree(t, dir, map[string]string{"link": "->sub/a.txt"})
		}, true},
		{"add empty directory", func(t *testing.T, dir string) {
			if err := os.Mkdir(filepath.Join(dir, "empty"), 0o755); err != nil {
				t.Fatal(err)
			}
		}, true},
		{"rename file", func(t *testing.T, dir string) {
			if err := os.Rename(filepath.Join(dir, "sub", "a.txt"), filepath.Join(dir, "sub", "b.txt")); err != nil {
				t.Fatal(err)
			}
		}, true},
		{"touch file", func(t *testing.T, dir string) {
			later := time.Now().Add(time.Hour)
			if err := os.Chtimes(filepath.Join(dir, "main.go"), later, later); err != nil {
				t.Fatal(err)
			}
		}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			before, after := t.TempDir(), t.TempDir()
			writeTree(t, before, baseTree())
			writeTree(t, after, baseTree())
			tt.change(t, after)
			h1, err := ContextHash(before, "Dockerfile")
			if err != nil {
				t.Fatal(err)
			}
			h2, err := ContextHash(after, "Dockerfile")
			if err != nil {
				t.Fatal(err)
			}
			if len(h1) != 64 {
				t.Fatalf("hash %q is not a hex sha256", h1)
			}
			if changed := h1 != h2; changed != tt.wantChanged {
				t.Errorf("hash changed = %v, want %v (%s → %s)", changed, tt.wantChanged, h1, h2)
			}
		})
	}
}

func TestContextFiles(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		files      map[string]string
		dockerfile string
		want       []string
	}{
		{
			name:  "no dockerignore sends everything",
			files: map[string]string{"Dockerfile": "", "a": "", "d/b": ""},
			want:  []string{"Dockerfile", "a", "d", "d/b"},
		},
		{
			name: "only the binary and the Dockerfile",
			files: map[string]string{
				"Dockerfile": "", ".dockerignore": "*\n!bin/\n!Dockerfile\n",
				"main.go": "", "go.mod": "", "bin/hello": "", "README.md": "",
			},
			want: []string{".dockerignore", "Dockerfile", "bin", "bin/hello"},
		},
		{
			name: "exception inside an excluded directory",
			files: map[string]string{
				"Dockerfile": "", ".dockerignore": "docs\n!docs/keep.md\n",
				"docs/keep.md": "", "docs/drop.md": "",
			},
			want: []string{".dockerignore", "Dockerfile", "docs/keep.md"},
		},
		{
			name: "excluded Dockerfile is still sent",
			files: map[string]string{
				"build/Dockerfile": "", ".dockerignore": "build\n**/*.tmp\n",
				"build/other": "", "x.tmp": "", "d/y.tmp": "", "d/z": "",
			},
			dockerfile: "build/Dockerfile",
			want:       []string{".dockerignore", "build/Dockerfile", "d", "d/z"},
		},
		{
			name: "comments and leading slashes",
			files: map[string]string{
				"Dockerfile": "", ".dockerignore": "# comment\n/secret\n",
				"secret": "", "sub/secret": "",
			},
			want: []string{".dockerignore", "Dockerfile", "sub", "sub/secret"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			writeTree(t, dir, tt.files)
			entries, err := contextFiles(dir, tt.dockerfile)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, e := range entries {
				got = append(got, e.rel)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("files = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestContextErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{"Dockerfile": "FROM scratch\n", "sub/x": ""})
	tests := []struct {
		name, context, dockerfile string
		wantIs                    error
		wantMsg                   string
	}{
		{"missing Dockerfile", dir, "Dockerfile.dev", ErrDockerfileNotFound, filepath.Join(dir, "Dockerfile.dev")},
		{"Dockerfile is a directory", dir, "sub", ErrDockerfileNotFound, "services[].dockerfile"},
		{"Dockerfile outside the context", filepath.Join(dir, "sub"), "../Dockerfile", nil, "outside the build context"},
		{"missing context", filepath.Join(dir, "nope"), "Dockerfile", nil, "services[].context"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := ContextHash(tt.context, tt.dockerfile)
			if err == nil {
				t.Fatal("ContextHash succeeded, want an error")
			}
			if tt.wantIs != nil && !errors.Is(err, tt.wantIs) {
				t.Errorf("error %q is not %q", err, tt.wantIs)
			}
			if !strings.Contains(err.Error(), tt.wantMsg) || strings.Contains(err.Error(), "\n") {
				t.Errorf("error %q: want one line mentioning %q", err, tt.wantMsg)
			}
		})
	}
}

type tarFile struct {
	mode    int64
	kind    byte
	content string
}

func readTar(t *testing.T, r io.Reader) map[string]tarFile {
	t.Helper()
	files := map[string]tarFile{}
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return files
		}
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		if hdr.Uid != 0 || hdr.Gid != 0 || !hdr.ModTime.Equal(contextEpoch) {
			t.Errorf("%s: owner %d:%d mtime %v, want 0:0 at %v", hdr.Name, hdr.Uid, hdr.Gid, hdr.ModTime, contextEpoch)
		}
		content := string(b)
		if hdr.Typeflag == tar.TypeSymlink {
			content = hdr.Linkname
		}
		files[hdr.Name] = tarFile{mode: hdr.Mode, kind: hdr.Typeflag, content: content}
	}
}

func TestWriteContextTar(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeTree(t, dir, baseTree())
	if err := os.Chmod(filepath.Join(dir, "main.go"), 0o750); err != nil {
		t.Fatal(err)
	}
	entries, err := contextFiles(dir, "Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(writeContextTar(pw, entries)) }()
	got := readTar(t, pr)

	want := map[string]tarFile{
		".dockerignore": {0o644, tar.TypeReg, "*.log\nignored/\n"},
		"Dockerfile":    {0o644, tar.TypeReg, "FROM scratch\nCOPY . /app\n"},
		"link":          {0o777, tar.TypeSymlink, "main.go"},
		"main.go":       {0o750, tar.TypeReg, "package main\n"},
		"sub/":          {0o755, tar.TypeDir, ""},
		"sub/a.txt":     {0o644, tar.TypeReg, "a\n"},
	}
	if len(got) != len(want) {
		t.Errorf("archive has %d entries, want %d: %v", len(got), len(want), got)
	}
	for name, w := range want {
		if g, ok := got[name]; !ok || g != w {
			t.Errorf("%s = %+v (present %v), want %+v", name, g, ok, w)
		}
	}
}

func TestWriteContextTarFileChanged(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeTree(t, dir, baseTree())
	entries, err := contextFiles(dir, "Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	writeTree(t, dir, map[string]string{"main.go": "package lib\n"}) // same size, other content
	err = writeContextTar(io.Discard, entries)
	if err == nil || !strings.Contains(err.Error(), "changed while the build context was sent") {
		t.Fatalf("writeContextTar = %v, want a changed-file error", err)
	}
}

// BenchmarkContextHash hashes a tree of 2000 files of 1–8 KiB in 40
// directories, a quarter of them excluded by .dockerignore.
func BenchmarkContextHash(b *testing.B) {
	dir := b.TempDir()
	files := map[string]string{"Dockerfile": "FROM scratch\n", ".dockerignore": "**/*.log\n"}
	var total int64
	for i := range 2000 {
		ext := ".go"
		if i%4 == 0 {
			ext = ".log"
		}
		content := strings.Repeat(fmt.Sprintf("line %d\n", i), 128*(1+i%8))
		files[fmt.Sprintf("pkg%02d/file%04d%s", i%40, i, ext)] = content
		total += int64(len(content))
	}
	writeTree(b, dir, files)
	b.SetBytes(total)
	for b.Loop() {
		if _, err := ContextHash(dir, "Dockerfile"); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(2000, "files/op")
}
