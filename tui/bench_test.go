package tui

import (
	"fmt"
	"runtime"
	"slices"
	"testing"
	"time"
)

// BenchmarkLogFlood feeds 10,000 pod log lines a second for 10 seconds
// through the model in the batches the stream reader delivers (one per
// 16 ms frame) and renders a frame after each batch, as the program does.
// It reports the p99 View time and the heap after the ring filled and at
// the end: a flat heap means memory does not grow with the lines. The
// filter case runs with a `/` regexp that matches one line in ten.
func BenchmarkLogFlood(b *testing.B) {
	b.Run("follow", func(b *testing.B) { logFlood(b, "") })
	b.Run("filter", func(b *testing.B) { logFlood(b, `orders/\d*7 `) })
}

func logFlood(b *testing.B, filter string) {
	const (
		linesPerSec = 10000
		seconds     = 10
		frame       = 16 * time.Millisecond
	)
	perFrame := linesPerSec * int(frame) / int(time.Second)
	frames := seconds * int(time.Second/frame)
	var views []time.Duration
	var heapFull, heapEnd uint64
	for b.Loop() {
		m, _ := newTestModel(b, 120, 40)
		m.logs.pods = NewRing(10000) // the default size
		press(m, "3")
		if filter != "" {
			m.setFilter(filter)
		}
		views = views[:0]
		n := 0
		batch := make([]string, perFrame)
		for f := range frames {
			for i := range batch {
				pod := "hello-7d9f-abcde"
				if n%3 == 0 {
					pod = "hello-7d9f-fghij"
				}
				text := "GET /api/orders/%d 200 3ms user=42 trace=4bf92f3577b34da6a3ce929d0e0e4736"
				if n%97 == 0 {
					text = "ERROR order %d: dial tcp 10.96.0.12:5432: connection refused"
				}
				batch[i] = pod + " | " + fmt.Sprintf(text, n)
				n++
			}
			m.Update(logLinesMsg{id: m.logs.streamID, lines: batch, at: t0})
			start := time.Now()
			_ = m.View()
			views = append(views, time.Since(start))
			if f == frames/4 { // 2.5 s in: the 10,000-line ring is full
				heapFull = heapNow()
			}
		}
		heapEnd = heapNow()
		if m.logs.pods.Len() != m.logs.pods.Cap() {
			b.Fatalf("ring holds %d of %d", m.logs.pods.Len(), m.logs.pods.Cap())
		}
	}
	slices.Sort(views)
	b.ReportMetric(float64(views[len(views)*99/100].Microseconds())/1000, "p99-view-ms")
	b.ReportMetric(float64(views[len(views)/2].Microseconds())/1000, "p50-view-ms")
	b.ReportMetric(float64(heapFull)/(1<<20), "heap-full-MiB")
	b.ReportMetric(float64(heapEnd)/(1<<20), "heap-end-MiB")
}

func heapNow() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}
