// Package hook installs the git pre-push hook that runs `devctl check`
// and blocks the push when it fails. An existing pre-push hook is kept:
// it is moved aside and called first, and put back on Uninstall.
package hook

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

// DefaultCommand is what the hook runs.
const DefaultCommand = "devctl check"

// Marker identifies a hook written by this package.
const Marker = "# managed by devctl: pre-push policy check"

// ChainedName is the name an existing pre-push hook is moved to.
const ChainedName = "pre-push.devctl-chained"

var (
	// ErrNotGitRepo is returned when repoDir is not inside a git work tree.
	ErrNotGitRepo = errors.New("not a git repository (run inside a clone, or `git init` first)")
	// ErrChainedExists is returned when a foreign pre-push hook exists and
	// so does a previously moved-aside one: installing would lose one.
	ErrChainedExists = errors.New("both pre-push and " + ChainedName + " exist; merge them by hand, then install again")
)

// Options configure Install.
type Options struct {
	// Command is the shell command the hook runs; DefaultCommand if empty.
	Command string
	// Git is the git binary; "git" from PATH if empty.
	Git string
}

// HooksDir returns the directory git runs hooks from for repoDir,
// honouring core.hooksPath.
func HooksDir(ctx context.Context, repoDir, git string) (string, error) {
	if git == "" {
		git = "git"
	}
	cmd := exec.CommandContext(ctx, git, "rev-parse", "--path-format=absolute", "--git-path", "hooks")
	cmd.Dir = repoDir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("find hooks dir of %q: %w: %w: %s", repoDir, ErrNotGitRepo, err, strings.TrimSpace(stderr.String()))
	}
	dir := strings.TrimSpace(string(out))
	if !filepath.IsAbs(dir) {
		dir = filepath.Join(repoDir, dir)
	}
	return dir, nil
}

// Script returns the hook script for command.
func Script(command string) string {
	return `#!/bin/sh
` + Marker + `
# Remove with: devctl hook uninstall (an earlier pre-push hook is restored).
# Skip once with: git push --no-verify
hook_dir=$(dirname "$0")
if [ -x "$hook_dir/` + ChainedName + `" ]; then
	input=$(cat)
	{ [ -z "$input" ] || printf '%s\n' "$input"; } | "$hook_dir/` + ChainedName + `" "$@" || exit $?
fi
` + command + ` || {
	status=$?
	echo "devctl: push blocked by the pre-push policy check (exit $status); fix the findings or waive them in the waivers file" >&2
	exit $status
}
`
}

func isOurs(path string) (bool, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("read hook %q: %w", path, err)
	}
	return bytes.Contains(b, []byte(Marker)), nil
}

func exists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}

// Install writes the pre-push hook of the repository at repoDir. It is
// idempotent: running it again updates the command. A pre-push hook that
// devctl did not write is moved to ChainedName and run first.
func Install(ctx context.Context, repoDir string, o Options) error {
	if o.Command == "" {
		o.Command = DefaultCommand
	}
	dir, err := HooksDir(ctx, repoDir, o.Git)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("install pre-push hook: %w", err)
	}
	hook := filepath.Join(dir, "pre-push")
	chained := filepath.Join(dir, ChainedName)
	ours, err := isOurs(hook)
	if err != nil {
		return err
	}
	if !ours && exists(hook) {
		if exists(chained) {
			return fmt.Errorf("install pre-push hook in %q: %w", dir, ErrChainedExists)
		}
		if err := os.Rename(hook, chained); err != nil {
			return fmt.Errorf("install pre-push hook: move existing hook aside: %w", err)
		}
	}
	tmp := hook + ".devctl-tmp"
	if err := os.WriteFile(tmp, []byte(Script(o.Command)), 0o755); err != nil {
		return fmt.Errorf("install pre-push hook: %w", err)
	}
	if err := os.Chmod(tmp, 0o755); err != nil { // WriteFile's mode is masked by umask
		return fmt.Errorf("install pre-push hook: %w", err)
	}
	if err := os.Rename(tmp, hook); err != nil {
		return fmt.Errorf("install pre-push hook: %w", err)
	}
	return nil
}

// Uninstall removes the hook Install wrote and restores a chained one. It
// leaves a pre-push hook devctl did not write alone.
func Uninstall(ctx context.Context, repoDir string, o Options) error {
	dir, err := HooksDir(ctx, repoDir, o.Git)
	if err != nil {
		return err
	}
	hook := filepath.Join(dir, "pre-push")
	chained := filepath.Join(dir, ChainedName)
	ours, err := isOurs(hook)
	if err != nil {
		return err
	}
	if !ours {
		return nil
	}
	if err := os.Remove(hook); err != nil {
		return fmt.Errorf("uninstall pre-push hook: %w", err)
	}
	if exists(chained) {
		if err := os.Rename(chained, hook); err != nil {
			return fmt.Errorf("uninstall pre-push hook: restore %s: %w", ChainedName, err)
		}
	}
	return nil
}

// Installed reports whether repoDir's pre-push hook is devctl's.
func Installed(ctx context.Context, repoDir string, o Options) (bool, error) {
	dir, err := HooksDir(ctx, repoDir, o.Git)
	if err != nil {
		return false, err
	}
	return isOurs(filepath.Join(dir, "pre-push"))
}
