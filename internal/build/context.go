package build

import (
	"archive/tar"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"
)

// dockerignoreFile is the name of the ignore file read from the context root.
const dockerignoreFile = ".dockerignore"

// hashFormat prefixes the hashed manifest; bump it when the format changes so
// old tags are not reused for differently hashed contexts.
const hashFormat = "devctl-context-v1"

// entry is one file, directory or symlink of a build context, as sent to the
// engine.
type entry struct {
	rel    string      // slash-separated path inside the context
	abs    string      // path on disk
	mode   fs.FileMode // type and permission bits
	size   int64       // regular files only
	digest string      // sha256 of the content, regular files only
	link   string      // symlink target
}

// contextFiles walks contextDir the way the Docker CLI builds a context
// archive: paths matched by .dockerignore are left out (honouring "!"
// exceptions), the Dockerfile and .dockerignore are always sent, sockets and
// devices are skipped. Entries come in lexical order and, for regular files,
// carry the digest of their content.
func contextFiles(contextDir, dockerfile string) ([]entry, error) {
	root, err := filepath.Abs(contextDir)
	if err != nil {
		return nil, fmt.Errorf("build context %q: %w", contextDir, err)
	}
	if fi, err := os.Stat(root); err != nil || !fi.IsDir() {
		return nil, fmt.Errorf("build context %q is not a directory: check services[].context in devctl.yaml", contextDir)
	}
	df, err := resolveDockerfile(root, dockerfile)
	if err != nil {
		return nil, err
	}
	pm, err := readDockerignore(root)
	if err != nil {
		return nil, err
	}
	always := []string{df, dockerignoreFile}

	var entries []entry
	parents := map[string]patternmatcher.MatchInfo{}
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == root {
			return nil
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)

		excluded := false
		if pm != nil {
			var info patternmatcher.MatchInfo
			excluded, info, err = pm.MatchesUsingParentResults(rel, parents[path.Dir(rel)])
			if err != nil {
				return fmt.Errorf("match %s against %s: %w", rel, dockerignoreFile, err)
			}
			if d.IsDir() {
				parents[rel] = info
			}
		}
		if excluded && !slices.Contains(always, rel) {
			if d.IsDir() && !mayIncludeBelow(pm, always, rel) {
				return filepath.SkipDir
			}
			return nil
		}

		fi, err := d.Info()
		if err != nil {
			return err
		}
		e := entry{rel: rel, abs: p, mode: fi.Mode()}
		switch {
		case fi.Mode().IsRegular():
			e.size = fi.Size() // digested below, in parallel
		case fi.Mode()&fs.ModeSymlink != 0:
			if e.link, err = os.Readlink(p); err != nil {
				return err
			}
		case fi.IsDir():
		default: // sockets, pipes and devices are not sent
			return nil
		}
		entries = append(entries, e)
		return nil
	})
	if err == nil {
		err = digestFiles(entries)
	}
	if err != nil {
		return nil, fmt.Errorf("read build context %q: %w", contextDir, err)
	}
	return entries, nil
}

// digestFiles fills in the digest of every regular file, reading files on
// one goroutine per CPU.
func digestFiles(entries []entry) error {
	jobs := make(chan *entry)
	errs := make(chan error, 1)
	var wg sync.WaitGroup
	for range runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			buf := make([]byte, 64<<10)
			for e := range jobs {
				d, err := fileDigest(e.abs, buf)
				if err != nil {
					select {
					case errs <- err:
					default:
					}
					continue
				}
				e.digest = d
			}
		})
	}
	for i := range entries {
		if entries[i].mode.IsRegular() {
			jobs <- &entries[i]
		}
	}
	close(jobs)
	wg.Wait()
	select {
	case err := <-errs:
		return err
	default:
		return nil
	}
}

// resolveDockerfile returns the Dockerfile's slash path relative to the
// context root, checking that it exists.
func resolveDockerfile(root, dockerfile string) (string, error) {
	df, err := dockerfileRel(root, dockerfile)
	if err != nil {
		return "", err
	}
	p := filepath.Join(root, filepath.FromSlash(df))
	if fi, err := os.Stat(p); err != nil || !fi.Mode().IsRegular() {
		return "", fmt.Errorf("%s: %w", p, ErrDockerfileNotFound)
	}
	return df, nil
}

// dockerfileRel returns the Dockerfile's slash path relative to the context
// root; the Dockerfile has to be inside the context.
func dockerfileRel(root, dockerfile string) (string, error) {
	if dockerfile == "" {
		dockerfile = "Dockerfile"
	}
	p := dockerfile
	if !filepath.IsAbs(p) {
		p = filepath.Join(root, p)
	}
	rel, err := filepath.Rel(root, p)
	if err != nil || rel == "." || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return "", fmt.Errorf("dockerfile %q is outside the build context %q: move it into the context or change services[].context in devctl.yaml", dockerfile, root)
	}
	return filepath.ToSlash(rel), nil
}

func readDockerignore(root string) (*patternmatcher.PatternMatcher, error) {
	f, err := os.Open(filepath.Join(root, dockerignoreFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer func() { _ = f.Close() }()
	patterns, err := ignorefile.ReadAll(f)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", f.Name(), err)
	}
	if len(patterns) == 0 {
		return nil, nil
	}
	pm, err := patternmatcher.New(patterns)
	if err != nil {
		return nil, fmt.Errorf("%s: %w: fix the pattern", f.Name(), err)
	}
	return pm, nil
}

// mayIncludeBelow reports whether an excluded directory can still hold files
// that are sent: an always-sent file below it, or a "!" exception naming a
// path below it. Like the Docker CLI, only literal exception prefixes are
// considered.
func mayIncludeBelow(pm *patternmatcher.PatternMatcher, always []string, dir string) bool {
	prefix := dir + "/"
	for _, a := range always {
		if strings.HasPrefix(a, prefix) {
			return true
		}
	}
	for _, p := range pm.Patterns() {
		if p.Exclusion() && strings.HasPrefix(filepath.ToSlash(p.String())+"/", prefix) {
			return true
		}
	}
	return false
}

func fileDigest(p string, buf []byte) (string, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", err
	}
	defer func() { _ = f.Close() }()
	h := sha256.New()
	// Hide (*os.File).WriteTo, which would ignore buf and allocate its own.
	if _, err := io.CopyBuffer(h, struct{ io.Reader }{f}, buf); err != nil {
		return "", fmt.Errorf("read %s: %w", p, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// hashEntries digests the manifest of a context: path, type and permission
// bits, and content digest or symlink target of every entry, in order.
// Modification times and owners are left out, as they are not sent.
func hashEntries(entries []entry) string {
	h := sha256.New()
	fmt.Fprint(h, hashFormat+"\x00")
	for _, e := range entries {
		target := e.digest
		if e.mode&fs.ModeSymlink != 0 {
			target = e.link
		}
		fmt.Fprintf(h, "%s\x00%s\x00%s\x00", e.rel, strconv.FormatUint(uint64(e.mode), 8), target)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// ContextHash returns the sha256 (hex) of the build context that would be sent
// to the engine for contextDir and dockerfile (relative to contextDir unless
// absolute): the files left after .dockerignore, plus the Dockerfile, with
// their paths, modes, contents and symlink targets. The same tree always gives
// the same hash.
func ContextHash(contextDir, dockerfile string) (string, error) {
	entries, err := contextFiles(contextDir, dockerfile)
	if err != nil {
		return "", err
	}
	return hashEntries(entries), nil
}

// contextEpoch is the modification time written for every archive entry, so
// that the same tree gives the same archive and the same image layers.
var contextEpoch = time.Unix(0, 0).UTC()

// writeContextTar writes entries as a tar stream owned by root:root. A file
// whose content no longer matches its digest fails the stream, so the image
// never carries a hash label for different files.
func writeContextTar(w io.Writer, entries []entry) error {
	tw := tar.NewWriter(w)
	for _, e := range entries {
		hdr := &tar.Header{
			Name:    e.rel,
			Mode:    int64(e.mode.Perm()),
			ModTime: contextEpoch,
			Format:  tar.FormatPAX,
		}
		if e.mode&fs.ModeSetuid != 0 {
			hdr.Mode |= 0o4000
		}
		if e.mode&fs.ModeSetgid != 0 {
			hdr.Mode |= 0o2000
		}
		if e.mode&fs.ModeSticky != 0 {
			hdr.Mode |= 0o1000
		}
		switch {
		case e.mode.IsDir():
			hdr.Typeflag = tar.TypeDir
			hdr.Name += "/"
		case e.mode&fs.ModeSymlink != 0:
			hdr.Typeflag = tar.TypeSymlink
			hdr.Linkname = e.link
		default:
			hdr.Typeflag = tar.TypeReg
			hdr.Size = e.size
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return fmt.Errorf("write %s to context archive: %w", e.rel, err)
		}
		if hdr.Typeflag == tar.TypeReg {
			if err := copyVerified(tw, e); err != nil {
				return err
			}
		}
	}
	return tw.Close()
}

func copyVerified(w io.Writer, e entry) error {
	f, err := os.Open(e.abs)
	if err != nil {
		return err
	}
	defer func() { _ = f.Close() }()
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(w, h), io.LimitReader(f, e.size))
	if err != nil {
		return fmt.Errorf("write %s to context archive: %w", e.rel, err)
	}
	if n != e.size || hex.EncodeToString(h.Sum(nil)) != e.digest {
		return fmt.Errorf("%s changed while the build context was sent: build again", e.abs)
	}
	return nil
}
