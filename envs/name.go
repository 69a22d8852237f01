package envs

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"regexp"
	"strings"
)

// MaxNameLen is the longest environment name. Every name a provider derives
// from it must stay a valid hostname and DNS label (63 characters): kind's
// node containers and hostnames "<name>-control-plane" and "<name>-worker2",
// its "kind-<name>" contexts, vcluster's "vc-<name>" Secrets and per-node
// names. 40 leaves room for all of them.
const MaxNameLen = 40

const hashLen = 6

var validName = regexp.MustCompile(`^[a-z]([a-z0-9]*(-[a-z0-9]+)*)?$`)

// ValidateName reports whether name can be used as an environment name:
// lowercase letters, digits and single hyphens, starting with a letter, not
// ending with a hyphen, at most MaxNameLen characters.
func ValidateName(name string) error {
	if len(name) > MaxNameLen {
		return fmt.Errorf("%w: %q is longer than %d characters", ErrInvalidName, name, MaxNameLen)
	}
	return validateExistingName(name)
}

// validateExistingName checks a name given to find an environment that
// may already exist. It applies ValidateName's character rules, so a name
// can never reach outside the state directory, but not its length limit:
// environments made when MaxNameLen was larger stay reachable.
func validateExistingName(name string) error {
	if !validName.MatchString(name) {
		return fmt.Errorf("%w: %q must be lowercase letters, digits and single hyphens, start with a letter and not end with a hyphen", ErrInvalidName, name)
	}
	return nil
}

// Name derives the environment name of a repository's branch, for example
// Name("github.com/acme/hello.git", "main") == "hello-main".
//
// repo is reduced to its last path element (without ".git"); the result is
// "<repo>-<branch>" lowercased, with every other character turned into a
// hyphen. When that changed anything (case, "/", "_", a missing leading
// letter) or the name had to be shortened, a hash of repo+"/"+branch is
// appended so that distinct branches such as "feature/Foo_bar" and
// "feature/foo-bar" get distinct names. The result always passes
// ValidateName and is the same for the same input.
func Name(repo, branch string) string {
	parts := make([]string, 0, 2)
	if base := repoBase(repo); base != "" {
		parts = append(parts, base)
	}
	if branch != "" {
		parts = append(parts, branch)
	}
	raw := strings.Join(parts, "-")
	name := sanitize(raw)
	lossy := name != raw
	if name == "" || name[0] < 'a' || name[0] > 'z' {
		name = strings.Trim("env-"+name, "-")
		lossy = true
	}
	if !lossy && len(name) <= MaxNameLen {
		return name
	}
	sum := sha256.Sum256([]byte(repo + "/" + branch))
	suffix := hex.EncodeToString(sum[:])[:hashLen]
	if keep := MaxNameLen - hashLen - 1; len(name) > keep {
		name = strings.TrimRight(name[:keep], "-")
	}
	return name + "-" + suffix
}

// repoBase is the last element of a repository path or URL, without ".git".
func repoBase(repo string) string {
	repo = strings.TrimRight(repo, "/")
	repo = strings.TrimSuffix(repo, ".git")
	if i := strings.LastIndexAny(repo, "/:\\"); i >= 0 {
		repo = repo[i+1:]
	}
	return repo
}

// sanitize lowercases s, turns every run of characters outside [a-z0-9]
// into one hyphen and trims hyphens at both ends.
func sanitize(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	hyphen := false
	for _, r := range strings.ToLower(s) {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') {
			b.WriteRune(r)
			hyphen = false
			continue
		}
		if !hyphen {
			b.WriteByte('-')
			hyphen = true
		}
	}
	return strings.Trim(b.String(), "-")
}
