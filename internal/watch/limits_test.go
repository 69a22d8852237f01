package watch

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// fakeProc lays out the parts of /proc that CheckLimits reads: the two
// limits and, per process, inotify descriptors holding watches.
func fakeProc(t *testing.T, maxWatches, maxInstances int, watchesPerFD ...int) string {
	t.Helper()
	proc := t.TempDir()
	files := map[string]string{
		"sys/fs/inotify/max_user_watches":   fmt.Sprintf("%d\n", maxWatches),
		"sys/fs/inotify/max_user_instances": fmt.Sprintf("%d\n", maxInstances),
		"self/fd/":                          "", // not a process
		"77/fd/":                            "", "77/fdinfo/": "",
	}
	for i, n := range watchesPerFD {
		files[fmt.Sprintf("77/fdinfo/%d", i+3)] = "pos:\t0\nflags:\t02004000\n" + strings.Repeat("inotify wd:1 ino:a sdev:800001 mask:fc6 ignored_mask:0\n", n)
	}
	writeTree(t, proc, files)
	for i := range watchesPerFD {
		if err := os.Symlink("anon_inode:inotify", filepath.Join(proc, "77/fd", fmt.Sprint(i+3))); err != nil {
			t.Fatal(err)
		}
	}
	// A descriptor of another kind.
	if err := os.Symlink("/dev/null", filepath.Join(proc, "77/fd/0")); err != nil {
		t.Fatal(err)
	}
	return proc
}

func TestCheckLimits(t *testing.T) {
	t.Parallel()
	src := t.TempDir()
	tree := map[string]string{".gitignore": "node_modules/\n"}
	for i := range 9 {
		tree[fmt.Sprintf("d%d/", i)] = ""
	}
	for i := range 50 {
		tree[fmt.Sprintf("node_modules/m%d/", i)] = ""
	}
	writeTree(t, src, tree) // 10 folders watched: the root and d0..d8
	roots := []Root{{Name: "app", Dir: src}}

	tests := []struct {
		name  string
		proc  string
		want  []string // parts of the error; none for no error
		wantN int
	}{{
		name: "enough",
		proc: fakeProc(t, 100, 128, 40, 50),
	}, {
		name: "exactly enough",
		proc: fakeProc(t, 20, 128, 10),
	}, {
		name: "watches",
		proc: fakeProc(t, 20, 128, 5, 6),
		want: []string{
			"watching 10 folders takes as many inotify watches, but fs.inotify.max_user_watches is 20 and 11 are in use",
			"run `sudo sysctl -w fs.inotify.max_user_watches=524288`",
			"`echo fs.inotify.max_user_watches=524288 | sudo tee /etc/sysctl.d/60-devctl-inotify-watches.conf`",
			"services[].watch.ignore",
		},
	}, {
		name: "instances",
		proc: fakeProc(t, 1000, 2, 1, 1),
		want: []string{
			"fs.inotify.max_user_instances is 2 and 2 are in use",
			"run `sudo sysctl -w fs.inotify.max_user_instances=512`",
			"`echo fs.inotify.max_user_instances=512 | sudo tee /etc/sysctl.d/60-devctl-inotify-instances.conf`",
		},
	}, {
		name: "no inotify",
		proc: t.TempDir(),
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := CheckLimits(t.Context(), Options{Roots: roots, ProcDir: tc.proc})
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatalf("CheckLimits: %v", err)
				}
				return
			}
			if !errors.Is(err, ErrWatchLimit) {
				t.Fatalf("CheckLimits = %v, want ErrWatchLimit", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q\nlacks %q", err, w)
				}
			}
		})
	}
}

func TestWatchRefused(t *testing.T) {
	t.Parallel()
	src := t.TempDir()
	writeTree(t, src, map[string]string{"a/": "", "b/": ""})
	fake := NewFakeNotifier()
	fake.AddError = syscall.ENOSPC
	_, err := New(t.Context(), Options{
		Roots:       []Root{{Name: "app", Dir: src}},
		NewNotifier: func() (Notifier, error) { return fake, nil },
		ProcDir:     fakeProc(t, 8192, 128, 8190),
	})
	if !errors.Is(err, ErrWatchLimit) {
		t.Fatalf("New = %v, want ErrWatchLimit", err)
	}
	if want := "watching 3 folders takes as many inotify watches, but fs.inotify.max_user_watches is 8192 and 8190 are in use; run `sudo sysctl -w fs.inotify.max_user_watches=524288`"; !strings.Contains(err.Error(), want) {
		t.Errorf("error %q\nlacks %q", err, want)
	}

	// Without /proc to explain it, the refusal still says what to raise.
	_, err = New(t.Context(), Options{
		Roots:       []Root{{Name: "app", Dir: src}},
		NewNotifier: func() (Notifier, error) { return fake, nil },
		ProcDir:     t.TempDir(),
	})
	if !errors.Is(err, ErrWatchLimit) || !strings.Contains(err.Error(), "the kernel refused more inotify watches for 3 folders; run `sudo sysctl -w fs.inotify.max_user_watches=524288`") {
		t.Errorf("New = %v", err)
	}
}

func TestInstancesRefused(t *testing.T) {
	t.Parallel()
	_, err := New(t.Context(), Options{
		Roots:       []Root{{Name: "app", Dir: t.TempDir()}},
		NewNotifier: func() (Notifier, error) { return nil, fmt.Errorf("inotify_init1: %w", syscall.EMFILE) },
		ProcDir:     fakeProc(t, 8192, 128, make([]int, 128)...),
	})
	if !errors.Is(err, ErrWatchLimit) || !strings.Contains(err.Error(), "fs.inotify.max_user_instances is 128 and 128 are in use; run `sudo sysctl -w fs.inotify.max_user_instances=512`") {
		t.Errorf("New = %v", err)
	}
}

func TestSuggest(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ n, floor, want int }{
		{0, 512, 512},
		{100, 512, 512},
		{300, 512, 1024},
		{600_000, minWatches, 2 << 20},
		{524_288, minWatches, 1 << 20},
	} {
		if got := suggest(tc.n, tc.floor); got != tc.want {
			t.Errorf("suggest(%d, %d) = %d, want %d", tc.n, tc.floor, got, tc.want)
		}
	}
}
