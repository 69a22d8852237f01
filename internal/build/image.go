package build

import (
	"context"
	"fmt"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/daemon"
)

// ImageReader reads an engine image for pushing it to a registry.
type ImageReader interface {
	Image(ctx context.Context, ref string) (v1.Image, error)
}

var _ ImageReader = (*Builder)(nil)

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
