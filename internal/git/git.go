// Package git reads the facts devctl keys environments by (repository,
// branch, commit, dirty state) with the git command line.
package git

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

var (
	// ErrNotRepo is returned when the folder is not inside a git work tree.
	ErrNotRepo = errors.New("not a git repository: run inside a git repository, or pass --name")
	// ErrGitNotFound is returned when the git command is not installed.
	ErrGitNotFound = errors.New("git not found in PATH: install git (for example `apt-get install git`)")
)

// Info describes the work tree a folder belongs to.
type Info struct {
	// Root is the top-level folder of the work tree.
	Root string
	// Repo is the basename of remote.origin.url without .git, else the name of Root.
	Repo string
	// Branch is the current branch; a detached HEAD is "detached-<sha7>".
	// A repository without commits has its unborn branch name and an empty SHA.
	Branch string
	SHA    string
	// Dirty reports modified, staged or untracked files.
	Dirty bool
}

// RunError is a git command that failed, with what it printed.
type RunError struct {
	Args   []string
	Stderr string
	Err    error
}

func (e *RunError) Error() string {
	msg := strings.TrimSpace(e.Stderr)
	if msg == "" {
		msg = e.Err.Error()
	}
	return fmt.Sprintf("git %s: %s", strings.Join(e.Args, " "), msg)
}

func (e *RunError) Unwrap() error { return e.Err }

// Describe returns the git facts of the work tree holding dir.
func Describe(ctx context.Context, dir string) (Info, error) {
	if _, err := exec.LookPath("git"); err != nil {
		return Info{}, ErrGitNotFound
	}
	if fi, err := os.Stat(dir); err != nil {
		return Info{}, fmt.Errorf("describe git repository: %w", err)
	} else if !fi.IsDir() {
		return Info{}, fmt.Errorf("describe git repository: %s is not a folder", dir)
	}
	root, err := run(ctx, dir, "rev-parse", "--show-toplevel")
	if err != nil {
		var re *RunError
		if errors.As(err, &re) && strings.Contains(re.Stderr, "not a git repository") {
			return Info{}, fmt.Errorf("describe %s: %w", dir, ErrNotRepo)
		}
		return Info{}, fmt.Errorf("describe %s: %w", dir, err)
	}
	info := Info{Root: filepath.FromSlash(root)}

	// One status call gives the commit, the branch and the dirty state.
	// --no-optional-locks keeps it from taking the index lock that the
	// user's own git commands need.
	status, err := run(ctx, dir, "--no-optional-locks", "status", "--porcelain=v2", "--branch", "--untracked-files=normal")
	if err != nil {
		return Info{}, fmt.Errorf("describe %s: %w", dir, err)
	}
	for line := range strings.Lines(status) {
		line = strings.TrimSuffix(line, "\n")
		switch {
		case strings.HasPrefix(line, "# branch.oid "):
			if oid := strings.TrimPrefix(line, "# branch.oid "); oid != "(initial)" {
				info.SHA = oid
			}
		case strings.HasPrefix(line, "# branch.head "):
			if head := strings.TrimPrefix(line, "# branch.head "); head != "(detached)" {
				info.Branch = head
			}
		case line != "" && !strings.HasPrefix(line, "#"):
			info.Dirty = true
		}
	}
	if info.Branch == "" && info.SHA != "" {
		info.Branch = "detached-" + info.SHA[:min(7, len(info.SHA))]
	}

	info.Repo = filepath.Base(info.Root)
	// Exit status 1 means the key is unset.
	if url, err := run(ctx, dir, "config", "--get", "remote.origin.url"); err == nil {
		if name := RepoName(url); name != "" {
			info.Repo = name
		}
	} else if !isExit(err, 1) {
		return Info{}, fmt.Errorf("describe %s: %w", dir, err)
	}
	return info, nil
}

// RepoName returns the repository name in a remote URL: the last path
// element without ".git", for https://host/org/repo.git, git@host:org/repo,
// ssh://host/org/repo/ and local paths alike.
func RepoName(url string) string {
	url = strings.TrimRight(strings.TrimSpace(url), "/")
	url = strings.TrimSuffix(url, ".git")
	if i := strings.LastIndexAny(url, "/:\\"); i >= 0 {
		url = url[i+1:]
	}
	return url
}

func run(ctx context.Context, dir string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "git", args...)
	cmd.Dir = dir
	// Untranslated messages, and never a credential prompt.
	cmd.Env = append(os.Environ(), "LC_ALL=C", "GIT_TERMINAL_PROMPT=0")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			err = ctxErr
		}
		return "", &RunError{Args: args, Stderr: stderr.String(), Err: err}
	}
	return strings.TrimSpace(stdout.String()), nil
}

func isExit(err error, code int) bool {
	var ee *exec.ExitError
	return errors.As(err, &ee) && ee.ExitCode() == code
}

// Stale says why an environment made from branch in dir has outlived its
// reason to exist, or "" when it has not: the folder is gone, the branch
// was deleted, or the branch was merged into the default branch (main,
// master, or what origin/HEAD names) after commits of its own. A branch
// without commits of its own is never called merged, and the default
// branch is never stale. Errors are git failing in ways that say nothing
// about the branch (git missing, a broken repository).
func Stale(ctx context.Context, dir, branch string) (string, error) {
	if dir == "" || branch == "" || strings.HasPrefix(branch, "detached-") {
		return "", nil
	}
	if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
		return "its folder " + dir + " is gone", nil
	}
	if _, err := exec.LookPath("git"); err != nil {
		return "", ErrGitNotFound
	}
	if _, err := run(ctx, dir, "rev-parse", "--git-dir"); err != nil {
		return "", fmt.Errorf("check branch %s in %s: %w", branch, dir, err)
	}
	tip, err := run(ctx, dir, "rev-parse", "--verify", "--quiet", "refs/heads/"+branch+"^{commit}")
	if err != nil {
		if isExit(err, 1) {
			return "branch " + branch + " was deleted", nil
		}
		return "", fmt.Errorf("check branch %s in %s: %w", branch, dir, err)
	}
	def := defaultBranch(ctx, dir)
	if def == "" || def == branch {
		return "", nil
	}
	defTip, err := run(ctx, dir, "rev-parse", "--verify", "--quiet", "refs/heads/"+def+"^{commit}")
	if err != nil || defTip == tip {
		return "", nil
	}
	// Commits of its own: the branch moved since it was made (its reflog's
	// oldest entry is not its tip). Without a reflog nothing is claimed.
	log, err := run(ctx, dir, "reflog", "show", "--format=%H", "refs/heads/"+branch, "--")
	lines := strings.Fields(log)
	if err != nil || len(lines) == 0 || lines[len(lines)-1] == tip {
		return "", nil
	}
	if _, err := run(ctx, dir, "merge-base", "--is-ancestor", tip, defTip); err == nil {
		return "branch " + branch + " was merged into " + def, nil
	}
	return "", nil
}

// defaultBranch is the branch origin/HEAD names, else main, else master,
// else "".
func defaultBranch(ctx context.Context, dir string) string {
	if ref, err := run(ctx, dir, "symbolic-ref", "--quiet", "--short", "refs/remotes/origin/HEAD"); err == nil {
		if _, b, ok := strings.Cut(ref, "/"); ok {
			if _, err := run(ctx, dir, "rev-parse", "--verify", "--quiet", "refs/heads/"+b); err == nil {
				return b
			}
		}
	}
	for _, b := range []string{"main", "master"} {
		if _, err := run(ctx, dir, "rev-parse", "--verify", "--quiet", "refs/heads/"+b); err == nil {
			return b
		}
	}
	return ""
}

// OriginURL returns remote.origin.url of the work tree holding dir, or ""
// when it has no origin.
func OriginURL(ctx context.Context, dir string) (string, error) {
	url, err := run(ctx, dir, "config", "--get", "remote.origin.url")
	if isExit(err, 1) {
		return "", nil
	}
	return strings.TrimSpace(url), err
}
