package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/devctl/devctl/internal/api"
	"github.com/devctl/devctl/internal/goldenpath"
	"github.com/devctl/devctl/internal/watch"
)

// projectRoot names the watch root of the project folder (devctl.yaml,
// charts, manifests, policy). It is not a DNS label, so it cannot clash
// with a service's name.
const projectRoot = "."

// Watcher starts a source watcher (watch.New); tests shorten the quiet
// window through it.
type Watcher func(ctx context.Context, o watch.Options) (*watch.Watcher, error)

// watchers is the controller that watches the sources of environments. It
// follows the store like the runner: an environment whose spec asks for
// watching, and that has finished a run, gets a watcher over its services'
// build contexts and its project folder; the watcher stops when the
// environment goes away and is started again by the next daemon, which
// finds the same state. A coalesced batch of changes becomes a request:
// RebuildRequested for the services whose context changed, or UpRequested
// when devctl.yaml (or what it points at) changed. The reducer queues and
// merges them like any other request.
type watchers struct {
	store *Store
	start Watcher
	log   *slog.Logger
	// goBuilder says Go services are compiled by devctl, so a change of
	// their sources can be a live update of the binary.
	goBuilder bool

	mu sync.Mutex
	m  map[string]*envWatch
	wg sync.WaitGroup
}

// watchedProject is what a watcher was made from.
type watchedProject struct {
	key      string
	project  *goldenpath.Project
	services []string
	// upPaths are the project-relative paths whose change needs an up
	// (devctl.yaml, policy rules and waivers, extra manifests).
	upPaths []string
}

type envWatch struct {
	w       *watch.Watcher
	cancel  context.CancelFunc
	done    chan struct{}
	project *watchedProject
	// observed is the generation the project was loaded at.
	observed int64
	paused   bool
}

func newWatchers(s *Store, start Watcher, log *slog.Logger) *watchers {
	return &watchers{store: s, start: start, log: log, m: map[string]*envWatch{}}
}

// run reconciles after every state change until ctx ends, then stops every
// watcher.
func (ws *watchers) run(ctx context.Context, changes <-chan struct{}) {
	defer ws.stopAll()
	for {
		ws.reconcile(ctx)
		select {
		case <-ctx.Done():
			return
		case <-changes:
		}
	}
}

func (ws *watchers) reconcile(ctx context.Context) {
	list := ws.store.List(ctx)
	seen := map[string]bool{}
	for _, e := range list {
		seen[e.Name] = true
		ws.reconcileEnv(ctx, e)
	}
	ws.mu.Lock()
	var gone []string
	for name := range ws.m {
		if !seen[name] {
			gone = append(gone, name)
		}
	}
	ws.mu.Unlock()
	for _, name := range gone {
		ws.stop(name)
	}
}

// watchable says whether e's sources should have a watcher: it has been up
// once and is not being deleted.
func watchable(e api.Environment) bool {
	if e.Spec.Dir == "" || e.Status.ObservedGeneration == 0 || e.Status.Phase == api.PhaseDeleting {
		return false
	}
	if q := e.Status.Queued; q != nil && q.Kind == api.RunDelete {
		return false
	}
	if r := e.Status.Run; r.Active() && r.Request.Kind == api.RunDelete {
		return false
	}
	return true
}

func (ws *watchers) reconcileEnv(ctx context.Context, e api.Environment) {
	ws.mu.Lock()
	cur := ws.m[e.Name]
	ws.mu.Unlock()
	running := cur != nil && cur.w != nil
	switch {
	case !watchable(e):
		if running {
			ws.stop(e.Name)
		}
		ws.setStatus(e, false, "")
		return
	case running:
		// A paused watcher keeps recording; resuming hands out what changed.
		if cur.paused == e.Spec.Watch {
			ws.mu.Lock()
			cur.paused = !e.Spec.Watch
			ws.mu.Unlock()
			if cur.paused {
				cur.w.Pause()
			} else {
				cur.w.Resume()
			}
			ws.setStatus(e, e.Spec.Watch, "")
		}
		if cur.observed == e.Status.ObservedGeneration || e.Status.Run.Active() {
			return
		}
	case !e.Spec.Watch:
		ws.setStatus(e, false, "")
		return
	case e.Status.Run.Active():
		// Wait for the up (or resume) to finish: it may change the services.
		return
	case cur != nil && cur.observed == e.Status.ObservedGeneration:
		return // failed to start for this generation; the next run retries
	}
	wp, err := loadWatched(e)
	if err == nil && running && cur.project.key == wp.key {
		// Same folders: keep the watcher (and what it has seen but not
		// handed out yet); the services' live: and go: may have changed.
		ws.mu.Lock()
		cur.observed, cur.project = e.Status.ObservedGeneration, wp
		ws.mu.Unlock()
		return
	}
	if running {
		ws.stop(e.Name)
	}
	if err == nil {
		err = ws.startEnv(ctx, e, wp)
	}
	if err != nil {
		ws.log.Warn("watch", "env", e.Name, "err", err)
		ws.mu.Lock()
		ws.m[e.Name] = &envWatch{observed: e.Status.ObservedGeneration}
		ws.mu.Unlock()
		ws.store.Dispatch(Logged{Name: e.Name, Level: api.LevelWarn, Source: api.SourceProgress,
			Message: "not watching the sources: " + err.Error()})
		ws.setStatus(e, false, err.Error())
		return
	}
	ws.setStatus(e, e.Spec.Watch, "")
}

// setStatus records whether e is watched, when that changed.
func (ws *watchers) setStatus(e api.Environment, watching bool, errText string) {
	if e.Status.Watching != watching || e.Status.WatchError != errText {
		ws.store.Dispatch(WatchChanged{Name: e.Name, Watching: watching, Error: errText})
	}
}

// loadWatched reads e's project and lists what to watch.
func loadWatched(e api.Environment) (*watchedProject, error) {
	p, err := goldenpath.Load(e.Spec.Dir, e.Spec.Config)
	if err != nil {
		return nil, fmt.Errorf("read the project to watch it: %w", err)
	}
	wp := &watchedProject{project: p, services: p.ServiceNames()}
	if cfg := p.ConfigPath(); cfg != "" {
		if rel, err := filepath.Rel(p.Dir, cfg); err == nil {
			wp.upPaths = append(wp.upPaths, filepath.ToSlash(rel))
		}
	}
	extras := append([]string{p.Policy.Rules, p.Policy.Waivers}, p.Manifests...)
	for _, s := range p.Services {
		// A service's own chart, overlay or manifests: a save deploys it.
		extras = append(extras, s.Chart, s.Kustomize)
		extras = append(extras, s.Manifests...)
		extras = append(extras, s.ValuesFiles...)
	}
	for _, extra := range extras {
		if extra != "" && !filepath.IsAbs(extra) {
			wp.upPaths = append(wp.upPaths, path.Clean(filepath.ToSlash(extra)))
		}
	}
	var key strings.Builder
	fmt.Fprintf(&key, "%s\x00%s\x00%q", p.Dir, p.ConfigPath(), wp.upPaths)
	for _, r := range wp.roots() {
		fmt.Fprintf(&key, "\x00%s=%s:%q", r.Name, r.Dir, r.Ignore)
	}
	wp.key = key.String()
	return wp, nil
}

// roots are the folders to watch: each service's build context (with its
// .dockerignore and watch.ignore, less what devctl writes there itself) and
// the project folder.
func (wp *watchedProject) roots() []watch.Root {
	p := wp.project
	roots := []watch.Root{{Name: projectRoot, Dir: p.Dir}}
	for i := range p.Services {
		s := &p.Services[i]
		// A Go service's image is compiled from its sources, which its
		// .dockerignore (made for the Docker build of the binary) may
		// well exclude.
		r := watch.Root{Name: s.Name, Dir: p.ContextDir(s), Dockerignore: s.Go == nil, Ignore: slices.Clone(s.Watch.Ignore)}
		if s.Go != nil && s.Go.Output != "" && !filepath.IsAbs(s.Go.Output) {
			// The compiled binary is written into the context: its
			// change is the build's own output, not the user's.
			r.Ignore = append(r.Ignore, filepath.ToSlash(s.Go.Output))
		}
		roots = append(roots, r)
	}
	return roots
}

// needsUp reports whether a change of project-relative path rel needs an up.
func (wp *watchedProject) needsUp(rel string) bool {
	for _, p := range wp.upPaths {
		if rel == p || strings.HasPrefix(rel, p+"/") {
			return true
		}
	}
	return false
}

func (ws *watchers) startEnv(ctx context.Context, e api.Environment, wp *watchedProject) error {
	wctx, cancel := context.WithCancel(ctx)
	w, err := ws.start(wctx, watch.Options{Roots: wp.roots(), Single: watch.DefaultSingle, Logger: ws.log})
	if err != nil {
		cancel()
		if errors.Is(err, watch.ErrWatchLimit) {
			return err // its text says which sysctl to raise, and how
		}
		return fmt.Errorf("watch %s: %w", wp.project.Dir, err)
	}
	ew := &envWatch{w: w, cancel: cancel, done: make(chan struct{}), project: wp, observed: e.Status.ObservedGeneration}
	if !e.Spec.Watch {
		ew.paused = true
		w.Pause()
	}
	ws.mu.Lock()
	ws.m[e.Name] = ew
	ws.mu.Unlock()
	ws.wg.Add(2)
	go func() {
		defer ws.wg.Done()
		if err := w.Run(wctx); err != nil && wctx.Err() == nil {
			ws.log.Warn("watch stopped", "env", e.Name, "err", err)
			ws.store.Dispatch(Logged{Name: e.Name, Level: api.LevelWarn, Source: api.SourceProgress,
				Message: "stopped watching the sources: " + err.Error()})
			ws.store.Dispatch(WatchChanged{Name: e.Name, Error: err.Error()})
		}
	}()
	go func() {
		defer ws.wg.Done()
		defer close(ew.done)
		for b := range w.Batches() {
			ws.mu.Lock()
			cur := ew.project
			ws.mu.Unlock()
			ws.handle(wctx, e.Name, cur, b)
		}
	}()
	ws.log.Info("watching", "env", e.Name, "dir", wp.project.Dir, "services", wp.services)
	return nil
}

// handle turns a batch into a request.
func (ws *watchers) handle(ctx context.Context, name string, wp *watchedProject, b watch.Batch) {
	e, ok := ws.store.Get(ctx, name)
	if !ok {
		return
	}
	if a := decide(e, wp, b, ws.goBuilder); a != nil {
		ws.store.Dispatch(a)
	}
}

// decide is what a batch asks for: nothing, a live update or a rebuild of
// the services whose context changed, or an up when the project's
// configuration changed (or the kernel dropped events, so anything may
// have). A live update needs every change to be one live: covers.
func decide(e api.Environment, wp *watchedProject, b watch.Batch, goBuilder bool) Action {
	if b.Overflow {
		return UpRequested{Name: e.Name, Spec: e.Spec, Reason: "file events were dropped: rebuilding everything"}
	}
	for _, rel := range b.Changes[projectRoot] {
		if wp.needsUp(rel) {
			return UpRequested{Name: e.Name, Spec: e.Spec, Reason: rel + " changed"}
		}
	}
	var svcs, files, projectFiles []string
	live := true
	for _, name := range wp.services {
		ch := b.Changes[name]
		if len(ch) == 0 {
			continue
		}
		svcs = append(svcs, name)
		s := wp.project.Service(name)
		// A pod deployed before the environment was watched has no agent:
		// its first change is an image, deployed in live mode.
		st := e.Status.Service(name)
		live = live && st != nil && st.Live && liveDecision(s, goBuilder, ch)
		for _, f := range ch {
			if !slices.Contains(files, f) {
				files = append(files, f)
			}
			pf := filepath.ToSlash(filepath.Join(s.Context, f))
			if !slices.Contains(projectFiles, pf) {
				projectFiles = append(projectFiles, pf)
			}
		}
	}
	if len(svcs) == 0 {
		return nil
	}
	reason := files[0] + " changed"
	if len(files) > 1 {
		reason = fmt.Sprintf("%d files changed", len(files))
	}
	a := RebuildRequested{Name: e.Name, Services: svcs, Reason: reason, Changed: b.First}
	if live {
		a.Live, a.Files = true, projectFiles
	}
	return a
}

func (ws *watchers) stop(name string) {
	ws.mu.Lock()
	ew := ws.m[name]
	delete(ws.m, name)
	ws.mu.Unlock()
	if ew == nil || ew.w == nil {
		return
	}
	ew.cancel()
	_ = ew.w.Close()
	<-ew.done
}

func (ws *watchers) stopAll() {
	ws.mu.Lock()
	var names []string
	for n := range ws.m {
		names = append(names, n)
	}
	ws.mu.Unlock()
	for _, n := range names {
		ws.stop(n)
	}
	ws.wg.Wait()
}

// handleWatch pauses or resumes watching an environment's sources.
func (d *Daemon) handleWatch(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	var req api.WatchRequest
	if !decodeBody(w, r, &req) {
		return
	}
	if d.deps.Watch == nil {
		writeError(w, http.StatusConflict, api.CodeConflict, "this daemon does not watch sources")
		return
	}
	if _, err := d.store.DispatchSync(r.Context(), WatchRequested{Name: name, Watch: req.Watch}); err != nil {
		writeError(w, http.StatusServiceUnavailable, api.CodeInternal, err.Error())
		return
	}
	e, ok := d.store.Get(r.Context(), name)
	if !ok {
		writeError(w, http.StatusNotFound, api.CodeNotFound, notFound(name))
		return
	}
	writeJSON(w, http.StatusOK, e)
}
