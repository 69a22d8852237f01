package freezer

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func read(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

func TestThawWalksTheContainersTree(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	id := "0123abcd"
	// A kind node's tree: the node, kubepods, a pod, its containers; one
	// pod frozen, one freezing, the rest thawed; another container frozen.
	files := map[string]string{
		id + "/freezer.state":                                       "THAWED\n",
		id + "/kubelet.slice/freezer.state":                         "THAWED\n",
		id + "/kubelet.slice/kubepods/pod1/freezer.state":           "FROZEN\n",
		id + "/kubelet.slice/kubepods/pod1/ctr-a/freezer.state":     "FROZEN\n",
		id + "/kubelet.slice/kubepods/pod2/freezer.state":           "FREEZING\n",
		id + "/kubelet.slice/kubepods/pod2/ctr-b/freezer.state":     "THAWED\n",
		id + "/kubelet.slice/kubepods/pod2/ctr-b/cgroup.procs":      "42\n",
		"other/freezer.state":                                       "FROZEN\n",
		id + "/kubelet.slice/kubepods/pod3/notes/freezer.state.bak": "FROZEN\n",
	}
	for p, c := range files {
		write(t, filepath.Join(root, p), c)
	}
	thawed, err := Thaw(root, id)
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(thawed)
	want := []string{
		id + "/kubelet.slice/kubepods/pod1/ctr-a/freezer.state",
		id + "/kubelet.slice/kubepods/pod1/freezer.state",
		id + "/kubelet.slice/kubepods/pod2/freezer.state",
	}
	if !slices.Equal(thawed, want) {
		t.Errorf("thawed %q, want %q", thawed, want)
	}
	for p := range files {
		got := read(t, filepath.Join(root, p))
		switch {
		case p == "other/freezer.state" || strings.HasSuffix(p, ".bak"):
			if got != "FROZEN" {
				t.Errorf("%s = %s: outside the container or not a freezer file, must be untouched", p, got)
			}
		case strings.HasSuffix(p, "freezer.state") && got != "THAWED":
			t.Errorf("%s = %s, want THAWED", p, got)
		}
	}
	// Thawing again finds nothing to do.
	if again, err := Thaw(root, id); err != nil || len(again) != 0 {
		t.Errorf("second thaw: %q, %v", again, err)
	}
}

func TestThawWithoutFreezerCgroup(t *testing.T) {
	t.Parallel()
	if thawed, err := Thaw(filepath.Join(t.TempDir(), "none"), "abc"); err != nil || len(thawed) != 0 {
		t.Errorf("Thaw = %q, %v; want nothing, no error", thawed, err)
	}
}

func TestThawRejectsBadIDs(t *testing.T) {
	t.Parallel()
	for _, id := range []string{"", "..", ".", "a/b"} {
		if _, err := Thaw(t.TempDir(), id); err == nil {
			t.Errorf("Thaw(%q) succeeded", id)
		}
	}
}

func TestStuck(t *testing.T) {
	t.Parallel()
	if !Stuck(errors.New(`Error response from daemon: cannot remove container "/x": could not kill: tried to kill container, but did not receive an exit event`)) {
		t.Error("the exit-event failure is not recognised")
	}
	if Stuck(errors.New("no such container")) || Stuck(nil) {
		t.Error("other failures are taken for a frozen cgroup")
	}
}
