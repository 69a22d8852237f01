package registry

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// GCGrace is how old an unreferenced blob or an abandoned upload must be
// before GC removes it, so that a push by another client, which uploads its
// blobs before the manifest that refers to them, is left alone.
const GCGrace = 10 * time.Minute

// Delete removes ref's manifest and tags: <repository>:<tag> removes the tag,
// and the manifest unless another tag points at it; <repository>@<digest>
// removes the manifest and every tag pointing at it. ref may be prefixed
// with one of the registry's Names. Blobs stay until GC.
func (r *Registry) Delete(_ context.Context, ref string) error {
	repo, id, err := r.splitRef(ref)
	if err != nil {
		return fmt.Errorf("delete %s: %w", ref, err)
	}
	if err := r.store.deleteRef(repo, id); err != nil {
		return fmt.Errorf("delete %s: %w", ref, err)
	}
	return nil
}

// DeleteRepositories removes the repository prefix and those under prefix/
// (hello removes hello, hello/web and hello/worker, not hello-old) with all
// their manifests and tags, and returns their names. Blobs stay until GC.
func (r *Registry) DeleteRepositories(_ context.Context, prefix string) ([]string, error) {
	if err := checkRepo(prefix); err != nil {
		return nil, fmt.Errorf("delete repositories: %w", err)
	}
	gone, err := r.store.deleteRepos(prefix)
	if err != nil {
		return nil, fmt.Errorf("delete repositories %s: %w", prefix, err)
	}
	return gone, nil
}

// splitRef returns the repository and the tag or digest of ref.
func (r *Registry) splitRef(ref string) (repo, id string, err error) {
	const local = "localhost"
	parsed, err := parseRef(ref, local)
	if err != nil {
		return "", "", err
	}
	if reg := parsed.Context().RegistryStr(); reg != local && !r.isName(reg) {
		return "", "", fmt.Errorf("registry %s: %w", reg, ErrOtherRegistry)
	}
	return parsed.Context().RepositoryStr(), parsed.Identifier(), nil
}

func (r *Registry) isName(reg string) bool {
	if slices.Contains(r.Names(), reg) {
		return true
	}
	for _, a := range r.Addrs() {
		if a.String() == reg {
			return true
		}
	}
	return false
}

// GCResult says what GC removed.
type GCResult struct {
	Blobs int   // unreferenced blobs removed
	Bytes int64 // their size
}

// GC removes the blobs no manifest refers to, and abandoned uploads, once
// they are older than GCGrace and were not used for as long. It runs beside
// requests and pushes: a blob a push has found present or written is kept.
func (r *Registry) GC(ctx context.Context) (GCResult, error) {
	var res GCResult
	keep, err := r.referenced()
	if err != nil {
		return res, fmt.Errorf("registry gc: %w", err)
	}
	cutoff := r.now().Add(-GCGrace)
	entries, err := os.ReadDir(filepath.Join(r.store.dir, blobsDir, "sha256"))
	if err != nil {
		return res, fmt.Errorf("registry gc: %w", err)
	}
	for _, e := range entries {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		if keep[e.Name()] || !hexPattern.MatchString(e.Name()) {
			continue
		}
		size, removed, err := r.store.collect(e.Name(), cutoff)
		if err != nil {
			return res, fmt.Errorf("registry gc: %w", err)
		}
		if removed {
			res.Blobs++
			res.Bytes += size
		}
	}

	uploads := filepath.Join(r.store.dir, uploadsDir)
	entries, err = os.ReadDir(uploads)
	if err != nil {
		return res, fmt.Errorf("registry gc: %w", err)
	}
	for _, e := range entries {
		if fi, err := e.Info(); err == nil && fi.Mode().IsRegular() && fi.ModTime().Before(cutoff) {
			_ = os.Remove(filepath.Join(uploads, e.Name()))
		}
	}
	r.log.Debug("registry gc", "blobs", res.Blobs, "bytes", res.Bytes)
	return res, nil
}

// referenced returns the hex digests of every manifest in the index and of
// the blobs they refer to.
func (r *Registry) referenced() (map[string]bool, error) {
	keep := map[string]bool{}
	for _, d := range r.store.manifestDigests() {
		h, err := parseDigest(d)
		if err != nil {
			return nil, err
		}
		keep[h.Hex] = true
		b, err := r.store.manifest(h)
		if err != nil {
			return nil, fmt.Errorf("manifest %s: %w", h, err)
		}
		// Image manifests and indexes share the fields read here.
		var m struct {
			Config    *v1.Descriptor  `json:"config"`
			Layers    []v1.Descriptor `json:"layers"`
			Manifests []v1.Descriptor `json:"manifests"`
		}
		if err := json.Unmarshal(b, &m); err != nil {
			return nil, fmt.Errorf("manifest %s: %w", h, err)
		}
		if m.Config != nil {
			keep[m.Config.Digest.Hex] = true
		}
		for _, ds := range [][]v1.Descriptor{m.Layers, m.Manifests} {
			for _, d := range ds {
				keep[d.Digest.Hex] = true
			}
		}
	}
	return keep, nil
}
