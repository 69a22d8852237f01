package registry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

var (
	// ErrNotListening means the registry has no loopback address to push to:
	// Listen on 127.0.0.1 first.
	ErrNotListening = errors.New("the registry does not listen on a loopback address: Listen on 127.0.0.1 first")
	// ErrOtherRegistry means a reference names another registry.
	ErrOtherRegistry = errors.New("not a name of this registry")
)

// PushResult is an image written to the registry.
type PushResult struct {
	Repository string  // e.g. hello/web
	Tag        string  // empty when pushed by digest
	Digest     v1.Hash // the manifest's digest
	// Blobs and Bytes count the layers and configs uploaded; blobs the
	// registry already had are not sent.
	Blobs    int
	Bytes    int64
	Duration time.Duration
}

// Ref returns how a cluster node names the image: <name>/<repository>@<digest>,
// e.g. devctl.local/hello/web@sha256:….
func (p PushResult) Ref(registryName string) string {
	return registryName + "/" + p.Repository + "@" + p.Digest.String()
}

// Push writes img as ref, sending only the blobs the registry lacks. ref is
// <repository>:<tag> or <repository>@<digest>, optionally prefixed with one
// of the registry's Names (devctl.local/hello/web:abc). It needs a loopback
// listener; the push goes through it like any client's.
func (r *Registry) Push(ctx context.Context, img v1.Image, ref string) (*PushResult, error) {
	start := time.Now()
	target, err := r.localRef(ref)
	if err != nil {
		return nil, fmt.Errorf("push %s: %w", ref, err)
	}
	ct := &countingTransport{next: r.transport}
	if err := remote.Write(target, img,
		remote.WithContext(ctx),
		remote.WithTransport(ct),
		remote.WithAuth(authn.Anonymous),
	); err != nil {
		return nil, fmt.Errorf("push %s: %w", ref, err)
	}
	d, err := img.Digest()
	if err != nil {
		return nil, fmt.Errorf("push %s: %w", ref, err)
	}
	res := &PushResult{
		Repository: target.Context().RepositoryStr(),
		Digest:     d,
		Blobs:      int(ct.blobs.Load()),
		Bytes:      ct.bytes.Load(),
		Duration:   time.Since(start),
	}
	if t, ok := target.(name.Tag); ok {
		res.Tag = t.TagStr()
	}
	r.log.Debug("pushed", "ref", ref, "digest", d.String(), "blobs", res.Blobs, "bytes", res.Bytes, "duration", res.Duration)
	return res, nil
}

// localRef resolves ref to the same repository on the loopback listener.
func (r *Registry) localRef(ref string) (name.Reference, error) {
	lo, ok := r.loopback()
	if !ok {
		return nil, ErrNotListening
	}
	host := lo.String()
	parsed, err := parseRef(ref, host)
	if err != nil {
		return nil, err
	}
	reg := parsed.Context().RegistryStr()
	if reg != host && !r.isName(reg) {
		return nil, fmt.Errorf("registry %s: %w (%s)", reg, ErrOtherRegistry, strings.Join(r.Names(), ", "))
	}
	local := host + "/" + parsed.Context().RepositoryStr()
	if d, ok := parsed.(name.Digest); ok {
		return name.NewDigest(local+"@"+d.DigestStr(), name.Insecure)
	}
	return name.NewTag(local+":"+parsed.Identifier(), name.Insecure)
}

// parseRef parses <repository>:<tag> or <repository>@<digest>, optionally
// prefixed with a registry; defaultRegistry stands in for a missing one.
func parseRef(ref, defaultRegistry string) (name.Reference, error) {
	last := ref[strings.LastIndexByte(ref, '/')+1:]
	if !strings.ContainsAny(last, ":@") {
		return nil, fmt.Errorf("%w: %q has no tag or digest: want <repository>:<tag>, e.g. hello/web:dev", ErrInvalidName, ref)
	}
	parsed, err := name.ParseReference(ref, name.WithDefaultRegistry(defaultRegistry))
	if err != nil {
		return nil, fmt.Errorf("%w: %w: want <repository>:<tag>, e.g. hello/web:dev", ErrInvalidName, err)
	}
	return parsed, nil
}

// countingTransport counts the blobs a push uploads and their bytes.
type countingTransport struct {
	next  http.RoundTripper
	blobs atomic.Int32
	bytes atomic.Int64
}

func (t *countingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	upload := strings.Contains(req.URL.Path, "/blobs/uploads/")
	if upload && req.Body != nil {
		req.Body = &countingReader{ReadCloser: req.Body, n: &t.bytes}
	}
	resp, err := t.next.RoundTrip(req)
	// An upload is complete when its PUT (or a monolithic POST with the
	// digest) is accepted.
	if err == nil && upload && resp.StatusCode == http.StatusCreated &&
		(req.Method == http.MethodPut || req.URL.Query().Has("digest")) {
		t.blobs.Add(1)
	}
	return resp, err
}

type countingReader struct {
	io.ReadCloser
	n *atomic.Int64
}

func (r *countingReader) Read(p []byte) (int, error) {
	n, err := r.ReadCloser.Read(p)
	r.n.Add(int64(n))
	return n, err
}
