package daemon

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/devctl/devctl/envs"
	"github.com/devctl/devctl/internal/api"
)

// handler returns the daemon's HTTP API. Every path is under /v1.
func (d *Daemon) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/health", d.handleHealth)
	mux.HandleFunc("GET /v1/envs", d.handleList)
	mux.HandleFunc("POST /v1/envs", d.handleUp)
	mux.HandleFunc("GET /v1/envs/{name}", d.handleGet)
	mux.HandleFunc("DELETE /v1/envs/{name}", d.handleDown)
	mux.HandleFunc("GET /v1/envs/{name}/logs", d.handleLogs)
	mux.HandleFunc("GET /v1/events", d.handleEvents)
	mux.HandleFunc("POST /v1/shutdown", d.handleShutdown)
	return mux
}

func (d *Daemon) handleHealth(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, api.Health{Version: d.version, PID: os.Getpid(), StartedAt: d.started, Socket: d.socket})
}

func (d *Daemon) handleList(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, d.store.List(r.Context()))
}

func (d *Daemon) handleGet(w http.ResponseWriter, r *http.Request) {
	e, ok := d.store.Get(r.Context(), r.PathValue("name"))
	if !ok {
		writeError(w, http.StatusNotFound, api.CodeNotFound, notFound(r.PathValue("name")))
		return
	}
	writeJSON(w, http.StatusOK, e)
}

func (d *Daemon) handleUp(w http.ResponseWriter, r *http.Request) {
	var req api.UpRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, api.CodeBadRequest, "bad up request: "+err.Error())
		return
	}
	if !filepath.IsAbs(req.Dir) {
		writeError(w, http.StatusBadRequest, api.CodeBadRequest, fmt.Sprintf("dir %q must be an absolute path", req.Dir))
		return
	}
	if fi, err := os.Stat(req.Dir); err != nil || !fi.IsDir() {
		writeError(w, http.StatusBadRequest, api.CodeBadRequest, fmt.Sprintf("project directory %s does not exist", req.Dir))
		return
	}
	name := req.Name
	if name == "" {
		if req.Repo == "" || req.Branch == "" {
			writeError(w, http.StatusBadRequest, api.CodeBadRequest, "an up request needs a name, or a repo and a branch")
			return
		}
		name = envs.Name(req.Repo, req.Branch)
	}
	if d.ctl.Busy(name) {
		// A second `up` joins the one under way.
		e, _ := d.store.Get(r.Context(), name)
		writeJSON(w, http.StatusAccepted, e)
		return
	}
	d.store.Dispatch(EnvAccepted{Env: api.Environment{
		Name: name, Provider: "kind", Repo: req.Repo, Branch: req.Branch, Dir: req.Dir, NodeImage: req.NodeImage,
	}})
	e, _ := d.store.Get(r.Context(), name)
	d.ctl.start(d.ctx, name, func(ctx context.Context) error { return d.ctl.up(ctx, name, req) })
	writeJSON(w, http.StatusAccepted, e)
}

func (d *Daemon) handleDown(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	e, ok := d.store.Get(r.Context(), name)
	if !ok {
		writeError(w, http.StatusNotFound, api.CodeNotFound, notFound(name))
		return
	}
	if !d.ctl.start(d.ctx, name, func(ctx context.Context) error { return d.ctl.down(ctx, name) }) {
		writeError(w, http.StatusConflict, api.CodeConflict, fmt.Sprintf("environment %s is busy (%s); wait for it to settle, then run `devctl down` again", name, e.Phase))
		return
	}
	e.Phase = api.PhaseDeleting
	writeJSON(w, http.StatusAccepted, e)
}

func (d *Daemon) handleLogs(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	e, ok := d.store.Get(r.Context(), name)
	if !ok {
		writeError(w, http.StatusNotFound, api.CodeNotFound, notFound(name))
		return
	}
	svc := r.URL.Query().Get("service")
	if svc == "" && len(e.Services) > 0 {
		svc = e.Services[0].Name
	}
	found := false
	for _, s := range e.Services {
		found = found || s.Name == svc
	}
	if !found {
		writeError(w, http.StatusNotFound, api.CodeNotFound, fmt.Sprintf("environment %s has no service %q", name, svc))
		return
	}
	tail, _ := strconv.Atoi(r.URL.Query().Get("tail"))
	follow := r.URL.Query().Get("follow") == "true"
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	fw := flushWriter{w: w}
	if err := d.deps.Cluster.Logs(r.Context(), e.Kubeconfig, e.Namespace, svc, follow, tail, fw); err != nil && r.Context().Err() == nil {
		_, _ = fmt.Fprintf(fw, "devctl: logs: %v\n", err)
	}
}

func (d *Daemon) handleEvents(w http.ResponseWriter, r *http.Request) {
	ch, cancel := d.store.Subscribe(r.URL.Query().Get("env"))
	defer cancel()
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.WriteHeader(http.StatusOK)
	// Send the headers now: the client's request returns only then, and an
	// environment that does not exist yet has no snapshot to send.
	if fl, ok := w.(http.Flusher); ok {
		fl.Flush()
	}
	fw := flushWriter{w: w}
	enc := json.NewEncoder(fw)
	keepalive := time.NewTicker(15 * time.Second)
	defer keepalive.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-d.ctx.Done():
			return
		case <-keepalive.C:
			// An empty line keeps proxies and idle timers from closing the stream.
			if _, err := fw.Write([]byte("\n")); err != nil {
				return
			}
		case ev, ok := <-ch:
			if !ok {
				return
			}
			if err := enc.Encode(ev); err != nil {
				return
			}
		}
	}
}

func (d *Daemon) handleShutdown(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, struct{}{})
	go d.stop()
}

func notFound(name string) string {
	return fmt.Sprintf("no environment named %q (`devctl ls` lists them)", name)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, code int, reason, msg string) {
	writeJSON(w, code, api.Error{Message: msg, Code: reason})
}

type flushWriter struct{ w http.ResponseWriter }

func (f flushWriter) Write(p []byte) (int, error) {
	n, err := f.w.Write(p)
	if fl, ok := f.w.(http.Flusher); ok {
		fl.Flush()
	}
	return n, err
}
