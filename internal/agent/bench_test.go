//go:build unix

package agent

import (
	"io"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"
)

// BenchmarkSync measures what the daemon waits for on a save, over
// loopback (a port-forward adds its own transfer time): a ~15 MB Go binary
// synced as the entrypoint and restarted until it listens again, and a
// static file with no action. It reports the median and the phases.
//
//	go test -run '^$' -bench Sync -benchtime 30x ./internal/agent
func BenchmarkSync(b *testing.B) {
	dir := b.TempDir()
	bin := filepath.Join(dir, "hello")
	padTestExe(b, bin, 15<<20)
	static := filepath.Join(dir, "static")
	if err := os.Mkdir(static, 0o755); err != nil {
		b.Fatal(err)
	}
	appDir := filepath.Join(dir, "devctl", "app")
	const entrypoint = "/srv/hello" // not in the image here: only the synced copy runs
	port := freePort(b)
	sup, err := NewSupervisor(SupervisorOptions{
		Argv:     []string{entrypoint, "listen=" + strconv.Itoa(port)},
		Override: OverridePath(appDir, entrypoint),
		Env:      appEnv(),
		Port:     port,
		Stdout:   io.Discard,
		Stderr:   io.Discard,
		Backoff:  time.Hour,
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(sup.Close)
	srv, err := NewServer(sup, ServerOptions{Token: testToken, SyncDirs: []string{static}, Entrypoint: entrypoint, AppDir: appDir})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(srv.Close)
	ts := httptest.NewServer(srv.Handler())
	b.Cleanup(ts.Close)

	binFile, err := LocalFile(entrypoint, bin)
	if err != nil {
		b.Fatal(err)
	}
	css := DataFile(static+"/site.css", make([]byte, 4<<10), 0)
	cases := []struct {
		name     string
		batch    Batch
		compress bool
	}{
		{"go-binary-15MB", Batch{Files: []File{binFile}, Action: Action{Restart: true}}, false},
		{"go-binary-15MB-gzip", Batch{Files: []File{binFile}, Action: Action{Restart: true}}, true},
		{"static-4KB", Batch{Files: []File{css}}, false},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			client := &Client{BaseURL: ts.URL, Token: testToken, Compress: c.compress}
			if _, err := client.Sync(b.Context(), c.batch); err != nil { // warm: the app runs
				b.Fatal(err)
			}
			var total, write, stop, start []time.Duration
			b.SetBytes(c.batch.Files[0].Size)
			for b.Loop() {
				t := time.Now()
				res, err := client.Sync(b.Context(), c.batch)
				if err != nil {
					b.Fatal(err)
				}
				total = append(total, time.Since(t))
				write = append(write, res.Timings.Write)
				stop = append(stop, res.Timings.Stop)
				start = append(start, res.Timings.Start)
			}
			b.ReportMetric(ms(median(total)), "p50-ms")
			b.ReportMetric(ms(median(write)), "write-p50-ms")
			b.ReportMetric(ms(median(stop)), "stop-p50-ms")
			b.ReportMetric(ms(median(start)), "listen-p50-ms")
		})
	}
}

func median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// padTestExe writes the test binary (the fake app) to dst, padded to size
// with copies of itself, so it compresses like a Go binary: an ELF file runs
// with data after its end.
func padTestExe(t testing.TB, dst string, size int64) {
	t.Helper()
	exe, err := os.ReadFile(testExe(t))
	if err != nil {
		t.Fatal(err)
	}
	data := slices.Clone(exe)
	for int64(len(data)) < size {
		data = append(data, exe[:min(len(exe), int(size)-len(data))]...)
	}
	if err := os.WriteFile(dst, data, 0o755); err != nil {
		t.Fatal(err)
	}
}
