// Package metrics computes a service's RED figures (request rate, error
// ratio, latency percentiles) from its Prometheus /metrics endpoint, the way
// a dashboard over a ServiceMonitor would, without running Prometheus: the
// daemon scrapes the endpoint now and then and the figures cover a sliding
// window of scrapes.
//
// It reads the conventional names: a request counter (http_requests_total,
// http_server_requests_total, http_server_requests_seconds_count,
// http_request_duration_seconds_count) with a status label (code, status,
// status_code, http_status_code, http_response_status_code), and a latency
// histogram (http_request_duration_seconds,
// http_server_request_duration_seconds, http_server_requests_seconds,
// http_request_duration_milliseconds). Status 5xx counts as an error.
package metrics

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Names the scraper looks for, in order of preference.
var (
	CounterNames = []string{
		"http_requests_total", "http_server_requests_total",
		"http_server_requests_seconds_count", "http_request_duration_seconds_count",
	}
	HistogramNames = []string{
		"http_request_duration_seconds", "http_server_request_duration_seconds",
		"http_server_requests_seconds", "http_request_duration_milliseconds",
	}
	StatusLabels = []string{"code", "status", "status_code", "http_status_code", "http_response_status_code"}
)

// ErrNoHTTPMetrics reports an endpoint without any of the known request
// metrics.
var ErrNoHTTPMetrics = errors.New("no HTTP request metrics: expose http_requests_total (with a code label) and the http_request_duration_seconds histogram, e.g. with promhttp.InstrumentHandlerCounter and InstrumentHandlerDuration")

// RED is what a window of scrapes says about a service.
type RED struct {
	Window        time.Duration // between the oldest and newest scrape used
	Requests      float64       // requests in the window
	RatePerSecond float64
	Errors        float64 // 5xx responses in the window
	ErrorRatio    float64 // Errors / Requests; 0 without requests
	// Latency percentiles, estimated from histogram buckets by linear
	// interpolation (as Prometheus' histogram_quantile); NoLatency without
	// a histogram or requests.
	P50, P95, P99 time.Duration
}

// sample is one scrape, reduced to what RED needs.
type sample struct {
	at       time.Time
	requests float64
	errors   float64
	buckets  map[float64]float64 // upper bound (seconds) -> cumulative count
	hasHist  bool
}

// Scraper scrapes one /metrics URL and keeps the last Window scrapes.
type Scraper struct {
	url    string
	client *http.Client
	now    func() time.Time
	keep   int

	mu      sync.Mutex
	samples []sample
}

// Option configures NewScraper.
type Option func(*Scraper)

// WithHTTPClient sets the HTTP client (default: 5 s timeout).
func WithHTTPClient(c *http.Client) Option { return func(s *Scraper) { s.client = c } }

// WithWindow keeps n scrapes (default 12: a minute at one scrape per 5 s).
func WithWindow(n int) Option { return func(s *Scraper) { s.keep = max(n, 2) } }

// WithClock replaces time.Now, for tests.
func WithClock(now func() time.Time) Option { return func(s *Scraper) { s.now = now } }

// NewScraper returns a scraper of url, e.g. http://127.0.0.1:PORT/metrics.
func NewScraper(url string, opts ...Option) *Scraper {
	s := &Scraper{url: url, client: &http.Client{Timeout: 5 * time.Second}, now: time.Now, keep: 12}
	for _, o := range opts {
		o(s)
	}
	return s
}

// Scrape fetches and records one sample.
func (s *Scraper) Scrape(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.url, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "text/plain;version=0.0.4")
	resp, err := s.client.Do(req)
	if err != nil {
		return fmt.Errorf("scrape %s: %w", s.url, err)
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("scrape %s: %s", s.url, resp.Status)
	}
	return s.Add(resp.Body)
}

// Add records a sample parsed from Prometheus text exposition format.
func (s *Scraper) Add(r io.Reader) error {
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(r)
	if err != nil {
		return fmt.Errorf("parse metrics: %w", err)
	}
	smp, err := reduce(families)
	if err != nil {
		return err
	}
	smp.at = s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.samples = append(s.samples, smp)
	if len(s.samples) > s.keep {
		s.samples = s.samples[len(s.samples)-s.keep:]
	}
	return nil
}

// RED computes the figures over the recorded window; false until there are
// two scrapes. A counter that went down (the service restarted) starts the
// window again at the restart.
func (s *Scraper) RED() (RED, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	first := 0
	for i := 1; i < len(s.samples); i++ {
		if s.samples[i].requests < s.samples[i-1].requests {
			first = i
		}
	}
	win := s.samples[first:]
	if len(win) < 2 {
		return RED{}, false
	}
	a, b := win[0], win[len(win)-1]
	out := RED{Window: b.at.Sub(a.at), Requests: b.requests - a.requests, Errors: b.errors - a.errors}
	if secs := out.Window.Seconds(); secs > 0 {
		out.RatePerSecond = out.Requests / secs
	}
	if out.Requests > 0 {
		out.ErrorRatio = out.Errors / out.Requests
	}
	out.P50, out.P95, out.P99 = NoLatency, NoLatency, NoLatency
	if a.hasHist && b.hasHist {
		delta := map[float64]float64{}
		for ub, c := range b.buckets {
			delta[ub] = c - a.buckets[ub]
		}
		out.P50, out.P95, out.P99 = quantile(0.5, delta), quantile(0.95, delta), quantile(0.99, delta)
	}
	return out, true
}

// NoLatency is the value of a percentile that cannot be computed.
const NoLatency = time.Duration(math.MinInt64)

// reduce sums a scrape's request counters and histogram buckets over all
// label sets (routes, methods).
func reduce(families map[string]*dto.MetricFamily) (sample, error) {
	smp := sample{buckets: map[float64]float64{}}
	var counter *dto.MetricFamily
	for _, n := range CounterNames {
		if f := families[n]; f != nil && len(f.GetMetric()) > 0 {
			counter = f
			break
		}
	}
	var hist *dto.MetricFamily
	scale := 1.0
	for _, n := range HistogramNames {
		if f := families[n]; f != nil && f.GetType() == dto.MetricType_HISTOGRAM {
			hist = f
			if strings.HasSuffix(n, "_milliseconds") {
				scale = 1e-3
			}
			break
		}
	}
	if counter == nil && hist == nil {
		return smp, ErrNoHTTPMetrics
	}
	if counter != nil {
		for _, m := range counter.GetMetric() {
			v := m.GetCounter().GetValue()
			if counter.GetType() == dto.MetricType_UNTYPED {
				v = m.GetUntyped().GetValue()
			}
			smp.requests += v
			if isServerError(m) {
				smp.errors += v
			}
		}
	}
	if hist != nil {
		smp.hasHist = true
		var count, errs float64
		for _, m := range hist.GetMetric() {
			h := m.GetHistogram()
			count += float64(h.GetSampleCount())
			if isServerError(m) {
				errs += float64(h.GetSampleCount())
			}
			inf := false
			for _, b := range h.GetBucket() {
				inf = inf || math.IsInf(b.GetUpperBound(), 1)
				smp.buckets[b.GetUpperBound()*scale] += float64(b.GetCumulativeCount())
			}
			if !inf {
				smp.buckets[math.Inf(1)] += float64(h.GetSampleCount())
			}
		}
		if counter == nil {
			smp.requests, smp.errors = count, errs
		}
	}
	return smp, nil
}

func isServerError(m *dto.Metric) bool {
	for _, l := range m.GetLabel() {
		for _, name := range StatusLabels {
			if l.GetName() == name {
				return strings.HasPrefix(l.GetValue(), "5")
			}
		}
	}
	return false
}

// quantile estimates the q-quantile from cumulative bucket counts, as
// Prometheus' histogram_quantile does: linear interpolation inside the
// bucket, the highest finite bound for the +Inf bucket.
func quantile(q float64, buckets map[float64]float64) time.Duration {
	bounds := make([]float64, 0, len(buckets))
	for ub := range buckets {
		bounds = append(bounds, ub)
	}
	sort.Float64s(bounds)
	if len(bounds) == 0 {
		return NoLatency
	}
	total := buckets[bounds[len(bounds)-1]]
	if total <= 0 {
		return NoLatency
	}
	rank := q * total
	prevBound, prevCount := 0.0, 0.0
	for _, ub := range bounds {
		c := buckets[ub]
		if c >= rank {
			if math.IsInf(ub, 1) {
				return seconds(prevBound)
			}
			if c == prevCount {
				return seconds(ub)
			}
			return seconds(prevBound + (ub-prevBound)*(rank-prevCount)/(c-prevCount))
		}
		prevBound, prevCount = ub, c
	}
	return seconds(prevBound)
}

func seconds(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }
