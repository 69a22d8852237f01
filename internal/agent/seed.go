package agent

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"time"
)

// SeedStats counts what Seed copied.
type SeedStats struct {
	Files, Dirs, Links int
	Bytes              int64
	// Skipped lists what cannot be copied (devices, sockets, pipes).
	Skipped []string
}

// Seed copies src to dst without tar: a directory recursively (regular
// files, directories and symbolic links, with permission bits and
// modification times), or a single file. It runs in an init container as
// a non-root user, so ownership is not kept, directories get owner write
// (so the agent can sync into them later), and the mode of an existing dst
// directory (an emptyDir's mount point) is left alone. Files already in dst
// are replaced atomically; files only in dst are kept.
func Seed(src, dst string) (SeedStats, error) {
	var st SeedStats
	from, err := filepath.EvalSymlinks(src)
	if err != nil {
		return st, fmt.Errorf("seed %s: %w", src, err)
	}
	fi, err := os.Stat(from)
	if err != nil {
		return st, fmt.Errorf("seed %s: %w", src, err)
	}
	if fi.Mode().IsRegular() {
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return st, fmt.Errorf("seed %s: %w", src, err)
		}
		n, err := copyFile(from, dst, fi)
		st.Files, st.Bytes = 1, n
		if err != nil {
			return st, fmt.Errorf("seed %s: %w", src, err)
		}
		return st, nil
	}
	if !fi.IsDir() {
		return st, fmt.Errorf("seed %s: not a file or directory", src)
	}
	type dirMeta struct {
		path  string
		mode  fs.FileMode
		mtime time.Time
		root  bool
	}
	var dirs []dirMeta
	err = filepath.WalkDir(from, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(from, p)
		if err != nil {
			return err
		}
		to := filepath.Join(dst, rel)
		info, err := d.Info()
		if err != nil {
			return err
		}
		switch mode := info.Mode(); {
		case mode.IsDir():
			if err := os.MkdirAll(to, 0o700); err != nil {
				return err
			}
			dirs = append(dirs, dirMeta{to, mode.Perm() | 0o200, info.ModTime(), rel == "."})
			st.Dirs++
		case mode&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			if err := os.Remove(to); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return err
			}
			if err := os.Symlink(target, to); err != nil {
				return err
			}
			st.Links++
		case mode.IsRegular():
			n, err := copyFile(p, to, info)
			if err != nil {
				return err
			}
			st.Files++
			st.Bytes += n
		default:
			st.Skipped = append(st.Skipped, p)
		}
		return nil
	})
	if err != nil {
		return st, fmt.Errorf("seed %s: %w", src, err)
	}
	// Modes and times last, deepest first: a read-only directory must be
	// filled before it is closed, and filling it changes its time.
	for _, d := range slices.Backward(dirs) {
		if err := os.Chmod(d.path, d.mode); err != nil && !d.root {
			return st, fmt.Errorf("seed %s: %w", src, err)
		}
		if err := os.Chtimes(d.path, d.mtime, d.mtime); err != nil && !d.root {
			return st, fmt.Errorf("seed %s: %w", src, err)
		}
	}
	return st, nil
}

// copyFile copies src to dst through a temporary file in dst's directory,
// so dst is never seen half written (and a running binary is replaced, not
// overwritten).
func copyFile(src, dst string, fi fs.FileInfo) (int64, error) {
	in, err := os.Open(src)
	if err != nil {
		return 0, err
	}
	defer func() { _ = in.Close() }()
	var rnd [8]byte
	_, _ = rand.Read(rnd[:]) // never fails
	tmp := filepath.Join(filepath.Dir(dst), tmpPrefix+hex.EncodeToString(rnd[:]))
	out, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return 0, err
	}
	n, err := io.Copy(out, in) // copy_file_range where the kernel can
	if err == nil {
		err = out.Chmod(fi.Mode().Perm())
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chtimes(tmp, fi.ModTime(), fi.ModTime())
	}
	if err == nil {
		err = os.Rename(tmp, dst)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return n, err
	}
	return n, nil
}
