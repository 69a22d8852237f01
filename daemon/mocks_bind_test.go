package daemon

import (
	"archive/tar"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// goBinary compiles a tiny main package for goos with CGO_ENABLED=0.
func goBinary(t *testing.T, goos string) string {
	t.Helper()
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "go.mod"), "module example.com/tiny\n\ngo 1.22\n")
	writeFile(t, filepath.Join(dir, "main.go"), "package main\n\nfunc main() { println(\"tiny\") }\n")
	bin := filepath.Join(dir, "devctl-mocks")
	cmd := exec.Command("go", "build", "-trimpath", "-o", bin, ".")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS="+goos, "GOFLAGS=")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// The stand-ins' image is the binary alone, assembled without Docker: the
// same binary gives the same reference, and the archive is one a node loads.
func TestStandInImage(t *testing.T) {
	bin := goBinary(t, "linux")
	t.Setenv("DEVCTL_MOCKS_BIN", bin)
	ref, archive, err := (&platformAdapter{}).StandInImage(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(ref, "devctl.local/platform-mocks:") || len(ref) != len("devctl.local/platform-mocks:")+12 {
		t.Errorf("ref = %s", ref)
	}
	// A second adapter (another daemon) gives the same digest.
	ref2, _, err := (&platformAdapter{}).StandInImage(context.Background())
	if err != nil || ref2 != ref {
		t.Errorf("second build = %s, %v; want %s", ref2, err, ref)
	}

	rc, err := archive()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "image.tar")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(f, rc); err != nil {
		t.Fatal(err)
	}
	_ = f.Close()
	img, err := tarball.ImageFromPath(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if cf.OS != "linux" || cf.Config.User != "65532:65532" || len(cf.Config.Entrypoint) != 1 || cf.Config.Entrypoint[0] != "/devctl-mocks" {
		t.Errorf("config: os %s user %s entrypoint %v", cf.OS, cf.Config.User, cf.Config.Entrypoint)
	}
	layers, err := img.Layers()
	if err != nil || len(layers) != 1 {
		t.Fatalf("layers = %d, %v; want the binary alone", len(layers), err)
	}
	lr, err := layers[0].Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(lr)
	h, err := tr.Next()
	if err != nil || h.Name != "devctl-mocks" || h.Mode != 0o755 {
		t.Fatalf("layer entry = %+v, %v", h, err)
	}
	want, _ := os.ReadFile(bin)
	got, _ := io.ReadAll(tr)
	if string(got) != string(want) {
		t.Error("the layer does not hold the binary")
	}
}

func TestStandInImageRefusesABinaryThatCannotRunOnNodes(t *testing.T) {
	script := filepath.Join(t.TempDir(), "devctl-mocks")
	writeFile(t, script, "#!/bin/sh\necho not a Go binary\n")
	t.Setenv("DEVCTL_MOCKS_BIN", script)
	_, _, err := (&platformAdapter{}).StandInImage(context.Background())
	if err == nil || !strings.Contains(err.Error(), "make build") {
		t.Errorf("err = %v, want one saying how to build it", err)
	}
	t.Setenv("DEVCTL_MOCKS_BIN", filepath.Join(t.TempDir(), "nope"))
	if _, _, err := (&platformAdapter{}).StandInImage(context.Background()); err == nil {
		t.Error("a missing binary gave an image")
	}
}
