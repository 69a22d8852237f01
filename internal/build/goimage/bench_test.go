package goimage

import (
	"context"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/devctl/devctl/internal/registry"
)

// copyHello copies examples/hello (without bin/) into a temporary directory.
func copyHello(b *testing.B) string {
	b.Helper()
	src := filepath.Join("..", "..", "..", "examples", "hello")
	dst := b.TempDir()
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if d.IsDir() {
			if rel == "bin" {
				return filepath.SkipDir
			}
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		content, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), content, 0o644)
	})
	if err != nil {
		b.Fatal(err)
	}
	return dst
}

func newBenchRegistry(b *testing.B) *registry.Registry {
	b.Helper()
	r, err := registry.New(b.TempDir(), registry.WithPort(0))
	if err != nil {
		b.Fatal(err)
	}
	if _, err := r.Listen(b.Context(), netip.MustParseAddr("127.0.0.1")); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = r.Shutdown(context.Background()) })
	return r
}

// setGreeting makes the one-line change of the inner loop: hello's default
// greeting.
func setGreeting(b *testing.B, dir, greeting string) {
	b.Helper()
	p := filepath.Join(dir, "main.go")
	src, err := os.ReadFile(p)
	if err != nil {
		b.Fatal(err)
	}
	const line = `c.Greeting = "`
	i := strings.Index(string(src), line)
	if i < 0 {
		b.Fatal("examples/hello/main.go has no default greeting line")
	}
	end := i + len(line) + strings.IndexByte(string(src[i+len(line):]), '"')
	out := string(src[:i+len(line)]) + greeting + string(src[end:])
	if err := os.WriteFile(p, []byte(out), 0o644); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkInnerLoopHello measures examples/hello from source to registry:
// compile (the host toolchain, the user's GOCACHE), assemble, push.
//
//   - cold: a new Builder and an empty registry each time: the binary is
//     linked afresh and every layer is pushed (the GOCACHE stays warm;
//     with an empty one, add the standard library's compile);
//   - one-line-change: the default greeting changes each time: the main
//     package compiles again, one layer and the config are pushed;
//   - one-line-change-stripped: the same with -ldflags=-s -w.
//
// go test -run '^$' -bench InnerLoopHello -benchtime 5x ./internal/build/goimage/
func BenchmarkInnerLoopHello(b *testing.B) {
	dir := copyHello(b)
	b.Run("cold", func(b *testing.B) {
		var t totals
		for b.Loop() {
			t.run(b, New(WithCacheDir(b.TempDir())), newBenchRegistry(b), Spec{Dir: dir}, fmt.Sprint("cold-", t.n))
		}
		t.report(b)
	})
	for _, c := range []struct {
		name  string
		flags []string
	}{
		{"one-line-change", nil},
		{"one-line-change-stripped", []string{"-ldflags=-s -w"}},
	} {
		b.Run(c.name, func(b *testing.B) {
			builder := New(WithCacheDir(b.TempDir()))
			reg := newBenchRegistry(b)
			spec := Spec{Dir: dir, Flags: c.flags}
			var warmUp totals
			setGreeting(b, dir, "warm-up")
			warmUp.run(b, builder, reg, spec, "warm-up")
			var t totals
			for b.Loop() {
				b.StopTimer()
				setGreeting(b, dir, fmt.Sprint("hello ", t.n))
				b.StartTimer()
				t.run(b, builder, reg, spec, fmt.Sprint("change-", t.n))
			}
			t.report(b)
		})
	}
}

// totals adds up the steps of the runs of a benchmark.
type totals struct {
	n        int
	compile  time.Duration
	assemble time.Duration
	push     time.Duration
	blobs    int
	bytes    int64
}

func (t *totals) run(b *testing.B, builder *Builder, reg *registry.Registry, s Spec, tag string) {
	b.Helper()
	ctx := b.Context()
	s.Ports = []int{8080}
	res, err := builder.Build(ctx, s)
	if err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	pushed, err := reg.Push(ctx, res.Image, "hello/hello:"+tag)
	if err != nil {
		b.Fatal(err)
	}
	t.n++
	t.push += time.Since(start)
	t.compile += res.Steps[0].Duration
	t.assemble += res.Steps[1].Duration
	t.blobs += pushed.Blobs
	t.bytes += pushed.Bytes
}

func (t *totals) report(b *testing.B) {
	n := float64(t.n)
	b.ReportMetric(float64(t.compile.Milliseconds())/n, "compile-ms/op")
	b.ReportMetric(float64(t.assemble.Milliseconds())/n, "assemble-ms/op")
	b.ReportMetric(float64(t.push.Milliseconds())/n, "push-ms/op")
	b.ReportMetric(float64(t.blobs)/n, "blobs/op")
	b.ReportMetric(float64(t.bytes)/1e6/n, "MB/op")
}
