package daemon

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"
)

// The daemon scrapes a ready service's /metrics and records RED figures in
// its status; a service without metrics gets none.
func TestREDFromMetricsScrapes(t *testing.T) {
	t.Parallel()
	f := newFakeDeps()
	c := startDaemon(t, f, t.TempDir())
	e := upAndWait(t, c, writeProject(t, "web", "api=9090"))

	var requests atomic.Int64
	metricsSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/metrics" {
			http.NotFound(w, r)
			return
		}
		n := requests.Load()
		fmt.Fprintf(w, "# TYPE http_requests_total counter\nhttp_requests_total{code=\"200\"} %d\nhttp_requests_total{code=\"500\"} %d\n", 3*n, n)
		fmt.Fprintf(w, "# TYPE http_request_duration_seconds histogram\n"+
			"http_request_duration_seconds_bucket{le=\"0.01\"} %d\nhttp_request_duration_seconds_bucket{le=\"0.1\"} %d\n"+
			"http_request_duration_seconds_bucket{le=\"+Inf\"} %d\nhttp_request_duration_seconds_sum 1\nhttp_request_duration_seconds_count %d\n",
			2*n, 4*n, 4*n, 4*n)
	}))
	defer metricsSrv.Close()
	s := c.d.store
	s.Dispatch(ServiceReady{Name: e.Name, Service: "web", Ready: true, URL: metricsSrv.URL})

	r := newREDScraper(s)
	ctx := context.Background()
	requests.Store(10)
	r.scrapeAll(ctx)
	requests.Store(35)
	r.scrapeAll(ctx)

	got, _ := s.Get(ctx, e.Name)
	web := got.Status.Service("web")
	if web == nil || web.RED == nil {
		t.Fatalf("web has no RED: %+v", web)
	}
	if web.RED.Requests != 100 || web.RED.ErrorRatio != 0.25 || web.RED.P50 == nil || web.RED.P99 == nil {
		t.Errorf("RED = %+v, want 100 requests, 25%% errors and percentiles", *web.RED)
	}
	// api answers "hello" on every path: no metrics, no figures.
	if api := got.Status.Service("api"); api == nil || api.RED != nil {
		t.Errorf("api RED = %+v, want none", api)
	}
}

// With nobody following the events, the scraper scrapes a newly ready
// service redWarmScrapes times (RED needs two samples) and then at most once
// a redIdleInterval; with a follower, every interval.
func TestREDScrapesRarelyWhenNobodyFollows(t *testing.T) {
	t.Parallel()
	f := newFakeDeps()
	c := startDaemon(t, f, t.TempDir())
	e := upAndWait(t, c, writeProject(t, "web"))
	var requests atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		requests.Add(1)
		fmt.Fprint(w, "# TYPE http_requests_total counter\nhttp_requests_total{code=\"200\"} 1\n")
	}))
	defer srv.Close()
	c.d.store.Dispatch(ServiceReady{Name: e.Name, Service: "web", Ready: true, URL: srv.URL})

	var followed atomic.Bool
	r := newREDScraper(c.d.store)
	r.interval, r.followed = 10*time.Millisecond, followed.Load
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); r.run(ctx) }()
	time.Sleep(300 * time.Millisecond)
	if n := requests.Load(); n != redWarmScrapes {
		t.Errorf("%d scrapes in 300ms with nobody following, want the %d of a newly ready service", n, redWarmScrapes)
	}
	followed.Store(true)
	time.Sleep(300 * time.Millisecond)
	cancel()
	<-done
	if n := requests.Load(); n < 5 {
		t.Errorf("%d scrapes in 300ms with a follower, want one every 10ms", n)
	}
}
