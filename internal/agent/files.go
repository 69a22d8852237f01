package agent

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
)

// tmpPrefix starts the name of a file being received; such names cannot be
// synced.
const tmpPrefix = ".devctl-sync-"

// OverridePath is where the synced copy of the entrypoint argv0 is kept
// under appDir: /devctl/app + /hello = /devctl/app/hello.
func OverridePath(appDir, argv0 string) string {
	return filepath.Join(appDir, filepath.FromSlash(strings.TrimPrefix(path.Clean(argv0), "/")))
}

// destinations maps the container paths a sync may write to the directories
// the agent writes them in. Every file operation goes through an os.Root, so
// a symbolic link in a synced directory cannot lead a write outside it.
type destinations struct {
	dirs  []dirDest // longest first
	entry string    // the entrypoint path, "" if it cannot be synced
	app   *os.Root  // holds the synced entrypoint
	name  string    // the entrypoint's name under app
}

type dirDest struct {
	dir  string
	root *os.Root
}

// target is one resolved path: name inside root.
type target struct {
	root *os.Root
	name string
}

// openDestinations opens the synced directories, which must exist, and,
// when argv0 is an absolute path outside them, appDir for the entrypoint.
func openDestinations(syncDirs []string, argv0, appDir string) (*destinations, error) {
	d := &destinations{}
	for _, dir := range syncDirs {
		if !path.IsAbs(dir) || path.Clean(dir) != dir || dir == "/" {
			d.close()
			return nil, fmt.Errorf("sync directory %q: want a clean absolute path other than /", dir)
		}
		r, err := os.OpenRoot(dir)
		if err != nil {
			d.close()
			return nil, fmt.Errorf("sync directory: %w (the chart mounts an emptyDir there in live mode)", err)
		}
		d.dirs = append(d.dirs, dirDest{dir: dir, root: r})
	}
	slices.SortFunc(d.dirs, func(a, b dirDest) int { return len(b.dir) - len(a.dir) })
	if appDir != "" && path.IsAbs(argv0) && path.Clean(argv0) == argv0 && d.dir(argv0) == nil {
		if err := os.MkdirAll(appDir, 0o755); err != nil {
			d.close()
			return nil, fmt.Errorf("entrypoint directory: %w", err)
		}
		r, err := os.OpenRoot(appDir)
		if err != nil {
			d.close()
			return nil, fmt.Errorf("entrypoint directory: %w", err)
		}
		d.entry, d.app, d.name = argv0, r, strings.TrimPrefix(argv0, "/")
	}
	return d, nil
}

func (d *destinations) dir(p string) *dirDest {
	for i := range d.dirs {
		if strings.HasPrefix(p, d.dirs[i].dir+"/") {
			return &d.dirs[i]
		}
	}
	return nil
}

// resolve maps a container path to where it is written.
func (d *destinations) resolve(p string) (target, error) {
	if !path.IsAbs(p) || path.Clean(p) != p {
		return target{}, fmt.Errorf("%w: %q is not a clean absolute path", ErrPathNotAllowed, p)
	}
	if strings.HasPrefix(path.Base(p), tmpPrefix) {
		return target{}, fmt.Errorf("%w: %q: names starting with %s are the agent's", ErrPathNotAllowed, p, tmpPrefix)
	}
	if d.entry != "" && p == d.entry {
		return target{root: d.app, name: d.name}, nil
	}
	if dd := d.dir(p); dd != nil {
		return target{root: dd.root, name: p[len(dd.dir)+1:]}, nil
	}
	allowed := make([]string, 0, len(d.dirs)+1)
	for _, dd := range d.dirs {
		allowed = append(allowed, dd.dir+"/")
	}
	if d.entry != "" {
		allowed = append(allowed, d.entry)
	}
	slices.Sort(allowed)
	return target{}, fmt.Errorf("%w: %s (synced: %s)", ErrPathNotAllowed, p, strings.Join(allowed, ", "))
}

func (d *destinations) close() {
	for _, dd := range d.dirs {
		_ = dd.root.Close()
	}
	if d.app != nil {
		_ = d.app.Close()
	}
}

// staged is a received file waiting to be renamed into place.
type staged struct {
	t   target
	tmp string
}

// stage writes r, which must hold exactly size bytes, to a new temporary
// file beside t, with mode, and syncs it to disk. Nothing a reader of t can
// see changes until commit.
func stage(t target, mode fs.FileMode, size int64, r io.Reader, buf []byte) (staged, error) {
	dir := path.Dir(t.name)
	if dir != "." {
		if err := t.root.MkdirAll(dir, 0o755); err != nil {
			return staged{}, fmt.Errorf("create directory: %w", err)
		}
	}
	var rnd [8]byte
	_, _ = rand.Read(rnd[:]) // never fails
	tmp := path.Join(dir, tmpPrefix+hex.EncodeToString(rnd[:]))
	f, err := t.root.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return staged{}, err
	}
	s := staged{t: t, tmp: tmp}
	err = func() error {
		// Hide ReadFrom so the copy uses buf, not a 32 KiB buffer of its own.
		n, err := io.CopyBuffer(struct{ io.Writer }{f}, io.LimitReader(r, size), buf)
		if err != nil {
			return err
		}
		if n != size {
			return fmt.Errorf("%w: the file's part ended after %d of %d bytes", ErrBadRequest, n, size)
		}
		if m, _ := r.Read(buf[:1]); m > 0 {
			return fmt.Errorf("%w: the file's part is longer than its size %d", ErrBadRequest, size)
		}
		if err := f.Chmod(mode); err != nil {
			return err
		}
		return f.Sync()
	}()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		s.discard()
		return staged{}, err
	}
	return s, nil
}

func (s staged) commit() error { return s.t.root.Rename(s.tmp, s.t.name) }

func (s staged) discard() { _ = s.t.root.Remove(s.tmp) }

// remove deletes t and everything under it; a missing t is not an error.
func remove(t target) error {
	err := t.root.RemoveAll(t.name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}

// escapes reports whether err is os.Root refusing a path that leaves the
// root through a symbolic link or "..". The os package does not export
// that error.
func escapes(err error) bool {
	for ; err != nil; err = errors.Unwrap(err) {
		if err.Error() == "path escapes from parent" {
			return true
		}
	}
	return false
}

// fileMode turns a manifest mode into permission bits.
func fileMode(m uint32) (fs.FileMode, error) {
	if m == 0 {
		return 0o644, nil
	}
	if m&^0o777 != 0 {
		return 0, fmt.Errorf("%w: mode %#o: only permission bits (0o777) can be set", ErrBadRequest, m)
	}
	return fs.FileMode(m), nil
}
