//go:build !devctl_lean

package policy

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestRegoConftestPolicies(t *testing.T) {
	t.Parallel()
	e := newTestEngine(t, Options{RulesDir: "testdata/rego"})
	tests := []struct {
		name   string
		mutate func(d map[string]any)
		want   map[string]string // rule -> message
	}{
		{"compliant", func(map[string]any) {}, map[string]string{}},
		{"latest and writable", func(d map[string]any) {
			container(d)["image"] = "web:latest"
			container(d)["securityContext"].(map[string]any)["readOnlyRootFilesystem"] = false
			delete(container(d), "livenessProbe")
		}, map[string]string{
			"main.deny": `container "app" image "web:latest" must be pinned to a tag other than latest or a digest`,
			"main.warn": `container "app" must set livenessProbe`,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r, err := e.Check(context.Background(), golden(t, func(d map[string]any) []Document { tt.mutate(d); return nil }), nil)
			if err != nil {
				t.Fatal(err)
			}
			got := map[string][]Finding{}
			for _, f := range r.Findings {
				if f.Rule == "main.deny" || f.Rule == "main.warn" {
					got[f.Rule] = append(got[f.Rule], f)
				}
			}
			for rule, msg := range tt.want {
				found := false
				for _, f := range got[rule] {
					found = found || (f.Message == msg && f.Object.Kind == "Deployment")
				}
				if !found {
					t.Errorf("no %s finding %q in %+v", rule, msg, got[rule])
				}
			}
			if len(tt.want) == 0 && len(got) != 0 {
				t.Errorf("compliant render has rego findings: %+v", got)
			}
			if f := got["main.warn"]; len(f) > 0 && f[0].Severity != Medium {
				t.Errorf("warn severity = %v", f[0].Severity)
			}
		})
	}
}

func TestRegoInvalid(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "bad.rego"), []byte("package main\ndeny contains msg if {"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := New(context.Background(), Options{RulesDir: dir}); !errors.Is(err, ErrInvalidRego) {
		t.Fatalf("New = %v, want ErrInvalidRego", err)
	}
}
