// Package goimage builds container images of Go programs without a base
// image and without Docker, as ko does: the host's Go toolchain compiles a
// static binary (CGO_ENABLED=0, -trimpath, GOOS=linux, the user's GOCACHE, so
// rebuilds are incremental) and the image is assembled in memory with
// go-containerregistry, ready to be pushed to a registry.
//
// An image has two layers, the one that rarely changes first, so that a code
// change uploads a single layer:
//
//  1. /etc/ssl/certs/ca-certificates.crt, the host's CA certificates (left
//     out, with a note, when the host has none);
//  2. /app/<name>, the binary.
//
// The binary is the entrypoint and runs as 65532:65532 (there is no
// /etc/passwd). Every timestamp is the Unix epoch, so the same binary always
// gives the same image digest.
package goimage

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"maps"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/klauspost/compress/gzip"

	"github.com/devctl/devctl/internal/build"
)

// Where things are in the image.
const (
	// AppDir holds the binary: /app/<name>.
	AppDir = "/app"
	// CACertificatesPath is where the CA certificates go, the first path Go's
	// crypto/x509 reads on Linux.
	CACertificatesPath = "/etc/ssl/certs/ca-certificates.crt"
	// User is the image's user and group: nonroot, as in distroless.
	User = "65532:65532"
)

// DefaultCACertificates is the host file copied into images as their CA
// certificates (Debian, Ubuntu, Alpine, Arch).
const DefaultCACertificates = "/etc/ssl/certs/ca-certificates.crt"

// StepAssemble is the timed step that builds the image from the binary.
const StepAssemble = "assemble"

// Spec describes one image.
type Spec struct {
	// Dir is where go build runs: the module's directory, or one inside it.
	Dir string
	// Package is the main package, relative to Dir ("./cmd/server") or an
	// import path. Default ".".
	Package string
	// Name is the binary's name, /app/<Name>. Default: the package
	// directory's name (without a /vN major version suffix).
	Name string
	// Arch is the GOARCH of the nodes that run the image. Default: this
	// machine's.
	Arch string
	// Flags are extra go build flags: "-ldflags=-s -w", "-tags=dev".
	Flags []string
	// Env is the container's environment, KEY=value, after PATH (and
	// SSL_CERT_FILE when there are certificates).
	Env []string
	// Ports are the TCP ports the image exposes.
	Ports []int
	// Labels are the image's labels.
	Labels map[string]string
	// Copies are host files or folders put into the image, in a layer of
	// their own before the binary's (static assets, templates).
	Copies []Copy
	// Output receives the compiler's output. Nil discards it.
	Output io.Writer
}

// Copy is a host file or folder (Src) copied to Dest in the image. A folder
// is copied with everything in it (regular files only; its symbolic links
// and special files are left out), and is in the image even when empty.
type Copy struct {
	Src  string
	Dest string // absolute
}

// Result is a built image.
type Result struct {
	Image  v1.Image
	Digest v1.Hash // the manifest's digest
	// Binary is the compiled binary on this machine, kept between builds so
	// that the go command can tell when nothing changed.
	Binary string
	// CACertificates is the host file the image's certificates came from,
	// empty when there were none.
	CACertificates string
	Duration       time.Duration
	Steps          []build.Step // build.StepGoBuild, StepAssemble
}

// Option configures a Builder.
type Option func(*Builder)

// WithLogger sets the logger for debug messages; the default discards them.
func WithLogger(l *slog.Logger) Option {
	return func(b *Builder) { b.log = l }
}

// WithCACertificates sets the host file of CA certificates to put in images;
// "" puts none. Default DefaultCACertificates.
func WithCACertificates(path string) Option {
	return func(b *Builder) { b.certsPath = path }
}

// NoCompression is the default layer compression: none. Layers are plain
// tar (application/vnd.oci.image.layer.v1.tar), which containerd and Docker
// pull like gzip'd ones; on a laptop, where the registry and the nodes are a
// bridge apart, compressing costs more time than sending the bytes saves.
const NoCompression = 0

// WithGzip compresses layers with gzip at level (1, fastest, to 9), for
// registries across a network. Default NoCompression.
func WithGzip(level int) Option {
	return func(b *Builder) { b.gzipLevel = level }
}

// WithCacheDir sets where binaries are kept between builds. Default
// <user cache dir>/devctl/goimage.
func WithCacheDir(dir string) Option {
	return func(b *Builder) { b.cacheDir = dir }
}

// Builder builds Go images. It keeps the CA certificates layer between
// builds. Builds of different Specs may run at the same time; builds of the
// same Spec must not.
type Builder struct {
	log       *slog.Logger
	certsPath string
	cacheDir  string
	gzipLevel int

	mu        sync.Mutex
	certsKey  string // path, size and modification time of certs, and gzipLevel
	certs     *layer
	certsNote string // why there are no certificates
}

// New returns a Builder.
func New(opts ...Option) *Builder {
	b := &Builder{log: slog.New(slog.DiscardHandler), certsPath: DefaultCACertificates}
	for _, o := range opts {
		o(b)
	}
	b.gzipLevel = min(max(b.gzipLevel, NoCompression), gzip.BestCompression)
	if b.cacheDir == "" {
		dir, err := os.UserCacheDir()
		if err != nil {
			dir = os.TempDir()
		}
		b.cacheDir = filepath.Join(dir, "devctl", "goimage")
	}
	return b
}

// Build compiles s's package and assembles its image. A compiler error is a
// *CompileError carrying the compiler's output and its file:line
// diagnostics.
func (b *Builder) Build(ctx context.Context, s Spec) (*Result, error) {
	start := time.Now()
	s, err := b.defaults(s)
	if err != nil {
		return nil, err
	}
	res := &Result{Binary: b.binaryPath(s)}
	t := time.Now()
	err = b.compile(ctx, s, res.Binary)
	res.Steps = append(res.Steps, build.Step{Name: build.StepGoBuild, Duration: time.Since(t)})
	if err != nil {
		return nil, err
	}

	t = time.Now()
	certs, certsPath, err := b.certsLayer(s.Output)
	if err != nil {
		return nil, fmt.Errorf("go image %s: %w", s.Name, err)
	}
	res.CACertificates = certsPath
	res.Image, err = b.assemble(s, res.Binary, certs)
	if err == nil {
		res.Digest, err = res.Image.Digest()
	}
	res.Steps = append(res.Steps, build.Step{Name: StepAssemble, Duration: time.Since(t)})
	if err != nil {
		return nil, fmt.Errorf("go image %s: %w", s.Name, err)
	}
	res.Duration = time.Since(start)
	b.log.Debug("go image built", "name", s.Name, "digest", res.Digest.String(), "duration", res.Duration)
	return res, nil
}

var majorVersion = regexp.MustCompile(`^v[0-9]+$`)

func (b *Builder) defaults(s Spec) (Spec, error) {
	if s.Dir == "" {
		s.Dir = "."
	}
	dir, err := filepath.Abs(s.Dir)
	if err != nil {
		return s, fmt.Errorf("go image: %w", err)
	}
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		return s, fmt.Errorf("go image: directory %s not found: set the service's context to the Go module", s.Dir)
	}
	s.Dir = dir
	if s.Package == "" {
		s.Package = "."
	}
	if s.Arch == "" {
		s.Arch = runtime.GOARCH
	}
	if s.Name == "" {
		p := filepath.ToSlash(s.Package)
		if p == "." || p == "./" {
			p = filepath.ToSlash(dir)
		}
		p = strings.TrimSuffix(p, "/")
		s.Name = path.Base(p)
		if majorVersion.MatchString(s.Name) && path.Dir(p) != "." {
			s.Name = path.Base(path.Dir(p))
		}
	}
	if s.Name == "" || s.Name == "." || s.Name == ".." || strings.ContainsAny(s.Name, `/\`) {
		return s, fmt.Errorf("go image: binary name %q: use a plain file name", s.Name)
	}
	if s.Output == nil {
		s.Output = io.Discard
	}
	return s, nil
}

// binaryPath is a stable place for s's binary: the go command skips the link
// when the binary there is up to date.
func (b *Builder) binaryPath(s Spec) string {
	h := sha256.Sum256([]byte(s.Dir + "\x00" + s.Package + "\x00" + s.Arch))
	return filepath.Join(b.cacheDir, hex.EncodeToString(h[:8]), s.Name)
}

func (b *Builder) compile(ctx context.Context, s Spec, out string) error {
	goBin, err := exec.LookPath("go")
	if err != nil {
		return fmt.Errorf("go build: %w: install Go (https://go.dev/dl)", err)
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return fmt.Errorf("go build: %w", err)
	}
	args := append([]string{"build", "-trimpath", "-buildvcs=false", "-o", out}, s.Flags...)
	args = append(args, s.Package)
	cmd := exec.CommandContext(ctx, goBin, args...)
	cmd.Dir = s.Dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+s.Arch)
	var output bytes.Buffer
	cmd.Stdout = io.MultiWriter(&output, s.Output)
	cmd.Stderr = cmd.Stdout
	cmd.WaitDelay = 5 * time.Second
	b.log.Debug("go build", "dir", s.Dir, "args", args, "goarch", s.Arch)
	if err := cmd.Run(); err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			return fmt.Errorf("go build %s: %w", s.Package, ctxErr)
		}
		return newCompileError(s.Dir, s.Package, output.String(), err)
	}
	return nil
}

// certsLayer returns the CA certificates layer, built once per content of
// the host file, and the file's path; nil and "" when there is none.
func (b *Builder) certsLayer(out io.Writer) (*layer, string, error) {
	if b.certsPath == "" {
		return nil, "", nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	fi, err := os.Stat(b.certsPath)
	if errors.Is(err, fs.ErrNotExist) {
		if b.certsNote == "" {
			b.certsNote = fmt.Sprintf("note: no CA certificates at %s: the image has none, so TLS clients in it cannot verify servers (install ca-certificates)", b.certsPath)
			b.log.Debug("no CA certificates", "path", b.certsPath)
		}
		fmt.Fprintln(out, b.certsNote)
		return nil, "", nil
	}
	if err != nil {
		return nil, "", fmt.Errorf("CA certificates: %w", err)
	}
	key := fmt.Sprintf("%s\x00%d\x00%d\x00%d", b.certsPath, fi.Size(), fi.ModTime().UnixNano(), b.gzipLevel)
	if b.certs != nil && b.certsKey == key {
		return b.certs, b.certsPath, nil
	}
	content, err := os.ReadFile(b.certsPath)
	if err != nil {
		return nil, "", fmt.Errorf("CA certificates: %w", err)
	}
	l, err := newLayer(b.gzipLevel, file{path: CACertificatesPath, mode: 0o644, content: bytes.NewReader(content), size: int64(len(content))})
	if err != nil {
		return nil, "", fmt.Errorf("CA certificates: %w", err)
	}
	b.certs, b.certsKey = l, key
	return l, b.certsPath, nil
}

func (b *Builder) assemble(s Spec, binary string, certs *layer) (v1.Image, error) {
	f, err := os.Open(binary)
	if err != nil {
		return nil, err
	}
	defer func() { _ = f.Close() }()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	entrypoint := path.Join(AppDir, s.Name)
	app, err := newLayer(b.gzipLevel, file{path: entrypoint, mode: 0o755, content: f, size: fi.Size()})
	if err != nil {
		return nil, err
	}

	env := []string{"PATH=" + AppDir}
	if certs != nil {
		env = append(env, "SSL_CERT_FILE="+CACertificatesPath)
	}
	env = append(env, s.Env...)
	var ports map[string]struct{}
	if len(s.Ports) > 0 {
		ports = map[string]struct{}{}
		for _, p := range s.Ports {
			if p < 1 || p > 65535 {
				return nil, fmt.Errorf("port %d is out of range (1-65535)", p)
			}
			ports[strconv.Itoa(p)+"/tcp"] = struct{}{}
		}
	}
	var labels map[string]string
	if len(s.Labels) > 0 {
		labels = maps.Clone(s.Labels)
	}
	cfg := &v1.ConfigFile{
		Architecture: s.Arch,
		OS:           "linux",
		Created:      v1.Time{Time: epoch},
		Config: v1.Config{
			Entrypoint:   []string{entrypoint},
			Env:          env,
			User:         User,
			WorkingDir:   AppDir,
			ExposedPorts: ports,
			Labels:       labels,
		},
		RootFS: v1.RootFS{Type: "layers"},
	}
	img, err := mutate.ConfigFile(mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON), cfg)
	if err != nil {
		return nil, err
	}
	var adds []mutate.Addendum
	if certs != nil {
		adds = append(adds, mutate.Addendum{Layer: certs, History: v1.History{
			Created: v1.Time{Time: epoch}, CreatedBy: "devctl: CA certificates " + CACertificatesPath,
		}})
	}
	if len(s.Copies) > 0 {
		files, closeAll, err := copyFiles(s.Copies)
		if err != nil {
			return nil, err
		}
		l, err := newLayer(b.gzipLevel, files...)
		closeAll()
		if err != nil {
			return nil, err
		}
		var what []string
		for _, c := range s.Copies {
			what = append(what, c.Dest)
		}
		adds = append(adds, mutate.Addendum{Layer: l, History: v1.History{
			Created: v1.Time{Time: epoch}, CreatedBy: "devctl: copy " + strings.Join(what, " "),
		}})
	}
	adds = append(adds, mutate.Addendum{Layer: app, History: v1.History{
		Created: v1.Time{Time: epoch}, CreatedBy: "devctl: go build " + strings.Join(slices.Concat(s.Flags, []string{s.Package}), " "),
	}})
	return mutate.Append(img, adds...)
}

// copyFiles lists the files of copies in a stable order, opened; closeAll
// closes them.
func copyFiles(copies []Copy) (files []file, closeAll func(), err error) {
	var opened []*os.File
	closeAll = func() {
		for _, f := range opened {
			_ = f.Close()
		}
	}
	add := func(src, dest string, fi fs.FileInfo) error {
		f, err := os.Open(src)
		if err != nil {
			return err
		}
		opened = append(opened, f)
		files = append(files, file{path: dest, mode: fi.Mode().Perm(), content: f, size: fi.Size()})
		return nil
	}
	for _, c := range copies {
		if !path.IsAbs(c.Dest) {
			closeAll()
			return nil, nil, fmt.Errorf("copy %s: destination %q is not absolute", c.Src, c.Dest)
		}
		fi, err := os.Stat(c.Src)
		if err != nil {
			closeAll()
			return nil, nil, fmt.Errorf("copy into the image: %w", err)
		}
		if !fi.IsDir() {
			if err := add(c.Src, c.Dest, fi); err != nil {
				closeAll()
				return nil, nil, err
			}
			continue
		}
		files = append(files, file{path: path.Clean(c.Dest), dir: true})
		err = filepath.WalkDir(c.Src, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			rel, err := filepath.Rel(c.Src, p)
			if err != nil {
				return err
			}
			dest := path.Join(c.Dest, filepath.ToSlash(rel))
			if d.IsDir() {
				files = append(files, file{path: dest, dir: true})
				return nil
			}
			if !d.Type().IsRegular() {
				return nil
			}
			fi, err := d.Info()
			if err != nil {
				return err
			}
			return add(p, dest, fi)
		})
		if err != nil {
			closeAll()
			return nil, nil, fmt.Errorf("copy %s into the image: %w", c.Src, err)
		}
	}
	return files, closeAll, nil
}
