package registry

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// The routes of the distribution API that the registry serves itself, so
// that manifests and tags persist; blob routes and /v2/ go to
// go-containerregistry's handler over the same store.
type route int

const (
	routeOther route = iota
	routeManifest
	routeTags
	routeCatalog
)

// parseRoute splits /v2/<name>/manifests/<ref> and /v2/<name>/tags/list.
func parseRoute(path string) (rt route, repo, ref string) {
	if path == "/v2/_catalog" {
		return routeCatalog, "", ""
	}
	rest, ok := strings.CutPrefix(path, "/v2/")
	if !ok {
		return routeOther, "", ""
	}
	elems := strings.Split(rest, "/")
	n := len(elems)
	if n < 3 {
		return routeOther, "", ""
	}
	repo = strings.Join(elems[:n-2], "/")
	switch {
	case elems[n-2] == "manifests":
		return routeManifest, repo, elems[n-1]
	case elems[n-2] == "tags" && elems[n-1] == "list":
		return routeTags, repo, ""
	}
	return routeOther, "", ""
}

// regError is an error response of the distribution API.
type regError struct {
	status  int
	code    string
	message string
}

func (e *regError) write(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(e.status)
	_ = json.NewEncoder(w).Encode(map[string]any{
		"errors": []map[string]string{{"code": e.code, "message": e.message}},
	})
}

func errNameUnknown(repo string) *regError {
	return &regError{http.StatusNotFound, "NAME_UNKNOWN", "repository " + repo + " is not in the registry"}
}

func errManifestUnknown(repo, ref string) *regError {
	return &regError{http.StatusNotFound, "MANIFEST_UNKNOWN", "manifest " + repo + ":" + ref + " is not in the registry"}
}

func errNameInvalid(err error) *regError {
	return &regError{http.StatusBadRequest, "NAME_INVALID", err.Error()}
}

func errManifestInvalid(msg string) *regError {
	return &regError{http.StatusBadRequest, "MANIFEST_INVALID", msg}
}

// notFound maps the store's ErrNotFound to the matching API error.
func notFound(err error, repo, ref string) *regError {
	if errors.Is(err, errNoRepo) {
		return errNameUnknown(repo)
	}
	return errManifestUnknown(repo, ref)
}

func (r *Registry) serveManifest(w http.ResponseWriter, req *http.Request, repo, ref string) *regError {
	if err := checkRepo(repo); err != nil {
		return errNameInvalid(err)
	}
	switch req.Method {
	case http.MethodGet, http.MethodHead:
		h, mt, err := r.store.resolve(repo, ref)
		if errors.Is(err, ErrNotFound) {
			return notFound(err, repo, ref)
		}
		if err != nil {
			return errNameInvalid(err)
		}
		b, err := r.store.manifest(h)
		if err != nil {
			return &regError{http.StatusInternalServerError, "UNKNOWN", fmt.Sprintf("manifest %s: %v", h, err)}
		}
		w.Header().Set("Content-Type", string(mt))
		w.Header().Set("Docker-Content-Digest", h.String())
		w.Header().Set("Content-Length", strconv.Itoa(len(b)))
		w.WriteHeader(http.StatusOK)
		if req.Method == http.MethodGet {
			_, _ = w.Write(b)
		}
		return nil

	case http.MethodPut:
		return r.putManifest(w, req, repo, ref)

	case http.MethodDelete:
		if err := r.store.deleteRef(repo, ref); errors.Is(err, ErrNotFound) {
			return notFound(err, repo, ref)
		} else if err != nil {
			return &regError{http.StatusInternalServerError, "UNKNOWN", err.Error()}
		}
		w.WriteHeader(http.StatusAccepted)
		return nil
	}
	return &regError{http.StatusMethodNotAllowed, "UNSUPPORTED", req.Method + " is not supported on manifests"}
}

func (r *Registry) putManifest(w http.ResponseWriter, req *http.Request, repo, ref string) *regError {
	b, err := io.ReadAll(io.LimitReader(req.Body, maxManifestSize+1))
	if err != nil {
		return errManifestInvalid(err.Error())
	}
	if len(b) > maxManifestSize {
		return &regError{http.StatusRequestEntityTooLarge, "SIZE_INVALID", fmt.Sprintf("manifest is larger than %d bytes", maxManifestSize)}
	}
	var tag string
	var want v1.Hash
	if strings.Contains(ref, ":") {
		if want, err = parseDigest(ref); err != nil {
			return &regError{http.StatusBadRequest, "DIGEST_INVALID", err.Error()}
		}
	} else if !tagPattern.MatchString(ref) {
		return &regError{http.StatusBadRequest, "TAG_INVALID", fmt.Sprintf("tag %q: use letters, digits, '_', '.' and '-', at most 128", ref)}
	} else {
		tag = ref
	}

	mt := types.MediaType(req.Header.Get("Content-Type"))
	if i := strings.IndexByte(string(mt), ';'); i >= 0 {
		mt = types.MediaType(strings.TrimSpace(string(mt[:i])))
	}
	if mt == "" {
		var m struct {
			MediaType types.MediaType `json:"mediaType"`
		}
		if err := json.Unmarshal(b, &m); err != nil {
			return errManifestInvalid(err.Error())
		}
		mt = m.MediaType
	}
	if rerr := r.checkReferences(req, repo, mt, b); rerr != nil {
		return rerr
	}

	h, _, _ := v1.SHA256(bytes.NewReader(b))
	if want != (v1.Hash{}) && want != h {
		return &regError{http.StatusBadRequest, "DIGEST_INVALID", fmt.Sprintf("manifest has digest %s, not %s", h, want)}
	}
	if err := r.store.putBytes(h, b); err != nil {
		return &regError{http.StatusInternalServerError, "UNKNOWN", err.Error()}
	}
	if err := r.store.putManifest(repo, tag, h, mt); err != nil {
		return &regError{http.StatusInternalServerError, "UNKNOWN", err.Error()}
	}
	r.log.Debug("manifest stored", "repository", repo, "tag", tag, "digest", h.String())
	w.Header().Set("Location", "/v2/"+repo+"/manifests/"+h.String())
	w.Header().Set("Docker-Content-Digest", h.String())
	w.WriteHeader(http.StatusCreated)
	return nil
}

// checkReferences checks that what a manifest refers to is in the registry:
// an image's config and layers, an index's manifests. Pulling a manifest
// whose blobs are missing would fail on the node with a less helpful error,
// and GC relies on manifests being complete.
func (r *Registry) checkReferences(req *http.Request, repo string, mt types.MediaType, b []byte) *regError {
	blobUnknown := func(d v1.Hash) *regError {
		return &regError{http.StatusBadRequest, "MANIFEST_BLOB_UNKNOWN", fmt.Sprintf("blob %s is not in the registry: push it before the manifest", d)}
	}
	switch {
	case mt.IsImage():
		m, err := v1.ParseManifest(bytes.NewReader(b))
		if err != nil {
			return errManifestInvalid(err.Error())
		}
		for _, d := range append([]v1.Descriptor{m.Config}, m.Layers...) {
			if !d.MediaType.IsDistributable() {
				continue
			}
			if _, err := r.store.Stat(req.Context(), repo, d.Digest); err != nil {
				return blobUnknown(d.Digest)
			}
		}
	case mt.IsIndex():
		m, err := v1.ParseIndexManifest(bytes.NewReader(b))
		if err != nil {
			return errManifestInvalid(err.Error())
		}
		for _, d := range m.Manifests {
			if (d.MediaType.IsImage() || d.MediaType.IsIndex()) && !r.store.hasManifest(repo, d.Digest) {
				return &regError{http.StatusBadRequest, "MANIFEST_UNKNOWN", fmt.Sprintf("manifest %s of the index is not in %s: push it first", d.Digest, repo)}
			}
		}
	default:
		return errManifestInvalid(fmt.Sprintf("media type %q is not an image manifest or index", mt))
	}
	return nil
}

func (r *Registry) serveTags(w http.ResponseWriter, req *http.Request, repo string) *regError {
	if req.Method != http.MethodGet {
		return &regError{http.StatusMethodNotAllowed, "UNSUPPORTED", req.Method + " is not supported on tags"}
	}
	if err := checkRepo(repo); err != nil {
		return errNameInvalid(err)
	}
	tags, err := r.store.tags(repo)
	if err != nil {
		return errNameUnknown(repo)
	}
	tags, rerr := paginate(w, req, tags)
	if rerr != nil {
		return rerr
	}
	writeJSON(w, struct {
		Name string   `json:"name"`
		Tags []string `json:"tags"`
	}{repo, tags})
	return nil
}

func (r *Registry) serveCatalog(w http.ResponseWriter, req *http.Request) *regError {
	if req.Method != http.MethodGet {
		return &regError{http.StatusMethodNotAllowed, "UNSUPPORTED", req.Method + " is not supported on the catalog"}
	}
	repos, rerr := paginate(w, req, r.store.repos())
	if rerr != nil {
		return rerr
	}
	writeJSON(w, struct {
		Repositories []string `json:"repositories"`
	}{repos})
	return nil
}

// paginate applies the n and last query parameters to sorted names and sets
// the Link header when more remain.
func paginate(w http.ResponseWriter, req *http.Request, names []string) ([]string, *regError) {
	q := req.URL.Query()
	if last := q.Get("last"); last != "" {
		i := 0
		for i < len(names) && names[i] <= last {
			i++
		}
		names = names[i:]
	}
	if ns := q.Get("n"); ns != "" {
		n, err := strconv.Atoi(ns)
		if err != nil || n < 0 {
			return nil, &regError{http.StatusBadRequest, "PAGINATION_NUMBER_INVALID", fmt.Sprintf("n=%q is not a count", ns)}
		}
		if n < len(names) {
			names = names[:n]
			if n > 0 {
				u := *req.URL
				q.Set("last", names[n-1])
				u.RawQuery = q.Encode()
				w.Header().Set("Link", fmt.Sprintf("<%s>; rel=\"next\"", u.RequestURI()))
			}
		}
	}
	if names == nil {
		names = []string{}
	}
	return names, nil
}

func writeJSON(w http.ResponseWriter, v any) {
	b, _ := json.Marshal(v)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b)
}
