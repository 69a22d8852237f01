package daemon

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"runtime"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/devctl/devctl/internal/api"
	"github.com/devctl/devctl/internal/build"
	"github.com/devctl/devctl/internal/build/goimage"
	"github.com/devctl/devctl/internal/config"
	"github.com/devctl/devctl/internal/goldenpath"
)

// GoImages builds the images of Go services (services[].go) with the host's
// toolchain and no Docker build and no base image (goimage).
type GoImages interface {
	Build(ctx context.Context, s goimage.Spec) (*goimage.Result, error)
}

// goBuilt is a Go service's image as the Go builder made it.
type goBuilt struct {
	image  v1.Image
	binary string // the compiled binary on this machine
	name   string // the binary's name in the image: /app/<name>
}

// usesGoBuilder reports whether s is built by the Go builder.
func (r *runner) usesGoBuilder(s *config.Service) bool {
	return s.Go != nil && r.deps.GoImages != nil
}

// buildGo compiles s and assembles its image. The image is tagged with the
// start of its digest, so an unchanged binary is an unchanged image.
func (run *Run) buildGo(ctx context.Context, p *goldenpath.Project, s *config.Service) (string, error) {
	out := run.outputWriter(StepBuild, s.Name, api.SourceBuild)
	defer func() { _ = out.Close() }()
	// A live service's sync folders are in its image, so the pod's sync
	// volumes are seeded from it.
	var copies []goimage.Copy
	if s.Live != nil {
		for _, sy := range s.Live.Sync {
			copies = append(copies, goimage.Copy{Src: filepath.Join(p.ContextDir(s), sy.Path), Dest: sy.Dest})
		}
	}
	res, err := run.r.deps.GoImages.Build(ctx, goimage.Spec{
		Copies:  copies,
		Dir:     p.ContextDir(s),
		Package: s.Go.Package,
		// Without the symbol table and DWARF the link of an edit takes
		// 30-50% less time and the binary a live update sends is a third
		// smaller; panics keep their stack traces (pclntab stays).
		Flags:  []string{"-ldflags=-s -w"},
		Name:   s.Name,
		Arch:   runtime.GOARCH,
		Ports:  []int{s.Port},
		Labels: map[string]string{"devctl.dev/project": p.Name, "devctl.dev/service": s.Name},
		Output: out,
	})
	if err != nil {
		return "", err
	}
	ref := goldenpath.ImageRepository(p.Name, s.Name) + ":" + res.Digest.Hex[:16]
	run.mu.Lock()
	run.images[s.Name] = ref
	if run.goImages == nil {
		run.goImages = map[string]goBuilt{}
	}
	run.goImages[ref] = goBuilt{image: res.Image, binary: res.Binary, name: s.Name}
	run.mu.Unlock()
	run.dispatch(ImageBuilt{Name: run.Env, Service: s.Name, Image: ref})
	// A new image is pushed at once, while the cluster may still be made
	// (an up builds and creates in parallel); deliver then finds it there.
	if prev := run.prev.Status.Service(s.Name); run.Kind == api.RunUp && (prev == nil || prev.Image != ref) {
		run.pushEarly(ctx, res.Image, ref)
	}
	var compile string
	for _, st := range res.Steps {
		if st.Name == build.StepGoBuild {
			compile = fmt.Sprintf(", go build %dms", st.Duration.Milliseconds())
		}
	}
	// The compiler always runs (it is what knows nothing changed); the
	// image is "cached" when it is the one the environment already has.
	how := "built"
	if prev := run.prev.Status.Service(s.Name); prev != nil && (prev.Image == ref || prev.DesiredImage == ref) {
		how = "cached"
	}
	return fmt.Sprintf("%s %s %s (Go builder%s)", s.Name, how, ref, compile), nil
}

// goArchive writes the Go-built images among refs as one `docker save`
// archive, what kind loads into its nodes; the rest of refs are returned.
func (run *Run) goArchive(refs []string) (archive func() (io.ReadCloser, error), rest []string, err error) {
	imgs := map[name.Reference]v1.Image{}
	for _, ref := range refs {
		g, ok := run.goImages[ref]
		if !ok {
			rest = append(rest, ref)
			continue
		}
		tag, err := name.NewTag(ref)
		if err != nil {
			return nil, nil, fmt.Errorf("image name %s: %w", ref, err)
		}
		imgs[tag] = g.image
	}
	if len(imgs) == 0 {
		return nil, rest, nil
	}
	return func() (io.ReadCloser, error) {
		pr, pw := io.Pipe()
		go func() { pw.CloseWithError(tarball.MultiRefWrite(imgs, pw)) }()
		return pr, nil
	}, rest, nil
}
