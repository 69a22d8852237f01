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
// typical, scaled and env-map were recorded before the chart learnt live
// mode: with live.enabled false the output stays byte-identical.
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
	{"dependencies", func() map[string]any {
		on := map[string]any{"enabled": true}
		return with(map[string]any{
			"env": map[string]any{"LOG_LEVEL": "debug"},
			"dependencies": map[string]any{
				"postgres": on, "s3": on, "metrics": on,
				"secrets": map[string]any{"enabled": true, "key": "shop/api"},
			},
		})
	}},
	{"env-map", func() map[string]any {
		return with(map[string]any{
			"env":           map[string]any{"B_NUM": 3, "A_STR": "x"},
			"networkPolicy": map[string]any{"enabled": false},
			"probes":        map[string]any{"liveness": map[string]any{"path": "/live"}},
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

// liveValues are what the daemon passes in live mode for a FROM scratch
// service with two synced directories.
func liveValues() map[string]any {
	return with(map[string]any{"live": map[string]any{
		"enabled":    true,
		"agentImage": "devctl.local/devctl-agent:0123456789abcdef",
		"token":      "s3cret",
		"entrypoint": []any{"/hello", "--addr=:8080"},
		"syncs":      []any{map[string]any{"dest": "/static"}, map[string]any{"dest": "/app/templates"}},
	}})
}

func TestGoldenPathRenderLive(t *testing.T) {
	t.Parallel()
	got := render(t, liveValues())
	golden := filepath.Join("testdata", "render", "live.golden")
	if *update {
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test ./charts -run TestGoldenPathRenderLive -update)", err)
	}
	if got != string(want) {
		t.Errorf("render differs from %s (run with -update if the change is intended):\n%s", golden, got)
	}
}

// TestGoldenPathLiveOff: live values that are set but not enabled change
// nothing, byte for byte.
func TestGoldenPathLiveOff(t *testing.T) {
	t.Parallel()
	v := liveValues()
	v["live"].(map[string]any)["enabled"] = false
	if got, want := render(t, v), render(t, baseValues()); got != want {
		t.Errorf("live.enabled=false changed the render:\n%s", got)
	}
}
