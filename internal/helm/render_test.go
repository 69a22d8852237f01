package helm

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRenderLooksLikeHelmTemplate(t *testing.T) {
	t.Parallel()
	out, err := Render(t.Context(), goldenPath(t), "shop", testNS, values("v1"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"# Source: golden-path/templates/deployment.yaml\n",
		"# Source: golden-path/templates/service.yaml\n",
		"namespace: " + testNS + "\n",
		`image: "localhost:5001/shop:v1"`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	if strings.Contains(out, "NOTES.txt") {
		t.Error("NOTES.txt rendered into the manifest")
	}
}

func TestRenderErrors(t *testing.T) {
	t.Parallel()
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	tests := []struct {
		name string
		ctx  context.Context
		rel  string
		want error
	}{
		{"canceled", canceled, "shop", context.Canceled},
		{"bad release name", context.Background(), "-shop", ErrInvalidArgument},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if _, err := Render(tt.ctx, goldenPath(t), tt.rel, testNS, values("v1")); !errors.Is(err, tt.want) {
				t.Errorf("err = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestNewConfig(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	kubeconfig := filepath.Join(dir, "kubeconfig")
	if err := os.WriteFile(kubeconfig, []byte(`apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:1"}}]
users: [{name: u, user: {token: t}}]
contexts: [{name: x, context: {cluster: c, user: u}}]
current-context: x
`), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, path, ns string
		wantErr        bool
	}{
		{"ok", kubeconfig, "ns", false},
		{"missing file", filepath.Join(dir, "nope"), "ns", true},
		{"no path", "", "ns", true},
		{"no namespace", kubeconfig, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg, err := NewConfig(tt.path, tt.ns)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error %v", err, tt.wantErr)
			}
			if err != nil {
				return
			}
			rc, err := cfg.action.RESTClientGetter.ToRESTConfig()
			if err != nil {
				t.Fatal(err)
			}
			if rc.Host != "https://127.0.0.1:1" {
				t.Errorf("host = %q: the kubeconfig file was not used", rc.Host)
			}
			// Nothing listens there: the error says what to do.
			d := NewDeploy(cfg)
			d.ReleaseName = "shop"
			_, err = d.Run(t.Context(), goldenPath(t), values("v1"))
			if err == nil || !strings.Contains(err.Error(), "devctl up") {
				t.Errorf("deploy to an unreachable cluster: err = %v, want a hint to run devctl up", err)
			}
		})
	}
}

func BenchmarkRender(b *testing.B) {
	ch := goldenPath(b)
	vals := values("v1")
	vals["replicas"] = 3
	vals["hpa"] = map[string]any{"enabled": true}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Render(context.Background(), ch, "shop", testNS, vals); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkLoadAndRender(b *testing.B) {
	vals := values("v1")
	b.ReportAllocs()
	for b.Loop() {
		ch := goldenPath(b)
		if _, err := Render(context.Background(), ch, "shop", testNS, vals); err != nil {
			b.Fatal(err)
		}
	}
}
