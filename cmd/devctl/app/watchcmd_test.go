package app

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/devctl/devctl/internal/api"
)

func TestStatusShowsRebuilds(t *testing.T) {
	t.Parallel()
	ms := time.Millisecond
	h := []api.Rebuild{
		{Run: 2, Mode: "image", Services: []string{"hello"}, Reason: "main.go changed", SaveToServing: 3700 * ms,
			Phases: []api.PhaseTime{{Name: "detect", Duration: 200 * ms}, {Name: "build", Duration: 600 * ms}}},
		{Run: 3, Mode: "image", Services: []string{"hello"}, Reason: "main.go changed",
			Error: "build: go build .: main.go:38:16: invalid operation\n./main.go:38:16: invalid operation"},
		{Run: 4, Mode: "live", Services: []string{"hello"}, Reason: "main.go changed", SaveToServing: 900 * ms},
	}
	e := &api.Environment{Name: "hello-main", Spec: api.EnvSpec{Watch: true},
		Status: api.EnvStatus{Phase: api.PhaseReady, Watching: true, Rebuilds: h, RebuildStats: api.Stats(h), ObservedGeneration: 4}}
	var b bytes.Buffer
	printStatus(&b, e)
	out := b.String()
	for _, want := range []string{
		"Watched:     yes",
		"image: 1 served, p50 3700ms, p95 3700ms, 1 failed",
		"live: 1 served, p50 900ms, p95 900ms",
		"serving in 3700ms",
		"detect 200ms, build 600ms",
		"FAILED (the previous version keeps serving)",
		"    ./main.go:38:16: invalid operation",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("status lacks %q:\n%s", want, out)
		}
	}

	e.Spec.Watch, e.Status.Watching, e.Status.WatchError = true, false, "inotify limit too low: sudo sysctl fs.inotify.max_user_watches=524288"
	b.Reset()
	printStatus(&b, e)
	if !strings.Contains(b.String(), "Watched:     no: inotify limit too low: sudo sysctl") {
		t.Errorf("status does not show why it is not watched:\n%s", b.String())
	}
}
