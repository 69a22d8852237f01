package daemon

import (
	"slices"
	"testing"
	"time"

	"github.com/devctl/devctl/internal/api"
	"github.com/devctl/devctl/internal/config"
	"github.com/devctl/devctl/internal/goldenpath"
	"github.com/devctl/devctl/internal/watch"
)

func TestDecideLiveOrImage(t *testing.T) {
	goSvc := config.Service{Name: "api", Context: "api", Go: &config.GoBuild{Package: "."},
		Live: &config.Live{Sync: []config.LiveSync{{Path: "static", Dest: "/static"}}}}
	plain := config.Service{Name: "web", Context: "web"}
	p := &goldenpath.Project{Config: &config.Config{Dir: "/src", Services: []config.Service{goSvc, plain}}}
	wp := &watchedProject{project: p, services: []string{"api", "web"}, upPaths: []string{"devctl.yaml", "policy"}}
	env := api.Environment{Name: "e", Status: api.EnvStatus{Services: []api.ServiceStatus{{Name: "api", Live: true}, {Name: "web"}}}}
	notLive := api.Environment{Name: "e", Status: api.EnvStatus{Services: []api.ServiceStatus{{Name: "api"}, {Name: "web"}}}}
	first := time.Unix(100, 0)
	for _, tc := range []struct {
		name      string
		env       *api.Environment
		changes   map[string][]string
		goBuilder bool
		overflow  bool
		want      Action
	}{
		{name: "deployed before it was watched (no agent): image", goBuilder: true, env: &notLive,
			changes: map[string][]string{"api": {"main.go"}},
			want:    RebuildRequested{Name: "e", Services: []string{"api"}, Reason: "main.go changed", Changed: first}},
		{name: "go source: live binary", goBuilder: true,
			changes: map[string][]string{"api": {"main.go"}},
			want:    RebuildRequested{Name: "e", Services: []string{"api"}, Reason: "main.go changed", Changed: first, Live: true, Files: []string{"api/main.go"}}},
		{name: "go source without the Go builder: image", goBuilder: false,
			changes: map[string][]string{"api": {"main.go"}},
			want:    RebuildRequested{Name: "e", Services: []string{"api"}, Reason: "main.go changed", Changed: first}},
		{name: "synced static file: live", goBuilder: true,
			changes: map[string][]string{"api": {"static/app.css"}},
			want:    RebuildRequested{Name: "e", Services: []string{"api"}, Reason: "static/app.css changed", Changed: first, Live: true, Files: []string{"api/static/app.css"}}},
		{name: "outside the sync paths: image", goBuilder: true,
			changes: map[string][]string{"api": {"main.go", "templates/x.html"}},
			want:    RebuildRequested{Name: "e", Services: []string{"api"}, Reason: "2 files changed", Changed: first}},
		{name: "a service without live: image for both", goBuilder: true,
			changes: map[string][]string{"api": {"main.go"}, "web": {"index.js"}},
			want:    RebuildRequested{Name: "e", Services: []string{"api", "web"}, Reason: "2 files changed", Changed: first}},
		{name: "devctl.yaml: up", goBuilder: true,
			changes: map[string][]string{projectRoot: {"devctl.yaml"}, "api": {"main.go"}},
			want:    UpRequested{Name: "e", Reason: "devctl.yaml changed"}},
		{name: "policy folder: up",
			changes: map[string][]string{projectRoot: {"policy/waivers.yaml"}},
			want:    UpRequested{Name: "e", Reason: "policy/waivers.yaml changed"}},
		{name: "overflow: up", overflow: true, want: UpRequested{Name: "e", Reason: "file events were dropped: rebuilding everything"}},
		{name: "project file outside services: nothing",
			changes: map[string][]string{projectRoot: {"README.md"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := env
			if tc.env != nil {
				e = *tc.env
			}
			got := decide(e, wp, watch.Batch{Changes: tc.changes, First: first, Overflow: tc.overflow}, tc.goBuilder)
			if !equalAction(got, tc.want) {
				t.Errorf("decide = %#v\nwant     %#v", got, tc.want)
			}
		})
	}
}

func equalAction(a, b Action) bool {
	ra, oka := a.(RebuildRequested)
	rb, okb := b.(RebuildRequested)
	if oka && okb {
		return ra.Name == rb.Name && slices.Equal(ra.Services, rb.Services) && ra.Reason == rb.Reason &&
			ra.Changed.Equal(rb.Changed) && ra.Live == rb.Live && slices.Equal(ra.Files, rb.Files)
	}
	ua, oka := a.(UpRequested)
	ub, okb := b.(UpRequested)
	if oka && okb {
		return ua.Name == ub.Name && ua.Reason == ub.Reason
	}
	return a == nil && b == nil
}

func TestMergeLiveRequests(t *testing.T) {
	live := func(files ...string) api.Request {
		return api.Request{Kind: api.RunRebuild, Services: []string{"api"}, Live: true, Files: files}
	}
	q := mergeRequests(nil, live("api/a.go"))
	q = mergeRequests(q, live("api/b.go", "api/a.go"))
	if !q.Live || !slices.Equal(q.Files, []string{"api/a.go", "api/b.go"}) {
		t.Fatalf("two live updates: %+v, want one with both files", q)
	}
	q = mergeRequests(q, api.Request{Kind: api.RunRebuild, Services: []string{"api"}})
	if q.Live || q.Files != nil {
		t.Fatalf("live then image rebuild: %+v, want an image rebuild", q)
	}
	q = mergeRequests(q, live("api/c.go"))
	if q.Live {
		t.Fatalf("image rebuild then live: %+v, want the image rebuild to carry it", q)
	}
	early, late := time.Unix(1, 0), time.Unix(2, 0)
	a := api.Request{Kind: api.RunRebuild, Changed: late}
	b := api.Request{Kind: api.RunRebuild, Changed: early}
	if got := mergeRequests(&a, b); !got.Changed.Equal(early) {
		t.Errorf("merged Changed = %v, want the earliest change", got.Changed)
	}
}

func TestRebuildHistoryIsBounded(t *testing.T) {
	var h []api.Rebuild
	for i := range MaxRebuilds + 7 {
		h = appendRebuild(h, api.Rebuild{Run: int64(i), Mode: ModeLive, SaveToServing: time.Duration(i+1) * time.Millisecond})
	}
	if len(h) != MaxRebuilds || h[0].Run != 7 {
		t.Fatalf("history: %d entries from #%d, want %d from #7", len(h), h[0].Run, MaxRebuilds)
	}
	st := api.Stats(h)
	if len(st) != 1 || st[0].P50 != 32*time.Millisecond || st[0].P95 != 55*time.Millisecond {
		t.Errorf("stats = %+v, want p50 32ms p95 55ms over 8..57ms", st)
	}
}

func TestSyncDest(t *testing.T) {
	s := &config.Service{Live: &config.Live{Sync: []config.LiveSync{{Path: "web/static", Dest: "/srv/static"}, {Path: ".", Dest: "/app/all"}}}}
	for rel, want := range map[string]string{
		"web/static/css/a.css": "/srv/static/css/a.css",
		"other.txt":            "/app/all/other.txt",
	} {
		if got, ok := syncDest(s, rel); !ok || got != want {
			t.Errorf("syncDest(%s) = %s %v, want %s", rel, got, ok, want)
		}
	}
}
