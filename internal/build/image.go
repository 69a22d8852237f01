package build

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"slices"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/daemon"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// ImageReader reads an engine image for pushing it to a registry; Builder
// and Fake implement it.
type ImageReader interface {
	Image(ctx context.Context, ref string) (v1.Image, error)
}

var (
	_ ImageReader = (*Builder)(nil)
	_ ImageReader = (*Fake)(nil)
)

// Image returns the engine's image ref (as built: devctl.local/hello/web:tag)
// as a v1.Image, e.g. for registry.Push. Its layers are read once, with
// `docker save`, when first needed, and kept in memory; ctx bounds that read,
// so it must last until the image has been pushed.
func (b *Builder) Image(ctx context.Context, ref string) (v1.Image, error) {
	r, err := name.ParseReference(ref)
	if err != nil {
		return nil, fmt.Errorf("image %s: %w", ref, err)
	}
	img, err := daemon.Image(r, daemon.WithClient(b.api), daemon.WithContext(ctx), daemon.WithBufferedOpener())
	if cerrdefs.IsNotFound(err) {
		return nil, fmt.Errorf("image %s: %w: build it first", ref, err)
	}
	if err != nil {
		return nil, fmt.Errorf("image %s: %w", ref, b.engineErr(err))
	}
	return img, nil
}

// Image returns a small image standing for ref, whose one layer holds ref's
// name, if Build produced ref.
func (f *Fake) Image(_ context.Context, ref string) (v1.Image, error) {
	f.mu.Lock()
	_, ok := f.images[ref]
	known := slices.Sorted(maps.Keys(f.images))
	f.mu.Unlock()
	if !ok {
		return nil, fmt.Errorf("image %s: %w (fake has %v)", ref, cerrdefs.ErrNotFound, known)
	}
	return mutate.AppendLayers(mutate.MediaType(empty.Image, types.OCIManifestSchema1),
		static.NewLayer(bytes.Clone([]byte(ref)), types.OCILayer))
}
