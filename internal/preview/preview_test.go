package preview

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/devctl/devctl/envs"
)

var now = time.Date(2026, 12, 7, 2, 30, 0, 0, time.UTC)

func TestNormalizeRepo(t *testing.T) {
	t.Parallel()
	for _, in := range []string{
		"acme/shop",
		"Acme/Shop",
		"https://github.com/acme/shop.git",
		"https://github.com/acme/shop/",
		"git@github.com:acme/shop.git",
		"ssh://git@github.com/acme/shop",
		"github.com/acme/shop",
	} {
		if got := NormalizeRepo(in); got != "acme/shop" {
			t.Errorf("NormalizeRepo(%q) = %q, want acme/shop", in, got)
		}
	}
	if got := NormalizeRepo("https://gitlab.example.com/group/sub/shop.git"); got != "group/sub/shop" {
		t.Errorf("nested group = %q", got)
	}
}

func TestEnvName(t *testing.T) {
	t.Parallel()
	a := EnvName("acme/shop", 123)
	if !strings.HasPrefix(a, "pr123-shop-") {
		t.Errorf("EnvName = %q, want pr123-shop-<hash>", a)
	}
	if b := EnvName("https://github.com/Acme/shop.git", 123); b != a {
		t.Errorf("the same repository written two ways: %q and %q", a, b)
	}
	if b := EnvName("other/shop", 123); b == a {
		t.Errorf("two repositories named shop share %q", a)
	}
	if b := EnvName("acme/shop", 124); b == a {
		t.Errorf("two PRs share %q", a)
	}
	for _, repo := range []string{
		"acme/" + strings.Repeat("very-long-name_", 10),
		"acme/___",
		"acme/Ünïcode.Repo",
	} {
		name := EnvName(repo, 987654)
		if err := envs.ValidateName(name); err != nil {
			t.Errorf("EnvName(%q) = %q: %v", repo, name, err)
		}
	}
}

func TestRepoLabel(t *testing.T) {
	t.Parallel()
	if got := RepoLabel("https://github.com/acme/shop"); got != "acme.shop" {
		t.Errorf("RepoLabel = %q, want acme.shop", got)
	}
	long := "acme/" + strings.Repeat("x", 80)
	l1, l2 := RepoLabel(long), RepoLabel(long+"y")
	for _, l := range []string{l1, l2, RepoLabel("acme/we!rd repo")} {
		if errs := validation.IsValidLabelValue(l); len(errs) > 0 {
			t.Errorf("RepoLabel gives %q: %v", l, errs)
		}
	}
	if l1 == l2 {
		t.Errorf("two long repository names share the label %q", l1)
	}
	if RepoLabel("acme/we!rd repo") == RepoLabel("acme/we-rd-repo") {
		t.Error("a changed name shares the label of the name it was changed into")
	}
}

func TestRequestLabelsRoundTrip(t *testing.T) {
	t.Parallel()
	r := Request{Repo: "acme/shop", PR: 42, SHA: "ABCDEF1234567", CreatedBy: "octo cat", TTL: 72 * time.Hour, Now: now}
	if err := r.Validate(); err != nil {
		t.Fatal(err)
	}
	labels := r.Labels()
	for k, v := range labels {
		if errs := validation.IsValidLabelValue(v); len(errs) > 0 {
			t.Errorf("label %s=%q: %v", k, v, errs)
		}
		if !strings.HasPrefix(k, "devctl.dev/") {
			t.Errorf("label %s is not under devctl.dev/: the provider would not copy it", k)
		}
	}
	p, ok := FromNamespace(metav1.ObjectMeta{Name: "ns", Labels: labels})
	if !ok {
		t.Fatalf("labels of a request do not read back as a preview: %v", labels)
	}
	want := Preview{Env: r.Env(), Namespace: "ns", Repo: "acme.shop", PR: 42, SHA: "abcdef1234567", CreatedBy: "octo-cat",
		PushedAt: now, ExpiresAt: now.Add(72 * time.Hour)}
	if p != want {
		t.Errorf("read back\n%+v\nwant\n%+v", p, want)
	}
	// The TTL counts from the last push: a later up moves the expiry.
	r.Now = now.Add(48 * time.Hour)
	later, _ := FromNamespace(metav1.ObjectMeta{Labels: r.Labels()})
	if !later.ExpiresAt.Equal(now.Add(120 * time.Hour)) {
		t.Errorf("expiry after a push 48h later = %v, want %v", later.ExpiresAt, now.Add(120*time.Hour))
	}
}

func TestRequestValidate(t *testing.T) {
	t.Parallel()
	ok := Request{Repo: "acme/shop", PR: 1, TTL: time.Hour, Now: now}
	for name, r := range map[string]Request{
		"no pr":   {Repo: "acme/shop", TTL: time.Hour},
		"no repo": {PR: 1, TTL: time.Hour},
		"no ttl":  {Repo: "acme/shop", PR: 1},
		"bad sha": {Repo: "acme/shop", PR: 1, TTL: time.Hour, SHA: "refs/pull/1/merge"},
	} {
		err := r.Validate()
		if !errors.Is(err, ErrUsage) || ExitCode(err) != ExitUsage {
			t.Errorf("%s: %v (exit %d), want a usage error", name, err, ExitCode(err))
		}
	}
	if err := ok.Validate(); err != nil {
		t.Error(err)
	}
}

// Only namespaces devctl labelled as previews are previews: gc and ls are
// built on this.
func TestFromNamespaceIgnoresUnlabelled(t *testing.T) {
	t.Parallel()
	good := Request{Repo: "acme/shop", PR: 7, TTL: time.Hour, Now: now}.Labels()
	without := func(k string) map[string]string {
		l := map[string]string{}
		for kk, v := range good {
			if kk != k {
				l[kk] = v
			}
		}
		return l
	}
	for name, labels := range map[string]map[string]string{
		"none":            nil,
		"someone else's":  {"app": "shop", LabelPR: "7"},
		"no managed-by":   without(LabelManagedBy),
		"no pr":           without(LabelPR),
		"no repo":         without(LabelRepo),
		"other manager":   merge(good, map[string]string{LabelManagedBy: "helm"}),
		"pr not a number": merge(good, map[string]string{LabelPR: "refs-pull-7-merge"}),
	} {
		if p, ok := FromNamespace(metav1.ObjectMeta{Name: "x", Labels: labels}); ok {
			t.Errorf("%s: read as a preview: %+v", name, p)
		}
	}
}

func merge(a, b map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range a {
		out[k] = v
	}
	for k, v := range b {
		out[k] = v
	}
	return out
}

func TestCollectable(t *testing.T) {
	t.Parallel()
	ps := []Preview{
		{PR: 1, PushedAt: now.Add(-80 * time.Hour), ExpiresAt: now.Add(-8 * time.Hour)}, // expired
		{PR: 2, PushedAt: now.Add(-10 * time.Hour), ExpiresAt: now.Add(62 * time.Hour)}, // fresh
		{PR: 3, PushedAt: now.Add(-30 * time.Hour), ExpiresAt: now.Add(42 * time.Hour)}, // old, not expired
		{PR: 4, Created: now.Add(-100 * time.Hour)},                                     // no expiry label
		{PR: 5, ExpiresAt: now.Add(time.Hour), Terminating: true},                       // being deleted
		{PR: 6, PushedAt: now.Add(-time.Hour), ExpiresAt: now},                          // expires right now
	}
	prs := func(ps []Preview) string {
		var s []string
		for _, p := range ps {
			s = append(s, fmt.Sprint(p.PR))
		}
		return strings.Join(s, ",")
	}
	if got := prs(Collectable(ps, now, 0)); got != "1,5,6" {
		t.Errorf("expired = %s, want 1,5,6", got)
	}
	if got := prs(Collectable(ps, now, 24*time.Hour)); got != "1,3,4,5,6" {
		t.Errorf("older than 24h = %s, want 1,3,4,5,6", got)
	}
}

func TestCheckCap(t *testing.T) {
	t.Parallel()
	repo := RepoLabel("acme/shop")
	ps := []Preview{
		{Repo: repo, PR: 3, PushedAt: now.Add(-time.Hour)},
		{Repo: repo, PR: 1, PushedAt: now.Add(-5 * time.Hour)},
		{Repo: repo, PR: 2, Paused: true},
		{Repo: repo, PR: 4, Terminating: true},
		{Repo: RepoLabel("other/shop"), PR: 9},
	}
	if err := CheckCap(ps, "acme/shop", 5, 3); err != nil {
		t.Errorf("2 running of 3 allowed: %v", err)
	}
	if err := CheckCap(ps, "acme/shop", 3, 2); err != nil {
		t.Errorf("an update of PR 3 counts itself: %v", err)
	}
	if err := CheckCap(ps, "acme/shop", 5, 0); err != nil {
		t.Errorf("no cap: %v", err)
	}
	err := CheckCap(ps, "acme/shop", 5, 2)
	var ce *CapError
	if !errors.As(err, &ce) || ExitCode(err) != ExitCapReached {
		t.Fatalf("3rd preview of 2 allowed: %v (exit %d)", err, ExitCode(err))
	}
	msg := err.Error()
	for _, want := range []string{"#1, #3", "--max-previews 2", "devctl preview pause --pr 1", "devctl preview gc"} {
		if !strings.Contains(msg, want) {
			t.Errorf("message lacks %q: %s", want, msg)
		}
	}
}

func TestPausedReplicas(t *testing.T) {
	t.Parallel()
	if _, ok := PausedReplicas(nil); ok {
		t.Error("no annotation read as paused")
	}
	if n, ok := PausedReplicas(map[string]string{AnnotationPausedReplicas: "2"}); !ok || n != 2 {
		t.Errorf("= %d %v, want 2", n, ok)
	}
	if n, ok := PausedReplicas(map[string]string{AnnotationPausedReplicas: "garbage"}); !ok || n != 1 {
		t.Errorf("unreadable = %d %v, want 1", n, ok)
	}
}

func TestExitCode(t *testing.T) {
	t.Parallel()
	for err, want := range map[error]int{
		nil:                                ExitOK,
		errors.New("build failed"):         ExitFailed,
		fmt.Errorf("x: %w", ErrTimeout):    ExitTimeout,
		fmt.Errorf("x: %w", ErrHost):       ExitHost,
		fmt.Errorf("x: %w", ErrNotFound):   ExitNotFound,
		fmt.Errorf("x: %w", ErrCapReached): ExitCapReached,
		fmt.Errorf("x: %w", ErrUsage):      ExitUsage,
	} {
		if got := ExitCode(err); got != want {
			t.Errorf("ExitCode(%v) = %d, want %d", err, got, want)
		}
	}
}

func TestMarkdown(t *testing.T) {
	t.Parallel()
	r := &Report{
		Env: "pr42-shop-abc123", Namespace: "vc-pr42-shop-abc123", Repo: "acme/shop", PR: 42,
		SHA: "0123456789abcdef0123", Host: "ci-host",
		URLs:      []ServiceURL{{Service: "shop", URL: "http://shop.pr42.example.com"}},
		Phases:    []Phase{{Name: "host", Duration: 300 * time.Millisecond, Status: "done"}, {Name: "deploy", Duration: 4200 * time.Millisecond, Status: "done", Detail: "a|b\nc"}},
		Total:     21500 * time.Millisecond,
		ExpiresAt: now.Add(72 * time.Hour), OK: true,
	}
	s := r.Summary()
	for _, want := range []string{
		"✅ Preview `pr42-shop-abc123` is ready at `0123456789ab` (21.5s)",
		"| shop | http://shop.pr42.example.com |",
		"| deploy | 4.2s | done: a\\|b c |",
		"| **total** | **21.5s** | |",
		"Expires 2026-12-10 02:30 UTC",
		"namespace `vc-pr42-shop-abc123` on `ci-host`",
		"devctl preview down --pr 42",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("summary lacks %q:\n%s", want, s)
		}
	}
	c := r.Comment()
	if !strings.HasPrefix(c, CommentMarker(r.Env)+"\n") {
		t.Errorf("comment does not start with its marker:\n%s", c)
	}
	r.OK, r.Error = false, "step deploy failed: ImagePullBackOff"
	if s := r.Summary(); !strings.Contains(s, "❌ Preview `pr42-shop-abc123` did not come up") || !strings.Contains(s, "ImagePullBackOff") {
		t.Errorf("failure summary:\n%s", s)
	}
	r.Namespace = ""
	if s := r.Summary(); strings.Contains(s, "Expires") || strings.Contains(s, "preview down") {
		t.Errorf("a preview that was never made has an expiry or a down hint:\n%s", s)
	}
}
