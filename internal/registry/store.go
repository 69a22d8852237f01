package registry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sync"
	"time"

	ggcr "github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Layout of the registry directory:
//
//	blobs/sha256/<hex>   layers, configs and manifests, by digest
//	uploads/             blobs being written (renamed into blobs/ when complete)
//	index.json           repositories: their manifests (digest → media type) and tags
const (
	blobsDir   = "blobs"
	uploadsDir = "uploads"
	indexFile  = "index.json"
)

// indexVersion is the version of index.json this code reads and writes.
const indexVersion = 1

// maxManifestSize bounds a manifest upload, as distribution does.
const maxManifestSize = 4 << 20

var (
	// ErrNotFound means a repository, tag or manifest is not in the registry.
	ErrNotFound = errors.New("not found in the registry")
	// ErrInvalidName means a repository name, tag or digest does not follow
	// the OCI distribution specification.
	ErrInvalidName = errors.New("invalid name")

	errNoRepo     = fmt.Errorf("repository %w", ErrNotFound)
	errNoManifest = fmt.Errorf("manifest %w", ErrNotFound)
)

var (
	repoPattern = regexp.MustCompile(`^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*)*$`)
	tagPattern  = regexp.MustCompile(`^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$`)
	hexPattern  = regexp.MustCompile(`^[a-f0-9]{64}$`)
)

func checkRepo(repo string) error {
	if len(repo) > 255 || !repoPattern.MatchString(repo) {
		return fmt.Errorf("repository %q: %w: use lower-case letters, digits and separators, e.g. hello/web", repo, ErrInvalidName)
	}
	return nil
}

// parseDigest parses a sha256 digest; it is the only algorithm stored.
func parseDigest(s string) (v1.Hash, error) {
	h, err := v1.NewHash(s)
	if err != nil || h.Algorithm != "sha256" || !hexPattern.MatchString(h.Hex) {
		return v1.Hash{}, fmt.Errorf("digest %q: %w: want sha256:<64 hex digits>", s, ErrInvalidName)
	}
	return h, nil
}

// index is the manifest index persisted as index.json.
type index struct {
	Version      int                    `json:"version"`
	Repositories map[string]*repository `json:"repositories"`
}

type repository struct {
	// Manifests maps a manifest digest to its media type.
	Manifests map[string]types.MediaType `json:"manifests"`
	// Tags maps a tag to a manifest digest.
	Tags map[string]string `json:"tags"`
}

// store keeps blobs as files named by digest and the manifest index in
// memory, writing it to index.json on every change. Every file is written to
// a temporary name, synced and renamed, so a crash leaves either the old or
// the new content.
//
// Every use of a blob is recorded, so that GC leaves alone the blobs a push
// has just found present or written, before its manifest refers to them.
type store struct {
	dir string
	now func() time.Time

	mu  sync.RWMutex // guards idx and index.json
	idx index

	usedMu sync.Mutex           // held while a blob is used or collected
	used   map[string]time.Time // blob hex digest → last use
}

func openStore(dir string, now func() time.Time) (*store, error) {
	for _, d := range []string{filepath.Join(dir, blobsDir, "sha256"), filepath.Join(dir, uploadsDir)} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, fmt.Errorf("open registry: %w", err)
		}
	}
	s := &store{
		dir:  dir,
		now:  now,
		idx:  index{Version: indexVersion, Repositories: map[string]*repository{}},
		used: map[string]time.Time{},
	}
	b, err := os.ReadFile(filepath.Join(dir, indexFile))
	if errors.Is(err, fs.ErrNotExist) {
		return s, nil
	}
	if err != nil {
		return nil, fmt.Errorf("open registry: %w", err)
	}
	if err := json.Unmarshal(b, &s.idx); err != nil {
		return nil, fmt.Errorf("open registry: read %s: %w: remove the directory to start with an empty registry", filepath.Join(dir, indexFile), err)
	}
	if s.idx.Version != indexVersion {
		return nil, fmt.Errorf("open registry: %s has version %d, this devctl reads version %d: remove the directory to start with an empty registry",
			filepath.Join(dir, indexFile), s.idx.Version, indexVersion)
	}
	if s.idx.Repositories == nil {
		s.idx.Repositories = map[string]*repository{}
	}
	return s, nil
}

func (s *store) blobPath(h v1.Hash) string {
	return filepath.Join(s.dir, blobsDir, h.Algorithm, h.Hex)
}

// Get, Stat and Put make the store a go-containerregistry blob handler. Blob
// deletion is not offered over HTTP: unreferenced blobs are removed by GC.
var (
	_ ggcr.BlobHandler     = (*store)(nil)
	_ ggcr.BlobStatHandler = (*store)(nil)
	_ ggcr.BlobPutHandler  = (*store)(nil)
)

// Get opens the blob h.
func (s *store) Get(_ context.Context, _ string, h v1.Hash) (io.ReadCloser, error) {
	if _, err := parseDigest(h.String()); err != nil {
		return nil, ggcr.ErrNotFound
	}
	s.usedMu.Lock()
	defer s.usedMu.Unlock()
	s.used[h.Hex] = s.now()
	f, err := os.Open(s.blobPath(h))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, ggcr.ErrNotFound
	}
	return f, err
}

// Stat returns the size of blob h. Blobs are verified when written and
// renamed into place whole, so the file's size is the blob's.
func (s *store) Stat(_ context.Context, _ string, h v1.Hash) (int64, error) {
	if _, err := parseDigest(h.String()); err != nil {
		return 0, ggcr.ErrNotFound
	}
	s.usedMu.Lock()
	defer s.usedMu.Unlock()
	s.used[h.Hex] = s.now()
	fi, err := os.Stat(s.blobPath(h))
	if errors.Is(err, fs.ErrNotExist) {
		return 0, ggcr.ErrNotFound
	}
	if err != nil {
		return 0, err
	}
	return fi.Size(), nil
}

// Put writes blob h from rc, which fails at its end when the content does
// not match h.
func (s *store) Put(_ context.Context, _ string, h v1.Hash, rc io.ReadCloser) error {
	defer func() { _ = rc.Close() }()
	if _, err := parseDigest(h.String()); err != nil {
		return err
	}
	err := s.writeFile(s.blobPath(h), func(w io.Writer) error {
		_, err := io.Copy(w, rc)
		return err
	})
	s.use(h)
	return err
}

// use records that blob h was just used.
func (s *store) use(h v1.Hash) {
	s.usedMu.Lock()
	s.used[h.Hex] = s.now()
	s.usedMu.Unlock()
}

// collect removes blob hex unless it was used or written since cutoff, and
// returns its size when it did. A blob is never removed between being found
// present (Stat, Get) and being referred to by a manifest within GCGrace.
func (s *store) collect(hex string, cutoff time.Time) (int64, bool, error) {
	s.usedMu.Lock()
	defer s.usedMu.Unlock()
	if t, ok := s.used[hex]; ok {
		if t.After(cutoff) {
			return 0, false, nil
		}
		delete(s.used, hex)
	}
	p := filepath.Join(s.dir, blobsDir, "sha256", hex)
	fi, err := os.Stat(p)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, err
	}
	if !fi.Mode().IsRegular() || fi.ModTime().After(cutoff) {
		return 0, false, nil
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return 0, false, err
	}
	return fi.Size(), true, nil
}

// putBytes writes b, whose digest is h, as a blob.
func (s *store) putBytes(h v1.Hash, b []byte) error {
	defer s.use(h)
	if _, err := os.Stat(s.blobPath(h)); err == nil {
		return nil
	}
	return s.writeFile(s.blobPath(h), func(w io.Writer) error {
		_, err := w.Write(b)
		return err
	})
}

// manifest reads the manifest blob h.
func (s *store) manifest(h v1.Hash) ([]byte, error) {
	s.use(h)
	return os.ReadFile(s.blobPath(h))
}

// writeFile writes path atomically: into a temporary file in uploads/ (same
// file system), synced, then renamed over path.
func (s *store) writeFile(path string, write func(io.Writer) error) error {
	f, err := os.CreateTemp(filepath.Join(s.dir, uploadsDir), "tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	err = write(f)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return err
	}
	return nil
}

// saveIndex writes index.json; s.mu must be held for writing.
func (s *store) saveIndex() error {
	b, err := json.MarshalIndent(s.idx, "", "  ")
	if err != nil {
		return err
	}
	if err := s.writeFile(filepath.Join(s.dir, indexFile), func(w io.Writer) error {
		_, err := w.Write(b)
		return err
	}); err != nil {
		return fmt.Errorf("save registry index: %w", err)
	}
	return nil
}

// resolve returns the digest and media type of ref (a tag or a digest) in
// repo.
func (s *store) resolve(repo, ref string) (v1.Hash, types.MediaType, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	r, ok := s.idx.Repositories[repo]
	if !ok {
		return v1.Hash{}, "", fmt.Errorf("%s: %w", repo, errNoRepo)
	}
	d := ref
	if t, ok := r.Tags[ref]; ok {
		d = t
	}
	mt, ok := r.Manifests[d]
	if !ok {
		return v1.Hash{}, "", fmt.Errorf("%s:%s: %w", repo, ref, errNoManifest)
	}
	h, err := parseDigest(d)
	return h, mt, err
}

// putManifest records the manifest with digest h (already stored as a blob)
// in repo, tagged tag unless tag is empty.
func (s *store) putManifest(repo, tag string, h v1.Hash, mt types.MediaType) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.idx.Repositories[repo]
	if !ok {
		r = &repository{Manifests: map[string]types.MediaType{}, Tags: map[string]string{}}
		s.idx.Repositories[repo] = r
	}
	if r.Manifests[h.String()] == mt && (tag == "" || r.Tags[tag] == h.String()) {
		return nil
	}
	r.Manifests[h.String()] = mt
	if tag != "" {
		r.Tags[tag] = h.String()
	}
	return s.saveIndex()
}

// hasManifest reports whether repo holds the manifest h.
func (s *store) hasManifest(repo string, h v1.Hash) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	r, ok := s.idx.Repositories[repo]
	if !ok {
		return false
	}
	_, ok = r.Manifests[h.String()]
	return ok
}

// deleteRef removes a tag, or a manifest with every tag pointing at it. A
// tag's manifest goes too when no other tag points at it, so that deleting
// what was pushed as repo:tag leaves nothing behind but blobs for GC.
func (s *store) deleteRef(repo, ref string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.idx.Repositories[repo]
	if !ok {
		return fmt.Errorf("%s: %w", repo, errNoRepo)
	}
	d, isTag := r.Tags[ref]
	if isTag {
		delete(r.Tags, ref)
		if slices.Contains(slices.Collect(maps.Values(r.Tags)), d) {
			return s.saveIndex()
		}
	} else {
		d = ref
		if _, ok := r.Manifests[d]; !ok {
			return fmt.Errorf("%s@%s: %w", repo, ref, errNoManifest)
		}
	}
	delete(r.Manifests, d)
	for t, td := range r.Tags {
		if td == d {
			delete(r.Tags, t)
		}
	}
	if len(r.Manifests) == 0 {
		delete(s.idx.Repositories, repo)
	}
	return s.saveIndex()
}

// deleteRepos removes the repositories named prefix or under prefix/ and
// returns their names.
func (s *store) deleteRepos(prefix string) ([]string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var gone []string
	for name := range s.idx.Repositories {
		if name == prefix || len(name) > len(prefix) && name[:len(prefix)+1] == prefix+"/" {
			gone = append(gone, name)
			delete(s.idx.Repositories, name)
		}
	}
	if len(gone) == 0 {
		return nil, nil
	}
	slices.Sort(gone)
	return gone, s.saveIndex()
}

// repos returns the repository names, sorted.
func (s *store) repos() []string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return slices.Sorted(maps.Keys(s.idx.Repositories))
}

// tags returns the tags of repo, sorted.
func (s *store) tags(repo string) ([]string, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	r, ok := s.idx.Repositories[repo]
	if !ok {
		return nil, fmt.Errorf("%s: %w", repo, errNoRepo)
	}
	return slices.Sorted(maps.Keys(r.Tags)), nil
}

// manifestDigests returns every manifest digest of every repository.
func (s *store) manifestDigests() []string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var ds []string
	for _, r := range s.idx.Repositories {
		for d := range r.Manifests {
			ds = append(ds, d)
		}
	}
	return ds
}
