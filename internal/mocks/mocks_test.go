package mocks_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/devctl/devctl/charts"
	"github.com/devctl/devctl/internal/helm"
	"github.com/devctl/devctl/internal/mocks"
	"github.com/devctl/devctl/internal/policy"
)

func render(t *testing.T, c mocks.Config) string {
	t.Helper()
	ch, err := charts.PlatformMocks()
	if err != nil {
		t.Fatal(err)
	}
	out, err := helm.Render(context.Background(), ch, mocks.Release, "shop", mocks.Values(c))
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestChartInstallsOnlyWhatIsRequested(t *testing.T) {
	t.Parallel()
	tests := []struct {
		deps        []mocks.Dependency
		want, never []string
	}{
		{nil, nil, []string{"kind: Deployment", "kind: CustomResourceDefinition"}},
		{[]mocks.Dependency{mocks.Metrics}, []string{"name: servicemonitors.monitoring.coreos.com", "name: prometheusrules.monitoring.coreos.com"},
			[]string{"kind: Deployment", "externalsecrets.external-secrets.io"}},
		{[]mocks.Dependency{mocks.Secrets}, []string{"name: externalsecrets.external-secrets.io", "name: platform-mocks-vault\n", "name: platform-mocks-external-secrets\n",
			"--token-secret=shop/platform-mocks-vault-token", "--cluster-store=vault"}, []string{"servicemonitors", "platform-mocks-postgres"}},
		{[]mocks.Dependency{mocks.Postgres}, []string{"name: platform-mocks-postgres\n", "kind: Secret\nmetadata:\n  name: postgres\n",
			"uri: \"postgres://app:", "DATABASE_URL:", "image: postgres:17"}, []string{"platform-mocks-vault", "CustomResourceDefinition"}},
		{[]mocks.Dependency{mocks.S3}, []string{"name: platform-mocks-s3\n", "AWS_ENDPOINT_URL_S3", "--bucket=app"}, []string{"platform-mocks-postgres"}},
	}
	for _, tt := range tests {
		out := render(t, mocks.Config{Deps: tt.deps, ImageTag: "abc", Team: "t", Owner: "o", CostCenter: "c"})
		for _, w := range tt.want {
			if !strings.Contains(out, w) {
				t.Errorf("%v: rendered chart lacks %q", tt.deps, w)
			}
		}
		for _, n := range tt.never {
			if strings.Contains(out, n) {
				t.Errorf("%v: rendered chart has %q", tt.deps, n)
			}
		}
	}
}

// TestChartPassesThePolicyBaseline holds the stand-ins to the same rules as
// the services: restricted pod security, read-only root filesystems,
// resources, probes, labels, network policies.
func TestChartPassesThePolicyBaseline(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	out := render(t, mocks.Config{Deps: mocks.All, ImageTag: "abc", PostgresImage: "devctl.local/postgres:x",
		PostgresSeedSQL: "select 1;", VaultSeed: map[string]map[string]any{"app/db": {"password": "pw"}},
		Team: "team", Owner: "owner", CostCenter: "cc"})
	docs, err := policy.ParseManifests("platform-mocks", []byte(out))
	if err != nil {
		t.Fatal(err)
	}
	e, err := policy.New(ctx, policy.Options{Namespace: "shop", AllowedRegistries: []string{"devctl.local"}})
	if err != nil {
		t.Fatal(err)
	}
	rep, err := e.Check(ctx, docs, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range rep.Findings {
		t.Errorf("%s %s/%s %s: %s", f.Rule, f.Object.Kind, f.Object.Name, f.Path, f.Message)
	}
}

func TestValuesHoldNoCredentials(t *testing.T) {
	t.Parallel()
	out := render(t, mocks.Config{Deps: mocks.All})
	// generated at render time: two renders differ, the values do not
	if out == render(t, mocks.Config{Deps: mocks.All}) {
		t.Error("two renders produced the same credentials")
	}
	v := mocks.Values(mocks.Config{Deps: mocks.All})
	for _, k := range []string{"token", "password", "secretAccessKey"} {
		if strings.Contains(strings.ToLower(strings.Join(flatten(v), " ")), strings.ToLower(k)) {
			t.Errorf("values mention %q", k)
		}
	}
}

func flatten(m map[string]any) []string {
	var out []string
	for k, v := range m {
		out = append(out, k)
		if sub, ok := v.(map[string]any); ok {
			out = append(out, flatten(sub)...)
		}
	}
	return out
}

func TestParseDependencies(t *testing.T) {
	t.Parallel()
	got, err := mocks.ParseDependencies([]string{"S3", "secrets", "s3"})
	if err != nil || len(got) != 2 || got[0] != mocks.Secrets || got[1] != mocks.S3 {
		t.Fatalf("ParseDependencies = %v, %v", got, err)
	}
	if _, err := mocks.ParseDependencies([]string{"redis"}); !errors.Is(err, mocks.ErrUnknownDependency) {
		t.Fatalf("redis: %v", err)
	}
}
