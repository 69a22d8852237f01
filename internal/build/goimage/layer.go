package goimage

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"path"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// epoch is the time of every file, layer and the config: images are
// reproducible, the same binary gives the same digest.
var epoch = time.Unix(0, 0).UTC()

// file is one regular file of a layer.
type file struct {
	path    string // absolute path in the image, e.g. /app/hello
	mode    fs.FileMode
	content io.Reader
	size    int64
}

// layer is a gzip-compressed tar layer held in memory; its digests are
// computed once, while it is written.
type layer struct {
	gz     []byte
	digest v1.Hash
	diffID v1.Hash
}

var _ v1.Layer = (*layer)(nil)

// newLayer writes files, with their parent directories, into a layer. All
// entries belong to root and carry the epoch time.
func newLayer(files ...file) (*layer, error) {
	var gz bytes.Buffer
	// BestSpeed: on a laptop's loopback, compression time matters more than
	// size. The output is deterministic for a given Go version.
	zw, err := gzip.NewWriterLevel(&gz, gzip.BestSpeed)
	if err != nil {
		return nil, err
	}
	diff := sha256.New()
	tw := tar.NewWriter(io.MultiWriter(zw, diff))
	dirs := map[string]bool{}
	for _, f := range files {
		if err := addParents(tw, dirs, path.Dir(f.path)); err != nil {
			return nil, err
		}
		hdr := &tar.Header{
			Typeflag: tar.TypeReg,
			Name:     strings.TrimPrefix(f.path, "/"),
			Mode:     int64(f.mode.Perm()),
			Size:     f.size,
			ModTime:  epoch,
			Format:   tar.FormatPAX,
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return nil, fmt.Errorf("layer: %s: %w", f.path, err)
		}
		if n, err := io.Copy(tw, f.content); err != nil {
			return nil, fmt.Errorf("layer: %s: %w", f.path, err)
		} else if n != f.size {
			return nil, fmt.Errorf("layer: %s: read %d bytes, want %d (did it change?)", f.path, n, f.size)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	sum := sha256.Sum256(gz.Bytes())
	return &layer{
		gz:     gz.Bytes(),
		digest: v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(sum[:])},
		diffID: v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(diff.Sum(nil))},
	}, nil
}

// addParents writes the directory entries of dir and its parents that are
// not yet in the layer, outermost first.
func addParents(tw *tar.Writer, done map[string]bool, dir string) error {
	if dir == "/" || dir == "." || done[dir] {
		return nil
	}
	if err := addParents(tw, done, path.Dir(dir)); err != nil {
		return err
	}
	done[dir] = true
	return tw.WriteHeader(&tar.Header{
		Typeflag: tar.TypeDir,
		Name:     strings.TrimPrefix(dir, "/") + "/",
		Mode:     0o755,
		ModTime:  epoch,
		Format:   tar.FormatPAX,
	})
}

func (l *layer) Digest() (v1.Hash, error) { return l.digest, nil }
func (l *layer) DiffID() (v1.Hash, error) { return l.diffID, nil }
func (l *layer) Size() (int64, error)     { return int64(len(l.gz)), nil }

func (l *layer) MediaType() (types.MediaType, error) { return types.OCILayer, nil }

func (l *layer) Compressed() (io.ReadCloser, error) {
	return io.NopCloser(bytes.NewReader(l.gz)), nil
}

func (l *layer) Uncompressed() (io.ReadCloser, error) {
	return gzip.NewReader(bytes.NewReader(l.gz))
}
