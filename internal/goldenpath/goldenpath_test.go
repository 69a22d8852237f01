package goldenpath

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/devctl/devctl/internal/api"
	"github.com/devctl/devctl/internal/check"
	"github.com/devctl/devctl/internal/config"
	"github.com/devctl/devctl/internal/policy"
)

func project(values map[string]any) *Project {
	return &Project{Config: &config.Config{
		Name: "hello", Team: "dx", Owner: "dx@example.com", CostCenter: "cc-1", Dir: "/src/hello",
		Policy:   config.Policy{FailOn: "high"},
		Services: []config.Service{{Name: "web", Context: ".", Dockerfile: "Dockerfile", Port: 8080, Values: values}},
	}}
}

// Values applies devctl's facts after the user's values, whatever those say.
func TestValuesPrecedence(t *testing.T) {
	t.Parallel()
	target := Target{Env: "hello-main", Branch: "main"}
	tests := []struct {
		name   string
		values map[string]any
		path   string
		want   any
	}{
		{"image from the build", map[string]any{"image": map[string]any{"repository": "evil", "tag": "latest"}}, "image.repository", "devctl.local/hello/web"},
		{"image tag from the build", map[string]any{"image": map[string]any{"tag": "latest"}}, "image.tag", "abc"},
		{"pull policy stays the user's", map[string]any{"image": map[string]any{"pullPolicy": "Always"}}, "image.pullPolicy", "Always"},
		{"port from services[].port", map[string]any{"service": map[string]any{"port": 9999}}, "service.port", 8080},
		{"PORT env from services[].port", map[string]any{"env": map[string]any{"PORT": "1"}}, "env.PORT", "8080"},
		{"user env kept", map[string]any{"env": map[string]any{"LOG": "debug"}}, "env.LOG", "debug"},
		{"branch env", nil, "env.DEVCTL_BRANCH", "main"},
		{"team", map[string]any{"team": "other"}, "team", "dx"},
		{"owner", map[string]any{"owner": "x"}, "owner", "dx@example.com"},
		{"cost centre", map[string]any{"costCenter": "free"}, "costCenter", "cc-1"},
		{"branch", map[string]any{"branch": "prod"}, "branch", "main"},
		{"environment", map[string]any{"environment": "prod"}, "environment", "hello-main"},
		{"other values are the user's", map[string]any{"replicas": 3}, "replicas", 3},
		{"readiness probed every second", nil, "probes.readiness.periodSeconds", 1},
		{"readiness period stays the user's", map[string]any{"probes": map[string]any{"readiness": map[string]any{"periodSeconds": 10}}}, "probes.readiness.periodSeconds", 10},
		{"readiness path kept beside the period", map[string]any{"probes": map[string]any{"readiness": map[string]any{"path": "/ok"}}}, "probes.readiness.path", "/ok"},
		{"an env list is left as given", map[string]any{"env": []any{map[string]any{"name": "A", "value": "b"}}}, "env", []any{map[string]any{"name": "A", "value": "b"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := project(tt.values)
			v := Values(p, &p.Services[0], "devctl.local/hello/web:abc", target)
			if got := lookup(v, tt.path); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("%s = %#v, want %#v", tt.path, got, tt.want)
			}
		})
	}
	// The user's values are not modified.
	p := project(map[string]any{"team": "other"})
	Values(p, &p.Services[0], "x:y", target)
	if p.Services[0].Values["team"] != "other" {
		t.Error("Values changed the service's values")
	}
}

func lookup(v map[string]any, path string) any {
	var cur any = v
	for _, k := range strings.Split(path, ".") {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = m[k]
	}
	return cur
}

func TestRenderAndCheckTheGoldenPath(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	p := project(map[string]any{"replicas": 2})
	rels, err := Render(ctx, p, Target{Env: "hello-main", Branch: "main"}, CheckImages(p))
	if err != nil {
		t.Fatal(err)
	}
	if len(rels) != 1 || rels[0].Name != "web" || rels[0].Namespace != "hello" || rels[0].ChartDigest == "" || rels[0].ValuesDigest == "" {
		t.Fatalf("releases = %+v", rels)
	}
	if !strings.Contains(rels[0].Manifest, "kind: Deployment") || !strings.Contains(rels[0].Manifest, "devctl.local/hello/web:check") {
		t.Errorf("manifest:\n%s", rels[0].Manifest)
	}
	c := NewChecker(nil)
	rep, err := c.Check(ctx, p, rels)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Findings) != 0 {
		t.Errorf("the golden path has findings: %+v", rep.Findings)
	}
	// The engine is compiled once per policy settings.
	e1, _ := c.Engine(ctx, p)
	e2, _ := c.Engine(ctx, p)
	if e1 != e2 {
		t.Error("engine not cached")
	}
	if _, err := Render(ctx, p, Target{}, map[string]string{}); err == nil {
		t.Error("render without an image succeeded")
	}
}

func TestCheckIncludesProjectManifestsAndFailOn(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	bad := "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: bad\nspec:\n  selector:\n    matchLabels: {app: bad}\n  template:\n    metadata:\n      labels: {app: bad}\n    spec:\n      containers:\n        - name: bad\n          image: nginx:latest\n          securityContext:\n            privileged: true\n"
	if err := os.MkdirAll(filepath.Join(dir, "deploy"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "deploy", "bad.yaml"), []byte(bad), 0o644); err != nil {
		t.Fatal(err)
	}
	p := project(nil)
	p.Dir, p.Manifests = dir, []string{"deploy"}
	rels, err := Render(ctx, p, Target{}, CheckImages(p))
	if err != nil {
		t.Fatal(err)
	}
	rep, err := NewChecker(nil).Check(ctx, p, rels)
	if err != nil {
		t.Fatal(err)
	}
	sev, err := check.FailOn(p.Config, "")
	if err != nil || sev != policy.High {
		t.Fatalf("FailOn = %v, %v", sev, err)
	}
	if !rep.Failed(sev) {
		t.Errorf("a privileged Deployment in manifests: did not fail the check: %+v", rep.Findings)
	}
	if sev, _ := check.FailOn(p.Config, "critical"); sev != policy.Critical {
		t.Errorf("override ignored: %v", sev)
	}
	if _, err := check.FailOn(nil, "loud"); err == nil {
		t.Error("FailOn accepted an unknown severity")
	}
}

func TestCheckValues(t *testing.T) {
	t.Parallel()
	if err := CheckValues(project(map[string]any{"replicas": 2}), Target{}); err != nil {
		t.Fatal(err)
	}
	err := CheckValues(project(map[string]any{"replicas": "many"}), Target{})
	if err == nil || !strings.Contains(err.Error(), "services[0] (web) values") || !strings.Contains(err.Error(), "replicas") {
		t.Fatalf("err = %v", err)
	}
}

func TestLoad(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte("FROM scratch\nEXPOSE 9000\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	p, err := Load(dir, "")
	if err != nil {
		t.Fatal(err)
	}
	if !p.Detected || p.ConfigPath() != "" || len(p.Notes) == 0 || p.Services[0].Port != 9000 {
		t.Errorf("detected = %+v", p)
	}
	cfg := "apiVersion: devctl.dev/v1alpha1\nkind: Project\nname: hello\nteam: dx\nservices:\n  - name: web\n    port: 8080\n"
	if err := os.WriteFile(filepath.Join(dir, "devctl.yaml"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	sub := filepath.Join(dir, "sub")
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	p, err = Load(sub, "")
	if err != nil {
		t.Fatal(err)
	}
	if p.Detected || p.ConfigPath() != filepath.Join(dir, "devctl.yaml") || p.Dir != dir || p.Namespace() != "hello" {
		t.Errorf("loaded = %+v", p)
	}
	if _, err := Load(dir, filepath.Join(dir, "missing.yaml")); err == nil {
		t.Error("a missing -f file loaded")
	}
}

// Dependencies declared in devctl.yaml decide what the chart injects; a
// service's values cannot turn one on or off, and the rendered release
// names Secrets, never their values.
func TestDependenciesRenderAndCheck(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	p := project(map[string]any{"dependencies": map[string]any{
		"postgres": map[string]any{"enabled": false}, "s3": map[string]any{"enabled": true},
		"secrets": map[string]any{"key": "shop/web"},
	}})
	p.Dependencies = []string{config.DepMetrics}
	p.Services[0].Dependencies = []string{config.DepPostgres, config.DepSecrets}
	v := Values(p, &p.Services[0], "devctl.local/hello/web:abc", Target{})
	for path, want := range map[string]any{
		"dependencies.postgres.enabled": true, "dependencies.secrets.enabled": true, "dependencies.metrics.enabled": true,
		"dependencies.s3.enabled": false, "dependencies.secrets.key": "shop/web",
	} {
		if got := lookup(v, path); got != want {
			t.Errorf("%s = %v, want %v", path, got, want)
		}
	}
	rels, err := Render(ctx, p, Target{Env: "hello-main", Branch: "main"}, CheckImages(p))
	if err != nil {
		t.Fatal(err)
	}
	m := rels[0].Manifest
	for _, want := range []string{"kind: ExternalSecret", "kind: ServiceMonitor", "name: PGPASSWORD", "name: DATABASE_URL", "name: web-secrets", `key: "shop/web"`} {
		if !strings.Contains(m, want) {
			t.Errorf("manifest lacks %q:\n%s", want, m)
		}
	}
	if strings.Contains(m, "AWS_ACCESS_KEY_ID") {
		t.Error("s3 env injected though s3 is not declared")
	}
	refs, err := SecretRefs(m)
	if err != nil {
		t.Fatal(err)
	}
	want := []api.SecretRef{
		{Name: "postgres", Env: []string{"DATABASE_URL", "PGDATABASE", "PGHOST", "PGPASSWORD", "PGPORT", "PGSSLMODE", "PGUSER"}},
		{Name: "web-secrets", AllKeys: true},
	}
	if !reflect.DeepEqual(refs, want) {
		t.Errorf("SecretRefs = %+v, want %+v", refs, want)
	}
	rep, err := NewChecker(nil).Check(ctx, p, rels)
	if err != nil {
		t.Fatal(err)
	}
	if err := rep.Err(); err != nil {
		t.Fatal(err)
	}
	if len(rep.Findings) != 0 {
		t.Errorf("findings: %+v", rep.Findings)
	}
	// No dependencies: the values are what they were before dependencies
	// existed, so existing releases are not upgraded.
	p2 := project(nil)
	if v := Values(p2, &p2.Services[0], "x:y", Target{}); v["dependencies"] != nil {
		t.Errorf("dependencies set without any declared: %v", v["dependencies"])
	}
}
