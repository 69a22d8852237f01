package policy

import (
	"context"
	"os"
	"testing"
)

// BenchmarkCheck measures one check of a golden-path render (Deployment,
// Service, ServiceAccount, PodDisruptionBudget, HPA, NetworkPolicy) with
// an engine built once, as the daemon and the pre-push hook use it.
func BenchmarkCheck(b *testing.B) {
	data, err := os.ReadFile("testdata/rendered.yaml")
	if err != nil {
		b.Fatal(err)
	}
	e := newTestEngine(b, Options{AllowedRegistries: []string{"registry.devctl.localhost"}})
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		docs, err := ParseManifests("rendered.yaml", data)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := e.Check(ctx, docs, nil); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkNew measures building the engine with the Rego and CEL rules
// (the cost the CLI pays once per run).
func BenchmarkNew(b *testing.B) {
	for b.Loop() {
		if _, err := New(context.Background(), Options{RulesDir: "testdata/rego"}); err != nil {
			b.Fatal(err)
		}
	}
}
