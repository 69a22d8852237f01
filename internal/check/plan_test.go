package check

import (
	"os"
	"path/filepath"
	"testing"
)

func write(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

const project = "apiVersion: devctl.dev/v1alpha1\nkind: Project\nname: shop\nteam: dx\nservices:\n  - name: web\n    context: .\n    dockerfile: Dockerfile\n    port: 8080\n"

// The lean front runs a check of plain manifests itself and hands every
// other command line to devctl-core.
func TestPlan(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, map[string]string{
		"plain/web.yaml":                 "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: web}\n",
		"withchart/web.yaml":             "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: web}\n",
		"withchart/chart/Chart.yaml":     "apiVersion: v2\nname: web\nversion: 0.1.0\n",
		"hiddenchart/.cache/Chart.yaml":  "apiVersion: v2\nname: web\nversion: 0.1.0\n",
		"hiddenchart/web.yaml":           "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: web}\n",
		"proj/devctl.yaml":               project + "policy:\n  waivers: waivers.yaml\n",
		"proj/deploy/web.yaml":           "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: web}\n",
		"rules/devctl.yaml":              project + "policy:\n  rules: policies\n",
		"rules/policies/no-latest.rego":  "package main\n",
		"rules/deploy/web.yaml":          "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: web}\n",
		"broken/devctl.yaml":             "apiVersion: devctl.dev/v1alpha1\nkind: Project\nnmae: x\n",
		"broken/web.yaml":                "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: web}\n",
		"chartonly/Chart.yaml":           "apiVersion: v2\nname: web\nversion: 0.1.0\n",
		"chartonly/templates/x.yaml":     "kind: ConfigMap\n",
		"proj/deploy/nested/Chart.yaml":  "apiVersion: v2\nname: nested\nversion: 0.1.0\n",
		"proj/deploy/nested/values.yaml": "x: 1\n",
	})
	at := func(p string) string { return filepath.Join(dir, p) }
	tests := []struct {
		name string
		args []string
		lean bool
	}{
		{"a file", []string{"check", at("plain/web.yaml")}, true},
		{"a folder", []string{"check", at("plain")}, true},
		{"stdin", []string{"check", "-"}, true},
		{"flags after the paths", []string{"check", at("plain/web.yaml"), "--format", "json", "--fail-on=low"}, true},
		{"a report format devctl does not have", []string{"check", at("plain/web.yaml"), "--format", "yaml"}, false},
		{"every flag devctl check has", []string{"check", "-v", "--socket", "/x", "--name", "n", "--branch", "b", "--timing", "--fail-on-empty", "-C", at("plain"), "web.yaml"}, true},
		{"a hidden folder's chart is not read", []string{"check", at("hiddenchart")}, true},
		{"devctl.yaml with waivers, found upward", []string{"check", "-C", at("proj/deploy"), at("proj/deploy/web.yaml")}, true},
		{"devctl.yaml with waivers, -f", []string{"check", "-f", at("proj/devctl.yaml"), at("plain/web.yaml")}, true},

		{"another command", []string{"up"}, false},
		{"no command", nil, false},
		{"a global flag first", []string{"-v", "check", at("plain/web.yaml")}, false},
		{"no paths: the golden-path render", []string{"check"}, false},
		{"help", []string{"check", "--help", at("plain/web.yaml")}, false},
		{"an unknown flag", []string{"check", "--colour", at("plain/web.yaml")}, false},
		{"a chart folder", []string{"check", at("chartonly")}, false},
		{"a folder holding a chart", []string{"check", at("withchart")}, false},
		{"a folder holding a chart deeper down", []string{"check", at("proj")}, false},
		{"organisation rules", []string{"check", "-C", at("rules"), at("rules/deploy/web.yaml")}, false},
		{"a devctl.yaml that does not load", []string{"check", "-f", at("broken/devctl.yaml"), at("broken/web.yaml")}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, lean := Plan(tt.args); lean != tt.lean {
				t.Errorf("Plan(%q) lean = %v, want %v", tt.args, lean, tt.lean)
			}
		})
	}
}
