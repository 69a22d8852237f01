package hook

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// repo makes a clone-like setup: a work tree with one commit and a bare
// remote "origin".
func repo(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	work, remote := filepath.Join(root, "work"), filepath.Join(root, "remote.git")
	git(t, root, "init", "-q", "--bare", remote)
	git(t, root, "init", "-q", "-b", "main", work)
	if err := os.WriteFile(filepath.Join(work, "README"), []byte("hi\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	git(t, work, "add", "README")
	git(t, work, "commit", "-q", "-m", "init")
	git(t, work, "remote", "add", "origin", remote)
	return work
}

func gitCmd(dir string, args ...string) *exec.Cmd {
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1",
		"GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.com", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@example.com")
	return cmd
}

func git(t *testing.T, dir string, args ...string) string {
	t.Helper()
	out, err := gitCmd(dir, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("git %v: %v\n%s", args, err, out)
	}
	return string(out)
}

func push(t *testing.T, dir string) (string, error) {
	t.Helper()
	out, err := gitCmd(dir, "push", "-q", "origin", "main").CombinedOutput()
	return string(out), err
}

func TestPushBlockedWhenCheckFails(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		command string
		wantOK  bool
	}{
		{"check passes", "true", true},
		{"check fails", "echo 'findings: 2 high' >&2; false", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			work := repo(t)
			if err := Install(context.Background(), work, Options{Command: tt.command}); err != nil {
				t.Fatal(err)
			}
			out, err := push(t, work)
			if tt.wantOK && err != nil {
				t.Fatalf("push failed: %v\n%s", err, out)
			}
			if !tt.wantOK {
				if err == nil {
					t.Fatal("push succeeded although the check failed")
				}
				if !strings.Contains(out, "push blocked") || !strings.Contains(out, "findings: 2 high") {
					t.Errorf("output does not explain the block:\n%s", out)
				}
				remote := filepath.Join(filepath.Dir(work), "remote.git")
				if refs := git(t, remote, "for-each-ref"); refs != "" {
					t.Errorf("remote received refs: %s", refs)
				}
			}
		})
	}
}

func TestChainsExistingHookAndRestoresIt(t *testing.T) {
	t.Parallel()
	work := repo(t)
	hooks := filepath.Join(work, ".git", "hooks")
	seen := filepath.Join(t.TempDir(), "seen")
	orig := "#!/bin/sh\ncat > " + seen + "\nexit ${ORIG_EXIT:-0}\n"
	if err := os.WriteFile(filepath.Join(hooks, "pre-push"), []byte(orig), 0o755); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for range 2 { // idempotent: the second install must not chain itself
		if err := Install(ctx, work, Options{Command: "true"}); err != nil {
			t.Fatal(err)
		}
	}
	if b, _ := os.ReadFile(filepath.Join(hooks, ChainedName)); string(b) != orig {
		t.Fatalf("chained hook = %q, want the original", b)
	}
	if out, err := push(t, work); err != nil {
		t.Fatalf("push: %v\n%s", err, out)
	}
	if b, err := os.ReadFile(seen); err != nil || !strings.Contains(string(b), "refs/heads/main") {
		t.Fatalf("chained hook did not get the refs on stdin: %q, %v", b, err)
	}
	// a failing chained hook blocks the push too
	if err := os.WriteFile(filepath.Join(hooks, ChainedName), []byte("#!/bin/sh\nexit 3\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	git(t, work, "commit", "-q", "--allow-empty", "-m", "second")
	if out, err := push(t, work); err == nil {
		t.Fatalf("push succeeded although the chained hook failed\n%s", out)
	}
	if err := os.WriteFile(filepath.Join(hooks, ChainedName), []byte(orig), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := Uninstall(ctx, work, Options{}); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(hooks, "pre-push")); string(b) != orig {
		t.Fatalf("pre-push after uninstall = %q, want the original", b)
	}
	if exists(filepath.Join(hooks, ChainedName)) {
		t.Error("chained hook left behind")
	}
	if ok, err := Installed(ctx, work, Options{}); err != nil || ok {
		t.Errorf("Installed = %v, %v after uninstall", ok, err)
	}
}

func TestHonoursCoreHooksPath(t *testing.T) {
	t.Parallel()
	work := repo(t)
	git(t, work, "config", "core.hooksPath", ".githooks")
	if err := Install(context.Background(), work, Options{Command: "false"}); err != nil {
		t.Fatal(err)
	}
	if !exists(filepath.Join(work, ".githooks", "pre-push")) {
		t.Fatal("hook not written to core.hooksPath")
	}
	if exists(filepath.Join(work, ".git", "hooks", "pre-push")) {
		t.Fatal("hook written to .git/hooks despite core.hooksPath")
	}
	if out, err := push(t, work); err == nil {
		t.Fatalf("push not blocked through core.hooksPath\n%s", out)
	}
}

func TestNotARepo(t *testing.T) {
	t.Parallel()
	err := Install(context.Background(), t.TempDir(), Options{})
	if err == nil || !strings.Contains(err.Error(), "not a git repository") {
		t.Fatalf("Install outside a repo = %v", err)
	}
}
