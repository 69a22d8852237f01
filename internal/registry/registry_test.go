package registry

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

var loopback = netip.MustParseAddr("127.0.0.1")

// newRegistry opens a registry in a fresh directory and serves it on
// 127.0.0.1 at a free port until the test ends.
func newRegistry(t *testing.T, dir string, opts ...Option) *Registry {
	t.Helper()
	r, err := New(dir, append([]Option{WithPort(0)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Listen(t.Context(), loopback); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = r.Shutdown(ctx)
	})
	return r
}

// testImage is an image of n random layers.
func testImage(t *testing.T, n int) v1.Image {
	t.Helper()
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	for range n {
		l, err := random.Layer(4096, types.OCILayer)
		if err != nil {
			t.Fatal(err)
		}
		img, err = mutate.AppendLayers(img, l)
		if err != nil {
			t.Fatal(err)
		}
	}
	return img
}

// pull reads ref from the registry over HTTP, layers included.
func pull(t *testing.T, r *Registry, ref string) v1.Image {
	t.Helper()
	lo, _ := r.loopback()
	nref, err := name.ParseReference(lo.String()+"/"+ref, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	img, err := remote.Image(nref, remote.WithContext(t.Context()))
	if err != nil {
		t.Fatalf("pull %s: %v", ref, err)
	}
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range layers {
		rc, err := l.Compressed()
		if err != nil {
			t.Fatal(err)
		}
		// Reading to the end verifies the layer's digest.
		if _, err := io.Copy(io.Discard, rc); err != nil {
			t.Fatalf("pull %s: layer: %v", ref, err)
		}
		_ = rc.Close()
	}
	return img
}

func digest(t *testing.T, img v1.Image) v1.Hash {
	t.Helper()
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestImagesSurviveRestart(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	img := testImage(t, 2)
	first, err := New(dir, WithPort(0))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := first.Listen(t.Context(), loopback); err != nil {
		t.Fatal(err)
	}
	res, err := first.Push(t.Context(), img, "devctl.local/hello/web:v1")
	if err != nil {
		t.Fatal(err)
	}
	if res.Repository != "hello/web" || res.Tag != "v1" || res.Digest != digest(t, img) {
		t.Errorf("push result = %+v, want hello/web:v1 at %s", res, digest(t, img))
	}
	if err := first.Shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}
	if _, err := first.Listen(t.Context(), loopback); !errors.Is(err, ErrClosed) {
		t.Errorf("Listen after Shutdown: %v, want ErrClosed", err)
	}

	second := newRegistry(t, dir)
	for _, ref := range []string{"hello/web:v1", "hello/web@" + res.Digest.String()} {
		if got := digest(t, pull(t, second, ref)); got != res.Digest {
			t.Errorf("after restart %s has digest %s, want %s", ref, got, res.Digest)
		}
	}
}

// countingTransport counts blob uploads as a client sees them.
type uploadCounter struct {
	mu      sync.Mutex
	uploads []string // "METHOD path" of finished uploads
}

func (c *uploadCounter) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err == nil && strings.Contains(req.URL.Path, "/blobs/uploads/") && resp.StatusCode == http.StatusCreated {
		c.mu.Lock()
		c.uploads = append(c.uploads, req.Method+" "+req.URL.Query().Get("digest"))
		c.mu.Unlock()
	}
	return resp, err
}

func (c *uploadCounter) take() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	u := c.uploads
	c.uploads = nil
	return u
}

func TestPushSendsOnlyMissingBlobs(t *testing.T) {
	t.Parallel()
	counter := &uploadCounter{}
	r := newRegistry(t, t.TempDir(), WithTransport(counter))
	img := testImage(t, 3)
	res, err := r.Push(t.Context(), img, "hello/web:v1")
	if err != nil {
		t.Fatal(err)
	}
	if got := counter.take(); len(got) != 4 || res.Blobs != 4 {
		t.Errorf("first push uploaded %d blobs (result says %d), want 3 layers and the config: %v", len(got), res.Blobs, got)
	}

	// The same image again: nothing to send.
	res, err = r.Push(t.Context(), img, "hello/web:v1-again")
	if err != nil {
		t.Fatal(err)
	}
	if got := counter.take(); len(got) != 0 || res.Blobs != 0 || res.Bytes != 0 {
		t.Errorf("unchanged push uploaded %v (result: %d blobs, %d bytes), want nothing", got, res.Blobs, res.Bytes)
	}

	// Replace the last layer: that layer and the new config go up.
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	changed, err := random.Layer(4096, types.OCILayer)
	if err != nil {
		t.Fatal(err)
	}
	img2, err := mutate.AppendLayers(mutate.MediaType(empty.Image, types.OCIManifestSchema1), append(layers[:2:2], changed)...)
	if err != nil {
		t.Fatal(err)
	}
	res, err = r.Push(t.Context(), img2, "hello/web:v2")
	if err != nil {
		t.Fatal(err)
	}
	changedDigest, _ := changed.Digest()
	cfg, _ := img2.ConfigName()
	got := counter.take()
	want := map[string]bool{"PUT " + changedDigest.String(): true, "PUT " + cfg.String(): true}
	if len(got) != 2 || !want[got[0]] || !want[got[1]] || res.Blobs != 2 {
		t.Errorf("push with one changed layer uploaded %v (result says %d), want the layer %s and the config %s", got, res.Blobs, changedDigest, cfg)
	}
	if res.Bytes < 4096 {
		t.Errorf("push result counts %d bytes, want at least the changed layer's", res.Bytes)
	}
	pull(t, r, "hello/web:v2")
}

func TestPushRefs(t *testing.T) {
	t.Parallel()
	r := newRegistry(t, t.TempDir(), WithNames("devctl.local", "registry.test:5000"))
	img := testImage(t, 1)
	lo, _ := r.loopback()
	tests := []struct {
		ref      string
		wantRepo string
		wantTag  string
		wantErr  error
	}{
		{ref: "web:v1", wantRepo: "web", wantTag: "v1"},
		{ref: "devctl.local/hello/web:v1", wantRepo: "hello/web", wantTag: "v1"},
		{ref: "registry.test:5000/hello/web:v2", wantRepo: "hello/web", wantTag: "v2"},
		{ref: r.Host() + "/hello/web:v3", wantRepo: "hello/web", wantTag: "v3"},
		{ref: lo.String() + "/hello/web:v4", wantRepo: "hello/web", wantTag: "v4"},
		{ref: "hello/web@" + digest(t, img).String(), wantRepo: "hello/web"},
		{ref: "docker.io/library/web:v1", wantErr: ErrOtherRegistry},
		{ref: "ghcr.io/hello/web:v1", wantErr: ErrOtherRegistry},
		{ref: "Hello/Web:v1", wantErr: ErrInvalidName},
		{ref: "hello/web", wantErr: ErrInvalidName}, // no tag: StrictValidation
	}
	for _, tt := range tests {
		t.Run(tt.ref, func(t *testing.T) {
			res, err := r.Push(t.Context(), img, tt.ref)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("Push(%q) = %v, want %v", tt.ref, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if res.Repository != tt.wantRepo || res.Tag != tt.wantTag {
				t.Errorf("Push(%q) = %s:%s, want %s:%s", tt.ref, res.Repository, res.Tag, tt.wantRepo, tt.wantTag)
			}
			if got := res.Ref("devctl.local"); got != "devctl.local/"+tt.wantRepo+"@"+digest(t, img).String() {
				t.Errorf("Ref = %s", got)
			}
		})
	}
}

func TestPushNeedsLoopback(t *testing.T) {
	t.Parallel()
	r, err := New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Push(t.Context(), testImage(t, 1), "hello/web:v1"); !errors.Is(err, ErrNotListening) {
		t.Errorf("Push without a listener: %v, want ErrNotListening", err)
	}
	if r.Host() != "" {
		t.Errorf("Host before Listen = %q, want empty", r.Host())
	}
}

func TestListen(t *testing.T) {
	t.Parallel()
	// Take a port, then ask for it: the registry falls back to a free one.
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = taken.Close() }()
	port := taken.Addr().(*net.TCPAddr).Port

	r := newRegistry(t, t.TempDir(), WithPort(port))
	addrs := r.Addrs()
	if len(addrs) != 1 || addrs[0].Addr() != loopback || int(addrs[0].Port()) == port || addrs[0].Port() == 0 {
		t.Fatalf("Addrs = %v, want 127.0.0.1 at a free port other than %d", addrs, port)
	}
	again, err := r.Listen(t.Context(), loopback)
	if err != nil || again != addrs[0] {
		t.Errorf("second Listen = %v, %v, want %v", again, err, addrs[0])
	}
	if want := "localhost:" + strings.TrimPrefix(addrs[0].String(), "127.0.0.1:"); r.Host() != want {
		t.Errorf("Host = %q, want %q", r.Host(), want)
	}

	for _, ip := range []string{"0.0.0.0", "::"} {
		if _, err := r.Listen(t.Context(), netip.MustParseAddr(ip)); !errors.Is(err, ErrUnspecifiedAddress) {
			t.Errorf("Listen(%s) = %v, want ErrUnspecifiedAddress", ip, err)
		}
	}
	if _, err := r.Listen(t.Context(), netip.Addr{}); !errors.Is(err, ErrUnspecifiedAddress) {
		t.Errorf("Listen(zero address) = %v, want ErrUnspecifiedAddress", err)
	}
	// 192.0.2.1 (TEST-NET-1) is not an address of this host.
	if _, err := r.Listen(t.Context(), netip.MustParseAddr("192.0.2.1")); err == nil || !strings.Contains(err.Error(), "not an address of this host") {
		t.Errorf("Listen(192.0.2.1) = %v, want a not-an-address-of-this-host error", err)
	}
}

func TestDeleteAndGC(t *testing.T) {
	t.Parallel()
	now := time.Now()
	var clock struct {
		sync.Mutex
		t time.Time
	}
	clock.t = now
	r := newRegistry(t, t.TempDir(), WithClock(func() time.Time {
		clock.Lock()
		defer clock.Unlock()
		return clock.t
	}))
	shared, err := random.Layer(2048, types.OCILayer)
	if err != nil {
		t.Fatal(err)
	}
	keep := testImage(t, 1)
	keep, _ = mutate.AppendLayers(keep, shared)
	drop := testImage(t, 1)
	drop, _ = mutate.AppendLayers(drop, shared)
	if _, err := r.Push(t.Context(), keep, "app/keep:v1"); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Push(t.Context(), drop, "app/drop:v1"); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Push(t.Context(), drop, "app/drop:v1-alias"); err != nil {
		t.Fatal(err)
	}

	// Deleting one of two tags keeps the manifest.
	if err := r.Delete(t.Context(), "devctl.local/app/drop:v1"); err != nil {
		t.Fatal(err)
	}
	pull(t, r, "app/drop:v1-alias")
	if err := r.Delete(t.Context(), "app/drop:v1"); !errors.Is(err, ErrNotFound) {
		t.Errorf("deleting a deleted tag: %v, want ErrNotFound", err)
	}
	if err := r.Delete(t.Context(), "app/drop:v1-alias"); err != nil {
		t.Fatal(err)
	}
	if err := r.Delete(t.Context(), "app/drop@"+digest(t, drop).String()); !errors.Is(err, ErrNotFound) {
		t.Errorf("deleting a manifest whose tags are gone: %v, want ErrNotFound", err)
	}

	// Within the grace period nothing goes.
	res, err := r.GC(t.Context())
	if err != nil || res.Blobs != 0 {
		t.Fatalf("GC within grace = %+v, %v, want nothing removed", res, err)
	}
	clock.Lock()
	clock.t = now.Add(GCGrace + time.Minute)
	clock.Unlock()
	res, err = r.GC(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	// drop's own layer, its config and its manifest.
	if res.Blobs != 3 || res.Bytes == 0 {
		t.Errorf("GC = %+v, want 3 blobs removed", res)
	}
	pull(t, r, "app/keep:v1")
	for _, l := range mustLayers(t, drop)[:1] {
		d, _ := l.Digest()
		if _, err := r.store.Stat(t.Context(), "", d); err == nil {
			t.Errorf("drop's layer %s survived GC", d)
		}
	}
	if res, err := r.GC(t.Context()); err != nil || res.Blobs != 0 {
		t.Errorf("second GC = %+v, %v, want nothing more", res, err)
	}
}

func mustLayers(t *testing.T, img v1.Image) []v1.Layer {
	t.Helper()
	ls, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	return ls
}

func TestDeleteRepositories(t *testing.T) {
	t.Parallel()
	r := newRegistry(t, t.TempDir())
	img := testImage(t, 1)
	for _, ref := range []string{"main/web:v1", "main/worker:v1", "main-old/web:v1", "main:v1", "other/web:v1"} {
		if _, err := r.Push(t.Context(), img, ref); err != nil {
			t.Fatal(err)
		}
	}
	gone, err := r.DeleteRepositories(t.Context(), "main")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(gone, " ") != "main main/web main/worker" {
		t.Errorf("deleted %v, want main main/web main/worker", gone)
	}
	if got := strings.Join(r.store.repos(), " "); got != "main-old/web other/web" {
		t.Errorf("left %s, want main-old/web other/web", got)
	}
	if gone, err := r.DeleteRepositories(t.Context(), "main"); err != nil || len(gone) != 0 {
		t.Errorf("second delete = %v, %v, want nothing", gone, err)
	}
	if _, err := r.DeleteRepositories(t.Context(), "../x"); !errors.Is(err, ErrInvalidName) {
		t.Errorf("DeleteRepositories(../x) = %v, want ErrInvalidName", err)
	}
}

func TestCorruptIndex(t *testing.T) {
	t.Parallel()
	for name, content := range map[string]string{
		"not json":      "{",
		"other version": `{"version": 99, "repositories": {}}`,
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, indexFile), []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := New(dir)
			if err == nil || !strings.Contains(err.Error(), "remove the directory") {
				t.Errorf("New = %v, want an error saying how to recover", err)
			}
		})
	}
}

// TestAPI drives the HTTP API directly for what clients rarely do.
func TestAPI(t *testing.T) {
	t.Parallel()
	r := newRegistry(t, t.TempDir())
	img := testImage(t, 1)
	for _, tag := range []string{"c", "a", "b"} {
		if _, err := r.Push(t.Context(), img, "hello/web:"+tag); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := r.Push(t.Context(), img, "hello/api:a"); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)
	d := digest(t, img)
	manifest, _ := img.RawManifest()

	missing := strings.Replace(string(manifest), mustLayerDigest(t, img).String(), "sha256:"+strings.Repeat("0", 64), 1)
	tests := []struct {
		name, method, path, contentType, body string
		wantStatus                            int
		wantBody                              string // substring
		wantHeader                            [2]string
	}{
		{name: "ping", method: "GET", path: "/v2/", wantStatus: 200},
		{name: "catalog", method: "GET", path: "/v2/_catalog", wantStatus: 200, wantBody: `{"repositories":["hello/api","hello/web"]}`},
		{name: "catalog page", method: "GET", path: "/v2/_catalog?n=1", wantStatus: 200, wantBody: `["hello/api"]`,
			wantHeader: [2]string{"Link", `</v2/_catalog?last=hello%2Fapi&n=1>; rel="next"`}},
		{name: "tags", method: "GET", path: "/v2/hello/web/tags/list", wantStatus: 200, wantBody: `{"name":"hello/web","tags":["a","b","c"]}`},
		{name: "tags after", method: "GET", path: "/v2/hello/web/tags/list?last=a&n=1", wantStatus: 200, wantBody: `"tags":["b"]`},
		{name: "tags bad n", method: "GET", path: "/v2/hello/web/tags/list?n=x", wantStatus: 400, wantBody: "PAGINATION_NUMBER_INVALID"},
		{name: "tags unknown repo", method: "GET", path: "/v2/nope/tags/list", wantStatus: 404, wantBody: "NAME_UNKNOWN"},
		{name: "head manifest", method: "HEAD", path: "/v2/hello/web/manifests/a", wantStatus: 200,
			wantHeader: [2]string{"Docker-Content-Digest", d.String()}},
		{name: "get manifest by digest", method: "GET", path: "/v2/hello/web/manifests/" + d.String(), wantStatus: 200, wantBody: string(manifest),
			wantHeader: [2]string{"Content-Type", string(types.OCIManifestSchema1)}},
		{name: "unknown tag", method: "GET", path: "/v2/hello/web/manifests/zzz", wantStatus: 404, wantBody: "MANIFEST_UNKNOWN"},
		{name: "unknown repo", method: "GET", path: "/v2/nope/manifests/a", wantStatus: 404, wantBody: "NAME_UNKNOWN"},
		{name: "invalid repo", method: "GET", path: "/v2/Hello/manifests/a", wantStatus: 400, wantBody: "NAME_INVALID"},
		{name: "manifest blob missing", method: "PUT", path: "/v2/hello/web/manifests/broken", contentType: string(types.OCIManifestSchema1),
			body: missing, wantStatus: 400, wantBody: "MANIFEST_BLOB_UNKNOWN"},
		{name: "manifest not json", method: "PUT", path: "/v2/hello/web/manifests/broken", contentType: string(types.OCIManifestSchema1),
			body: "{", wantStatus: 400, wantBody: "MANIFEST_INVALID"},
		{name: "manifest media type unknown", method: "PUT", path: "/v2/hello/web/manifests/broken", contentType: "text/plain",
			body: string(manifest), wantStatus: 400, wantBody: "MANIFEST_INVALID"},
		{name: "manifest digest mismatch", method: "PUT", path: "/v2/hello/web/manifests/sha256:" + strings.Repeat("1", 64),
			contentType: string(types.OCIManifestSchema1), body: string(manifest), wantStatus: 400, wantBody: "DIGEST_INVALID"},
		{name: "manifest bad tag", method: "PUT", path: "/v2/hello/web/manifests/-x", contentType: string(types.OCIManifestSchema1),
			body: string(manifest), wantStatus: 400, wantBody: "TAG_INVALID"},
		{name: "manifest media type from body", method: "PUT", path: "/v2/hello/web/manifests/d", body: string(manifest), wantStatus: 201,
			wantHeader: [2]string{"Docker-Content-Digest", d.String()}},
		{name: "blob head", method: "HEAD", path: "/v2/hello/web/blobs/" + mustLayerDigest(t, img).String(), wantStatus: 200},
		{name: "blob delete is not offered", method: "DELETE", path: "/v2/hello/web/blobs/" + mustLayerDigest(t, img).String(), wantStatus: 405},
		{name: "blob bad digest", method: "GET", path: "/v2/hello/web/blobs/sha256:..%2F..%2Findex.json", wantStatus: 404},
		{name: "delete tag", method: "DELETE", path: "/v2/hello/api/manifests/a", wantStatus: 202},
		{name: "deleted", method: "GET", path: "/v2/hello/api/manifests/a", wantStatus: 404, wantBody: "NAME_UNKNOWN"},
	}
	// The cases run in order: the last ones change the registry.
	for _, tt := range tests {
		req, err := http.NewRequestWithContext(t.Context(), tt.method, srv.URL+tt.path, strings.NewReader(tt.body))
		if err != nil {
			t.Fatal(err)
		}
		if tt.contentType != "" {
			req.Header.Set("Content-Type", tt.contentType)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		if resp.StatusCode != tt.wantStatus || !strings.Contains(string(body), tt.wantBody) {
			t.Errorf("%s: %s %s = %d %s, want %d with %q", tt.name, tt.method, tt.path, resp.StatusCode, body, tt.wantStatus, tt.wantBody)
		}
		if h := tt.wantHeader; h[0] != "" && resp.Header.Get(h[0]) != h[1] {
			t.Errorf("%s: %s = %q, want %q", tt.name, h[0], resp.Header.Get(h[0]), h[1])
		}
	}
}

func mustLayerDigest(t *testing.T, img v1.Image) v1.Hash {
	t.Helper()
	d, err := mustLayers(t, img)[0].Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// TestGCKeepsBlobsInUse: a push that finds a blob present (HEAD) and has not
// yet sent the manifest referring to it keeps the blob from GC, however old
// its file.
func TestGCKeepsBlobsInUse(t *testing.T) {
	t.Parallel()
	var clock struct {
		sync.Mutex
		t time.Time
	}
	clock.t = time.Now()
	advance := func(d time.Duration) {
		clock.Lock()
		clock.t = clock.t.Add(d)
		clock.Unlock()
	}
	r := newRegistry(t, t.TempDir(), WithClock(func() time.Time {
		clock.Lock()
		defer clock.Unlock()
		return clock.t
	}))
	img := testImage(t, 2)
	if _, err := r.Push(t.Context(), img, "app/web:v1"); err != nil {
		t.Fatal(err)
	}
	if err := r.Delete(t.Context(), "app/web:v1"); err != nil {
		t.Fatal(err)
	}
	advance(GCGrace + time.Minute)
	// A second push checks the first layer: present.
	inUse := mustLayerDigest(t, img)
	if _, err := r.store.Stat(t.Context(), "app/web", inUse); err != nil {
		t.Fatal(err)
	}
	res, err := r.GC(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if res.Blobs != 3 { // the other layer, the config, the manifest
		t.Errorf("GC removed %d blobs, want 3", res.Blobs)
	}
	if _, err := r.store.Stat(t.Context(), "", inUse); err != nil {
		t.Errorf("the layer in use was removed: %v", err)
	}
	advance(GCGrace + time.Minute)
	if res, err := r.GC(t.Context()); err != nil || res.Blobs != 1 {
		t.Errorf("GC once the layer is no longer in use = %+v, %v, want it removed", res, err)
	}
}

// TestOnlyLoopbackWrites: on addresses other than loopback (the kind
// network's gateway) the registry serves pulls only.
func TestOnlyLoopbackWrites(t *testing.T) {
	t.Parallel()
	r := newRegistry(t, t.TempDir())
	img := testImage(t, 1)
	if _, err := r.Push(t.Context(), img, "app/web:v1"); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		local      string
		method     string
		path       string
		wantStatus int
	}{
		{"172.18.0.1:5001", http.MethodGet, "/v2/app/web/manifests/v1", http.StatusOK},
		{"172.18.0.1:5001", http.MethodHead, "/v2/app/web/manifests/v1", http.StatusOK},
		{"172.18.0.1:5001", http.MethodGet, "/v2/app/web/blobs/" + mustLayerDigest(t, img).String(), http.StatusOK},
		{"172.18.0.1:5001", http.MethodPost, "/v2/app/web/blobs/uploads/", http.StatusForbidden},
		{"172.18.0.1:5001", http.MethodPut, "/v2/app/web/manifests/v2", http.StatusForbidden},
		{"172.18.0.1:5001", http.MethodDelete, "/v2/app/web/manifests/v1", http.StatusForbidden},
		{"[::ffff:172.18.0.1]:5001", http.MethodDelete, "/v2/app/web/manifests/v1", http.StatusForbidden},
		{"127.0.0.1:5001", http.MethodPost, "/v2/app/web/blobs/uploads/", http.StatusAccepted},
		{"[::1]:5001", http.MethodPost, "/v2/app/web/blobs/uploads/", http.StatusAccepted},
	}
	for _, tt := range tests {
		req := httptest.NewRequest(tt.method, tt.path, nil)
		local := net.TCPAddrFromAddrPort(netip.MustParseAddrPort(tt.local))
		req = req.WithContext(context.WithValue(req.Context(), http.LocalAddrContextKey, local))
		w := httptest.NewRecorder()
		r.ServeHTTP(w, req)
		if w.Code != tt.wantStatus {
			t.Errorf("%s %s on %s = %d %s, want %d", tt.method, tt.path, tt.local, w.Code, w.Body, tt.wantStatus)
		}
		if w.Code == http.StatusForbidden && !strings.Contains(w.Body.String(), "push to "+r.Host()) {
			t.Errorf("denial %s does not say where to push", w.Body)
		}
	}
}
