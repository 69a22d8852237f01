package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// hatchDir is a project folder with a chart, a Kustomize overlay and a
// manifests folder.
func hatchDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for name, data := range map[string]string{
		"charts/web/Chart.yaml":                  "apiVersion: v2\nname: web\nversion: 0.1.0\n",
		"charts/web/values-dev.yaml":             "replicas: 1\n",
		"deploy/overlays/dev/kustomization.yaml": "resources: []\n",
		"deploy/plain/d.yaml":                    "kind: ConfigMap\n",
		"notachart/README":                       "x\n",
	} {
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

func parseService(t *testing.T, dir, svc string) (*Config, error) {
	t.Helper()
	src := "apiVersion: devctl.dev/v1alpha1\nkind: Project\nname: p\nteam: t\nservices:\n  - name: web\n" + svc
	return Parse(filepath.Join(dir, FileName), []byte(src))
}

func TestEscapeHatchConfig(t *testing.T) {
	t.Parallel()
	dir := hatchDir(t)
	for _, tt := range []struct {
		name, svc, deployer string
	}{
		{"golden path by default", "", DeployGoldenPath},
		{"chart with values", "    chart: charts/web\n    valuesFiles: [charts/web/values-dev.yaml]\n    values: {image: {tag: x}, team: mine}\n    image: ghcr.io/acme/web\n", DeployChart},
		{"kustomize", "    kustomize: deploy/overlays/dev\n", DeployKustomize},
		{"manifests", "    manifests: [deploy/plain]\n    image: web\n", DeployManifests},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c, err := parseService(t, dir, tt.svc)
			if err != nil {
				t.Fatal(err)
			}
			if got := c.Services[0].Deployer(); got != tt.deployer {
				t.Errorf("deployer %q, want %q", got, tt.deployer)
			}
		})
	}
}

// Each mistake is reported at its line with what to do about it.
func TestEscapeHatchConfigErrors(t *testing.T) {
	t.Parallel()
	dir := hatchDir(t)
	for _, tt := range []struct {
		name, svc string
		want      []string
	}{
		{"two hatches", "    chart: charts/web\n    kustomize: deploy/overlays/dev\n",
			[]string{":8:", "services[0].kustomize: chart and kustomize are all set; a service is deployed one way: keep one of them (or none, for the golden-path chart)"}},
		{"three hatches", "    chart: charts/web\n    kustomize: deploy/overlays/dev\n    manifests: [deploy/plain]\n",
			[]string{"chart and kustomize and manifests are all set"}},
		{"missing chart", "    chart: charts/api\n", []string{":7:", `services[0].chart: "charts/api" does not exist; paths are relative to the folder of devctl.yaml`}},
		{"folder without Chart.yaml", "    chart: notachart\n", []string{`"notachart" has no Chart.yaml; give the folder of a Helm chart`}},
		{"missing overlay", "    kustomize: deploy/overlays/prod\n", []string{`services[0].kustomize: "deploy/overlays/prod" does not exist`}},
		{"folder without kustomization", "    kustomize: deploy/plain\n", []string{`"deploy/plain" has no kustomization.yaml`}},
		{"missing manifests", "    manifests: [deploy/nope]\n", []string{`services[0].manifests[0]: "deploy/nope" does not exist`}},
		{"values files without a chart", "    valuesFiles: [charts/web/values-dev.yaml]\n", []string{"services[0].valuesFiles[0]: values files are for a service's own chart; set services[0].chart"}},
		{"missing values file", "    chart: charts/web\n    valuesFiles: [charts/web/values-prod.yaml]\n", []string{`services[0].valuesFiles[0]: "charts/web/values-prod.yaml" does not exist`}},
		{"values with kustomize", "    kustomize: deploy/overlays/dev\n    values: {replicas: 2}\n", []string{"services[0].values: values are chart values and kustomize has no chart"}},
		{"live with a chart", "    chart: charts/web\n    live: {}\n", []string{"services[0].live: live update runs the service under devctl's agent"}},
		{"image on the golden path", "    image: web\n", []string{"services[0].image: image names the image a chart"}},
		{"image with a tag", "    chart: charts/web\n    image: ghcr.io/acme/web:1.0\n", []string{`"ghcr.io/acme/web:1.0" has a tag; give the name alone (ghcr.io/acme/web)`}},
		{"image not a name", "    chart: charts/web\n    image: Not_An/Image\n", []string{`"Not_An/Image" is not an image name`}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseService(t, dir, tt.svc)
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q\nlacks %q", err, w)
				}
			}
		})
	}
}
