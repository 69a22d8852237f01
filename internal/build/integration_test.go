package build

import (
	"archive/tar"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/client"
)

// newTestBuilder connects to the engine; integration tests fail (not skip)
// when there is none.
func newTestBuilder(t testing.TB, opts ...Option) *Builder {
	t.Helper()
	if testing.Short() {
		t.Skip("integration: needs a Docker engine")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	b, err := New(ctx, opts...)
	if err != nil {
		t.Fatalf("integration tests need a Docker engine (start dockerd or set DOCKER_HOST; -short skips them): %v", err)
	}
	t.Cleanup(func() { _ = b.Close() })
	return b
}

// removeImages deletes the test's images when it ends.
func removeImages(t testing.TB, b *Builder, refs *[]string) {
	t.Cleanup(func() {
		for _, ref := range *refs {
			if _, err := b.api.ImageRemove(context.Background(), ref, client.ImageRemoveOptions{Force: true, PruneChildren: true}); err != nil {
				t.Logf("remove %s: %v", ref, err)
			}
		}
	})
}

// copyHello copies examples/hello (without bin/) into a temporary directory.
func copyHello(t testing.TB) string {
	t.Helper()
	src := filepath.Join("..", "..", "examples", "hello")
	dst := t.TempDir()
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
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	return dst
}

func uniqueImage(t testing.TB) string {
	return fmt.Sprintf("devctl.local/test/%s-%d", strings.ToLower(strings.NewReplacer("/", "-", "_", "-").Replace(t.Name())), time.Now().UnixNano())
}

func helloSpec(t testing.TB, dir string, out io.Writer) Spec {
	return Spec{
		Image:      uniqueImage(t),
		Context:    dir,
		Dockerfile: "Dockerfile",
		Go:         &GoSpec{Package: ".", Output: "bin/hello"},
		Labels:     map[string]string{"devctl.dev/service": "hello"},
		Output:     out,
	}
}

func stepNames(r *Result) []string {
	var names []string
	for _, s := range r.Steps {
		names = append(names, s.Name)
	}
	return names
}

// logRecorder collects slog messages.
type logRecorder struct {
	mu   sync.Mutex
	msgs []string
}

func (l *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (l *logRecorder) Handle(_ context.Context, r slog.Record) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.msgs = append(l.msgs, r.Message)
	return nil
}
func (l *logRecorder) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l *logRecorder) WithGroup(string) slog.Handler      { return l }
func (l *logRecorder) count(msg string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, m := range l.msgs {
		if m == msg {
			n++
		}
	}
	return n
}

func TestIntegrationBuildHello(t *testing.T) {
	logs := &logRecorder{}
	b := newTestBuilder(t, WithLogger(slog.New(logs)))
	ctx := context.Background()
	dir := copyHello(t)
	var out strings.Builder
	s := helloSpec(t, dir, &out)
	var refs []string
	removeImages(t, b, &refs)

	first, err := b.Build(ctx, s)
	if err != nil {
		t.Fatalf("build: %v\noutput:\n%s", err, out.String())
	}
	refs = append(refs, first.Ref)
	t.Logf("cold build %s in %v, steps %+v", first.Ref, first.Duration, first.Steps)
	if first.Cached || !slices.Equal(stepNames(first), []string{StepGoBuild, StepHash, StepImageBuild}) {
		t.Errorf("first build = %+v, want an uncached build with go-build, hash and image-build steps", first)
	}
	if len(first.Tag) != tagLen || first.Ref != s.Image+":"+first.Tag || !strings.HasPrefix(first.ID, "sha256:") {
		t.Errorf("first build ref %q tag %q id %q, want %s:<%d hex> and a sha256 ID", first.Ref, first.Tag, first.ID, s.Image, tagLen)
	}
	if !strings.Contains(out.String(), "COPY bin/hello /hello") {
		t.Errorf("build output does not show the COPY step:\n%s", out.String())
	}
	if ok, err := b.ImageExists(ctx, first.Ref); err != nil || !ok {
		t.Fatalf("ImageExists(%s) = %v, %v; want true", first.Ref, ok, err)
	}

	img, err := b.api.ImageInspect(ctx, first.Ref)
	if err != nil {
		t.Fatal(err)
	}
	wantHash, err := ContextHash(dir, "Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	cfg := img.Config
	if img.ID != first.ID {
		t.Errorf("image ID %s, Build returned %s", img.ID, first.ID)
	}
	if cfg.Labels[LabelContextHash] != wantHash || cfg.Labels["devctl.dev/service"] != "hello" {
		t.Errorf("labels = %v, want %s=%s and devctl.dev/service=hello", cfg.Labels, LabelContextHash, wantHash)
	}
	if !slices.Equal(cfg.Entrypoint, []string{"/hello"}) || cfg.User != "65532:65532" {
		t.Errorf("entrypoint %q user %q, want [/hello] and 65532:65532", cfg.Entrypoint, cfg.User)
	}
	if _, ok := cfg.ExposedPorts["8080/tcp"]; !ok || len(cfg.ExposedPorts) != 1 {
		t.Errorf("exposed ports = %v, want only 8080/tcp", cfg.ExposedPorts)
	}
	if img.Os != "linux" || img.Architecture != b.arch {
		t.Errorf("image platform %s/%s, want linux/%s", img.Os, img.Architecture, b.arch)
	}
	t.Logf("image size %d bytes", img.Size)

	// An unchanged tree is not rebuilt, and neither is one whose only change
	// is a file the binary does not contain.
	builds := logs.count("image build")
	if err := os.WriteFile(filepath.Join(dir, "README.md"), []byte("edited\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	second, err := b.Build(ctx, s)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("cached build in %v, steps %+v", second.Duration, second.Steps)
	if !second.Cached || second.Ref != first.Ref || second.ID != first.ID || slices.Contains(stepNames(second), StepImageBuild) {
		t.Errorf("second build = %+v, want cached %s %s without an image-build step", second, first.Ref, first.ID)
	}
	if n := logs.count("image build"); n != builds {
		t.Errorf("second build called the engine's build %d times, want 0", n-builds)
	}

	// A source change reaches the image through the binary.
	src := filepath.Join(dir, "main.go")
	code, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(src, []byte(strings.Replace(string(code), `Greeting: getenv("GREETING")`, `Greeting: "hi " + getenv("GREETING")`, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	third, err := b.Build(ctx, s)
	if err != nil {
		t.Fatal(err)
	}
	refs = append(refs, third.Ref)
	if third.Cached || third.Ref == first.Ref {
		t.Errorf("build after a source edit = %+v, want a new uncached image", third)
	}

	// SaveImages streams an archive naming the image.
	rc, err := b.SaveImages(ctx, first.Ref)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = rc.Close() }()
	tr := tar.NewReader(rc)
	var manifest []struct{ RepoTags []string }
	for {
		hdr, err := tr.Next()
		if err != nil {
			t.Fatalf("saved archive has no manifest.json: %v", err)
		}
		if hdr.Name == "manifest.json" {
			if err := json.NewDecoder(tr).Decode(&manifest); err != nil {
				t.Fatal(err)
			}
			break
		}
	}
	if len(manifest) != 1 || !slices.Equal(manifest[0].RepoTags, []string{first.Ref}) {
		t.Errorf("saved manifest = %+v, want one image tagged %s", manifest, first.Ref)
	}
}

func TestIntegrationBuildErrors(t *testing.T) {
	b := newTestBuilder(t)
	ctx := context.Background()

	t.Run("missing Dockerfile", func(t *testing.T) {
		dir := t.TempDir()
		_, err := b.Build(ctx, Spec{Image: uniqueImage(t), Context: dir, Dockerfile: "Dockerfile.missing"})
		if !errors.Is(err, ErrDockerfileNotFound) {
			t.Fatalf("Build = %v, want ErrDockerfileNotFound", err)
		}
		if msg := err.Error(); strings.Contains(msg, "\n") || !strings.Contains(msg, filepath.Join(dir, "Dockerfile.missing")) {
			t.Errorf("error %q: want one line naming the path looked for", msg)
		}
	})

	t.Run("bad instruction", func(t *testing.T) {
		dir := t.TempDir()
		writeTree(t, dir, map[string]string{"Dockerfile": "FROM scratch\nFROBNICATE everything\n"})
		var out strings.Builder
		_, err := b.Build(ctx, Spec{Image: uniqueImage(t), Context: dir, Output: &out})
		var be *BuildError
		if !errors.As(err, &be) {
			t.Fatalf("Build = %v, want a *BuildError", err)
		}
		if be.Step != StepImageBuild || !strings.Contains(strings.ToLower(be.Message), "unknown instruction") {
			t.Errorf("BuildError = %+v, want the engine's unknown-instruction message", be)
		}
		t.Logf("error: %v; output: %q", err, be.Output)
	})

	t.Run("failing step keeps its output", func(t *testing.T) {
		dir := t.TempDir()
		writeTree(t, dir, map[string]string{"Dockerfile": "FROM scratch\nCOPY missing.txt /\n"})
		_, err := b.Build(ctx, Spec{Image: uniqueImage(t), Context: dir})
		var be *BuildError
		if !errors.As(err, &be) || len(be.Output) == 0 || !strings.Contains(strings.Join(be.Output, "\n"), "COPY missing.txt") {
			t.Fatalf("Build = %#v, want a *BuildError whose output shows the COPY step", err)
		}
	})

	t.Run("compile error", func(t *testing.T) {
		dir := t.TempDir()
		writeTree(t, dir, map[string]string{
			"Dockerfile": "FROM scratch\nCOPY app /app\n",
			"go.mod":     "module example.com/broken\n\ngo 1.22\n",
			"main.go":    "package main\n\nfunc main() { undefined() }\n",
		})
		_, err := b.Build(ctx, Spec{Image: uniqueImage(t), Context: dir, Go: &GoSpec{Package: ".", Output: "app"}})
		var be *BuildError
		if !errors.As(err, &be) || be.Step != StepGoBuild || !strings.Contains(strings.Join(be.Output, "\n"), "undefined: undefined") {
			t.Fatalf("Build = %v, want a go-build *BuildError with the compiler's message", err)
		}
	})
}

// BenchmarkIntegrationBuildHello measures the edit→image loop on
// examples/hello: "edit" changes a source file before every build (go build,
// hash and an engine build), "cached" rebuilds an unchanged tree.
func BenchmarkIntegrationBuildHello(b *testing.B) {
	bld := newTestBuilder(b)
	ctx := context.Background()
	dir := copyHello(b)
	s := helloSpec(b, dir, nil)
	var refs []string
	removeImages(b, bld, &refs)
	src := filepath.Join(dir, "main.go")
	code, err := os.ReadFile(src)
	if err != nil {
		b.Fatal(err)
	}
	report := func(b *testing.B, steps map[string]time.Duration, n int) {
		for name, d := range steps {
			b.ReportMetric(float64(d.Milliseconds())/float64(n), name+"-ms/op")
		}
	}

	b.Run("edit", func(b *testing.B) {
		steps := map[string]time.Duration{}
		n := 0
		for b.Loop() {
			edited := strings.Replace(string(code), `var version = "dev"`, fmt.Sprintf(`var version = "dev-%d"`, time.Now().UnixNano()), 1)
			if err := os.WriteFile(src, []byte(edited), 0o644); err != nil {
				b.Fatal(err)
			}
			r, err := bld.Build(ctx, s)
			if err != nil {
				b.Fatal(err)
			}
			if r.Cached {
				b.Fatal("edited tree was reported cached")
			}
			refs = append(refs, r.Ref)
			for _, st := range r.Steps {
				steps[st.Name] += st.Duration
			}
			n++
		}
		report(b, steps, n)
	})

	b.Run("cached", func(b *testing.B) {
		if _, err := bld.Build(ctx, s); err != nil {
			b.Fatal(err)
		}
		steps := map[string]time.Duration{}
		n := 0
		for b.Loop() {
			r, err := bld.Build(ctx, s)
			if err != nil {
				b.Fatal(err)
			}
			if !r.Cached {
				b.Fatal("unchanged tree was rebuilt")
			}
			for _, st := range r.Steps {
				steps[st.Name] += st.Duration
			}
			n++
		}
		report(b, steps, n)
	})
}
