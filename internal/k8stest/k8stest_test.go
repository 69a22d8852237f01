package k8stest

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestNamespacePrefix(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, in, want string
	}{
		{"plain", "TestIntegrationHelm", "integrationhelm-"},
		{"subtest", "TestFoo/Bar_baz", "foo-bar-baz-"},
		{"long", "TestIntegration" + strings.Repeat("X", 60), "integration" + strings.Repeat("x", 29) + "-"},
		{"only symbols", "Test/__", "test-"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := namespacePrefix(tt.in); got != tt.want {
				t.Errorf("namespacePrefix(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestReadVersions(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "versions.env")
	data := "# comment\nKUBERNETES_VERSION=v1.35.4\n\nETCD_VERSION=\"v3.6.13\"\nKWOK_VERSION='v0.8.0'\nnot a pair\n"
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := readVersions(path)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"KUBERNETES_VERSION": "v1.35.4", "ETCD_VERSION": "v3.6.13", "KWOK_VERSION": "v0.8.0"}
	if len(got) != len(want) {
		t.Errorf("readVersions = %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
}

func TestFindAssets(t *testing.T) {
	t.Parallel()
	complete := t.TempDir()
	for _, f := range assetFiles {
		if err := os.WriteFile(filepath.Join(complete, f), nil, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	partial := t.TempDir()
	if err := os.WriteFile(filepath.Join(partial, "etcd"), nil, 0o700); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		dir     string
		wantErr error
	}{
		{"complete", complete, nil},
		{"partial", partial, ErrAssetsMissing},
		{"absent", filepath.Join(partial, "nope"), ErrAssetsMissing},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := findAssets(tt.dir)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("findAssets(%s) error = %v, want %v", tt.dir, err, tt.wantErr)
			}
			if err == nil && got != tt.dir {
				t.Errorf("findAssets(%s) = %s", tt.dir, got)
			}
			if err != nil && !strings.Contains(err.Error(), "make k8s-tools") {
				t.Errorf("error %q does not say how to fix it", err)
			}
		})
	}
}

func TestDefaultAssetsDirFollowsVersions(t *testing.T) {
	// Not parallel: changes the working directory and environment.
	root := t.TempDir()
	tools := filepath.Join(root, "e2e", "tools")
	if err := os.MkdirAll(filepath.Join(root, "internal", "pkg"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(tools, 0o700); err != nil {
		t.Fatal(err)
	}
	env := "KUBERNETES_VERSION=v1.2.3\nETCD_VERSION=v3.4.5\nKWOK_VERSION=v0.6.7\n"
	if err := os.WriteFile(filepath.Join(tools, "versions.env"), []byte(env), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Chdir(filepath.Join(root, "internal", "pkg"))
	t.Setenv("DEVCTL_E2E_CACHE", "/cache")
	got, err := defaultAssetsDir()
	if err != nil {
		t.Fatal(err)
	}
	if want := "/cache/k8stest-v1.2.3-etcd-v3.4.5-kwok-v0.6.7"; got != want {
		t.Errorf("defaultAssetsDir() = %s, want %s", got, want)
	}
}

// TestNewReportsFailingComponent runs New against stand-in binaries where
// the API server exits at once: the error must name it and carry its log
// (a timeout would fail with a deadline error instead).
func TestNewReportsFailingComponent(t *testing.T) {
	t.Parallel()
	assets := t.TempDir()
	scripts := map[string]string{
		"etcd":           "#!/bin/sh\nexec sleep 60\n",
		"kube-apiserver": "#!/bin/sh\necho 'E0101 invalid flag --etcd-servers: boom' >&2\nexit 3\n",
	}
	for _, f := range assetFiles {
		body, ok := scripts[f]
		if !ok {
			body = "#!/bin/sh\nexit 0\n"
		}
		if err := os.WriteFile(filepath.Join(assets, f), []byte(body), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	c, err := New(t.Context(), WithAssets(assets), WithStartTimeout(30*time.Second))
	if err == nil {
		_ = c.Stop()
		t.Fatal("New succeeded with a failing API server")
	}
	if !errors.Is(err, ErrStart) {
		t.Errorf("error %v is not ErrStart", err)
	}
	for _, want := range []string{"kube-apiserver exited", "exit status 3", "invalid flag --etcd-servers: boom"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not contain %q", err, want)
		}
	}
}
