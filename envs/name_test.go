package envs

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

func TestName(t *testing.T) {
	t.Parallel()
	tests := []struct {
		repo, branch string
		want         string // exact, or a prefix when hashed
		hashed       bool
	}{
		{repo: "hello", branch: "main", want: "hello-main"},
		{repo: "github.com/acme/hello.git", branch: "main", want: "hello-main"},
		{repo: "git@github.com:acme/hello.git", branch: "dev", want: "hello-dev"},
		{repo: "/home/me/src/hello/", branch: "v2", want: "hello-v2"},
		{repo: "hello", branch: "feature/foo-bar", want: "hello-feature-foo-bar-", hashed: true},
		{repo: "hello", branch: "feature/Foo_bar", want: "hello-feature-foo-bar-", hashed: true},
		{repo: "Hello", branch: "main", want: "hello-main-", hashed: true},
		{repo: "hello", branch: "a--b", want: "hello-a-b-", hashed: true},
		{repo: "hello", branch: "", want: "hello"},
		{repo: "", branch: "main", want: "main"},
		{repo: "", branch: "", want: "env-", hashed: true},
		{repo: "123", branch: "main", want: "env-123-main-", hashed: true},
		{repo: "hello", branch: "-x-", want: "hello-x-", hashed: true},
		{repo: "hello", branch: "ünïcode", want: "hello-n-code-", hashed: true},
		{repo: "hello", branch: strings.Repeat("a", 60), want: "hello-" + strings.Repeat("a", MaxNameLen-hashLen-1-len("hello-")) + "-", hashed: true},
		{repo: "hello", branch: strings.Repeat("a", MaxNameLen-len("hello-")), want: "hello-" + strings.Repeat("a", MaxNameLen-len("hello-"))},
		{repo: "hello", branch: strings.Repeat("a", MaxNameLen-len("hello-")+1), want: "hello-" + strings.Repeat("a", MaxNameLen-hashLen-1-len("hello-")) + "-", hashed: true},
		// Shortening never leaves a hyphen before the hash's.
		{repo: "hello", branch: strings.Repeat("a", MaxNameLen-hashLen-1-len("hello-")-1) + "-bbbbbbbbbb", want: "hello-" + strings.Repeat("a", MaxNameLen-hashLen-1-len("hello-")-1) + "-", hashed: true},
	}
	for _, tt := range tests {
		t.Run(tt.repo+"|"+tt.branch, func(t *testing.T) {
			t.Parallel()
			got := Name(tt.repo, tt.branch)
			if err := ValidateName(got); err != nil {
				t.Fatalf("Name(%q, %q) = %q is invalid: %v", tt.repo, tt.branch, got, err)
			}
			if !tt.hashed {
				if got != tt.want {
					t.Errorf("Name(%q, %q) = %q, want %q", tt.repo, tt.branch, got, tt.want)
				}
				return
			}
			if !strings.HasPrefix(got, tt.want) || len(got) != len(tt.want)+hashLen {
				t.Errorf("Name(%q, %q) = %q, want %q + %d hex digits", tt.repo, tt.branch, got, tt.want, hashLen)
			}
		})
	}
}

// kindNodeSuffixes are what kind appends to a cluster name for its node
// containers and hostnames; "kind-" is the prefix of its kubeconfig
// contexts. Each result must stay a DNS label.
var kindNodeSuffixes = []string{"-control-plane", "-control-plane2", "-worker", "-worker2", "-external-load-balancer"}

const dnsLabelLen = 63

func TestNameDerivedNamesFit(t *testing.T) {
	t.Parallel()
	long := func(prefix string, n int) string {
		return prefix + strings.Repeat("x", n-len(prefix))
	}
	tests := []struct{ repo, branch string }{
		{"github.com/acme/hello.git", "main"},
		{"github.com/acme/hello.git", "feature/ABC-1234-make-the-login-page-remember-the-last-used-account"},
		{"github.com/acme/payments-service-backend-monorepo.git", "feature/ABC-1234-add-retries"},
		{"github.com/acme/hello.git", long("feature/ABC-1234-", 100)},
		{"github.com/acme/hello.git", long("feature/ABC-1234-", 255)},
		{"github.com/acme/hello.git", long("renovate/", 255)},
		{"github.com/acme/hello.git", strings.Repeat("ab/", 85)},
		{"github.com/acme/hello.git", strings.Repeat("-", 255)},
		{"github.com/acme/hello.git", strings.Repeat("é", 127)},
		{long("github.com/acme/", 255), long("feature/ABC-1234-", 255)},
		{"", long("bugfix/", 255)},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%d+%d", len(tt.repo), len(tt.branch)), func(t *testing.T) {
			t.Parallel()
			name := Name(tt.repo, tt.branch)
			if err := ValidateName(name); err != nil {
				t.Fatalf("Name(%q, %q) = %q: %v", tt.repo, tt.branch, name, err)
			}
			derived := []string{"kind-" + name, "vc-" + name}
			for _, s := range kindNodeSuffixes {
				derived = append(derived, name+s)
			}
			for _, d := range derived {
				if len(d) > dnsLabelLen {
					t.Errorf("derived name %q has %d characters, more than %d", d, len(d), dnsLabelLen)
				}
			}
		})
	}
}

func TestNameDistinguishesLossyInputs(t *testing.T) {
	t.Parallel()
	pairs := [][2][2]string{
		{{"hello", "feature/Foo_bar"}, {"hello", "feature/foo-bar"}},
		{{"hello", "feature/foo-bar"}, {"hello", "feature-foo-bar"}},
		{{"hello", strings.Repeat("a", 60)}, {"hello", strings.Repeat("a", 61)}},
		{{"Hello", "main"}, {"hello", "Main"}},
	}
	for _, p := range pairs {
		a, b := Name(p[0][0], p[0][1]), Name(p[1][0], p[1][1])
		if a == b {
			t.Errorf("Name%q and Name%q both = %q", p[0], p[1], a)
		}
	}
}

func TestValidateName(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		ok   bool
	}{
		{"hello-main", true},
		{"a", true},
		{"a1-2b", true},
		{strings.Repeat("a", MaxNameLen), true},
		{strings.Repeat("a", MaxNameLen+1), false},
		{"", false},
		{"1abc", false},
		{"-abc", false},
		{"abc-", false},
		{"a--b", false},
		{"Abc", false},
		{"a_b", false},
		{"a.b", false},
	}
	for _, tt := range tests {
		err := ValidateName(tt.name)
		if (err == nil) != tt.ok {
			t.Errorf("ValidateName(%q) = %v, want ok=%v", tt.name, err, tt.ok)
		}
		if err != nil && !errors.Is(err, ErrInvalidName) {
			t.Errorf("ValidateName(%q) error %v does not match ErrInvalidName", tt.name, err)
		}
	}
}

func FuzzName(f *testing.F) {
	for _, s := range [][2]string{
		{"hello", "main"}, {"github.com/a/b.git", "feature/X_y"}, {"", ""}, {"9", "-"},
		{"repo", strings.Repeat("z", 80)}, {"ÄÖ", "İstanbul"}, {"a/b/", "/"},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, repo, branch string) {
		got := Name(repo, branch)
		if err := ValidateName(got); err != nil {
			t.Fatalf("Name(%q, %q) = %q: %v", repo, branch, got, err)
		}
		if n := len(got + "-control-plane"); n > dnsLabelLen {
			t.Fatalf("Name(%q, %q) = %q: its control-plane node name has %d characters", repo, branch, got, n)
		}
		if again := Name(repo, branch); again != got {
			t.Fatalf("Name(%q, %q) not deterministic: %q then %q", repo, branch, got, again)
		}
	})
}

func BenchmarkName(b *testing.B) {
	for _, branch := range []string{"main", "feature/JIRA-123_" + strings.Repeat("x", 60)} {
		b.Run(branch[:4], func(b *testing.B) {
			for b.Loop() {
				_ = Name("github.com/acme/hello.git", branch)
			}
		})
	}
}
