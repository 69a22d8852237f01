package app

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/devctl/devctl/internal/preview"
)

// What fails before any cluster is reached exits with the documented code
// and one line that says what to do.
func TestPreviewExitCodesWithoutAHost(t *testing.T) {
	dir := t.TempDir()
	kc := filepath.Join(dir, "kubeconfig")
	if err := os.WriteFile(kc, []byte(`apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:1"}}]
users: [{name: u, user: {token: t}}]
contexts: [{name: ci, context: {cluster: c, user: u}}]
current-context: ci
`), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("GITHUB_REPOSITORY", "")
	for _, tt := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"no pr", []string{"preview", "up", "--repo", "acme/shop", "--kubeconfig", kc}, preview.ExitUsage, "--pr must be"},
		{"bad ttl", []string{"preview", "up", "--repo", "acme/shop", "--pr", "1", "--ttl", "-1h", "--kubeconfig", kc}, preview.ExitUsage, "--ttl must be positive"},
		{"unknown flag", []string{"preview", "ls", "--nope"}, preview.ExitUsage, "unknown flag"},
		{"bad output", []string{"preview", "ls", "-o", "yaml", "--kubeconfig", kc}, preview.ExitUsage, "unknown output format"},
		{"no repo", []string{"preview", "pause", "--pr", "1", "--kubeconfig", kc}, preview.ExitUsage, "pass --repo"},
		{"missing kubeconfig", []string{"preview", "ls", "--kubeconfig", filepath.Join(dir, "none")}, preview.ExitHost, "pass --kubeconfig"},
		{"unknown context", []string{"preview", "ls", "--kubeconfig", kc, "--context", "prod"}, preview.ExitHost, `no context "prod" (it has: ci)`},
		{"host unreachable", []string{"preview", "ls", "--kubeconfig", kc, "--timeout", "5s"}, preview.ExitHost, "is the API server reachable"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, errOut, code := run(t, dir, tt.args...)
			if code != tt.code || !strings.Contains(errOut, tt.want) {
				t.Errorf("exit %d, want %d; stderr %q, want %q", code, tt.code, errOut, tt.want)
			}
			if strings.Count(errOut, "ERROR") != 1 {
				t.Errorf("not one error banner: %q", errOut)
			}
		})
	}
}
