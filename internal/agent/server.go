package agent

import (
	"compress/gzip"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Controller is what the server needs from the supervisor.
type Controller interface {
	// Restart stops and starts the app and waits until it listens.
	Restart(ctx context.Context) (stop, start time.Duration, err error)
	// Run executes argv and waits for it.
	Run(ctx context.Context, argv []string) (*RunResult, error)
	Status() AppStatus
	// FollowLogs calls fn with the last tail output lines and, with
	// follow, every later line until ctx ends.
	FollowLogs(ctx context.Context, tail int, follow bool, fn func(LogLine) error) error
}

// ServerOptions configure a Server.
type ServerOptions struct {
	// Token is the shared secret clients send as "Authorization: Bearer".
	Token string
	// Version is reported by the status endpoint.
	Version string
	// SyncDirs are the directories a sync may write into (emptyDir mounts).
	SyncDirs []string
	// Entrypoint is the app's argv[0]. When it is an absolute path outside
	// SyncDirs, a write to it goes to OverridePath(AppDir, Entrypoint).
	Entrypoint string
	AppDir     string
	// StateFile keeps the applied generation across agent restarts; "" keeps
	// it in memory only.
	StateFile string
	// Logger receives a line per sync; silent when nil.
	Logger *slog.Logger
}

// Server is the agent's HTTP API.
type Server struct {
	app   Controller
	o     ServerOptions
	token [sha256.Size]byte
	dests *destinations
	log   *slog.Logger
	bufs  sync.Pool
	sem   chan struct{} // one sync at a time

	mu         sync.Mutex
	generation uint64
}

type persisted struct {
	Generation uint64 `json:"generation"`
}

// NewServer opens the sync destinations and returns the API of app.
func NewServer(app Controller, o ServerOptions) (*Server, error) {
	if o.Token == "" {
		return nil, fmt.Errorf("no token: set %s (the chart passes it from a Secret)", TokenEnv)
	}
	d, err := openDestinations(o.SyncDirs, o.Entrypoint, o.AppDir)
	if err != nil {
		return nil, err
	}
	s := &Server{app: app, o: o, token: sha256.Sum256([]byte(o.Token)), dests: d, log: o.Logger, sem: make(chan struct{}, 1)}
	s.bufs.New = func() any { b := make([]byte, 256<<10); return &b }
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if o.StateFile != "" {
		if b, err := os.ReadFile(o.StateFile); err == nil {
			var p persisted
			if json.Unmarshal(b, &p) == nil {
				s.generation = p.Generation
			}
		}
	}
	return s, nil
}

// Close releases the directories the server holds open.
func (s *Server) Close() { s.dests.close() }

// Handler serves the API.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+PathHealth, func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		_, _ = io.WriteString(w, "ok\n")
	})
	mux.Handle("GET "+PathStatus, s.auth(s.status))
	mux.Handle("POST "+PathSync, s.auth(s.sync))
	mux.Handle("GET "+PathLogs, s.auth(s.logs))
	return mux
}

func (s *Server) auth(h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		sum := sha256.Sum256([]byte(tok))
		if !ok || subtle.ConstantTimeCompare(sum[:], s.token[:]) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="devctl-agent"`)
			writeError(w, http.StatusUnauthorized, codeUnauthorized, "missing or wrong token")
			return
		}
		h(w, r)
	})
}

func (s *Server) status(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, Status{Version: s.o.Version, Generation: s.currentGeneration(), App: s.app.Status()})
}

func (s *Server) currentGeneration() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.generation
}

func (s *Server) logs(w http.ResponseWriter, r *http.Request) {
	tail := 100
	if v := r.URL.Query().Get("tail"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			writeError(w, http.StatusBadRequest, codeBadRequest, "tail: want a number of lines")
			return
		}
		tail = n
	}
	follow, _ := strconv.ParseBool(r.URL.Query().Get("follow"))
	w.Header().Set("Content-Type", "application/x-ndjson")
	rc := http.NewResponseController(w)
	enc := json.NewEncoder(w)
	_ = s.app.FollowLogs(r.Context(), tail, follow, func(l LogLine) error {
		if err := enc.Encode(l); err != nil {
			return err
		}
		return rc.Flush()
	})
}

// op is one manifest entry, resolved.
type op struct {
	FileOp
	t    target
	mode os.FileMode
}

// requestError is an error of the client's making, answered with 4xx.
type requestError struct {
	status int
	code   string
	err    error
}

func (e *requestError) Error() string { return e.err.Error() }
func (e *requestError) Unwrap() error { return e.err }

func badRequest(format string, args ...any) error {
	return &requestError{http.StatusBadRequest, codeBadRequest, fmt.Errorf("%w: "+format, append([]any{ErrBadRequest}, args...)...)}
}

func (s *Server) sync(w http.ResponseWriter, r *http.Request) {
	t0 := time.Now()
	select {
	case s.sem <- struct{}{}:
	case <-r.Context().Done():
		return
	}
	defer func() { <-s.sem }()

	res, m, err := s.apply(r, t0)
	if err != nil {
		var re *requestError
		if errors.As(err, &re) {
			writeError(w, re.status, re.code, err.Error())
		} else {
			s.log.Error("sync", "err", err)
			writeError(w, http.StatusInternalServerError, codeInternal, err.Error())
		}
		return
	}

	ctx := r.Context()
	if len(m.Action.Run) > 0 {
		t := time.Now()
		rr, err := s.app.Run(ctx, m.Action.Run)
		res.Timings.Run, res.Run = time.Since(t), rr
		if !s.actionFailed(res, err) && err != nil {
			writeError(w, http.StatusInternalServerError, codeInternal, err.Error())
			return
		}
	}
	if m.Action.Restart && res.Failure == nil {
		stop, start, err := s.app.Restart(ctx)
		res.Timings.Stop, res.Timings.Start = stop, start
		if !s.actionFailed(res, err) && err != nil {
			writeError(w, http.StatusInternalServerError, codeInternal, err.Error())
			return
		}
	}
	res.App = s.app.Status()
	res.Timings.Total = time.Since(t0)
	s.log.Info("sync applied", "generation", res.Generation, "written", res.Written, "deleted", res.Deleted, "bytes", res.Bytes,
		"write", res.Timings.Write, "stop", res.Timings.Stop, "start", res.Timings.Start, "failed", res.Failure != nil)
	writeJSON(w, http.StatusOK, res)
}

// actionFailed records an action's failure in res.
func (s *Server) actionFailed(res *Result, err error) bool {
	var ae *ActionError
	if errors.As(err, &ae) {
		f := ae.Failure
		res.Failure = &f
		return true
	}
	return false
}

// apply reads the request, writes every file beside its destination and then
// renames them all into place, so a broken request changes nothing.
func (s *Server) apply(r *http.Request, t0 time.Time) (*Result, *Manifest, error) {
	mr, err := r.MultipartReader()
	if err != nil {
		return nil, nil, badRequest("want multipart/form-data: %v", err)
	}
	part, err := mr.NextPart()
	if err != nil || part.FormName() != manifestPart {
		return nil, nil, badRequest("the first part must be %q", manifestPart)
	}
	m := &Manifest{}
	dec := json.NewDecoder(io.LimitReader(part, 4<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(m); err != nil {
		return nil, nil, badRequest("manifest: %v", err)
	}
	ops := make([]op, len(m.Files))
	for i, f := range m.Files {
		t, err := s.dests.resolve(f.Path)
		if err != nil {
			return nil, nil, &requestError{http.StatusForbidden, codePathNotAllowed, err}
		}
		mode, err := fileMode(f.Mode)
		if err != nil {
			return nil, nil, &requestError{http.StatusBadRequest, codeBadRequest, err}
		}
		if f.Size < 0 {
			return nil, nil, badRequest("%s: negative size", f.Path)
		}
		ops[i] = op{FileOp: f, t: t, mode: mode}
	}
	if len(m.Action.Run) > 0 && m.Action.Run[0] == "" {
		return nil, nil, badRequest("action.run: empty command")
	}

	bp := s.bufs.Get().(*[]byte)
	defer s.bufs.Put(bp)
	res := &Result{}
	pending := make([]*staged, len(ops))
	defer func() {
		for _, st := range pending {
			if st != nil {
				st.discard()
			}
		}
	}()
	for i, o := range ops {
		if o.Delete {
			if _, err := o.t.root.Lstat(o.t.name); escapes(err) {
				return nil, nil, &requestError{http.StatusForbidden, codePathNotAllowed, fmt.Errorf("%w: %s leaves its directory through a symbolic link", ErrPathNotAllowed, o.Path)}
			}
			continue
		}
		part, err := mr.NextPart()
		if err != nil || part.FormName() != filePart {
			return nil, nil, badRequest("missing the %q part of %s (parts follow the manifest's order)", filePart, o.Path)
		}
		var body io.Reader = &readTagger{r: part}
		if enc := part.Header.Get("Content-Encoding"); enc == "gzip" {
			zr, err := gzip.NewReader(body)
			if err != nil {
				return nil, nil, badRequest("%s: %v", o.Path, err)
			}
			body = zr
		} else if enc != "" {
			return nil, nil, badRequest("%s: unknown Content-Encoding %q: use gzip or none", o.Path, enc)
		}
		st, err := stage(o.t, o.mode, o.Size, body, *bp)
		if err != nil {
			var rt *readError
			switch {
			case escapes(err):
				return nil, nil, &requestError{http.StatusForbidden, codePathNotAllowed, fmt.Errorf("%w: %s leaves its directory through a symbolic link", ErrPathNotAllowed, o.Path)}
			case errors.Is(err, ErrBadRequest):
				return nil, nil, &requestError{http.StatusBadRequest, codeBadRequest, fmt.Errorf("%s: %w", o.Path, err)}
			case errors.As(err, &rt), errors.Is(err, gzip.ErrChecksum), errors.Is(err, gzip.ErrHeader):
				return nil, nil, badRequest("%s: %v", o.Path, err)
			}
			return nil, nil, fmt.Errorf("write %s: %w", o.Path, err)
		}
		pending[i] = &st
		res.Bytes += o.Size
	}
	if _, err := mr.NextPart(); !errors.Is(err, io.EOF) {
		return nil, nil, badRequest("more parts than files in the manifest")
	}
	for i, o := range ops {
		if o.Delete {
			if err := remove(o.t); err != nil {
				return nil, nil, fmt.Errorf("delete %s (%d of %d changes applied): %w", o.Path, i, len(ops), err)
			}
			res.Deleted++
			continue
		}
		if err := pending[i].commit(); err != nil {
			return nil, nil, fmt.Errorf("rename %s into place (%d of %d changes applied): %w", o.Path, i, len(ops), err)
		}
		pending[i] = nil
		res.Written++
	}
	res.Generation = s.advance(m.Generation)
	res.Timings.Write = time.Since(t0)
	return res, m, nil
}

// advance records an applied batch.
func (s *Server) advance(gen uint64) uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	if gen == 0 {
		gen = s.generation + 1
	}
	s.generation = gen
	if s.o.StateFile != "" {
		if err := writeState(s.o.StateFile, persisted{Generation: gen}); err != nil {
			s.log.Warn("save state", "err", err)
		}
	}
	return gen
}

func writeState(file string, p persisted) error {
	b, err := json.Marshal(p)
	if err != nil {
		return err
	}
	tmp := filepath.Join(filepath.Dir(file), tmpPrefix+filepath.Base(file))
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, file)
}

// readError marks an error reading the request body.
type readError struct{ err error }

func (e *readError) Error() string { return "read request: " + e.err.Error() }
func (e *readError) Unwrap() error { return e.err }

type readTagger struct{ r io.Reader }

func (t *readTagger) Read(p []byte) (int, error) {
	n, err := t.r.Read(p)
	if err != nil && !errors.Is(err, io.EOF) {
		err = &readError{err}
	}
	return n, err
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v) // the client went away: nothing to do
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, errorBody{Code: code, Error: msg})
}
