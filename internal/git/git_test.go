package git

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// gitCmd runs git for test set-up, isolated from the user's configuration.
func gitCmd(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1",
		"GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.com", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@example.com")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// newRepo makes a repository named name with one commit on branch main.
func newRepo(t *testing.T, name string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), name)
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	gitCmd(t, dir, "init", "-q", "-b", "main")
	write(t, filepath.Join(dir, "README.md"), "hello\n")
	write(t, filepath.Join(dir, ".gitignore"), "bin/\n")
	gitCmd(t, dir, "add", ".")
	gitCmd(t, dir, "commit", "-q", "-m", "first")
	return dir
}

func write(t *testing.T, path, data string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

func describe(t *testing.T, dir string) Info {
	t.Helper()
	info, err := Describe(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	return info
}

func TestDescribeBranchAndCommit(t *testing.T) {
	t.Parallel()
	dir := newRepo(t, "shop")
	gitCmd(t, dir, "checkout", "-q", "-b", "feature/login-v2")
	sha := gitCmd(t, dir, "rev-parse", "HEAD")

	want := Info{Root: dir, Repo: "shop", Branch: "feature/login-v2", SHA: sha}
	if got := describe(t, dir); got != want {
		t.Errorf("Describe = %+v, want %+v", got, want)
	}
	// From a subfolder the root is the work tree's top.
	sub := filepath.Join(dir, "svc", "api")
	write(t, filepath.Join(sub, "bin", "api"), "ignored output\n")
	if got := describe(t, sub); got != want {
		t.Errorf("Describe(subfolder) = %+v, want %+v", got, want)
	}
}

func TestDescribeDirty(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		change func(t *testing.T, dir string)
	}{
		{"modified", func(t *testing.T, dir string) { write(t, filepath.Join(dir, "README.md"), "changed\n") }},
		{"untracked", func(t *testing.T, dir string) { write(t, filepath.Join(dir, "new.go"), "package x\n") }},
		{"staged", func(t *testing.T, dir string) {
			write(t, filepath.Join(dir, "staged.txt"), "x\n")
			gitCmd(t, dir, "add", "staged.txt")
		}},
		{"deleted", func(t *testing.T, dir string) { gitCmd(t, dir, "rm", "-q", "README.md") }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := newRepo(t, "r")
			if describe(t, dir).Dirty {
				t.Fatal("a fresh commit is dirty")
			}
			tt.change(t, dir)
			if !describe(t, dir).Dirty {
				t.Error("Dirty = false after the change")
			}
		})
	}
}

func TestDescribeDetachedHead(t *testing.T) {
	t.Parallel()
	dir := newRepo(t, "r")
	sha := gitCmd(t, dir, "rev-parse", "HEAD")
	write(t, filepath.Join(dir, "second.txt"), "2\n")
	gitCmd(t, dir, "add", ".")
	gitCmd(t, dir, "commit", "-q", "-m", "second")
	gitCmd(t, dir, "checkout", "-q", "--detach", sha)

	got := describe(t, dir)
	if got.Branch != "detached-"+sha[:7] || got.SHA != sha {
		t.Errorf("Describe = %+v, want branch detached-%s at %s", got, sha[:7], sha)
	}
}

func TestDescribeUnbornBranch(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "empty")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	gitCmd(t, dir, "init", "-q", "-b", "trunk")
	want := Info{Root: dir, Repo: "empty", Branch: "trunk"}
	if got := describe(t, dir); got != want {
		t.Errorf("Describe = %+v, want %+v", got, want)
	}
}

func TestDescribeRemote(t *testing.T) {
	t.Parallel()
	tests := []struct{ url, want string }{
		{"https://github.com/acme/shop.git", "shop"},
		{"https://github.com/acme/shop", "shop"},
		{"https://github.com/acme/shop.git/", "shop"},
		{"git@github.com:acme/shop.git", "shop"},
		{"git@github.com:acme/shop", "shop"},
		{"git@host:shop.git", "shop"},
		{"ssh://git@example.com:2222/acme/team/shop.git", "shop"},
		{"file:///srv/git/shop.git", "shop"},
		{"/srv/git/shop", "shop"},
		{"../shop.git", "shop"},
	}
	for _, tt := range tests {
		if got := RepoName(tt.url); got != tt.want {
			t.Errorf("RepoName(%q) = %q, want %q", tt.url, got, tt.want)
		}
	}
	// The remote wins over the folder name, read through git itself.
	for _, url := range []string{"git@github.com:acme/web-app.git", "https://example.com/acme/web-app"} {
		dir := newRepo(t, "checkout-dir")
		gitCmd(t, dir, "remote", "add", "origin", url)
		if got := describe(t, dir).Repo; got != "web-app" {
			t.Errorf("Repo with origin %s = %q, want web-app", url, got)
		}
	}
}

func TestDescribeNotRepo(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	_, err := Describe(context.Background(), dir)
	if !errors.Is(err, ErrNotRepo) {
		t.Fatalf("Describe = %v, want ErrNotRepo", err)
	}
	if !strings.Contains(err.Error(), "--name") {
		t.Errorf("error %q does not say how to fix it", err)
	}
	if _, err := Describe(context.Background(), filepath.Join(dir, "missing")); err == nil || errors.Is(err, ErrNotRepo) {
		t.Errorf("Describe(missing folder) = %v, want a not-exist error", err)
	}
}

func TestDescribeCanceled(t *testing.T) {
	t.Parallel()
	dir := newRepo(t, "r")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Describe(ctx, dir); !errors.Is(err, context.Canceled) {
		t.Errorf("Describe(canceled) = %v, want context.Canceled", err)
	}
}

// Not parallel: it changes PATH for the process.
func TestDescribeWithoutGit(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	if _, err := Describe(context.Background(), "."); !errors.Is(err, ErrGitNotFound) {
		t.Errorf("Describe without git = %v, want ErrGitNotFound", err)
	}
}

func BenchmarkDescribe(b *testing.B) {
	dir := b.TempDir()
	for _, args := range [][]string{{"init", "-q", "-b", "main"}, {"commit", "-q", "--allow-empty", "-m", "x"}} {
		cmd := exec.Command("git", args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GIT_CONFIG_GLOBAL=/dev/null", "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.com",
			"GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@example.com")
		if out, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	ctx := context.Background()
	for b.Loop() {
		if _, err := Describe(ctx, dir); err != nil {
			b.Fatal(err)
		}
	}
}

func TestStale(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := newRepo(t, "svc")
	stale := func(branch string) string {
		t.Helper()
		why, err := Stale(ctx, dir, branch)
		if err != nil {
			t.Fatalf("Stale(%s): %v", branch, err)
		}
		return why
	}
	// A new branch with no commits of its own, even once main moved on.
	gitCmd(t, dir, "branch", "fresh")
	// A branch with a commit, merged into main.
	gitCmd(t, dir, "checkout", "-q", "-b", "feature/merged")
	write(t, filepath.Join(dir, "a.txt"), "a\n")
	gitCmd(t, dir, "add", ".")
	gitCmd(t, dir, "commit", "-q", "-m", "a")
	// A branch with a commit not merged.
	gitCmd(t, dir, "checkout", "-q", "-b", "feature/open", "main")
	write(t, filepath.Join(dir, "b.txt"), "b\n")
	gitCmd(t, dir, "add", ".")
	gitCmd(t, dir, "commit", "-q", "-m", "b")
	gitCmd(t, dir, "checkout", "-q", "main")
	gitCmd(t, dir, "merge", "-q", "--no-ff", "-m", "merge", "feature/merged")
	// A branch that is gone.
	gitCmd(t, dir, "branch", "gone")
	gitCmd(t, dir, "branch", "-D", "gone")

	for branch, want := range map[string]string{
		"main":           "",
		"fresh":          "",
		"feature/open":   "",
		"feature/merged": "branch feature/merged was merged into main",
		"gone":           "branch gone was deleted",
		"detached-abc12": "",
	} {
		if got := stale(branch); got != want {
			t.Errorf("Stale(%s) = %q, want %q", branch, got, want)
		}
	}
	if why, err := Stale(ctx, filepath.Join(dir, "missing"), "main"); err != nil || !strings.Contains(why, "is gone") {
		t.Errorf("missing folder: %q, %v", why, err)
	}
	if _, err := Stale(ctx, t.TempDir(), "main"); err == nil {
		t.Error("a folder outside any repository is not an error")
	}
}
