package daemon

import (
	"context"
	"math"
	"strings"
	"sync"
	"time"

	"github.com/devctl/devctl/internal/api"
	"github.com/devctl/devctl/internal/metrics"
)

// MetricsObserved records a service's RED figures (nil: none).
type MetricsObserved struct {
	Name, Service string
	RED           *api.RED
}

func (a MetricsObserved) envName() string { return a.Name }
func (MetricsObserved) observation()      {}

// redInterval is how often ready services' /metrics are scraped while
// someone follows the events (the TUI, `devctl up`); the figures cover the
// last minute (metrics.Scraper's default window). With nobody following,
// they are scraped every redIdleInterval, so an idle daemon does next to
// nothing.
const (
	redInterval     = 5 * time.Second
	redIdleInterval = time.Minute
	// redWarmScrapes is how many scrapes a newly ready service gets at
	// redInterval even when nobody follows: RED needs two samples, and
	// `devctl status` after `up --ci` should show figures within seconds.
	redWarmScrapes = 2
)

// redScraper is the controller that scrapes every ready service's /metrics
// through its port-forward and dispatches RED figures. A service without
// standard HTTP metrics (or without /metrics) is asked again only every
// minute and shows none.
type redScraper struct {
	store    *Store
	interval time.Duration
	// followed says whether someone follows the events now; nil is always.
	followed func() bool

	mu       sync.Mutex
	scrapers map[string]*metrics.Scraper // by env/service/url
	quiet    map[string]time.Time        // not before, after a failure
	scrapes  map[string]int              // successful scrapes, up to redWarmScrapes
}

func newREDScraper(s *Store) *redScraper {
	return &redScraper{store: s, interval: redInterval, scrapers: map[string]*metrics.Scraper{}, quiet: map[string]time.Time{}, scrapes: map[string]int{}}
}

func (r *redScraper) run(ctx context.Context) {
	t := time.NewTicker(r.interval)
	defer t.Stop()
	var last time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			if r.followed != nil && !r.followed() && now.Sub(last) < redIdleInterval && !r.warming(ctx, now) {
				continue
			}
			last = now
		}
		r.scrapeAll(ctx)
	}
}

// warming says whether a ready service has had fewer than redWarmScrapes
// scrapes (and is not resting after a failed one).
func (r *redScraper) warming(ctx context.Context, now time.Time) bool {
	targets := r.targets(ctx)
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, t := range targets {
		if r.scrapes[t.key] < redWarmScrapes && !now.Before(r.quiet[t.key]) {
			return true
		}
	}
	return false
}

// redTarget is a ready service with a URL, keyed by env/service/url.
type redTarget struct {
	key, env string
	svc      api.ServiceStatus
}

// targets are the ready services of the ready environments.
func (r *redScraper) targets(ctx context.Context) []redTarget {
	var out []redTarget
	for _, e := range r.store.List(ctx) {
		if e.Status.Phase != api.PhaseReady {
			continue
		}
		for _, s := range e.Status.Services {
			if s.Ready && s.URL != "" {
				out = append(out, redTarget{key: e.Name + "/" + s.Name + "/" + s.URL, env: e.Name, svc: s})
			}
		}
	}
	return out
}

func (r *redScraper) scrapeAll(ctx context.Context) {
	live := map[string]bool{}
	var wg sync.WaitGroup
	for _, t := range r.targets(ctx) {
		live[t.key] = true
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.scrape(ctx, t.key, t.env, t.svc)
		}()
	}
	wg.Wait()
	r.mu.Lock()
	defer r.mu.Unlock()
	for k := range r.scrapers {
		if !live[k] {
			delete(r.scrapers, k)
			delete(r.quiet, k)
			delete(r.scrapes, k)
		}
	}
}

func (r *redScraper) scrape(ctx context.Context, key, env string, s api.ServiceStatus) {
	now := time.Now()
	r.mu.Lock()
	if now.Before(r.quiet[key]) {
		r.mu.Unlock()
		return
	}
	sc := r.scrapers[key]
	if sc == nil {
		sc = metrics.NewScraper(strings.TrimSuffix(s.URL, "/") + "/metrics")
		r.scrapers[key] = sc
	}
	r.mu.Unlock()
	sctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	err := sc.Scrape(sctx)
	cancel()
	if err != nil {
		r.mu.Lock()
		r.quiet[key] = now.Add(time.Minute)
		r.scrapes[key] = redWarmScrapes // no hurry for what does not answer
		delete(r.scrapers, key)         // the window starts again
		r.mu.Unlock()
		if s.RED != nil {
			r.store.Dispatch(MetricsObserved{Name: env, Service: s.Name})
		}
		return
	}
	r.mu.Lock()
	r.scrapes[key] = min(r.scrapes[key]+1, redWarmScrapes)
	r.mu.Unlock()
	red, ok := sc.RED()
	if !ok {
		return
	}
	r.store.Dispatch(MetricsObserved{Name: env, Service: s.Name, RED: toAPIRED(red, now)})
}

func toAPIRED(m metrics.RED, at time.Time) *api.RED {
	pct := func(d time.Duration) *time.Duration {
		if d == metrics.NoLatency {
			return nil
		}
		return &d
	}
	ratio := m.ErrorRatio
	if math.IsNaN(ratio) {
		ratio = 0
	}
	return &api.RED{At: at, Window: m.Window, Requests: m.Requests, RatePerSecond: m.RatePerSecond,
		ErrorRatio: ratio, P50: pct(m.P50), P95: pct(m.P95), P99: pct(m.P99)}
}
