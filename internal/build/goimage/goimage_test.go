package goimage

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/devctl/devctl/internal/build"
)

const mainGo = `package main

import "fmt"

func main() {
	fmt.Println("GREETING")
}
`

// writeModule writes a one-package module and returns its directory.
func writeModule(t *testing.T, greeting string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "greeter")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "go.mod"), "module example.com/greeter\n\ngo 1.26\n")
	writeFile(t, filepath.Join(dir, "main.go"), strings.Replace(mainGo, "GREETING", greeting, 1))
	return dir
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// fakeCerts writes a stand-in CA bundle.
func fakeCerts(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "ca.crt")
	writeFile(t, p, "-----BEGIN CERTIFICATE-----\nnot a real one\n-----END CERTIFICATE-----\n")
	return p
}

func newBuilder(t *testing.T, certs string) *Builder {
	return New(WithCACertificates(certs), WithCacheDir(t.TempDir()))
}

// files lists a layer's entries as "path mode uid:gid size".
func files(t *testing.T, l v1.Layer) map[string]string {
	t.Helper()
	rc, err := l.Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = rc.Close() }()
	got := map[string]string{}
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return got
		}
		if err != nil {
			t.Fatal(err)
		}
		if !h.ModTime.Equal(time.Unix(0, 0)) {
			t.Errorf("%s has time %v, want the epoch", h.Name, h.ModTime)
		}
		got[h.Name] = fmt.Sprintf("%c %04o %d:%d", h.Typeflag, h.Mode, h.Uid, h.Gid)
	}
}

func TestBuildImage(t *testing.T) {
	t.Parallel()
	for name, tt := range map[string]struct {
		opts      []Option
		layerType types.MediaType
	}{
		"plain tar": {layerType: types.OCIUncompressedLayer},
		"gzip":      {opts: []Option{WithGzip(1)}, layerType: types.OCILayer},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			testBuildImage(t, tt.layerType, tt.opts...)
		})
	}
}

func testBuildImage(t *testing.T, layerType types.MediaType, opts ...Option) {
	dir := writeModule(t, "hi")
	var out bytes.Buffer
	b := New(append([]Option{WithCACertificates(fakeCerts(t)), WithCacheDir(t.TempDir())}, opts...)...)
	res, err := b.Build(t.Context(), Spec{
		Dir:    dir,
		Env:    []string{"GREETING=hi"},
		Ports:  []int{8080, 9090},
		Labels: map[string]string{"team": "platform-dx"},
		Output: &out,
	})
	if err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	if d, _ := res.Image.Digest(); d != res.Digest {
		t.Errorf("Digest = %s, image says %s", res.Digest, d)
	}
	if res.CACertificates == "" || len(res.Steps) != 2 || res.Steps[0].Name != build.StepGoBuild || res.Steps[1].Name != StepAssemble {
		t.Errorf("result = %+v", res)
	}
	if mt, _ := res.Image.MediaType(); mt != types.OCIManifestSchema1 {
		t.Errorf("manifest media type %s, want OCI", mt)
	}

	cfg, err := res.Image.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	want := v1.Config{
		Entrypoint:   []string{"/app/greeter"},
		Env:          []string{"PATH=/app", "SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt", "GREETING=hi"},
		User:         "65532:65532",
		WorkingDir:   "/app",
		ExposedPorts: map[string]struct{}{"8080/tcp": {}, "9090/tcp": {}},
		Labels:       map[string]string{"team": "platform-dx"},
	}
	if !reflect.DeepEqual(cfg.Config, want) {
		t.Errorf("config = %+v\nwant %+v", cfg.Config, want)
	}
	if cfg.OS != "linux" || cfg.Architecture == "" || !cfg.Created.Equal(time.Unix(0, 0)) {
		t.Errorf("config os/arch/created = %s/%s/%v", cfg.OS, cfg.Architecture, cfg.Created)
	}
	if len(cfg.History) != 2 || !strings.Contains(cfg.History[1].CreatedBy, "go build") {
		t.Errorf("history = %+v", cfg.History)
	}

	layers, err := res.Image.Layers()
	if err != nil {
		t.Fatal(err)
	}
	if len(layers) != 2 {
		t.Fatalf("%d layers, want the certificates and the binary", len(layers))
	}
	wantFiles := []map[string]string{
		{
			"etc/":                              "5 0755 0:0",
			"etc/ssl/":                          "5 0755 0:0",
			"etc/ssl/certs/":                    "5 0755 0:0",
			"etc/ssl/certs/ca-certificates.crt": "0 0644 0:0",
		},
		{"app/": "5 0755 0:0", "app/greeter": "0 0755 0:0"},
	}
	for i, l := range layers {
		if got := files(t, l); !reflect.DeepEqual(got, wantFiles[i]) {
			t.Errorf("layer %d holds %v, want %v", i, got, wantFiles[i])
		}
		if mt, _ := l.MediaType(); mt != layerType {
			t.Errorf("layer %d media type %s, want %s", i, mt, layerType)
		}
		d, _ := l.Digest()
		diffID, _ := l.DiffID()
		if (d == diffID) != (layerType == types.OCIUncompressedLayer) {
			t.Errorf("layer %d: digest %s, diff ID %s", i, d, diffID)
		}
		for _, c := range []struct {
			open func() (io.ReadCloser, error)
			want v1.Hash
		}{{l.Compressed, d}, {l.Uncompressed, diffID}} {
			rc, err := c.open()
			if err != nil {
				t.Fatal(err)
			}
			if got, _, err := v1.SHA256(rc); err != nil || got != c.want {
				t.Errorf("layer %d content hashes to %s, want %s (%v)", i, got, c.want, err)
			}
			_ = rc.Close()
		}
	}
}

func TestBuildIsReproducible(t *testing.T) {
	t.Parallel()
	certs := fakeCerts(t)
	dir := writeModule(t, "one")
	// Two builders: two binaries, compiled separately.
	first, err := newBuilder(t, certs).Build(t.Context(), Spec{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	b := newBuilder(t, certs)
	second, err := b.Build(t.Context(), Spec{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if first.Binary == second.Binary {
		t.Fatalf("both builds wrote %s", first.Binary)
	}
	if first.Digest != second.Digest {
		t.Errorf("same source, two digests: %s and %s", first.Digest, second.Digest)
	}

	// A one-line change: the certificates layer stays, the binary's changes.
	writeFile(t, filepath.Join(dir, "main.go"), strings.Replace(mainGo, "GREETING", "two", 1))
	third, err := b.Build(t.Context(), Spec{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if third.Digest == second.Digest {
		t.Fatal("a code change kept the digest")
	}
	before, after := layerDigests(t, second.Image), layerDigests(t, third.Image)
	if before[0] != after[0] || before[1] == after[1] {
		t.Errorf("layers %v then %v: want the first the same and the second changed", before, after)
	}
}

func layerDigests(t *testing.T, img v1.Image) []v1.Hash {
	t.Helper()
	m, err := img.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	var ds []v1.Hash
	for _, l := range m.Layers {
		ds = append(ds, l.Digest)
	}
	return ds
}

func TestBuildWithoutCACertificates(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	res, err := newBuilder(t, filepath.Join(t.TempDir(), "missing.crt")).Build(t.Context(), Spec{Dir: writeModule(t, "hi"), Output: &out})
	if err != nil {
		t.Fatal(err)
	}
	if res.CACertificates != "" {
		t.Errorf("CACertificates = %q, want none", res.CACertificates)
	}
	if !strings.Contains(out.String(), "no CA certificates at") {
		t.Errorf("output %q does not say the certificates are missing", out.String())
	}
	cfg, _ := res.Image.ConfigFile()
	if len(cfg.RootFS.DiffIDs) != 1 || slicesContain(cfg.Config.Env, "SSL_CERT_FILE=") {
		t.Errorf("image has %d layers and env %v, want only the binary", len(cfg.RootFS.DiffIDs), cfg.Config.Env)
	}
}

func slicesContain(ss []string, prefix string) bool {
	for _, s := range ss {
		if strings.HasPrefix(s, prefix) {
			return true
		}
	}
	return false
}

func TestCompileError(t *testing.T) {
	t.Parallel()
	dir := writeModule(t, "hi")
	if err := os.MkdirAll(filepath.Join(dir, "cmd", "server"), 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "cmd", "server", "main.go"), `package main

func main() {
	x := 1
	return 2
}
`)
	var out bytes.Buffer
	_, err := newBuilder(t, "").Build(t.Context(), Spec{Dir: dir, Package: "./cmd/server", Output: &out})
	var ce *CompileError
	if !errors.As(err, &ce) {
		t.Fatalf("Build = %v, want a *CompileError", err)
	}
	file := filepath.Join(dir, "cmd", "server", "main.go")
	want := []Diagnostic{
		{File: file, Line: 4, Column: 2, Message: "declared and not used: x"},
		{File: file, Line: 5, Column: 9, Message: "too many return values\n\thave (number)\n\twant ()"},
	}
	if !reflect.DeepEqual(ce.Diagnostics, want) {
		t.Errorf("diagnostics = %q\nwant %q", ce.Diagnostics, want)
	}
	if got := err.Error(); got != "go build ./cmd/server: cmd/server/main.go:4:2: declared and not used: x (and 1 more)" {
		t.Errorf("Error() = %q", got)
	}
	if ce.Output != out.String() || !strings.Contains(ce.Output, "main.go:4:2") {
		t.Errorf("Output = %q, streamed %q", ce.Output, out.String())
	}
	var be *build.BuildError
	if !errors.As(err, &be) || be.Step != build.StepGoBuild || len(be.Output) == 0 {
		t.Errorf("errors.As *build.BuildError = %+v", be)
	}
}

func TestBuildErrors(t *testing.T) {
	t.Parallel()
	dir := writeModule(t, "hi")
	tests := []struct {
		name string
		spec Spec
		want string
	}{
		{name: "no directory", spec: Spec{Dir: filepath.Join(dir, "nope")}, want: "not found"},
		{name: "no package", spec: Spec{Dir: dir, Package: "./nope"}, want: "go build ./nope: "},
		{name: "bad port", spec: Spec{Dir: dir, Ports: []int{70000}}, want: "out of range"},
		{name: "bad name", spec: Spec{Dir: dir, Name: "a/b"}, want: "plain file name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := newBuilder(t, "").Build(t.Context(), tt.spec)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Build = %v, want an error with %q", err, tt.want)
			}
		})
	}
}

func TestDefaults(t *testing.T) {
	t.Parallel()
	dir := writeModule(t, "hi")
	tests := []struct {
		pkg, name string
	}{
		{".", "greeter"},
		{"./cmd/server", "server"},
		{"./cmd/server/", "server"},
		{"example.com/greeter/v2", "greeter"},
		{"example.com/tools/cmd/api", "api"},
	}
	for _, tt := range tests {
		s, err := New().defaults(Spec{Dir: dir, Package: tt.pkg})
		if err != nil || s.Name != tt.name {
			t.Errorf("package %s: name %q, %v, want %q", tt.pkg, s.Name, err, tt.name)
		}
	}
}
