package goimage

import (
	"archive/tar"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/mutate"
)

func TestCopiesGetALayerOfTheirOwn(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	bin := filepath.Join(dir, "app")
	mustWrite(t, bin, "binary")
	mustWrite(t, filepath.Join(dir, "static", "index.txt"), "hi")
	mustWrite(t, filepath.Join(dir, "static", "css", "a.css"), "a{}")
	if err := os.MkdirAll(filepath.Join(dir, "empty"), 0o755); err != nil {
		t.Fatal(err)
	}
	b := New(WithCACertificates(""))
	s := Spec{Name: "app", Arch: "amd64", Copies: []Copy{
		{Src: filepath.Join(dir, "static"), Dest: "/static"},
		{Src: filepath.Join(dir, "empty"), Dest: "/srv/empty"},
	}}
	img, err := b.assemble(s, bin, nil)
	if err != nil {
		t.Fatal(err)
	}
	layers, err := img.Layers()
	if err != nil || len(layers) != 2 {
		t.Fatalf("%d layers (%v), want the copies and the binary", len(layers), err)
	}
	var names []string
	rc := mutate.Extract(img)
	defer func() { _ = rc.Close() }()
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, h.Name)
	}
	for _, want := range []string{"static", "static/index.txt", "static/css/a.css", "srv/empty", "app/app"} {
		if !slices.Contains(names, want) {
			t.Errorf("image lacks %s: %v", want, names)
		}
	}
	// The binary alone changing leaves the copies' layer as it was.
	mustWrite(t, bin, "binary 2")
	img2, err := b.assemble(s, bin, nil)
	if err != nil {
		t.Fatal(err)
	}
	l2, _ := img2.Layers()
	d1, _ := layers[0].Digest()
	d2, _ := l2[0].Digest()
	if d1 != d2 {
		t.Errorf("copies layer changed with the binary: %s → %s", d1, d2)
	}
}

func mustWrite(t *testing.T, p, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}
