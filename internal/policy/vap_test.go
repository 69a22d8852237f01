//go:build !devctl_lean

package policy

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

const vapObjects = `apiVersion: apps/v1
kind: Deployment
metadata: {name: big, namespace: team-a}
spec:
  replicas: 5
  template:
    metadata: {labels: {app: big}}
    spec:
      containers: [{name: app, image: "x:1"}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: small, namespace: team-a}
spec:
  replicas: 2
  template:
    spec:
      serviceAccountName: small
      containers: [{name: app, image: "x:1"}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: big-elsewhere, namespace: team-b}
spec:
  replicas: 9
  template:
    spec:
      serviceAccountName: x
      containers: [{name: app, image: "x:1"}]
---
apiVersion: v1
kind: Service
metadata: {name: big, namespace: team-a}
spec:
  replicas: 50
---
apiVersion: v1
kind: ConfigMap
metadata: {name: big, namespace: team-a}
spec:
  replicas: 50
`

func vapFindings(t *testing.T, e *Engine, manifests string) []Finding {
	t.Helper()
	docs, err := ParseManifests("objects.yaml", []byte(manifests))
	if err != nil {
		t.Fatal(err)
	}
	r, err := e.Check(context.Background(), docs, nil)
	if err != nil {
		t.Fatal(err)
	}
	var out []Finding
	for _, f := range r.Findings {
		if f.Rule == "max-replicas" || f.Rule == "no-default-service-account" || f.Rule == "unbound" {
			out = append(out, f)
		}
	}
	return out
}

func TestVAPMatchConstraintsBindingsParams(t *testing.T) {
	t.Parallel()
	e := newTestEngine(t, Options{RulesDir: "testdata/vap"})
	got := vapFindings(t, e, vapObjects)
	want := []struct {
		rule, object, path, msg string
		sev                     Severity
	}{
		// matchConstraints: Deployments only, never the Service or ConfigMap named big
		// binding: only namespace team-a, so big-elsewhere passes
		// params: maxReplicas from the ConfigMap in platform
		{"max-replicas", "Deployment/team-a/big", "", "replicas must be at most 3", High},
		// a pod policy sees the Deployment's pods and reports on the Deployment;
		// Warn binding, severity annotation low
		{"no-default-service-account", "Deployment/team-a/big", "spec.template", "pods must use their own service account", Low},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d findings, want %d: %+v", len(got), len(want), got)
	}
	for i, w := range want {
		g := got[i]
		if g.Rule != w.rule || g.Object.String() != w.object || g.Path != w.path || g.Message != w.msg || g.Severity != w.sev {
			t.Errorf("finding %d = %s %s %q %q %v, want %+v", i, g.Rule, g.Object, g.Path, g.Message, g.Severity, w)
		}
	}
}

func TestVAPMatchConstraintsSkipOtherKinds(t *testing.T) {
	t.Parallel()
	// A policy whose matchConstraints name only Deployments must not fire
	// on a Service or ConfigMap, even when the expression would fail there.
	e := newTestEngine(t, Options{RulesDir: "testdata/vap"})
	got := vapFindings(t, e, `apiVersion: v1
kind: Service
metadata: {name: s, namespace: team-a}
spec: {replicas: 50}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: c, namespace: team-a}
spec: {replicas: 50}
`)
	if len(got) != 0 {
		t.Fatalf("policy fired outside its matchConstraints: %+v", got)
	}
}

func TestVAPMissingParamDenies(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	b, err := os.ReadFile("testdata/vap/policies.yaml")
	if err != nil {
		t.Fatal(err)
	}
	// drop the ConfigMap the binding refers to
	b = []byte(string(b[:indexOf(t, b, "apiVersion: v1\nkind: ConfigMap")]) + "---\n" + string(b[indexOf(t, b, "# Pods:"):]))
	if err := os.WriteFile(filepath.Join(dir, "p.yaml"), b, 0o600); err != nil {
		t.Fatal(err)
	}
	e := newTestEngine(t, Options{RulesDir: dir})
	got := vapFindings(t, e, vapObjects)
	if len(got) == 0 || got[0].Rule != "max-replicas" || got[0].Object.Name != "big" {
		t.Fatalf("want a max-replicas finding for the missing param, got %+v", got)
	}
}

func indexOf(t *testing.T, b []byte, s string) int {
	t.Helper()
	for i := 0; i+len(s) <= len(b); i++ {
		if string(b[i:i+len(s)]) == s {
			return i
		}
	}
	t.Fatalf("%q not found", s)
	return -1
}

func TestVAPInvalidPolicy(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	err := os.WriteFile(filepath.Join(dir, "bad.yaml"), []byte(`apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata: {name: bad}
spec:
  matchConstraints:
    resourceRules: [{apiGroups: ["*"], apiVersions: ["*"], operations: ["*"], resources: ["*"]}]
  validations:
  - expression: "object.spec.replicas >"
`), 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := New(context.Background(), Options{RulesDir: dir}); !errors.Is(err, ErrInvalidPolicy) {
		t.Fatalf("New = %v, want ErrInvalidPolicy", err)
	}
}
