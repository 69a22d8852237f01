package app

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/devctl/devctl/envs"
	"github.com/devctl/devctl/internal/api"
)

func gitIn(t *testing.T, dir string, args ...string) {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1",
		"GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.com", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@example.com")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

func TestStalenessAndGCDryRun(t *testing.T) {
	dir := gitRepo(t, map[string]string{"README.md": "hi\n"})
	gitIn(t, dir, "add", ".")
	gitIn(t, dir, "commit", "-q", "-m", "first")
	gitIn(t, dir, "branch", "feature/x")
	gitIn(t, dir, "branch", "-D", "feature/x")
	list := []api.Environment{
		{Name: "svc-main", Spec: api.EnvSpec{Dir: dir, Branch: "main"}},
		{Name: "svc-feature-x", Spec: api.EnvSpec{Dir: dir, Branch: "feature/x"}},
		{Name: "gone-main", Spec: api.EnvSpec{Dir: filepath.Join(dir, "nope"), Branch: "main"}},
	}
	rows := staleness(context.Background(), list)
	want := map[string]string{"svc-main": "", "svc-feature-x": "branch feature/x was deleted", "gone-main": "is gone"}
	var stale []listed
	for _, r := range rows {
		if w := want[r.Name]; (w == "") != (r.Stale == "") || !strings.Contains(r.Stale, w) {
			t.Errorf("%s: stale %q, want %q", r.Name, r.Stale, w)
		}
		if r.Stale != "" {
			stale = append(stale, r)
		}
	}
	orphans := []envs.Orphan{{Name: "half-main", Provider: "kind", Cluster: true}}

	var out bytes.Buffer
	if err := gc(context.Background(), &out, nil, nil, stale, orphans, false, true); err != nil {
		t.Fatal(err)
	}
	got := out.String()
	for _, w := range []string{
		"would delete environment svc-feature-x: branch feature/x was deleted",
		"would delete environment gone-main: its folder",
		"orphan: kind cluster half-main (devctl began it; its metadata is gone); `devctl gc --orphans` deletes it",
	} {
		if !strings.Contains(got, w) {
			t.Errorf("gc --dry-run output lacks %q:\n%s", w, got)
		}
	}
	if strings.Contains(got, "svc-main") {
		t.Errorf("a live branch's environment was collected:\n%s", got)
	}
	out.Reset()
	if err := gc(context.Background(), &out, nil, nil, nil, orphans, true, true); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "would delete orphan kind cluster half-main") {
		t.Errorf("gc --orphans --dry-run:\n%s", out.String())
	}
}
