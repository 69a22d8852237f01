package api

import (
	"slices"
	"sort"
	"time"
)

// RebuildStats are the save → serving percentiles of the successful
// rebuilds of one mode.
type RebuildStats struct {
	Mode   string        `json:"mode"`
	Count  int           `json:"count"`
	Failed int           `json:"failed"`
	P50    time.Duration `json:"p50"`
	P95    time.Duration `json:"p95"`
}

// Stats summarises h per mode (image rebuilds first).
func Stats(h []Rebuild) []RebuildStats {
	byMode := map[string][]time.Duration{}
	failed := map[string]int{}
	var modes []string
	for _, r := range h {
		if _, ok := byMode[r.Mode]; !ok {
			modes = append(modes, r.Mode)
			byMode[r.Mode] = nil
		}
		if r.Error != "" {
			failed[r.Mode]++
			continue
		}
		byMode[r.Mode] = append(byMode[r.Mode], r.SaveToServing)
	}
	sort.Strings(modes)
	out := make([]RebuildStats, 0, len(modes))
	for _, m := range modes {
		d := byMode[m]
		slices.Sort(d)
		out = append(out, RebuildStats{Mode: m, Count: len(d), Failed: failed[m], P50: percentile(d, 50), P95: percentile(d, 95)})
	}
	return out
}

// percentile is the nearest-rank percentile p of sorted d; zero when empty.
func percentile(d []time.Duration, p int) time.Duration {
	if len(d) == 0 {
		return 0
	}
	rank := (p*len(d) + 99) / 100 // ceil(p/100 * n)
	return d[max(rank, 1)-1]
}
