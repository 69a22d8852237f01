package watch

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/fsnotify/fsnotify"
)

// benchTree writes 500 folders of 20 files (10,000 files) with a
// .gitignore, like a mid-size service repository.
func benchTree(b *testing.B) string {
	b.Helper()
	dir := b.TempDir()
	files := map[string]string{".gitignore": "*.o\nbin/\n/tmp\n**/testdata/golden/*.txt\n!keep.o\n"}
	for d := range 500 {
		for f := range 20 {
			files[fmt.Sprintf("pkg%02d/sub%02d/f%02d.go", d/20, d%20, f)] = ""
		}
	}
	writeTree(b, dir, files)
	return dir
}

// BenchmarkLatency measures, with 10,000 files watched through fsnotify,
// what the watcher adds to the quiet window between a write and its batch,
// the heap it holds and how long New takes to walk the tree.
func BenchmarkLatency(b *testing.B) {
	dir := benchTree(b)
	const q = 5 * time.Millisecond

	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	start := time.Now()
	w := startReal(b, Options{Roots: []Root{{Name: "app", Dir: dir}}, Quiet: q})
	setup := time.Since(start)
	runtime.GC()
	runtime.ReadMemStats(&after)
	heap := int64(after.HeapAlloc) - int64(before.HeapAlloc)

	var overhead, notify time.Duration
	for i := 0; b.Loop(); i++ {
		p := filepath.Join(dir, fmt.Sprintf("pkg%02d/sub%02d/f%02d.go", i%25, i%20, i%20))
		written := time.Now()
		if err := os.WriteFile(p, []byte{byte(i)}, 0o644); err != nil {
			b.Fatal(err)
		}
		batch := receive(b, w)
		overhead += time.Since(written) - q
		notify += batch.First.Sub(written)
	}
	n := time.Duration(b.N)
	b.ReportMetric(float64(overhead.Microseconds())/float64(b.N), "µs-over-quiet/op")
	b.ReportMetric(float64(notify.Microseconds())/float64(b.N), "µs-to-first/op")
	b.ReportMetric(float64(heap)/1024, "KiB-heap")
	b.ReportMetric(float64(setup.Milliseconds()), "ms-new")
	b.Logf("10,000 files in 501 folders: New %v, heap %d KiB; write→batch = quiet %v + %v (write→First %v)",
		setup.Round(time.Millisecond), heap/1024, q, (overhead / n).Round(time.Microsecond), (notify / n).Round(time.Microsecond))
}

// BenchmarkHandle measures the cost of one event: matching it against the
// ignore rules and recording it in the pending batch.
func BenchmarkHandle(b *testing.B) {
	dir := benchTree(b)
	fake := NewFakeNotifier()
	w, err := New(b.Context(), Options{
		Roots:       []Root{{Name: "app", Dir: dir}, {Name: "svc", Dir: filepath.Join(dir, "pkg03"), Ignore: []string{"**/*_test.go"}}},
		NewNotifier: func() (Notifier, error) { return fake, nil },
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = w.Close() })
	var s state
	now := time.Now()
	events := make([]fsnotify.Event, 2000)
	for i := range events {
		events[i] = fsnotify.Event{Name: filepath.Join(dir, fmt.Sprintf("pkg%02d/sub%02d/f%02d.go", i%25, i%20, i%20)), Op: fsnotify.Write}
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if err := w.handle(b.Context(), &s, events[i%len(events)], now); err != nil {
			b.Fatal(err)
		}
	}
}
