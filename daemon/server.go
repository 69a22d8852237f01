package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/http/pprof"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/devctl/devctl/envs"
	"github.com/devctl/devctl/internal/api"
	"github.com/devctl/devctl/internal/build"
	"github.com/devctl/devctl/internal/config"
	"github.com/devctl/devctl/internal/git"
	"github.com/devctl/devctl/internal/goldenpath"
)

// handler returns the daemon's HTTP API. Every path is under /v1.
func (d *Daemon) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/health", d.handleHealth)
	mux.HandleFunc("POST /v1/resolve", d.handleResolve)
	mux.HandleFunc("GET /v1/envs", d.handleList)
	mux.HandleFunc("POST /v1/envs", d.handleUp)
	mux.HandleFunc("GET /v1/envs/{name}", d.handleGet)
	mux.HandleFunc("DELETE /v1/envs/{name}", d.handleDown)
	mux.HandleFunc("PUT /v1/envs/{name}/watch", d.handleWatch)
	mux.HandleFunc("GET /v1/envs/{name}/logs", d.handleLogs)
	mux.HandleFunc("GET /v1/envs/{name}/resources", d.handleResources)
	mux.HandleFunc("GET /v1/events", d.handleEvents)
	mux.HandleFunc("POST /v1/shutdown", d.handleShutdown)
	// Profiles of the daemon itself (heap, goroutines, CPU), for
	// `go tool pprof` through the socket: only its own user reaches them.
	mux.HandleFunc("GET /debug/pprof/", pprof.Index)
	mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	return mux
}

func (d *Daemon) handleHealth(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, api.Health{Version: d.version, PID: os.Getpid(), StartedAt: d.started, Socket: d.socket,
		StateError: d.stateError()})
}

// handleList answers once the environments in the clusters are known (a
// few seconds after a start with a lost state file), or after 20s with
// what is known by then.
func (d *Daemon) handleList(w http.ResponseWriter, r *http.Request) {
	select {
	case <-d.rediscovered:
	case <-time.After(20 * time.Second):
	case <-r.Context().Done():
	}
	list := d.store.List(r.Context())
	if d.probeReady(r.Context(), list) {
		list = d.store.List(r.Context())
	}
	writeJSON(w, http.StatusOK, list)
}

func (d *Daemon) handleGet(w http.ResponseWriter, r *http.Request) {
	e, ok := d.store.Get(r.Context(), r.PathValue("name"))
	if !ok {
		writeError(w, http.StatusNotFound, api.CodeNotFound, notFound(r.PathValue("name")))
		return
	}
	if d.probeReady(r.Context(), []api.Environment{e}) {
		if e, ok = d.store.Get(r.Context(), e.Name); !ok {
			writeError(w, http.StatusNotFound, api.CodeNotFound, notFound(r.PathValue("name")))
			return
		}
	}
	writeJSON(w, http.StatusOK, e)
}

func (d *Daemon) handleResolve(w http.ResponseWriter, r *http.Request) {
	var ref api.ProjectRef
	if !decodeBody(w, r, &ref) {
		return
	}
	res, _, err := d.resolve(r.Context(), ref)
	if err != nil {
		writeErr(w, err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

// handleUp resolves the project, checks what can be checked at once (the
// configuration, values, Dockerfiles, the Docker engine) and then asks for
// an up. The answer is the environment with the generation this request
// asked for; the run itself is followed on the event stream.
func (d *Daemon) handleUp(w http.ResponseWriter, r *http.Request) {
	var req api.UpRequest
	if !decodeBody(w, r, &req) {
		return
	}
	res, p, err := d.resolve(r.Context(), req.ProjectRef)
	if err != nil {
		writeErr(w, err)
		return
	}
	spec := res.Spec
	if req.NodeImage != "" {
		spec.NodeImage = req.NodeImage
	}
	if spec.NodeImage == "" && d.deps.NodeImage != nil {
		spec.NodeImage = d.deps.NodeImage()
	}
	if req.Provider != "" {
		spec.Provider = req.Provider
	}
	if req.Host != nil {
		h := *req.Host
		spec.Host = &h
	}
	if len(req.Labels) > 0 {
		labels := make(map[string]string, len(spec.Labels)+len(req.Labels))
		maps.Copy(labels, spec.Labels)
		maps.Copy(labels, req.Labels)
		spec.Labels = labels
	}
	spec.Watch = true
	if cur, ok := d.store.Get(r.Context(), res.Name); ok {
		spec.Watch = cur.Spec.Watch
	}
	if req.Watch != nil {
		spec.Watch = *req.Watch
	}
	if err := preflight(r.Context(), d.deps, p, spec, goldenpath.Target{Env: res.Name, Branch: spec.Branch}); err != nil {
		writeErr(w, err)
		return
	}
	// After a restart, the environments are reconciled with the clusters
	// (and an interrupted run taken up again) before this request is
	// merged with them.
	select {
	case <-d.rediscovered:
	case <-time.After(20 * time.Second):
	case <-r.Context().Done():
	}
	e, err := d.store.DispatchSync(r.Context(), UpRequested{Name: res.Name, Spec: spec, Reason: "devctl up"})
	if err != nil || e == nil {
		writeError(w, http.StatusServiceUnavailable, api.CodeInternal, fmt.Sprintf("up %s: the daemon is stopping: %v", res.Name, err))
		return
	}
	writeJSON(w, http.StatusAccepted, e)
}

// handleDown asks for an environment to be deleted. Down is idempotent: a
// name the daemon does not know still gets a delete run, which removes a
// cluster and files devctl left under it (the state was lost, or the
// daemon never saw it) and otherwise says there was nothing to delete.
func (d *Daemon) handleDown(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if _, known := d.store.Get(r.Context(), name); !known {
		if err := envs.ValidateName(name); err != nil {
			// Nothing devctl makes can carry this name.
			writeError(w, http.StatusNotFound, api.CodeNotFound, notFound(name))
			return
		}
	}
	e, err := d.store.DispatchSync(r.Context(), DownRequested{Name: name, Reason: "devctl down"})
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, api.CodeInternal, err.Error())
		return
	}
	if e == nil {
		writeError(w, http.StatusNotFound, api.CodeNotFound, notFound(name))
		return
	}
	writeJSON(w, http.StatusAccepted, e)
}

// resolve turns a project reference into the environment's name and spec:
// it loads devctl.yaml (or detects defaults), reads the git branch, and
// derives and validates the name. It is the only place names are derived.
func (d *Daemon) resolve(ctx context.Context, ref api.ProjectRef) (*api.Resolved, *goldenpath.Project, error) {
	if !filepath.IsAbs(ref.Dir) {
		return nil, nil, badRequest(fmt.Errorf("dir %q must be an absolute path", ref.Dir))
	}
	if fi, err := os.Stat(ref.Dir); err != nil || !fi.IsDir() {
		return nil, nil, badRequest(fmt.Errorf("project directory %s does not exist", ref.Dir))
	}
	var p *goldenpath.Project
	res := &api.Resolved{Name: ref.Name, Spec: api.EnvSpec{Dir: ref.Dir, Branch: ref.Branch}}
	if !ref.NameOnly {
		var err error
		if p, err = goldenpath.Load(ref.Dir, ref.Config); err != nil {
			return nil, nil, &configError{err}
		}
		res.Services, res.Notes = p.ServiceNames(), p.Notes
		res.Spec = api.EnvSpec{
			Provider: p.Cluster.Provider, Project: p.Name, Dir: p.Dir, Config: p.ConfigPath(),
			NodeImage: p.Cluster.NodeImage, Labels: p.Labels(), Branch: ref.Branch,
		}
		if p.Cluster.HostContext != "" {
			// cluster.hostContext: the vclusters go into that cluster
			// (default kubeconfig) instead of devctl's local host.
			res.Spec.Host = &api.HostCluster{Context: p.Cluster.HostContext}
		}
	}
	info, gerr := d.deps.Git(ctx, res.Spec.Dir)
	if gerr == nil {
		res.Spec.Repo = info.Repo
		if res.Spec.Branch == "" {
			res.Spec.Branch = info.Branch
		}
	}
	if res.Name == "" {
		switch {
		case gerr != nil && errors.Is(gerr, git.ErrNotRepo):
			return nil, nil, badRequest(gerr)
		case gerr != nil:
			return nil, nil, gerr
		}
		res.Name = envs.Name(res.Spec.Repo, res.Spec.Branch)
	}
	if err := envs.ValidateName(res.Name); err != nil {
		return nil, nil, badRequest(err)
	}
	return res, p, nil
}

func (d *Daemon) handleLogs(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	e, ok := d.store.Get(r.Context(), name)
	if !ok {
		writeError(w, http.StatusNotFound, api.CodeNotFound, notFound(name))
		return
	}
	svc := r.URL.Query().Get("service")
	if svc == "" && len(e.Status.Services) > 0 {
		svc = e.Status.Services[0].Name
	}
	if e.Status.Service(svc) == nil {
		writeError(w, http.StatusNotFound, api.CodeNotFound, fmt.Sprintf("environment %s has no service %q", name, svc))
		return
	}
	tail, _ := strconv.Atoi(r.URL.Query().Get("tail"))
	follow := r.URL.Query().Get("follow") == "true"
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	fw := flushWriter{w: w}
	if err := d.deps.Cluster.Logs(r.Context(), e.Status.Kubeconfig, e.Status.Namespace, svc, follow, tail, fw); err != nil && r.Context().Err() == nil {
		_, _ = fmt.Fprintf(fw, "devctl: logs: %v\n", err)
	}
}

func (d *Daemon) handleEvents(w http.ResponseWriter, r *http.Request) {
	ch, cancel := d.store.Subscribe(r.URL.Query().Get("env"))
	defer cancel()
	d.followers.Add(1)
	defer d.followers.Add(-1)
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

func decodeBody(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		writeError(w, http.StatusBadRequest, api.CodeBadRequest, "bad request body: "+err.Error())
		return false
	}
	return true
}

type requestError struct{ err error }

func (e *requestError) Error() string { return e.err.Error() }
func (e *requestError) Unwrap() error { return e.err }

func badRequest(err error) error { return &requestError{err} }

// writeErr answers with err's status and code: a configuration problem, a
// bad request, an unreachable Docker engine, or an internal error.
func writeErr(w http.ResponseWriter, err error) {
	var (
		ce  *configError
		re  *requestError
		cfg *config.Error
	)
	switch {
	case errors.As(err, &ce), errors.As(err, &cfg), errors.Is(err, config.ErrNotFound):
		writeError(w, http.StatusUnprocessableEntity, api.CodeConfigInvalid, err.Error())
	case errors.As(err, &re):
		writeError(w, http.StatusBadRequest, api.CodeBadRequest, err.Error())
	case errors.Is(err, build.ErrDockerUnavailable):
		writeError(w, http.StatusServiceUnavailable, api.CodeDockerUnavailable, err.Error())
	default:
		writeError(w, http.StatusInternalServerError, api.CodeInternal, err.Error())
	}
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
