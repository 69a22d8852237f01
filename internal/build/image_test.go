package build

import (
	"context"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/devctl/devctl/internal/registry"
)

// TestIntegrationImageIntoRegistry reads images the engine built into the
// registry: the first push sends everything, the same image again nothing,
// and after a one-line change only the changed layer and the config. The
// timings are logged (engine read included).
func TestIntegrationImageIntoRegistry(t *testing.T) {
	b := newTestBuilder(t)
	ctx := context.Background()
	dir := copyHello(t)
	s := helloSpec(t, dir, nil)
	var refs []string
	removeImages(t, b, &refs)

	reg, err := registry.New(t.TempDir(), registry.WithPort(0))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = reg.Shutdown(context.Background()) })
	lo, err := reg.Listen(ctx, netip.MustParseAddr("127.0.0.1"))
	if err != nil {
		t.Fatal(err)
	}

	push := func(what string) *registry.PushResult {
		t.Helper()
		res, err := b.Build(ctx, s)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Contains(refs, res.Ref) {
			refs = append(refs, res.Ref)
		}
		start := time.Now()
		img, err := b.Image(ctx, res.Ref)
		if err != nil {
			t.Fatal(err)
		}
		pushed, err := reg.Push(ctx, img, "hello/hello:"+res.Tag)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: engine image %s read and pushed in %v: %d blobs, %d bytes sent",
			what, res.Ref, time.Since(start).Round(time.Millisecond), pushed.Blobs, pushed.Bytes)

		// What the registry serves has the engine's layers.
		inspect, err := b.api.ImageInspect(ctx, res.Ref)
		if err != nil {
			t.Fatal(err)
		}
		local, err := name.ParseReference(lo.String()+"/hello/hello:"+res.Tag, name.Insecure)
		if err != nil {
			t.Fatal(err)
		}
		pulled, err := remote.Image(local, remote.WithContext(ctx))
		if err != nil {
			t.Fatal(err)
		}
		cfg, err := pulled.ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		if got, want := hashes(cfg.RootFS.DiffIDs), strings.Join(inspect.RootFS.Layers, " "); got != want {
			t.Errorf("registry image layers %s, engine's %s", got, want)
		}
		return pushed
	}

	if cold := push("cold"); cold.Blobs != 2 {
		t.Errorf("first push sent %d blobs, want the layer and the config", cold.Blobs)
	}
	if warm := push("unchanged"); warm.Blobs != 0 {
		t.Errorf("pushing the same image again sent %d blobs, want none", warm.Blobs)
	}
	main := filepath.Join(dir, "main.go")
	src, err := os.ReadFile(main)
	if err != nil {
		t.Fatal(err)
	}
	changed := strings.Replace(string(src), `c.Greeting = "hello"`, `c.Greeting = "hello again"`, 1)
	if changed == string(src) {
		t.Fatal("examples/hello/main.go changed: update the one-line change here")
	}
	if err := os.WriteFile(main, []byte(changed), 0o644); err != nil {
		t.Fatal(err)
	}
	if warm := push("one-line change"); warm.Blobs != 2 {
		t.Errorf("push after a one-line change sent %d blobs, want the layer and the config", warm.Blobs)
	}
}

func hashes(hs []v1.Hash) string {
	var ss []string
	for _, h := range hs {
		ss = append(ss, h.String())
	}
	return strings.Join(ss, " ")
}
