// Package preview is the logic of per-pull-request preview environments on
// a shared host cluster: their names, the labels that are the only record
// of them (repository, PR, commit, author, expiry), which ones garbage
// collection may delete, the per-repository cap, pause and resume, the
// Markdown a CI job publishes and the exit codes a workflow branches on.
//
// The host cluster is the source of truth: every preview is one namespace
// labelled devctl.dev/managed-by=devctl and devctl.dev/pr, holding one
// vcluster. Nothing here keeps state of its own, so `devctl preview ls`
// and `gc` work from any CI job that can read the host.
package preview

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
)

// Labels and annotations devctl puts on a preview's host namespace and its
// vcluster's StatefulSet.
const (
	LabelEnv       = "devctl.dev/env"
	LabelManagedBy = "devctl.dev/managed-by"
	LabelRepo      = "devctl.dev/repo"
	LabelPR        = "devctl.dev/pr"
	LabelSHA       = "devctl.dev/sha"
	LabelCreatedBy = "devctl.dev/created-by"
	// LabelPushedAt is when the commit was last brought up (the last push);
	// LabelExpiresAt is LabelPushedAt plus the TTL. Both are UTC in
	// TimeLayout, a form label values allow.
	LabelPushedAt  = "devctl.dev/pushed-at"
	LabelExpiresAt = "devctl.dev/expires-at"
	// LabelPaused is "true" on the namespace of a paused preview.
	LabelPaused = "devctl.dev/paused"
	// AnnotationURL is the URL the last up printed.
	AnnotationURL = "devctl.dev/url"
	// AnnotationPausedReplicas on a StatefulSet is its replica count
	// before pause scaled it to zero.
	AnnotationPausedReplicas = "devctl.dev/paused-replicas"

	// ManagedBy is LabelManagedBy's value.
	ManagedBy = "devctl"
	// TimeLayout is the layout of the time labels (label values may not
	// hold ':').
	TimeLayout = "20060102T150405Z"
	// VClusterManagedBy is the label vcluster puts on the pods it syncs
	// into the host namespace; pause deletes them as `vcluster pause` does.
	VClusterManagedBy = "vcluster.loft.sh/managed-by"
)

// DefaultTTL is how long a preview lives after its last push.
const DefaultTTL = 72 * time.Hour

// Sentinel errors; ExitCode maps them to exit codes.
var (
	ErrCapReached = errors.New("preview cap reached")
	ErrTimeout    = errors.New("timed out")
	ErrHost       = errors.New("host cluster")
	ErrNotFound   = errors.New("no such preview")
	ErrUsage      = errors.New("invalid arguments")
)

// Exit codes of `devctl preview` commands. A workflow can branch on them,
// for example to comment "the cap is reached" instead of failing the PR.
const (
	ExitOK = 0
	// ExitFailed: the preview did not come up (build, policy, deploy or
	// readiness failed); the summary says which phase.
	ExitFailed = 1
	// ExitUsage: bad flags or arguments (a missing --pr, a bad --ttl).
	ExitUsage = 2
	// ExitCapReached: the repository already has --max-previews running
	// previews; nothing was created.
	ExitCapReached = 3
	// ExitTimeout: a wait ran out; the message names what it waited for.
	ExitTimeout = 4
	// ExitHost: the host cluster did not answer or refused the request
	// (kubeconfig, context, RBAC).
	ExitHost = 5
	// ExitNotFound: pause or resume of a PR that has no preview.
	ExitNotFound = 6
)

// ExitCode is the exit code for err (ExitOK for nil).
func ExitCode(err error) int {
	switch {
	case err == nil:
		return ExitOK
	case errors.Is(err, ErrUsage):
		return ExitUsage
	case errors.Is(err, ErrCapReached):
		return ExitCapReached
	case errors.Is(err, ErrTimeout):
		return ExitTimeout
	case errors.Is(err, ErrHost):
		return ExitHost
	case errors.Is(err, ErrNotFound):
		return ExitNotFound
	}
	return ExitFailed
}

// NormalizeRepo reduces the ways a repository is written (GITHUB_REPOSITORY,
// an https or ssh remote, with or without ".git") to "owner/name",
// lowercased: "https://github.com/Acme/Shop.git" and "acme/shop" are one
// repository.
func NormalizeRepo(repo string) string {
	r := strings.ToLower(strings.TrimSpace(repo))
	if i := strings.Index(r, "://"); i >= 0 {
		r = r[i+3:]
	}
	if i := strings.Index(r, "@"); i >= 0 && i < strings.IndexAny(r+"/", ":/") {
		r = r[i+1:]
	}
	r = strings.TrimSuffix(strings.TrimRight(r, "/"), ".git")
	r = strings.Replace(r, ":", "/", 1)
	parts := strings.Split(r, "/")
	if len(parts) > 2 && strings.Contains(parts[0], ".") {
		parts = parts[1:] // the host: github.com, gitlab.example.com
	}
	return strings.Join(parts, "/")
}

// RepoLabel is the devctl.dev/repo label value of a repository: its
// normalized form with "/" as "." ("acme.shop"), shortened with a hash when
// it would exceed a label value's 63 characters.
func RepoLabel(repo string) string {
	n := NormalizeRepo(repo)
	v := labelSafe(strings.ReplaceAll(n, "/", "."))
	if len(v) <= validation.LabelValueMaxLength && v == strings.ReplaceAll(n, "/", ".") {
		return v
	}
	h := shortHash(n)
	if len(v) > validation.LabelValueMaxLength-len(h)-1 {
		v = strings.TrimRight(v[:validation.LabelValueMaxLength-len(h)-1], "-_.")
	}
	return v + "-" + h
}

// EnvName is the environment name of a repository's pull request, e.g.
// "pr123-shop-1a2b3c": the PR number (never the merge ref, which changes
// with every push to the base branch), the repository's name as far as it
// fits, and a hash of the normalized repository so two repositories of the
// same name on one host never share a preview.
func EnvName(repo string, pr int) string {
	n := NormalizeRepo(repo)
	prefix := "pr" + strconv.Itoa(pr)
	base := n
	if i := strings.LastIndex(base, "/"); i >= 0 {
		base = base[i+1:]
	}
	base = dnsSafe(base)
	h := shortHash(n)
	room := maxEnvName - len(prefix) - len(h) - 2
	if len(base) > room {
		base = strings.TrimRight(base[:room], "-")
	}
	if base == "" {
		return prefix + "-" + h
	}
	return prefix + "-" + base + "-" + h
}

// maxEnvName is envs.MaxNameLen (not imported: this package stays free of
// the providers).
const maxEnvName = 40

// Request is what `devctl preview up` asks for.
type Request struct {
	Repo      string
	PR        int
	SHA       string
	CreatedBy string
	TTL       time.Duration
	// Now is the time of the push being brought up.
	Now time.Time
}

// Validate checks the request before anything is created.
func (r Request) Validate() error {
	switch {
	case r.PR <= 0:
		return fmt.Errorf("%w: --pr must be the pull request's number (got %d); in GitHub Actions use ${{ github.event.pull_request.number }}", ErrUsage, r.PR)
	case NormalizeRepo(r.Repo) == "":
		return fmt.Errorf("%w: the repository is unknown: pass --repo owner/name (GITHUB_REPOSITORY is not set and the folder has no git remote)", ErrUsage)
	case r.TTL <= 0:
		return fmt.Errorf("%w: --ttl must be positive (got %s)", ErrUsage, r.TTL)
	case r.SHA != "" && !isHex(r.SHA):
		return fmt.Errorf("%w: --sha %q is not a commit hash", ErrUsage, r.SHA)
	}
	return nil
}

// Env is the request's environment name.
func (r Request) Env() string { return EnvName(r.Repo, r.PR) }

// ExpiresAt is when the preview expires: TTL after this push.
func (r Request) ExpiresAt() time.Time { return r.Now.UTC().Add(r.TTL).Truncate(time.Second) }

// Labels are the labels of the preview's host namespace. Every up sets them
// again, so the expiry counts from the last push.
func (r Request) Labels() map[string]string {
	l := map[string]string{
		LabelEnv:       r.Env(),
		LabelManagedBy: ManagedBy,
		LabelRepo:      RepoLabel(r.Repo),
		LabelPR:        strconv.Itoa(r.PR),
		LabelPushedAt:  r.Now.UTC().Format(TimeLayout),
		LabelExpiresAt: r.ExpiresAt().Format(TimeLayout),
	}
	if r.SHA != "" {
		l[LabelSHA] = strings.ToLower(r.SHA)
	}
	if by := labelSafe(r.CreatedBy); by != "" {
		l[LabelCreatedBy] = by
	}
	return l
}

// State is where a preview is.
type State string

// Preview states.
const (
	StateRunning     State = "Running"
	StatePaused      State = "Paused"
	StateExpired     State = "Expired"
	StateTerminating State = "Terminating"
)

// Preview is a preview as its host namespace records it.
type Preview struct {
	Env       string    `json:"env"`
	Namespace string    `json:"namespace"`
	Repo      string    `json:"repo"`
	PR        int       `json:"pr"`
	SHA       string    `json:"sha,omitempty"`
	CreatedBy string    `json:"createdBy,omitempty"`
	Created   time.Time `json:"created"`
	PushedAt  time.Time `json:"pushedAt,omitzero"`
	ExpiresAt time.Time `json:"expiresAt,omitzero"`
	Paused    bool      `json:"paused"`
	URL       string    `json:"url,omitempty"`
	// Terminating is set while the namespace is being deleted.
	Terminating bool `json:"terminating,omitempty"`
}

// State is the preview's state at now.
func (p Preview) State(now time.Time) State {
	switch {
	case p.Terminating:
		return StateTerminating
	case p.Expired(now):
		return StateExpired
	case p.Paused:
		return StatePaused
	}
	return StateRunning
}

// Expired says whether the preview's TTL ran out. A preview without a
// readable expiry never expires by itself (gc --older-than still applies).
func (p Preview) Expired(now time.Time) bool {
	return !p.ExpiresAt.IsZero() && !now.Before(p.ExpiresAt)
}

// LastPush is when the preview was last brought up: its pushed-at label,
// or the namespace's creation when that is missing.
func (p Preview) LastPush() time.Time {
	if !p.PushedAt.IsZero() {
		return p.PushedAt
	}
	return p.Created
}

// FromNamespace reads a preview from its host namespace's metadata. It
// answers false for every namespace devctl did not label as a preview
// (no devctl.dev/managed-by=devctl, no numeric devctl.dev/pr, no repo), so
// nothing built on it can touch a namespace devctl did not make.
func FromNamespace(m metav1.ObjectMeta) (Preview, bool) {
	l := m.Labels
	if l[LabelManagedBy] != ManagedBy || l[LabelRepo] == "" {
		return Preview{}, false
	}
	pr, err := strconv.Atoi(l[LabelPR])
	if err != nil || pr <= 0 {
		return Preview{}, false
	}
	p := Preview{
		Env:         l[LabelEnv],
		Namespace:   m.Name,
		Repo:        l[LabelRepo],
		PR:          pr,
		SHA:         l[LabelSHA],
		CreatedBy:   l[LabelCreatedBy],
		Created:     m.CreationTimestamp.UTC(),
		Paused:      l[LabelPaused] == "true",
		URL:         m.Annotations[AnnotationURL],
		Terminating: m.DeletionTimestamp != nil,
	}
	p.PushedAt, _ = time.Parse(TimeLayout, l[LabelPushedAt])
	p.ExpiresAt, _ = time.Parse(TimeLayout, l[LabelExpiresAt])
	return p, true
}

// Selector is the label selector of every preview on a host; with repo set,
// of that repository's.
func Selector(repo string) string {
	s := LabelManagedBy + "=" + ManagedBy + "," + LabelPR
	if repo != "" {
		s += "," + LabelRepo + "=" + RepoLabel(repo)
	}
	return s
}

// Sort orders previews by repository, then PR number.
func Sort(ps []Preview) {
	sort.Slice(ps, func(i, j int) bool {
		if ps[i].Repo != ps[j].Repo {
			return ps[i].Repo < ps[j].Repo
		}
		return ps[i].PR < ps[j].PR
	})
}

// Collectable picks the previews gc deletes: those whose TTL ran out and,
// when olderThan > 0, those last pushed more than olderThan before now.
// Previews already being deleted are picked again (gc waits for them).
func Collectable(ps []Preview, now time.Time, olderThan time.Duration) []Preview {
	var out []Preview
	for _, p := range ps {
		if p.Terminating || p.Expired(now) || (olderThan > 0 && now.Sub(p.LastPush()) > olderThan) {
			out = append(out, p)
		}
	}
	return out
}

// CapError says the repository has as many running previews as allowed.
type CapError struct {
	Repo    string
	Max     int
	Running []Preview
}

func (e *CapError) Error() string {
	prs := make([]string, len(e.Running))
	for i, p := range e.Running {
		prs[i] = "#" + strconv.Itoa(p.PR)
	}
	oldest := e.Running[0]
	for _, p := range e.Running[1:] {
		if p.LastPush().Before(oldest.LastPush()) {
			oldest = p
		}
	}
	return fmt.Sprintf("%s: %s already has %d running preview(s) (PRs %s), the most allowed (--max-previews %d); "+
		"free one with `devctl preview pause --pr %d` or `devctl preview down --pr %d` (#%d was pushed longest ago), "+
		"delete expired ones with `devctl preview gc`, or raise --max-previews",
		ErrCapReached, e.Repo, len(e.Running), strings.Join(prs, ", "), e.Max, oldest.PR, oldest.PR, oldest.PR)
}

func (e *CapError) Unwrap() error { return ErrCapReached }

// CheckCap reports a *CapError when bringing up pr would make more than
// max running previews of its repository. The PR's own preview (an update)
// never counts, nor paused or terminating ones; expired ones do (they run
// until gc deletes them). max <= 0 is no cap.
func CheckCap(ps []Preview, repo string, pr, max int) error {
	if max <= 0 {
		return nil
	}
	label := RepoLabel(repo)
	var running []Preview
	for _, p := range ps {
		if p.Repo == label && p.PR != pr && !p.Paused && !p.Terminating {
			running = append(running, p)
		}
	}
	if len(running) < max {
		return nil
	}
	Sort(running)
	return &CapError{Repo: NormalizeRepo(repo), Max: max, Running: running}
}

// PausedReplicas reads the replica count pause recorded on a StatefulSet;
// ok is false when it was not paused by devctl.
func PausedReplicas(annotations map[string]string) (n int32, ok bool) {
	v, found := annotations[AnnotationPausedReplicas]
	if !found {
		return 0, false
	}
	i, err := strconv.ParseInt(v, 10, 32)
	if err != nil || i < 0 {
		return 1, true // unreadable: one replica is what vcluster runs
	}
	return int32(i), true
}

func shortHash(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])[:6]
}

// dnsSafe lowercases s and turns every run of characters outside [a-z0-9]
// into one hyphen.
func dnsSafe(s string) string {
	var b strings.Builder
	hyphen := false
	for _, r := range strings.ToLower(s) {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') {
			b.WriteRune(r)
			hyphen = false
		} else if !hyphen {
			b.WriteByte('-')
			hyphen = true
		}
	}
	return strings.Trim(b.String(), "-")
}

// labelSafe makes s a valid label value: characters outside
// [A-Za-z0-9._-] become '-', at most 63, alphanumeric at both ends.
func labelSafe(s string) string {
	b := []byte(s)
	for i, c := range b {
		if !labelChar(c) {
			b[i] = '-'
		}
	}
	v := string(b)
	if len(v) > validation.LabelValueMaxLength {
		v = v[:validation.LabelValueMaxLength]
	}
	return strings.Trim(v, "-_.")
}

func isHex(s string) bool {
	if len(s) < 7 || len(s) > 64 {
		return false
	}
	for _, c := range strings.ToLower(s) {
		if !strings.ContainsRune("0123456789abcdef", c) {
			return false
		}
	}
	return true
}

func labelChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-'
}
