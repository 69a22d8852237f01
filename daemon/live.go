package daemon

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/devctl/devctl/internal/agent"
	"github.com/devctl/devctl/internal/agent/agentbin"
	"github.com/devctl/devctl/internal/api"
	"github.com/devctl/devctl/internal/build/goimage"
	"github.com/devctl/devctl/internal/config"
)

// Live update: a saved change that only touches what a service's `live:`
// covers (its Go sources, when devctl compiles it, and its sync folders)
// is sent to devctl-agent in the running container, which writes the files
// atomically, restarts the app and answers once it listens again. No new
// image, no rollout, no Helm revision. Anything else is an image rebuild.

// agentPort is the agent's API port in the pod (the chart's live.port).
const agentPort = 7071

// agentRepository is the image the chart's init container copies the agent from.
const agentRepository = "devctl.local/devctl-agent"

// errLiveUnavailable means a live update cannot be done (no agent in the
// pod, the service not in live mode): the change is rebuilt as an image.
var errLiveUnavailable = errors.New("live update not possible")

var syncStep = step{StepSync, api.PhaseDeploying, runSync}

// livePlan is the plan of a live update.
func livePlan() []Step { return []Step{configStep, syncStep} }

// liveState is what the runner keeps for live updates: the agent image and
// the clusters it was delivered to, and the agents' tokens.
type liveState struct {
	once      sync.Once
	image     v1.Image
	ref       string
	err       error
	mu        sync.Mutex
	delivered map[string]string // kubeconfig → agent image ref loaded there
	pushed    string            // the agent image ref pushed to the registry
	warned    bool
}

// agentImage assembles the agent's FROM scratch image once.
func (r *runner) agentImage() (v1.Image, string, error) {
	l := &r.live
	l.once.Do(func() {
		bin, _, err := agentbin.Binary(runtime.GOARCH)
		if err != nil {
			l.err = err
			return
		}
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		hdr := &tar.Header{Name: "devctl-agent", Mode: 0o755, Size: int64(len(bin)), Typeflag: tar.TypeReg, ModTime: time.Unix(0, 0)}
		if err := tw.WriteHeader(hdr); err != nil {
			l.err = err
			return
		}
		if _, err := tw.Write(bin); err != nil {
			l.err = err
			return
		}
		if err := tw.Close(); err != nil {
			l.err = err
			return
		}
		data := buf.Bytes()
		layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil })
		if err != nil {
			l.err = err
			return
		}
		img, err := mutate.AppendLayers(empty.Image, layer)
		if err != nil {
			l.err = err
			return
		}
		img, err = mutate.Config(img, v1.Config{Entrypoint: []string{"/devctl-agent"}, User: goimage.User})
		if err != nil {
			l.err = err
			return
		}
		d, err := img.Digest()
		if err != nil {
			l.err = err
			return
		}
		l.image, l.ref = img, agentRepository+":"+d.Hex[:16]
	})
	return l.image, l.ref, l.err
}

// hasLive reports whether the run deploys a service in live mode: one asks
// for live update (live: in devctl.yaml) and the environment is watched. An
// environment nobody watches (`up --ci`, a preview) runs its pods as they
// run in production: no agent as PID 1, no init containers, nothing ever
// synced. Once it is watched, its next deploy (a rebuild: the first save is
// an image, see decide) brings live mode in.
func (run *Run) hasLive() bool {
	if !run.Spec.Watch {
		return false
	}
	for _, s := range run.project.Services {
		if s.Live != nil {
			return true
		}
	}
	return false
}

// deliverAgent puts the agent image into the cluster once per cluster, so
// that live-mode pods can copy the agent. Without an agent binary, live
// update is off (said once) and services deploy as usual.
func (run *Run) deliverAgent(ctx context.Context) error {
	if !run.hasLive() {
		return nil
	}
	l := &run.r.live
	img, ref, err := run.r.agentImage()
	if err != nil {
		l.mu.Lock()
		warn := !l.warned
		l.warned = true
		l.mu.Unlock()
		if warn {
			run.logf(StepDeliver, "", api.SourceProgress, api.LevelWarn, "live update is off, changes are rebuilt as images: %v", err)
		}
		return nil
	}
	l.mu.Lock()
	done := l.delivered[run.kubeconfig] == ref && !run.newCluster
	l.mu.Unlock()
	if !done && run.r.deps.Registry != nil {
		// A cluster that pulls from the registry gets the agent from
		// there (pushed while the cluster was made): no `kind load`.
		ok, err := run.r.pullsFromRegistry(ctx, run)
		if err == nil && ok {
			if _, _, err := run.push(ctx, img, ref); err != nil {
				return fmt.Errorf("deliver the live-update agent: %w", err)
			}
			l.mu.Lock()
			if l.delivered == nil {
				l.delivered = map[string]string{}
			}
			l.delivered[run.kubeconfig] = ref
			l.mu.Unlock()
			done = true
		}
	}
	if !done {
		tag, err := nameTag(ref)
		if err != nil {
			return err
		}
		err = run.r.deps.Environments.LoadImages(ctx, run.Env, run.Spec.Provider, func() (io.ReadCloser, error) {
			pr, pw := io.Pipe()
			go func() { pw.CloseWithError(tarball.Write(tag, img, pw)) }()
			return pr, nil
		})
		if err != nil {
			return fmt.Errorf("deliver the live-update agent: %w", err)
		}
		l.mu.Lock()
		if l.delivered == nil {
			l.delivered = map[string]string{}
		}
		l.delivered[run.kubeconfig] = ref
		l.mu.Unlock()
	}
	run.mu.Lock()
	run.agentRef = ref
	run.mu.Unlock()
	return nil
}

// pushAgentEarly starts pushing the agent image to the registry, when a
// service is in live mode and the agent is not in the registry yet.
func (run *Run) pushAgentEarly(ctx context.Context) {
	if run.r.deps.Registry == nil || !run.hasLive() {
		return
	}
	img, ref, err := run.r.agentImage()
	if err != nil {
		return // deliverAgent says so
	}
	l := &run.r.live
	l.mu.Lock()
	pushed := l.pushed == ref
	l.pushed = ref
	l.mu.Unlock()
	if !pushed {
		run.pushEarly(ctx, img, ref)
	}
}

// liveValues sets the chart's live values of every live service, once the
// agent image is in the cluster.
func (run *Run) liveValues() error {
	if run.agentRef == "" {
		return nil
	}
	for i := range run.project.Services {
		s := &run.project.Services[i]
		if s.Live == nil {
			continue
		}
		entry := s.Live.Entrypoint
		if len(entry) == 0 {
			if !run.r.usesGoBuilder(s) {
				return &configError{fmt.Errorf("service %s: live.entrypoint is required for an image built from a Dockerfile: set it to the image's ENTRYPOINT and CMD", s.Name)}
			}
			entry = []string{path.Join(goimage.AppDir, s.Name)}
		}
		token, err := run.r.liveToken(run.Env, s.Name)
		if err != nil {
			return err
		}
		var syncs []any
		for _, sy := range s.Live.Sync {
			syncs = append(syncs, map[string]any{"dest": path.Clean(sy.Dest)})
		}
		vals := map[string]any{}
		for k, v := range s.Values {
			vals[k] = v
		}
		vals["live"] = map[string]any{
			"enabled": true, "agentImage": run.agentRef, "port": agentPort, "token": token,
			"entrypoint": toAny(entry), "syncs": syncs,
		}
		s.Values = vals
	}
	return nil
}

func toAny(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}

// liveToken is the agent token of an environment's service, made once and
// kept in the state folder so the release's values do not change.
func (r *runner) liveToken(env, service string) (string, error) {
	dir := filepath.Join(r.stateDir, "live")
	p := filepath.Join(dir, env+"."+service+".token")
	if b, err := os.ReadFile(p); err == nil && len(b) >= 32 {
		return strings.TrimSpace(string(b)), nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	tok := hex.EncodeToString(b)
	if err := os.WriteFile(p, []byte(tok+"\n"), 0o600); err != nil {
		return "", err
	}
	return tok, nil
}

// liveDecision says whether the changes of service s (paths relative to its
// context) can all be live-updated: each is under a sync folder, or is a Go
// source of a service devctl compiles.
func liveDecision(s *config.Service, goBuilder bool, changed []string) bool {
	if s.Live == nil || len(changed) == 0 {
		return false
	}
	for _, rel := range changed {
		if _, ok := syncDest(s, rel); ok {
			continue
		}
		if goBuilder && s.Go != nil && goSource(rel) {
			continue
		}
		return false
	}
	return true
}

// goSource reports whether a change of rel means a new binary.
func goSource(rel string) bool {
	base := path.Base(rel)
	return strings.HasSuffix(base, ".go") || base == "go.mod" || base == "go.sum"
}

// syncDest is where in the container the context-relative file rel goes.
func syncDest(s *config.Service, rel string) (string, bool) {
	for _, sy := range s.Live.Sync {
		src := path.Clean(filepath.ToSlash(sy.Path))
		if src == "." {
			return path.Join(sy.Dest, rel), true
		}
		if r, ok := strings.CutPrefix(rel, src+"/"); ok {
			return path.Join(sy.Dest, r), true
		}
	}
	return "", false
}

// runSync is the live update: compile what needs compiling, send the
// changed files to each service's agent, and wait until the app listens.
func runSync(ctx context.Context, r *Run) (string, error) {
	p := r.project
	var parts []string
	for _, name := range r.targets() {
		s := p.Service(name)
		if s.Live == nil {
			return "", fmt.Errorf("%w: %s has no live: in devctl.yaml", errLiveUnavailable, name)
		}
		ctxDir := p.ContextDir(s)
		var files []agent.File
		restart, compile := s.Live.Restart, false
		for _, f := range r.Request.Files {
			rel, err := filepath.Rel(ctxDir, filepath.Join(p.Dir, f))
			if err != nil || strings.HasPrefix(rel, "..") {
				continue
			}
			rel = filepath.ToSlash(rel)
			if dest, ok := syncDest(s, rel); ok {
				local := filepath.Join(ctxDir, rel)
				file, err := agent.LocalFile(dest, local)
				if errors.Is(err, fs.ErrNotExist) {
					file = agent.DeleteFile(dest)
				} else if err != nil {
					return "", err
				}
				files = append(files, file)
				continue
			}
			compile = true
		}
		if compile {
			if !r.r.usesGoBuilder(s) {
				return "", fmt.Errorf("%w: %s changed outside live.sync", errLiveUnavailable, name)
			}
			began := time.Now()
			_, err := r.buildGo(ctx, p, s)
			r.noteStep(StepBuild, time.Since(began))
			r.noteStep(StepSync, -time.Since(began)) // counted once, as build
			if err != nil {
				return "", fmt.Errorf("build %s: %w", s.Name, buildFailure(err))
			}
			g := r.goImages[r.images[s.Name]]
			f, err := agent.LocalFile(path.Join(goimage.AppDir, s.Name), g.binary)
			if err != nil {
				return "", err
			}
			f.Mode = 0o755
			files = append(files, f)
			restart = true
		}
		if len(files) == 0 {
			continue
		}
		token, err := r.r.liveToken(r.Env, s.Name)
		if err != nil {
			return "", err
		}
		began := time.Now()
		url, err := r.agentURL(ctx, s.Name)
		if err != nil {
			return "", fmt.Errorf("%w: no agent for %s: %w", errLiveUnavailable, name, err)
		}
		r.noteStep(StepDeliver, time.Since(began))
		r.noteStep(StepSync, -time.Since(began))
		began = time.Now()
		res, err := agent.Sync(ctx, url, token, agent.Batch{Generation: uint64(r.Request.Generation), Files: files,
			Action: agent.Action{Run: s.Live.Run, Restart: restart}})
		var ae *agent.ActionError
		switch {
		case errors.As(err, &ae) && compile:
			// A binary that does not start is taken back: the last one
			// that did (or the image's) serves again.
			back := r.restoreBinary(ctx, url, token, s.Name)
			return "", fmt.Errorf("%s: the new version does not start (%s): %w", name, back, err)
		case errors.As(err, &ae):
			return "", fmt.Errorf("%s: the new version does not start: %w", name, err)
		case errors.Is(err, agent.ErrUnauthorized), errors.Is(err, agent.ErrPathNotAllowed):
			return "", fmt.Errorf("%w: %s: %w", errLiveUnavailable, name, err)
		case err != nil:
			return "", fmt.Errorf("%w: sync %s: %w", errLiveUnavailable, name, err)
		}
		if compile {
			r.r.keepBinary(r.Env, s.Name, r.goImages[r.images[s.Name]].binary)
		}
		// Sending is delivery; the rest (write, stop, start until it
		// listens) is the update.
		send := time.Since(began) - res.Timings.Total + res.Timings.Write
		r.noteStep(StepDeliver, send)
		r.noteStep(StepSync, -send)
		what := fmt.Sprintf("%s: %d file(s) synced", name, len(files))
		if restart {
			what += ", restarted"
		}
		parts = append(parts, fmt.Sprintf("%s in %dms", what, res.Timings.Total.Milliseconds()))
	}
	if len(parts) == 0 {
		return skip("nothing to sync")
	}
	return strings.Join(parts, "; "), nil
}

// goodBinary is where the last binary that started is kept per service.
func (r *runner) goodBinary(env, service string) string {
	return filepath.Join(r.stateDir, "live", env+"."+service+".good")
}

// keepBinary copies a binary that started, to go back to it.
func (r *runner) keepBinary(env, service, binary string) {
	b, err := os.ReadFile(binary)
	if err == nil {
		tmp := r.goodBinary(env, service) + ".tmp"
		if err = os.WriteFile(tmp, b, 0o700); err == nil {
			err = os.Rename(tmp, r.goodBinary(env, service))
		}
	}
	if err != nil {
		r.log.Warn("keep the live binary", "env", env, "service", service, "err", err)
	}
}

// restoreBinary puts back the last binary that started, or the image's,
// and says which.
func (run *Run) restoreBinary(ctx context.Context, url, token, service string) string {
	dest := path.Join(goimage.AppDir, service)
	f, what := agent.DeleteFile(dest), "the image's binary serves again"
	if good, err := agent.LocalFile(dest, run.r.goodBinary(run.Env, service)); err == nil {
		good.Mode = 0o755
		f, what = good, "the previous binary serves again"
	}
	if _, err := agent.Sync(ctx, url, token, agent.Batch{Files: []agent.File{f}, Action: agent.Action{Restart: true}}); err != nil {
		return "and going back failed: " + err.Error()
	}
	return what
}

// agentURL is the local address of a port-forward to service's agent,
// held like the service's own.
func (run *Run) agentURL(ctx context.Context, service string) (string, error) {
	fctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	return run.r.forwards.ensureKey(fctx, run.Env+"/"+service+"/agent", run.kubeconfig, run.namespace, service, agentPort, 0)
}

// attachLive tells the watchers whether Go services are compiled by devctl
// (their sources then live-update).
func (r *runner) attachLive(ws *watchers) { ws.goBuilder = r.deps.GoImages != nil }

func nameTag(ref string) (name.Tag, error) {
	t, err := name.NewTag(ref)
	if err != nil {
		return name.Tag{}, fmt.Errorf("image name %s: %w", ref, err)
	}
	return t, nil
}

// deployedLive says whether service's release, as this run deploys it,
// runs the service under the agent (liveValues set its live values).
func (run *Run) deployedLive(service string) bool {
	s := run.project.Service(service)
	return run.agentRef != "" && s != nil && s.Live != nil
}

// warmAgent opens the forward to a live-mode service's agent once it is
// ready, so the first save does not wait for it.
func (run *Run) warmAgent(ctx context.Context, s *config.Service) {
	if s.Live == nil || run.agentRef == "" {
		return
	}
	if _, err := run.agentURL(ctx, s.Name); err != nil {
		run.logf(StepReady, s.Name, api.SourceProgress, api.LevelWarn, "live update: no forward to the agent yet: %v", err)
	}
}
