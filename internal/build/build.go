// Package build builds container images with the Docker Engine API.
//
// A build optionally compiles a static Go binary into the build context, hashes
// the context exactly as it will be sent (honouring .dockerignore), and tags
// the image with that hash: an unchanged tree is never rebuilt.
package build

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"path/filepath"
	"slices"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/distribution/reference"
	buildtypes "github.com/moby/moby/api/types/build"
	"github.com/moby/moby/client"
)

// LabelContextHash is the image label holding the full context hash.
const LabelContextHash = "devctl.dev/context-hash"

// Names of the timed steps of a build.
const (
	StepGoBuild    = "go-build"
	StepHash       = "hash"
	StepImageBuild = "image-build"
)

// tagLen is how many hex characters of the build key form the image tag.
const tagLen = 16

var (
	// ErrDockerUnavailable means the Docker engine did not answer.
	ErrDockerUnavailable = errors.New("docker engine is not reachable: start Docker (sudo systemctl start docker, or run dockerd), or set DOCKER_HOST")
	// ErrDockerfileNotFound means the Dockerfile of a build does not exist.
	ErrDockerfileNotFound = errors.New("dockerfile not found: create it, or set services[].dockerfile in devctl.yaml")
)

// Spec describes one image build.
type Spec struct {
	// Image is the repository to tag, without a tag: devctl.local/hello/hello.
	Image string
	// Context is the build context directory.
	Context string
	// Dockerfile is the Dockerfile path, relative to Context unless absolute;
	// it has to be inside Context. Default "Dockerfile".
	Dockerfile string
	// Go, if set, compiles a static Linux binary into Context first.
	Go        *GoSpec
	BuildArgs map[string]string
	Target    string
	// Labels are added to the image, besides LabelContextHash.
	Labels map[string]string
	// Output receives the build log, one line at a time. Nil discards it.
	Output io.Writer
}

// GoSpec is a Go binary compiled into the build context before the image
// build: CGO_ENABLED=0 GOOS=linux GOARCH=<engine arch> go build -trimpath
// -buildvcs=false -o <Context>/<Output> <Package>, run in Context.
type GoSpec struct {
	Package string // import path or directory relative to Context, e.g. "." or "./cmd/server"
	Output  string // binary path relative to Context, e.g. "bin/server"
}

// Result is a built (or already present) image.
type Result struct {
	Ref      string // Image:Tag
	ID       string // image ID, sha256:...
	Tag      string // first 16 hex characters of the build key
	Cached   bool   // the image already existed; the engine did not build
	Duration time.Duration
	Steps    []Step
}

// Step is one timed part of a build.
type Step struct {
	Name     string // StepGoBuild, StepHash or StepImageBuild
	Duration time.Duration
}

// Option configures a Builder.
type Option func(*options)

type options struct {
	log  *slog.Logger
	host string
}

// WithLogger sets the logger for debug messages; the default discards them.
func WithLogger(l *slog.Logger) Option {
	return func(o *options) { o.log = l }
}

// WithHost sets the engine address (unix:///var/run/docker.sock,
// tcp://host:2376). The default is DOCKER_HOST, else the platform's socket.
func WithHost(host string) Option {
	return func(o *options) { o.host = host }
}

// Builder builds images with one Docker engine.
type Builder struct {
	api  *client.Client
	log  *slog.Logger
	arch string // the engine's GOARCH
}

// New connects to the Docker engine, negotiating the API version (engines
// from Docker 19.03, API 1.40, on), and checks that it answers.
func New(ctx context.Context, opts ...Option) (*Builder, error) {
	o := options{log: slog.New(slog.DiscardHandler)}
	for _, opt := range opts {
		opt(&o)
	}
	copts := []client.Opt{client.FromEnv}
	if o.host != "" {
		copts = append(copts, client.WithHost(o.host))
	}
	api, err := client.New(copts...)
	if err != nil {
		return nil, fmt.Errorf("docker client: %w: %w", err, ErrDockerUnavailable)
	}
	if _, err := api.Ping(ctx, client.PingOptions{NegotiateAPIVersion: true}); err != nil {
		_ = api.Close()
		return nil, unavailable(api.DaemonHost(), err)
	}
	v, err := api.ServerVersion(ctx, client.ServerVersionOptions{})
	if err != nil {
		_ = api.Close()
		return nil, fmt.Errorf("docker version at %s: %w", api.DaemonHost(), err)
	}
	o.log.Debug("docker engine", "host", api.DaemonHost(), "version", v.Version,
		"api", api.ClientVersion(), "arch", v.Arch)
	return &Builder{api: api, log: o.log, arch: v.Arch}, nil
}

// Ping checks that the engine still answers.
func (b *Builder) Ping(ctx context.Context) error {
	if _, err := b.api.Ping(ctx, client.PingOptions{}); err != nil {
		return unavailable(b.api.DaemonHost(), err)
	}
	return nil
}

// Close releases the connection to the engine.
func (b *Builder) Close() error {
	return b.api.Close()
}

// unavailable wraps a failure to reach the engine at host with
// ErrDockerUnavailable, keeping only the network error when there is one.
func unavailable(host string, err error) error {
	var opErr *net.OpError
	if errors.As(err, &opErr) {
		err = opErr
	}
	return fmt.Errorf("connect to %s: %w: %w", host, err, ErrDockerUnavailable)
}

// engineErr marks connection failures with ErrDockerUnavailable.
func (b *Builder) engineErr(err error) error {
	if client.IsErrConnectionFailed(err) {
		return unavailable(b.api.DaemonHost(), err)
	}
	return err
}

// Build compiles the Go binary (if any), hashes the context and builds the
// image unless an image with the same build key already exists. Build
// failures are *BuildError values carrying the last lines of output.
// Concurrent builds must not share a context directory.
func (b *Builder) Build(ctx context.Context, s Spec) (*Result, error) {
	start := time.Now()
	if err := checkRepository(s.Image); err != nil {
		return nil, err
	}
	root, err := filepath.Abs(s.Context)
	if err != nil {
		return nil, fmt.Errorf("build %s: %w", s.Image, err)
	}
	df, err := resolveDockerfile(root, s.Dockerfile)
	if err != nil {
		return nil, fmt.Errorf("build %s: %w", s.Image, err)
	}
	out := newLineWriter(s.Output)
	res := &Result{}
	timed := func(name string, f func() error) error {
		t := time.Now()
		err := f()
		res.Steps = append(res.Steps, Step{Name: name, Duration: time.Since(t)})
		b.log.Debug("build step", "image", s.Image, "step", name, "duration", time.Since(t), "err", err)
		return err
	}

	if s.Go != nil {
		if err := timed(StepGoBuild, func() error { return goBuild(ctx, root, b.arch, *s.Go, out) }); err != nil {
			return nil, fmt.Errorf("build %s: %w", s.Image, err)
		}
	}

	var entries []entry
	var contextHash string
	if err := timed(StepHash, func() error {
		var err error
		entries, err = contextFiles(root, s.Dockerfile)
		contextHash = hashEntries(entries)
		return err
	}); err != nil {
		return nil, fmt.Errorf("build %s: %w", s.Image, err)
	}
	res.Tag = buildKey(contextHash, df, s)[:tagLen]
	res.Ref = s.Image + ":" + res.Tag

	if id, ok, err := b.existing(ctx, res.Ref, contextHash); err != nil {
		return nil, fmt.Errorf("build %s: %w", s.Image, err)
	} else if ok {
		res.ID, res.Cached, res.Duration = id, true, time.Since(start)
		fmt.Fprintf(out, "%s is up to date\n", res.Ref)
		return res, nil
	}

	if err := timed(StepImageBuild, func() error {
		var err error
		res.ID, err = b.imageBuild(ctx, s, df, res.Ref, contextHash, entries, out)
		return err
	}); err != nil {
		return nil, fmt.Errorf("build %s: %w", s.Image, err)
	}
	res.Duration = time.Since(start)
	return res, nil
}

func checkRepository(image string) error {
	named, err := reference.ParseNormalizedNamed(image)
	if err == nil && !reference.IsNameOnly(named) {
		err = errors.New("has a tag or digest")
	}
	if err != nil {
		return fmt.Errorf("image %q: %w: use a repository name without a tag, e.g. devctl.local/hello/hello", image, err)
	}
	return nil
}

// buildKey digests everything that decides the image: the context, which
// Dockerfile in it, the target, build arguments and labels.
func buildKey(contextHash, dockerfile string, s Spec) string {
	h := sha256.New()
	fmt.Fprintf(h, "context\x00%s\x00dockerfile\x00%s\x00target\x00%s\x00", contextHash, dockerfile, s.Target)
	for _, k := range slices.Sorted(maps.Keys(s.BuildArgs)) {
		fmt.Fprintf(h, "arg\x00%s\x00%s\x00", k, s.BuildArgs[k])
	}
	for _, k := range slices.Sorted(maps.Keys(s.Labels)) {
		fmt.Fprintf(h, "label\x00%s\x00%s\x00", k, s.Labels[k])
	}
	return hex.EncodeToString(h.Sum(nil))
}

// existing returns the ID of ref if it exists and was built from contextHash.
func (b *Builder) existing(ctx context.Context, ref, contextHash string) (string, bool, error) {
	img, err := b.api.ImageInspect(ctx, ref)
	if cerrdefs.IsNotFound(err) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("inspect %s: %w", ref, b.engineErr(err))
	}
	if img.Config == nil || img.Config.Labels[LabelContextHash] != contextHash {
		b.log.Debug("image tag exists with another context hash; rebuilding", "ref", ref)
		return "", false, nil
	}
	return img.ID, true, nil
}

func (b *Builder) imageBuild(ctx context.Context, s Spec, dockerfile, ref, contextHash string, entries []entry, out *lineWriter) (string, error) {
	labels := maps.Clone(s.Labels)
	if labels == nil {
		labels = map[string]string{}
	}
	labels[LabelContextHash] = contextHash
	args := make(map[string]*string, len(s.BuildArgs))
	for k, v := range s.BuildArgs {
		args[k] = &v
	}

	pr, pw := io.Pipe()
	tarDone := make(chan error, 1)
	go func() {
		err := writeContextTar(pw, entries)
		pw.CloseWithError(err)
		tarDone <- err
	}()
	// Whatever happens below, stop the tar writer and wait for it.
	tarErr := func() error {
		_ = pr.Close()
		if err := <-tarDone; err != nil && !errors.Is(err, io.ErrClosedPipe) {
			return err
		}
		return nil
	}

	b.log.Debug("image build", "ref", ref, "files", len(entries))
	resp, err := b.api.ImageBuild(ctx, pr, client.ImageBuildOptions{
		Tags:        []string{ref},
		Dockerfile:  dockerfile,
		BuildArgs:   args,
		Target:      s.Target,
		Labels:      labels,
		Remove:      true,
		ForceRemove: true,
		// The classic builder takes the context as a tar upload on every
		// engine; BuildKit over the API needs a session.
		Version: buildtypes.BuilderV1,
	})
	if err != nil {
		if terr := tarErr(); terr != nil {
			return "", terr
		}
		if client.IsErrConnectionFailed(err) {
			return "", b.engineErr(err)
		}
		// The engine rejects some builds before streaming, e.g. a Dockerfile
		// that does not parse.
		msg := strings.TrimPrefix(err.Error(), "Error response from daemon: ")
		return "", &BuildError{Step: StepImageBuild, Message: msg, Output: out.Tail()}
	}
	id, err := readBuildStream(resp.Body, out)
	_ = resp.Body.Close()
	if terr := tarErr(); terr != nil {
		return "", terr
	}
	if err != nil {
		return "", err
	}
	if id == "" {
		img, err := b.api.ImageInspect(ctx, ref)
		if err != nil {
			return "", fmt.Errorf("inspect %s after build: %w", ref, b.engineErr(err))
		}
		id = img.ID
	}
	return id, nil
}

// ImageExists reports whether the engine has an image named ref.
func (b *Builder) ImageExists(ctx context.Context, ref string) (bool, error) {
	_, err := b.api.ImageInspect(ctx, ref)
	if cerrdefs.IsNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("inspect %s: %w", ref, b.engineErr(err))
	}
	return true, nil
}

// SaveImages streams refs as a `docker save` tar archive (for loading into
// cluster nodes). The caller closes it.
func (b *Builder) SaveImages(ctx context.Context, refs ...string) (io.ReadCloser, error) {
	if len(refs) == 0 {
		return nil, errors.New("save images: no image given")
	}
	rc, err := b.api.ImageSave(ctx, refs)
	if err != nil {
		return nil, fmt.Errorf("save %s: %w", strings.Join(refs, ", "), b.engineErr(err))
	}
	return rc, nil
}
