package watch

import (
	"cmp"
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/go-git/go-git/v5/plumbing/format/gitignore"
)

// dirState is a watched folder.
type dirState struct {
	// live lists the roots (by index) that see this folder; empty for a
	// folder watched only because a root's folder lies below it.
	live []int
	// inherited holds the .gitignore patterns from the folders above; git
	// adds this folder's own, and applies to its entries.
	inherited, git []gitignore.Pattern
	// subdirs holds the names of the subfolders, watched or not, so that a
	// removal can tell a folder from a file.
	subdirs map[string]struct{}
	gen     int
}

// syncAll walks every root, watching what the roots see and forgetting
// what they no longer see. Roots nested in others are reached from the
// outer one's walk.
func (w *Watcher) syncAll(ctx context.Context) error {
	w.gen++
	order := make([]int, len(w.roots))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return cmp.Compare(len(w.roots[a].dir), len(w.roots[b].dir)) })
	for _, i := range order {
		dir := w.roots[i].dir
		if ds := w.dirs[dir]; ds != nil && ds.gen == w.gen {
			continue
		}
		inherited, err := inheritedGitignore(dir)
		if err != nil {
			w.log.Warn("read .gitignore files above a root", logPath, dir, logErr, err)
		}
		if err := w.sync(ctx, dir, w.anchored(dir), inherited, nil); err != nil {
			return err
		}
	}
	for dir, ds := range w.dirs {
		if ds.gen != w.gen {
			w.remove(dir)
		}
	}
	return nil
}

// sync watches dir for the roots in live, reads its .gitignore, and does
// the same for each subfolder that a root sees or that leads to a root's
// folder; subfolders that are gone or no longer seen are forgotten. With
// report set, every entry found is reported to the roots that see it: the
// folder is new, and files written before its watch was added would
// otherwise go unnoticed.
func (w *Watcher) sync(ctx context.Context, dir string, live []int, inherited []gitignore.Pattern, report func(r int, p string)) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	ds := w.dirs[dir]
	if ds == nil {
		ok, err := w.addWatch(ctx, dir)
		if !ok {
			return err
		}
		ds = &dirState{}
		w.dirs[dir] = ds
	}
	if len(w.anchored(dir)) > 0 && gitIgnored(inherited, dir, true) {
		// A root in an ignored folder: the rules that ignore its folder
		// would hide everything in it.
		inherited = slices.DeleteFunc(slices.Clone(inherited), func(p gitignore.Pattern) bool {
			return p.Match(splitPath(dir), true) == gitignore.Exclude
		})
	}
	ds.live, ds.inherited, ds.gen = live, inherited, w.gen
	own, err := readGitignore(dir)
	if err != nil {
		w.log.Warn("read .gitignore", logPath, dir, logErr, err)
	}
	ds.git = inherited
	if len(own) > 0 {
		ds.git = slices.Concat(inherited, own)
	}

	entries, err := os.ReadDir(dir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
			w.remove(dir)
		} else {
			w.log.Warn("read folder", logPath, dir, logErr, err)
		}
		return nil
	}
	var subdirs map[string]struct{}
	for _, e := range entries {
		p := filepath.Join(dir, e.Name())
		isDir := e.IsDir()
		if report != nil {
			for _, r := range w.visible(ds, p, isDir) {
				report(r, p)
			}
		}
		if !isDir {
			continue
		}
		if subdirs == nil {
			subdirs = map[string]struct{}{}
		}
		subdirs[e.Name()] = struct{}{}
		if sub, ok := w.watchable(ds, p); ok {
			if err := w.sync(ctx, p, sub, ds.git, report); err != nil {
				return err
			}
		} else if w.dirs[p] != nil {
			w.remove(p)
		}
	}
	for name := range ds.subdirs {
		if _, ok := subdirs[name]; !ok {
			w.remove(filepath.Join(dir, name))
		}
	}
	ds.subdirs = subdirs
	return nil
}

// addWatch watches dir. It returns false without an error for a folder
// that vanished or cannot be read, which is skipped.
func (w *Watcher) addWatch(ctx context.Context, dir string) (bool, error) {
	err := w.n.Add(dir)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, fs.ErrNotExist), errors.Is(err, syscall.ENOTDIR):
		return false, nil // its removal is reported by its parent
	case errors.Is(err, syscall.ENOSPC):
		return false, w.watchLimitError(ctx)
	case errors.Is(err, fs.ErrPermission):
		w.log.Warn("cannot watch folder", logPath, dir, logErr, err)
		return false, nil
	default:
		return false, err
	}
}

// remove forgets dir and everything below it.
func (w *Watcher) remove(dir string) {
	ds := w.dirs[dir]
	if ds == nil {
		return
	}
	for name := range ds.subdirs {
		w.remove(filepath.Join(dir, name))
	}
	delete(w.dirs, dir)
	// The kernel drops the watch of a deleted folder by itself; fsnotify
	// then answers ErrNonExistentWatch.
	if err := w.n.Remove(dir); err != nil && !errors.Is(err, fsnotify.ErrNonExistentWatch) {
		w.log.Debug("unwatch", logPath, dir, logErr, err)
	}
}

// anchored returns the roots whose folder is dir.
func (w *Watcher) anchored(dir string) []int {
	var rs []int
	for i, r := range w.roots {
		if r.dir == dir {
			rs = append(rs, i)
		}
	}
	return rs
}

// anchorBelow reports whether a root's folder lies below dir.
func (w *Watcher) anchorBelow(dir string) bool {
	prefix := dir + string(filepath.Separator)
	for _, r := range w.roots {
		if strings.HasPrefix(r.dir, prefix) {
			return true
		}
	}
	return false
}

// rel returns p relative to root r's folder, slash-separated.
func (w *Watcher) rel(r int, p string) string {
	rel, err := filepath.Rel(w.roots[r].dir, p)
	if err != nil {
		return filepath.ToSlash(p)
	}
	return filepath.ToSlash(rel)
}

// visible returns the roots, among those that see folder ds, that see its
// entry p.
func (w *Watcher) visible(ds *dirState, p string, isDir bool) []int {
	if len(ds.live) == 0 || filepath.Base(p) == gitDir || gitIgnored(ds.git, p, isDir) {
		return nil
	}
	rs := ds.live
	for i, r := range ds.live {
		if !w.dockerHides(r, p) {
			continue
		}
		// Copy on the first root that does not see p.
		rs = slices.Clone(ds.live[:i])
		for _, r := range ds.live[i+1:] {
			if !w.dockerHides(r, p) {
				rs = append(rs, r)
			}
		}
		break
	}
	return rs
}

func (w *Watcher) dockerHides(r int, p string) bool {
	root := w.roots[r]
	if root.docker == nil {
		return false
	}
	rel := w.rel(r, p)
	if root.dockerignore && rel == dockerignoreFile {
		return false
	}
	return dockerIgnored(root.docker, rel)
}

// watchable returns the roots that see the subfolder p of folder ds, and
// whether p is to be watched: some root sees it, or it leads to a root's
// folder.
func (w *Watcher) watchable(ds *dirState, p string) ([]int, bool) {
	if filepath.Base(p) == gitDir {
		return nil, false
	}
	var live []int
	if !gitIgnored(ds.git, p, true) {
		for _, r := range ds.live {
			if root := w.roots[r]; root.docker == nil || !dockerPrunes(root.docker, w.rel(r, p)) {
				live = append(live, r)
			}
		}
	}
	live = append(live, w.anchored(p)...)
	return live, len(live) > 0 || w.anchorBelow(p)
}

// handle records one fsnotify event: the roots that see its path get it as
// a change, new folders are watched and scanned, removed ones forgotten,
// and edited ignore files applied.
func (w *Watcher) handle(ctx context.Context, s *state, ev fsnotify.Event, now time.Time) error {
	if ev.Name == "" {
		return nil // a FakeNotifier barrier
	}
	touched := false
	report := func(r int, p string) {
		if s.pending == nil {
			s.pending = newChanges(len(w.roots), now)
		}
		s.pending.add(r, w.rel(r, p))
		touched = true
	}
	defer func() {
		if touched {
			w.touch(s, now)
		}
	}()

	p := filepath.Clean(ev.Name)
	dir, name := filepath.Split(p)
	dir = filepath.Clean(dir)
	parent := w.dirs[dir]
	if parent == nil {
		// A watched folder whose parent is not watched (a root's folder)
		// was removed or moved away.
		if ds := w.dirs[p]; ds != nil && ev.Has(fsnotify.Remove|fsnotify.Rename) {
			for _, r := range w.anchored(p) {
				report(r, p)
			}
			w.log.Warn("watched folder went away", logPath, p)
			w.remove(p)
		}
		return nil
	}

	_, wasDir := parent.subdirs[name]
	isDir, exists := wasDir, false
	if !ev.Has(fsnotify.Remove | fsnotify.Rename) {
		if fi, err := os.Lstat(p); err == nil {
			isDir, exists = fi.IsDir(), true
		}
	}
	for _, r := range w.visible(parent, p, isDir) {
		rel := w.rel(r, p)
		first := s.pending == nil || !s.pending.has(r, rel)
		report(r, p)
		s.pending.saw(r, rel, ev.Op, first)
	}
	switch {
	case exists && isDir:
		if parent.subdirs == nil {
			parent.subdirs = map[string]struct{}{}
		}
		parent.subdirs[name] = struct{}{}
		if w.dirs[p] != nil {
			break // already found by a scan
		}
		if live, ok := w.watchable(parent, p); ok {
			if err := w.sync(ctx, p, live, parent.git, report); err != nil {
				return err
			}
		}
	case wasDir:
		// Removed, moved away, or replaced by a file. Forgetting it before
		// a move's Create arrives keeps fsnotify from reusing the old watch
		// (and its old path) for the new name.
		delete(parent.subdirs, name)
		w.remove(p)
	}
	return w.reloadIgnores(ctx, dir, name)
}

// reloadIgnores applies an edited .gitignore or .dockerignore in dir: the
// folders below are walked again, watched or forgotten as the new rules say.
func (w *Watcher) reloadIgnores(ctx context.Context, dir, name string) error {
	ds := w.dirs[dir]
	switch {
	case ds == nil:
		return nil
	case name == gitignoreFile:
	case name == dockerignoreFile:
		reload := false
		for i, r := range w.roots {
			if r.dir != dir || !r.dockerignore {
				continue
			}
			pm, err := dockerMatcher(r.dir, true, r.extra)
			if err != nil {
				w.log.Warn("keeping the previous ignore rules", logPath, filepath.Join(dir, name), logErr, err)
				continue
			}
			w.roots[i].docker, reload = pm, true
		}
		if !reload {
			return nil
		}
	default:
		return nil
	}
	return w.sync(ctx, dir, ds.live, ds.inherited, nil)
}
