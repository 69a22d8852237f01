package metrics_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/devctl/devctl/internal/metrics"
)

// exposition renders a scrape: ok 2xx and bad 5xx requests, and a latency
// histogram whose cumulative bucket counts are given.
func exposition(ok, bad int, buckets [4]int) string {
	return fmt.Sprintf(`# TYPE http_requests_total counter
http_requests_total{code="200",method="get"} %d
http_requests_total{code="500",method="get"} %d
# TYPE http_request_duration_seconds histogram
http_request_duration_seconds_bucket{le="0.01"} %d
http_request_duration_seconds_bucket{le="0.1"} %d
http_request_duration_seconds_bucket{le="1"} %d
http_request_duration_seconds_bucket{le="+Inf"} %d
http_request_duration_seconds_sum 1
http_request_duration_seconds_count %d
`, ok, bad, buckets[0], buckets[1], buckets[2], buckets[3], buckets[3])
}

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func TestRED(t *testing.T) {
	t.Parallel()
	c := &clock{t: time.Unix(1000, 0)}
	s := metrics.NewScraper("", metrics.WithClock(c.now), metrics.WithWindow(3))
	if _, ok := s.RED(); ok {
		t.Fatal("RED with no scrape")
	}
	add := func(text string) {
		t.Helper()
		if err := s.Add(strings.NewReader(text)); err != nil {
			t.Fatal(err)
		}
	}
	add(exposition(100, 0, [4]int{0, 0, 0, 100}))
	c.t = c.t.Add(10 * time.Second)
	// 200 more requests, 20 of them 5xx; of the 200: 100 under 10ms, 80
	// between 10ms and 100ms, 20 between 100ms and 1s.
	add(exposition(280, 20, [4]int{100, 180, 200, 300}))
	red, ok := s.RED()
	if !ok {
		t.Fatal("no RED after two scrapes")
	}
	if red.Requests != 200 || red.RatePerSecond != 20 || red.Errors != 20 || red.ErrorRatio != 0.1 || red.Window != 10*time.Second {
		t.Fatalf("RED = %+v", red)
	}
	tests := []struct {
		name string
		got  time.Duration
		want time.Duration
	}{
		{"p50", red.P50, 10 * time.Millisecond},                       // rank 100: the top of the first bucket
		{"p95", red.P95, 100*time.Millisecond + 450*time.Millisecond}, // rank 190: half-way into (0.1, 1]
		{"p99", red.P99, 100*time.Millisecond + 810*time.Millisecond}, // rank 198
	}
	for _, tt := range tests {
		if d := tt.got - tt.want; d > time.Microsecond || d < -time.Microsecond {
			t.Errorf("%s = %v, want %v", tt.name, tt.got, tt.want)
		}
	}

	// The window slides: after a third and fourth scrape the first is gone.
	c.t = c.t.Add(10 * time.Second)
	add(exposition(280, 20, [4]int{100, 180, 200, 300}))
	c.t = c.t.Add(10 * time.Second)
	add(exposition(280, 20, [4]int{100, 180, 200, 300}))
	red, _ = s.RED()
	if red.Requests != 0 || red.Window != 20*time.Second || red.P50 != metrics.NoLatency {
		t.Fatalf("after the window slid: %+v", red)
	}

	// A restart (counters reset) starts the window again.
	c.t = c.t.Add(10 * time.Second)
	add(exposition(5, 0, [4]int{5, 5, 5, 5}))
	if _, ok := s.RED(); ok {
		t.Fatal("RED across a counter reset")
	}
}

func TestVariants(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, before, after string
		requests, errors    float64
		p50                 time.Duration
	}{
		{
			name:     "Spring/Micrometer names, status label, no counter",
			before:   "# TYPE http_server_requests_seconds histogram\nhttp_server_requests_seconds_bucket{status=\"200\",le=\"0.5\"} 0\nhttp_server_requests_seconds_bucket{status=\"200\",le=\"+Inf\"} 0\nhttp_server_requests_seconds_count{status=\"200\"} 0\nhttp_server_requests_seconds_sum{status=\"200\"} 0\n",
			after:    "# TYPE http_server_requests_seconds histogram\nhttp_server_requests_seconds_bucket{status=\"200\",le=\"0.5\"} 4\nhttp_server_requests_seconds_bucket{status=\"200\",le=\"+Inf\"} 4\nhttp_server_requests_seconds_count{status=\"200\"} 4\nhttp_server_requests_seconds_sum{status=\"200\"} 1\n",
			requests: 4, p50: 250 * time.Millisecond,
		},
		{
			name:     "milliseconds histogram, OpenTelemetry status label",
			before:   "# TYPE http_server_requests_total counter\nhttp_server_requests_total{http_response_status_code=\"503\"} 0\n# TYPE http_request_duration_milliseconds histogram\nhttp_request_duration_milliseconds_bucket{le=\"100\"} 0\nhttp_request_duration_milliseconds_bucket{le=\"+Inf\"} 0\nhttp_request_duration_milliseconds_count 0\nhttp_request_duration_milliseconds_sum 0\n",
			after:    "# TYPE http_server_requests_total counter\nhttp_server_requests_total{http_response_status_code=\"503\"} 2\n# TYPE http_request_duration_milliseconds histogram\nhttp_request_duration_milliseconds_bucket{le=\"100\"} 2\nhttp_request_duration_milliseconds_bucket{le=\"+Inf\"} 2\nhttp_request_duration_milliseconds_count 2\nhttp_request_duration_milliseconds_sum 0\n",
			requests: 2, errors: 2, p50: 50 * time.Millisecond,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := &clock{t: time.Unix(0, 0)}
			s := metrics.NewScraper("", metrics.WithClock(c.now))
			if err := s.Add(strings.NewReader(tt.before)); err != nil {
				t.Fatal(err)
			}
			c.t = c.t.Add(time.Second)
			if err := s.Add(strings.NewReader(tt.after)); err != nil {
				t.Fatal(err)
			}
			red, _ := s.RED()
			if red.Requests != tt.requests || red.Errors != tt.errors || red.P50 != tt.p50 {
				t.Errorf("RED = %+v, want %v requests, %v errors, p50 %v", red, tt.requests, tt.errors, tt.p50)
			}
		})
	}
}

func TestScrape(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/metrics" {
			fmt.Fprintln(w, "# TYPE go_goroutines gauge\ngo_goroutines 5")
			return
		}
		fmt.Fprint(w, exposition(1, 0, [4]int{1, 1, 1, 1}))
	}))
	t.Cleanup(srv.Close)
	if err := metrics.NewScraper(srv.URL + "/metrics").Scrape(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := metrics.NewScraper(srv.URL + "/other").Scrape(context.Background()); !errors.Is(err, metrics.ErrNoHTTPMetrics) {
		t.Fatalf("endpoint without HTTP metrics: %v", err)
	}
	if err := metrics.NewScraper(srv.URL + "/metrics").Add(strings.NewReader("not { metrics")); err == nil {
		t.Fatal("garbage parsed")
	}
}
