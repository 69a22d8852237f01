package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writeTree(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "podinfo")
	for name, data := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

const goMain = "package main\n\nimport \"flag\"\n\nfunc main() {\n\tport := flag.Int(\"port\", 9898, \"HTTP port\")\n\t_ = port\n}\n"

// A repository laid out like a well-known Go service: charts/ and
// kustomize/, no Dockerfile. init deploys its chart, takes the image and
// port from the chart's values, and names the Kustomize folder it left.
func TestDetectChartAndKustomize(t *testing.T) {
	t.Parallel()
	dir := writeTree(t, map[string]string{
		"go.mod":                               "module example.com/podinfo\n\ngo 1.26\n",
		"cmd/podinfo/main.go":                  goMain,
		"charts/podinfo/Chart.yaml":            "apiVersion: v2\nname: podinfo\nversion: 6.0.0\n",
		"charts/podinfo/values.yaml":           "image:\n  repository: ghcr.io/stefanprodan/podinfo\n  tag: 6.0.0\nservice:\n  targetPort: 9898\n",
		"charts/podinfo/templates/d.yaml":      "kind: Deployment\n",
		"kustomize/kustomization.yaml":         "resources: [deployment.yaml]\n",
		"kustomize/deployment.yaml":            "apiVersion: apps/v1\nkind: Deployment\nspec:\n  template:\n    spec:\n      containers:\n      - image: ghcr.io/stefanprodan/podinfo:6.0.0\n",
		"vendor/x/Chart.yaml":                  "name: vendored\n",
		".github/workflows/kustomization.yaml": "x\n",
	})
	c, notes, err := Detect(dir)
	if err != nil {
		t.Fatal(err)
	}
	s := c.Services[0]
	if s.Chart != "charts/podinfo" || s.Kustomize != "" || s.Image != "ghcr.io/stefanprodan/podinfo" || s.Port != 9898 {
		t.Errorf("service %+v", s)
	}
	all := strings.Join(notes, "\n")
	for _, want := range []string{
		"deployed with its own chart: found Helm chart charts/podinfo (Chart.yaml)",
		"--deploy golden-path",
		"image ghcr.io/stefanprodan/podinfo",
		"port 9898 from the chart's values (charts/podinfo/values.yaml)",
		"also found (not used): kustomize kustomize",
	} {
		if !strings.Contains(all, want) {
			t.Errorf("notes lack %q:\n%s", want, all)
		}
	}
	if strings.Contains(all, "vendored") || strings.Contains(all, ".github") {
		t.Errorf("notes name vendored or hidden folders:\n%s", all)
	}

	c, _, err = DetectWith(dir, DetectOptions{Deploy: DeployKustomize})
	if err != nil {
		t.Fatal(err)
	}
	if s := c.Services[0]; s.Kustomize != "kustomize" || s.Image != "ghcr.io/stefanprodan/podinfo" {
		t.Errorf("--deploy kustomize: %+v", s)
	}
	c, notes, err = DetectWith(dir, DetectOptions{Deploy: DeployGoldenPath})
	if err != nil {
		t.Fatal(err)
	}
	if s := c.Services[0]; s.Deployer() != DeployGoldenPath || s.Port != 9898 {
		t.Errorf("--deploy golden-path: %+v", s)
	}
	// Without the chart, the port comes from the listen flag's default.
	if !strings.Contains(strings.Join(notes, "\n"), "port 9898 from the default of the listen flag (main.go:6)") {
		t.Errorf("notes:\n%s", strings.Join(notes, "\n"))
	}
	if _, _, err := DetectWith(dir, DetectOptions{Deploy: DeployManifests}); err == nil || !strings.Contains(err.Error(), "no manifests here") {
		t.Errorf("--deploy manifests without any: %v", err)
	}
}

// The overlay for development wins over the base and other overlays; a
// deploy/ folder of plain YAML is offered when there is no overlay.
func TestDetectOverlayAndManifests(t *testing.T) {
	t.Parallel()
	dir := writeTree(t, map[string]string{
		"Dockerfile":                              "FROM scratch\nEXPOSE 7000\n",
		"deploy/base/kustomization.yaml":          "resources: []\n",
		"deploy/overlays/prod/kustomization.yaml": "resources: [../../base]\n",
		"deploy/overlays/dev/kustomization.yaml":  "resources: [../../base]\n",
		"deploy/base/d.yaml":                      "kind: Deployment\napiVersion: apps/v1\nspec: {template: {spec: {containers: [{image: other}]}}}\n---\n  - image: \"registry.example.com/team/podinfo:1\"\n",
	})
	c, _, err := Detect(dir)
	if err != nil {
		t.Fatal(err)
	}
	if s := c.Services[0]; s.Kustomize != "deploy/overlays/dev" || s.Image != "registry.example.com/team/podinfo" || s.Port != 7000 {
		t.Errorf("service %+v", s)
	}
	dir = writeTree(t, map[string]string{
		"Dockerfile":     "FROM scratch\n",
		"k8s/app.yaml":   "apiVersion: apps/v1\nkind: Deployment\n",
		"docs/notes.yml": "title: x\n",
	})
	c, _, err = Detect(dir)
	if err != nil {
		t.Fatal(err)
	}
	if s := c.Services[0]; len(s.Manifests) != 1 || s.Manifests[0] != "k8s" {
		t.Errorf("service %+v", s)
	}
}
