// Package vault is a stand-in for HashiCorp Vault's KV version 2 secrets
// engine: an http.Handler speaking the subset of Vault's HTTP API that
// applications, the vault CLI, the Go client (github.com/hashicorp/vault/api)
// and External Secrets' vault provider use.
//
// Supported, under /v1/:
//
//	sys/health                                  unauthenticated, as in Vault
//	sys/mounts, sys/internal/ui/mounts/<path>   the configured kv-v2 mounts
//	auth/token/lookup-self                      the one configured token
//	<mount>/data/<path>                         GET (?version=N), POST/PUT (options.cas), PATCH, DELETE
//	<mount>/metadata/<path>                     GET, LIST (or GET ?list=true), POST, DELETE
//	<mount>/delete|undelete|destroy/<path>      POST {"versions": [...]}
//
// Every other request needs the token in X-Vault-Token (or "Authorization:
// Bearer"); a missing or wrong token gets 403 "permission denied" like
// Vault. Errors use Vault's shape, {"errors": ["..."]}. The state is kept in
// memory and, with WithStateFile, written atomically to a file after every
// change, so it survives a restart of the process. The handler never logs
// secret values or tokens.
package vault

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"
)

// Version is what sys/health reports as the server version.
const Version = "1.17.0+devctl"

// DefaultMount is the KV v2 mount used when none is configured, as in a Vault
// dev server.
const DefaultMount = "secret"

// defaultMaxVersions is Vault's default for a mount without max_versions.
const defaultMaxVersions = 10

// ErrNoToken reports that New was called without a token.
var ErrNoToken = errors.New("vault: a token is required (generate one per environment)")

// Server is the Vault stand-in. It is safe for concurrent use.
type Server struct {
	token     string
	accessor  string
	stateFile string
	log       *slog.Logger
	now       func() time.Time
	created   time.Time

	mu     sync.Mutex
	mounts map[string]*mount // by name, without slashes
}

type options struct {
	mounts    []string
	stateFile string
	seed      Seed
	logger    *slog.Logger
	now       func() time.Time
}

// Option configures New.
type Option func(*options)

// WithMounts sets the names of the KV v2 mounts (default "secret").
func WithMounts(names ...string) Option { return func(o *options) { o.mounts = names } }

// WithStateFile keeps the secrets in path: read at start when it exists and
// rewritten atomically (mode 0600) after every change.
func WithStateFile(path string) Option { return func(o *options) { o.stateFile = path } }

// WithSeed writes the seed's secrets at start. A path whose latest version
// already holds the same data is left alone, so restarting with the same seed
// creates no new versions.
func WithSeed(s Seed) Option { return func(o *options) { o.seed = s } }

// WithLogger logs each request's method, path and status (never bodies or
// tokens). Discarded by default.
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.logger = l } }

// WithClock replaces time.Now, for deterministic tests.
func WithClock(now func() time.Time) Option { return func(o *options) { o.now = now } }

// New returns a Server accepting token. With WithStateFile it loads the
// existing state; with WithSeed it then applies the seed.
func New(token string, opts ...Option) (*Server, error) {
	if token == "" {
		return nil, ErrNoToken
	}
	o := options{mounts: []string{DefaultMount}, logger: slog.New(slog.DiscardHandler), now: time.Now}
	for _, opt := range opts {
		opt(&o)
	}
	s := &Server{
		token:     token,
		accessor:  randomID(),
		stateFile: o.stateFile,
		log:       o.logger,
		now:       o.now,
		mounts:    map[string]*mount{},
	}
	s.created = s.now().UTC()
	if len(o.mounts) == 0 {
		return nil, fmt.Errorf("vault: no mounts: give WithMounts at least one name such as %q", DefaultMount)
	}
	for _, name := range o.mounts {
		name = strings.Trim(name, "/")
		if name == "" || strings.Contains(name, "/") {
			return nil, fmt.Errorf("vault: mount %q: want one path segment such as %q", name, DefaultMount)
		}
		s.mounts[name] = newMount()
	}
	if s.stateFile != "" {
		if err := s.load(); err != nil {
			return nil, err
		}
	}
	if err := s.applySeed(o.seed); err != nil {
		return nil, err
	}
	return s, nil
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
	s.serve(rec, r)
	s.log.Debug("vault request", "method", r.Method, "path", r.URL.Path, "status", rec.status)
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	p, ok := strings.CutPrefix(r.URL.Path, "/v1/")
	if !ok {
		writeErrors(w, http.StatusNotFound)
		return
	}
	method := r.Method
	if method == http.MethodGet && r.URL.Query().Get("list") == "true" {
		method = "LIST"
	}
	if p == "sys/health" {
		if method != http.MethodGet && method != http.MethodHead {
			writeErrors(w, http.StatusMethodNotAllowed, "unsupported operation")
			return
		}
		s.health(w)
		return
	}
	if !s.authorized(r) {
		writeErrors(w, http.StatusForbidden, "permission denied")
		return
	}
	switch {
	case p == "sys/mounts" && method == http.MethodGet:
		s.sysMounts(w)
	case strings.HasPrefix(p, "sys/internal/ui/mounts/") && method == http.MethodGet:
		s.uiMount(w, strings.TrimPrefix(p, "sys/internal/ui/mounts/"))
	case p == "auth/token/lookup-self" && (method == http.MethodGet || method == http.MethodPost):
		s.lookupSelf(w)
	default:
		s.kv(w, r, method, p)
	}
}

// authorized reports whether r carries the configured token.
func (s *Server) authorized(r *http.Request) bool {
	tok := r.Header.Get("X-Vault-Token")
	if tok == "" {
		tok, _ = strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	}
	return subtle.ConstantTimeCompare([]byte(tok), []byte(s.token)) == 1
}

func (s *Server) health(w http.ResponseWriter) {
	writeJSON(w, http.StatusOK, map[string]any{
		"initialized":                  true,
		"sealed":                       false,
		"standby":                      false,
		"performance_standby":          false,
		"replication_performance_mode": "disabled",
		"replication_dr_mode":          "disabled",
		"server_time_utc":              s.now().Unix(),
		"version":                      Version,
		"cluster_name":                 "devctl",
		"cluster_id":                   "devctl",
	})
}

func (s *Server) mountInfo(name string) map[string]any {
	return map[string]any{
		"type":        "kv",
		"description": "key/value secret storage",
		"options":     map[string]string{"version": "2"},
		"config":      map[string]any{"default_lease_ttl": 0, "max_lease_ttl": 0},
		"local":       false,
		"seal_wrap":   false,
		"accessor":    "kv_" + name,
		"uuid":        name,
	}
}

func (s *Server) sysMounts(w http.ResponseWriter) {
	data := map[string]any{}
	for _, name := range s.mountNames() {
		data[name+"/"] = s.mountInfo(name)
	}
	// Vault repeats the mounts at the top level for older clients.
	body := map[string]any{"data": data}
	for k, v := range data {
		body[k] = v
	}
	writeJSON(w, http.StatusOK, body)
}

// uiMount answers the preflight the vault CLI's kv commands make to learn a
// mount's KV version.
func (s *Server) uiMount(w http.ResponseWriter, p string) {
	name, _, _ := strings.Cut(p, "/")
	if _, ok := s.mounts[name]; !ok {
		writeErrors(w, http.StatusForbidden, "preflight capability check returned 403, please ensure client's policies grant access to path \""+p+"/\"")
		return
	}
	info := s.mountInfo(name)
	info["path"] = name + "/"
	writeSecret(w, http.StatusOK, info)
}

func (s *Server) lookupSelf(w http.ResponseWriter) {
	writeSecret(w, http.StatusOK, map[string]any{
		"accessor":         s.accessor,
		"creation_time":    s.created.Unix(),
		"creation_ttl":     0,
		"display_name":     "token",
		"entity_id":        "",
		"expire_time":      nil,
		"explicit_max_ttl": 0,
		"id":               s.token, // Vault returns the caller's own token
		"issue_time":       s.created.Format(time.RFC3339Nano),
		"meta":             nil,
		"num_uses":         0,
		"orphan":           true,
		"path":             "auth/token/root",
		"policies":         []string{"root"},
		"renewable":        false,
		"ttl":              0,
		"type":             "service",
	})
}

func (s *Server) mountNames() []string {
	names := make([]string, 0, len(s.mounts))
	for n := range s.mounts {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// writeSecret writes Vault's response envelope around data.
func writeSecret(w http.ResponseWriter, status int, data any) {
	writeJSON(w, status, map[string]any{
		"request_id":     randomUUID(),
		"lease_id":       "",
		"renewable":      false,
		"lease_duration": 0,
		"data":           data,
		"wrap_info":      nil,
		"warnings":       nil,
		"auth":           nil,
	})
}

// writeErrors writes Vault's error shape. Vault answers a plain "not found"
// with an empty list.
func writeErrors(w http.ResponseWriter, status int, msgs ...string) {
	if msgs == nil {
		msgs = []string{}
	}
	writeJSON(w, status, map[string]any{"errors": msgs})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	r.status = code
	r.ResponseWriter.WriteHeader(code)
}

func randomID() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func randomUUID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	h := hex.EncodeToString(b)
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}
