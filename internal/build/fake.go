package build

import (
	"context"
	"io"
	"strings"
	"sync"
)

// Interface is what callers need from a Builder; Fake implements it for
// their unit tests.
type Interface interface {
	Build(ctx context.Context, s Spec) (*Result, error)
	ImageExists(ctx context.Context, ref string) (bool, error)
	SaveImages(ctx context.Context, refs ...string) (io.ReadCloser, error)
}

var (
	_ Interface = (*Builder)(nil)
	_ Interface = (*Fake)(nil)
)

// Fake is an in-memory Interface. Its tags come from the Spec (image, build
// arguments, target, labels), not the files, so tests need no context on
// disk; a repeated Spec is reported as Cached. The *Err fields script
// failures. It is safe for concurrent use.
type Fake struct {
	BuildErr  error
	ExistsErr error
	SaveErr   error

	mu     sync.Mutex
	builds []Spec
	images map[string]string // ref → ID
}

// Build records s and returns a result for it, or BuildErr.
func (f *Fake) Build(_ context.Context, s Spec) (*Result, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.builds = append(f.builds, s)
	if f.BuildErr != nil {
		return nil, f.BuildErr
	}
	key := buildKey(s.Image, s.Dockerfile, s)
	res := &Result{Tag: key[:tagLen], ID: "sha256:" + key}
	res.Ref = s.Image + ":" + res.Tag
	if _, ok := f.images[res.Ref]; ok {
		res.Cached = true
		return res, nil
	}
	if f.images == nil {
		f.images = map[string]string{}
	}
	f.images[res.Ref] = res.ID
	res.Steps = []Step{{Name: StepHash}, {Name: StepImageBuild}}
	return res, nil
}

// Builds returns the Specs passed to Build, in order.
func (f *Fake) Builds() []Spec {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Spec(nil), f.builds...)
}

// ImageExists reports whether Build produced ref, or returns ExistsErr.
func (f *Fake) ImageExists(_ context.Context, ref string) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.ExistsErr != nil {
		return false, f.ExistsErr
	}
	_, ok := f.images[ref]
	return ok, nil
}

// SaveImages returns a stand-in archive naming refs, or SaveErr.
func (f *Fake) SaveImages(_ context.Context, refs ...string) (io.ReadCloser, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.SaveErr != nil {
		return nil, f.SaveErr
	}
	return io.NopCloser(strings.NewReader("fake image archive: " + strings.Join(refs, " "))), nil
}
