package watch

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/go-git/go-git/v5/plumbing/format/gitignore"
	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"
)

const (
	gitDir           = ".git"
	gitignoreFile    = ".gitignore"
	dockerignoreFile = ".dockerignore"
)

// splitPath splits an absolute, clean path into the components go-git's
// matcher works on; a .gitignore's domain is its folder split the same way.
func splitPath(p string) []string {
	return strings.Split(filepath.ToSlash(p), "/")
}

// readGitignore parses dir/.gitignore; a missing file has no patterns.
func readGitignore(dir string) ([]gitignore.Pattern, error) {
	return readGitPatterns(filepath.Join(dir, gitignoreFile), splitPath(dir))
}

// readGitPatterns parses a file of gitignore patterns applying below the
// folder given as domain.
func readGitPatterns(file string, domain []string) ([]gitignore.Pattern, error) {
	f, err := os.Open(file)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer func() { _ = f.Close() }()
	var ps []gitignore.Pattern
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") || strings.TrimSpace(line) == "" {
			continue
		}
		ps = append(ps, gitignore.ParsePattern(line, domain))
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read %s: %w", file, err)
	}
	return ps, nil
}

// inheritedGitignore returns the patterns that apply to dir from above it:
// the repository's .git/info/exclude and the .gitignore files from the
// repository's top folder down to dir's parent, lowest priority first.
// Outside a repository nothing is inherited.
func inheritedGitignore(dir string) ([]gitignore.Pattern, error) {
	top := repoTop(dir)
	if top == "" {
		return nil, nil
	}
	// Best effort: in a worktree or submodule .git is a file and the exclude
	// file lives elsewhere.
	ps, err := readGitPatterns(filepath.Join(top, gitDir, "info", "exclude"), splitPath(top))
	if err != nil {
		ps = nil
	}
	rel, err := filepath.Rel(top, dir)
	if err != nil || rel == "." {
		return ps, nil
	}
	d := top
	for _, name := range strings.Split(rel, string(filepath.Separator)) {
		own, err := readGitignore(d)
		if err != nil {
			return nil, err
		}
		ps = append(ps, own...)
		d = filepath.Join(d, name)
	}
	return ps, nil
}

// repoTop returns the nearest folder at or above dir holding .git, or "".
func repoTop(dir string) string {
	for d := dir; ; {
		if _, err := os.Lstat(filepath.Join(d, gitDir)); err == nil {
			return d
		}
		parent := filepath.Dir(d)
		if parent == d {
			return ""
		}
		d = parent
	}
}

// gitIgnored reports whether ps (lowest priority first) exclude p: the last
// pattern matching p decides.
func gitIgnored(ps []gitignore.Pattern, p string, isDir bool) bool {
	if len(ps) == 0 {
		return false
	}
	path := splitPath(p)
	for i := len(ps) - 1; i >= 0; i-- {
		switch ps[i].Match(path, isDir) {
		case gitignore.Exclude:
			return true
		case gitignore.Include:
			return false
		case gitignore.NoMatch:
		}
	}
	return false
}

// dockerMatcher compiles dir/.dockerignore (when useFile) followed by
// extra, both .dockerignore-style; nil when there are no patterns.
func dockerMatcher(dir string, useFile bool, extra []string) (*patternmatcher.PatternMatcher, error) {
	var patterns []string
	if useFile {
		p := filepath.Join(dir, dockerignoreFile)
		f, err := os.Open(p)
		switch {
		case errors.Is(err, fs.ErrNotExist):
		case err != nil:
			return nil, err
		default:
			patterns, err = ignorefile.ReadAll(f)
			_ = f.Close()
			if err != nil {
				return nil, fmt.Errorf("read %s: %w", p, err)
			}
		}
	}
	if len(extra) > 0 {
		ps, err := ignorefile.ReadAll(strings.NewReader(strings.Join(extra, "\n")))
		if err != nil {
			return nil, fmt.Errorf("ignore patterns %q: %w", extra, err)
		}
		patterns = append(patterns, ps...)
	}
	if len(patterns) == 0 {
		return nil, nil
	}
	pm, err := patternmatcher.New(patterns)
	if err != nil {
		return nil, fmt.Errorf("%w: fix the pattern in %s or services[].watch.ignore", err, filepath.Join(dir, dockerignoreFile))
	}
	return pm, nil
}

// dockerIgnored reports whether pm excludes rel (slash-separated, relative to
// the root) or one of its parents.
func dockerIgnored(pm *patternmatcher.PatternMatcher, rel string) bool {
	if pm == nil {
		return false
	}
	ok, err := pm.MatchesOrParentMatches(filepath.FromSlash(rel))
	return err == nil && ok
}

// dockerPrunes reports whether pm excludes the directory rel with nothing
// below it re-included. Like the Docker CLI, only "!" patterns whose literal
// text names a path below rel keep an excluded directory open.
func dockerPrunes(pm *patternmatcher.PatternMatcher, rel string) bool {
	if !dockerIgnored(pm, rel) {
		return false
	}
	prefix := rel + "/"
	for _, p := range pm.Patterns() {
		if p.Exclusion() && strings.HasPrefix(filepath.ToSlash(p.String())+"/", prefix) {
			return false
		}
	}
	return true
}
