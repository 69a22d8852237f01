package charts_test

import (
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/devctl/devctl/charts"
	"github.com/devctl/devctl/internal/helm"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// renderCases are the renders kept as golden files in testdata/render.
// typical and scaled were recorded before the chart learnt live mode.
var renderCases = []struct {
	name   string
	values func() map[string]any
}{
	{"typical", baseValues},
	{"scaled", func() map[string]any {
		return with(map[string]any{
			"replicas": 3, "hpa": map[string]any{"enabled": true},
			"env":            []any{map[string]any{"name": "A", "value": "b"}},
			"podAnnotations": map[string]any{"example.com/scrape": "true"},
		})
	}},
}

func render(t *testing.T, values map[string]any) string {
	t.Helper()
	ch, err := charts.GoldenPath()
	if err != nil {
		t.Fatal(err)
	}
	out, err := helm.Render(t.Context(), ch, release, namespace, values)
	if err != nil {
		t.Fatalf("render: %v", err)
	}
	return out
}

func TestGoldenPathRender(t *testing.T) {
	t.Parallel()
	for _, tt := range renderCases {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := render(t, tt.values())
			golden := filepath.Join("testdata", "render", tt.name+".golden")
			if *update {
				if err := os.MkdirAll(filepath.Dir(golden), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test ./charts -run TestGoldenPathRender -update)", err)
			}
			if got != string(want) {
				t.Errorf("render differs from %s (run with -update if the change is intended):\n%s", golden, got)
			}
		})
	}
}
