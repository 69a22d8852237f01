package vault

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// maxBody bounds a request body; Vault's own default is 32 MiB.
const maxBody = 32 << 20

type mount struct {
	Secrets map[string]*secret `json:"secrets"`
}

func newMount() *mount { return &mount{Secrets: map[string]*secret{}} }

// secret is one path of a KV v2 mount: its metadata and versions.
type secret struct {
	Versions       map[int]*version  `json:"versions"`
	CurrentVersion int               `json:"currentVersion"`
	MaxVersions    int               `json:"maxVersions,omitempty"`
	CASRequired    bool              `json:"casRequired,omitempty"`
	CustomMetadata map[string]string `json:"customMetadata,omitempty"`
	Created        time.Time         `json:"created"`
	Updated        time.Time         `json:"updated"`
}

type version struct {
	Data      map[string]any `json:"data,omitempty"`
	Created   time.Time      `json:"created"`
	Deleted   *time.Time     `json:"deleted,omitempty"`
	Destroyed bool           `json:"destroyed,omitempty"`
}

func (v *version) alive() bool { return v.Deleted == nil && !v.Destroyed }

func (v *version) metadata() map[string]any {
	deleted := ""
	if v.Deleted != nil {
		deleted = v.Deleted.Format(time.RFC3339Nano)
	}
	return map[string]any{
		"created_time":  v.Created.Format(time.RFC3339Nano),
		"deletion_time": deleted,
		"destroyed":     v.Destroyed,
	}
}

func (sec *secret) oldestVersion() int {
	oldest := 0
	for n := range sec.Versions {
		if oldest == 0 || n < oldest {
			oldest = n
		}
	}
	return oldest
}

// versionMetadata is the "metadata" object of a data read or write.
func (sec *secret) versionMetadata(n int) map[string]any {
	m := sec.Versions[n].metadata()
	m["version"] = n
	m["custom_metadata"] = customMetadata(sec.CustomMetadata)
	return m
}

func customMetadata(m map[string]string) any {
	if len(m) == 0 {
		return nil
	}
	return m
}

// kv serves <mount>/<op>/<path>. It holds the lock for the whole request:
// requests are small and a stand-in has few clients.
func (s *Server) kv(w http.ResponseWriter, r *http.Request, method, p string) {
	name, rest, _ := strings.Cut(p, "/")
	m, ok := s.mounts[name]
	if !ok {
		writeErrors(w, http.StatusNotFound, fmt.Sprintf("no handler for route %q. route entry not found.", p))
		return
	}
	op, path, _ := strings.Cut(rest, "/")
	s.mu.Lock()
	defer s.mu.Unlock()

	var changed bool
	switch {
	case op == "config" && method == http.MethodGet:
		writeSecret(w, http.StatusOK, map[string]any{"cas_required": false, "delete_version_after": "0s", "max_versions": 0})
	case op == "metadata" && method == "LIST":
		s.list(w, m, path)
	case path == "" || strings.HasSuffix(path, "/"):
		writeErrors(w, http.StatusNotFound, fmt.Sprintf("no handler for route %q. route entry not found.", p))
	case op == "data":
		changed = s.data(w, r, method, m, path)
	case op == "metadata":
		changed = s.metadata(w, r, method, m, path)
	case (op == "delete" || op == "undelete" || op == "destroy") && (method == http.MethodPost || method == http.MethodPut):
		changed = s.versions(w, r, op, m, path)
	default:
		writeErrors(w, http.StatusMethodNotAllowed, "unsupported operation")
	}
	if changed {
		if err := s.saveLocked(); err != nil {
			s.log.Error("save vault state", "error", err)
		}
	}
}

// data serves <mount>/data/<path> and reports whether it changed the state.
func (s *Server) data(w http.ResponseWriter, r *http.Request, method string, m *mount, path string) bool {
	sec := m.Secrets[path]
	switch method {
	case http.MethodGet:
		n := 0
		if q := r.URL.Query().Get("version"); q != "" {
			var err error
			if n, err = strconv.Atoi(q); err != nil || n < 0 {
				writeErrors(w, http.StatusBadRequest, "invalid version "+strconv.Quote(q))
				return false
			}
		}
		if sec == nil {
			writeErrors(w, http.StatusNotFound)
			return false
		}
		if n == 0 {
			n = sec.CurrentVersion
		}
		v := sec.Versions[n]
		if v == nil {
			writeErrors(w, http.StatusNotFound)
			return false
		}
		if !v.alive() {
			writeSecret(w, http.StatusNotFound, map[string]any{"data": nil, "metadata": sec.versionMetadata(n)})
			return false
		}
		writeSecret(w, http.StatusOK, map[string]any{"data": v.Data, "metadata": sec.versionMetadata(n)})
		return false

	case http.MethodPost, http.MethodPut:
		var body struct {
			Data    map[string]any `json:"data"`
			Options struct {
				CAS *int `json:"cas"`
			} `json:"options"`
		}
		if !decode(w, r, &body) {
			return false
		}
		if body.Data == nil {
			writeErrors(w, http.StatusBadRequest, "no data provided")
			return false
		}
		if sec == nil {
			sec = &secret{Versions: map[int]*version{}, Created: s.now().UTC()}
		}
		if body.Options.CAS == nil && sec.CASRequired {
			writeErrors(w, http.StatusBadRequest, "check-and-set parameter required for this call")
			return false
		}
		if body.Options.CAS != nil && *body.Options.CAS != sec.CurrentVersion {
			writeErrors(w, http.StatusBadRequest, "check-and-set parameter did not match the current version")
			return false
		}
		m.Secrets[path] = sec
		n := s.addVersion(sec, body.Data)
		writeSecret(w, http.StatusOK, sec.versionMetadata(n))
		return true

	case http.MethodPatch:
		if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/merge-patch+json") {
			writeErrors(w, http.StatusUnsupportedMediaType, "PATCH requires Content-Type application/merge-patch+json")
			return false
		}
		var body struct {
			Data map[string]any `json:"data"`
		}
		if !decode(w, r, &body) {
			return false
		}
		if sec == nil || sec.Versions[sec.CurrentVersion] == nil || !sec.Versions[sec.CurrentVersion].alive() {
			writeErrors(w, http.StatusNotFound)
			return false
		}
		merged, _ := mergePatch(clone(sec.Versions[sec.CurrentVersion].Data), body.Data).(map[string]any)
		n := s.addVersion(sec, merged)
		writeSecret(w, http.StatusOK, sec.versionMetadata(n))
		return true

	case http.MethodDelete:
		if sec == nil {
			w.WriteHeader(http.StatusNoContent)
			return false
		}
		v := sec.Versions[sec.CurrentVersion]
		if v == nil || !v.alive() {
			w.WriteHeader(http.StatusNoContent)
			return false
		}
		now := s.now().UTC()
		v.Deleted = &now
		sec.Updated = now
		w.WriteHeader(http.StatusNoContent)
		return true
	}
	writeErrors(w, http.StatusMethodNotAllowed, "unsupported operation")
	return false
}

// addVersion stores data as the next version of sec, drops versions beyond
// max_versions and returns the new version number.
func (s *Server) addVersion(sec *secret, data map[string]any) int {
	now := s.now().UTC()
	sec.CurrentVersion++
	n := sec.CurrentVersion
	sec.Versions[n] = &version{Data: data, Created: now}
	sec.Updated = now
	limit := sec.MaxVersions
	if limit <= 0 {
		limit = defaultMaxVersions
	}
	for v := range sec.Versions {
		if v <= n-limit {
			delete(sec.Versions, v)
		}
	}
	return n
}

// metadata serves <mount>/metadata/<path>.
func (s *Server) metadata(w http.ResponseWriter, r *http.Request, method string, m *mount, path string) bool {
	sec := m.Secrets[path]
	switch method {
	case http.MethodGet:
		if sec == nil {
			writeErrors(w, http.StatusNotFound)
			return false
		}
		versions := map[string]any{}
		for n, v := range sec.Versions {
			versions[strconv.Itoa(n)] = v.metadata()
		}
		writeSecret(w, http.StatusOK, map[string]any{
			"cas_required":         sec.CASRequired,
			"created_time":         sec.Created.Format(time.RFC3339Nano),
			"current_version":      sec.CurrentVersion,
			"custom_metadata":      customMetadata(sec.CustomMetadata),
			"delete_version_after": "0s",
			"max_versions":         sec.MaxVersions,
			"oldest_version":       sec.oldestVersion(),
			"updated_time":         sec.Updated.Format(time.RFC3339Nano),
			"versions":             versions,
		})
		return false
	case http.MethodPost, http.MethodPut:
		var body struct {
			MaxVersions    *int              `json:"max_versions"`
			CASRequired    *bool             `json:"cas_required"`
			CustomMetadata map[string]string `json:"custom_metadata"`
		}
		if !decode(w, r, &body) {
			return false
		}
		now := s.now().UTC()
		if sec == nil {
			sec = &secret{Versions: map[int]*version{}, Created: now}
			m.Secrets[path] = sec
		}
		if body.MaxVersions != nil {
			sec.MaxVersions = *body.MaxVersions
		}
		if body.CASRequired != nil {
			sec.CASRequired = *body.CASRequired
		}
		if body.CustomMetadata != nil {
			sec.CustomMetadata = body.CustomMetadata
		}
		sec.Updated = now
		w.WriteHeader(http.StatusNoContent)
		return true
	case http.MethodDelete:
		_, existed := m.Secrets[path]
		delete(m.Secrets, path)
		w.WriteHeader(http.StatusNoContent)
		return existed
	}
	writeErrors(w, http.StatusMethodNotAllowed, "unsupported operation")
	return false
}

// list serves LIST <mount>/metadata/<prefix>: the keys one level below
// prefix, folders with a trailing slash.
func (s *Server) list(w http.ResponseWriter, m *mount, prefix string) {
	if prefix != "" && !strings.HasSuffix(prefix, "/") {
		prefix += "/"
	}
	seen := map[string]bool{}
	for p := range m.Secrets {
		rest, ok := strings.CutPrefix(p, prefix)
		if !ok || rest == "" {
			continue
		}
		if i := strings.IndexByte(rest, '/'); i >= 0 {
			rest = rest[:i+1]
		}
		seen[rest] = true
	}
	if len(seen) == 0 {
		writeErrors(w, http.StatusNotFound)
		return
	}
	keys := make([]string, 0, len(seen))
	for k := range seen {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	writeSecret(w, http.StatusOK, map[string]any{"keys": keys})
}

// versions serves <mount>/delete|undelete|destroy/<path>.
func (s *Server) versions(w http.ResponseWriter, r *http.Request, op string, m *mount, path string) bool {
	var body struct {
		Versions []int `json:"versions"`
	}
	if !decode(w, r, &body) {
		return false
	}
	if len(body.Versions) == 0 {
		writeErrors(w, http.StatusBadRequest, "no version number provided")
		return false
	}
	sec := m.Secrets[path]
	if sec == nil {
		w.WriteHeader(http.StatusNoContent)
		return false
	}
	now := s.now().UTC()
	changed := false
	for _, n := range body.Versions {
		v := sec.Versions[n]
		if v == nil || v.Destroyed {
			continue
		}
		switch op {
		case "delete":
			if v.Deleted == nil {
				v.Deleted = &now
				changed = true
			}
		case "undelete":
			if v.Deleted != nil {
				v.Deleted = nil
				changed = true
			}
		case "destroy":
			v.Destroyed, v.Data = true, nil
			changed = true
		}
	}
	if changed {
		sec.Updated = now
	}
	w.WriteHeader(http.StatusNoContent)
	return changed
}

// decode reads a JSON request body into v; an empty body leaves v as it is.
// On failure it writes a 400 and returns false.
func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	b, err := io.ReadAll(io.LimitReader(r.Body, maxBody))
	if err != nil {
		writeErrors(w, http.StatusBadRequest, "failed to read request body")
		return false
	}
	if len(strings.TrimSpace(string(b))) == 0 {
		return true
	}
	if err := json.Unmarshal(b, v); err != nil {
		writeErrors(w, http.StatusBadRequest, "failed to parse JSON input: "+err.Error())
		return false
	}
	return true
}

// mergePatch applies an RFC 7386 JSON merge patch to target.
func mergePatch(target, patch any) any {
	p, ok := patch.(map[string]any)
	if !ok {
		return patch
	}
	t, ok := target.(map[string]any)
	if !ok {
		t = map[string]any{}
	}
	for k, v := range p {
		if v == nil {
			delete(t, k)
			continue
		}
		t[k] = mergePatch(t[k], v)
	}
	return t
}

// clone deep-copies a JSON object.
func clone(m map[string]any) map[string]any {
	b, _ := json.Marshal(m)
	var out map[string]any
	_ = json.Unmarshal(b, &out)
	return out
}
