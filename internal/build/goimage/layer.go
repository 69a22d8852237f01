package goimage

import (
	"archive/tar"
	"bytes"
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
	"github.com/klauspost/compress/gzip"
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
	dir     bool // a directory entry (content and size unused)
}

// layer is a tar layer held in memory, gzip-compressed or not; its digests
// are computed once, while it is written.
type layer struct {
	blob      []byte // what is pushed: the tar, or the gzip of it
	digest    v1.Hash
	diffID    v1.Hash
	mediaType types.MediaType
}

var _ v1.Layer = (*layer)(nil)

// newLayer writes files, with their parent directories, into a layer,
// gzip-compressed at level unless it is NoCompression. All entries belong to
// root and carry the epoch time. The output is the same for the same files
// (and version of the compressor).
func newLayer(level int, files ...file) (*layer, error) {
	var blob bytes.Buffer
	diff := sha256.New()
	var zw *gzip.Writer
	w := io.MultiWriter(&blob, diff)
	if level != NoCompression {
		var err error
		if zw, err = gzip.NewWriterLevel(&blob, level); err != nil {
			return nil, err
		}
		w = io.MultiWriter(zw, diff)
	}
	tw := tar.NewWriter(w)
	dirs := map[string]bool{}
	for _, f := range files {
		if f.dir {
			if err := addParents(tw, dirs, f.path); err != nil {
				return nil, err
			}
			continue
		}
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
	l := &layer{
		blob:      blob.Bytes(),
		diffID:    v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(diff.Sum(nil))},
		mediaType: types.OCIUncompressedLayer,
	}
	if zw == nil {
		l.digest = l.diffID
		return l, nil
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	l.blob = blob.Bytes()
	sum := sha256.Sum256(l.blob)
	l.digest = v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(sum[:])}
	l.mediaType = types.OCILayer
	return l, nil
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

func (l *layer) Digest() (v1.Hash, error)            { return l.digest, nil }
func (l *layer) DiffID() (v1.Hash, error)            { return l.diffID, nil }
func (l *layer) Size() (int64, error)                { return int64(len(l.blob)), nil }
func (l *layer) MediaType() (types.MediaType, error) { return l.mediaType, nil }

func (l *layer) Compressed() (io.ReadCloser, error) {
	return io.NopCloser(bytes.NewReader(l.blob)), nil
}

func (l *layer) Uncompressed() (io.ReadCloser, error) {
	if l.mediaType == types.OCIUncompressedLayer {
		return io.NopCloser(bytes.NewReader(l.blob)), nil
	}
	return gzip.NewReader(bytes.NewReader(l.blob))
}
