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
