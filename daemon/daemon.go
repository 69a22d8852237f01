// Package daemon is devctl's long-running process. It owns all state (one
// store loop: actions in, events out), serves the API on a unix socket,
// runs the controllers that create environments, build, deploy and hold
// port-forwards, persists its state atomically and, after a restart,
// rediscovers environments from the clusters themselves.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/devctl/devctl/internal/api"
	"github.com/devctl/devctl/internal/paths"
)

// ErrAlreadyRunning is returned by Run when another daemon answers on the socket.
var ErrAlreadyRunning = errors.New("a devctl daemon is already running")

// Options configure a Daemon.
type Options struct {
	Socket   string // default paths.Socket()
	StateDir string // default paths.StateDir()
	Version  string
	Logger   *slog.Logger
	Deps     Deps
	// PeerUID is the only user whose connections are served (default:
	// the daemon's own).
	PeerUID *int
}

// Daemon is one running devctl daemon.
type Daemon struct {
	socket, stateDir, version string
	log                       *slog.Logger
	deps                      Deps
	store                     *Store
	runner                    *runner
	watchers                  *watchers
	started                   time.Time
	peerUID                   int
	// rediscovered is closed once the environments in the clusters were
	// merged with the state file after start.
	rediscovered chan struct{}

	ctx      context.Context
	cancel   context.CancelFunc
	stopOnce sync.Once

	// followers counts the event streams open now.
	followers atomic.Int64

	mu sync.Mutex
	// stateErr is why the state file could not be saved last time, or "".
	stateErr string
}

func (d *Daemon) setStateErr(err error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.stateErr = ""
	if err != nil {
		d.stateErr = err.Error()
	}
}

func (d *Daemon) stateError() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.stateErr
}

// New prepares a daemon; Run starts it.
func New(o Options) *Daemon {
	if o.Socket == "" {
		o.Socket = paths.Socket()
	}
	if o.StateDir == "" {
		o.StateDir = paths.StateDir()
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	uid := os.Getuid()
	if o.PeerUID != nil {
		uid = *o.PeerUID
	}
	return &Daemon{socket: o.Socket, stateDir: o.StateDir, version: o.Version, log: o.Logger, deps: o.Deps, peerUID: uid,
		rediscovered: make(chan struct{})}
}

// StatePath is the file the daemon persists its state to.
func (d *Daemon) StatePath() string { return filepath.Join(d.stateDir, "state.json") }

// Run serves until ctx ends or a shutdown request arrives. Environments keep
// running after the daemon stops; the next daemon finds them again.
func (d *Daemon) Run(ctx context.Context) error {
	d.started = time.Now()
	if err := paths.EnsurePrivateDir(d.stateDir); err != nil {
		return err
	}
	if err := paths.EnsurePrivateDir(filepath.Dir(d.socket)); err != nil {
		return err
	}
	// One daemon per socket: the lock is held for the process's life and
	// released by the kernel however it ends, so two daemons started at
	// once cannot both serve (or remove each other's socket).
	unlock, err := lockFile(d.socket + ".lock")
	if err != nil {
		return err
	}
	defer unlock()
	ln, err := listen(ctx, d.socket)
	if err != nil {
		return err
	}
	st, err := LoadState(d.StatePath())
	if err != nil {
		d.log.Warn("state", "err", err)
	}
	d.store = NewStore(st, d.log)
	d.runner = newRunner(d.store, d.deps, d.log)
	if st != nil {
		// A run the previous daemon left active is not this daemon's to
		// execute: nothing runs it any more. Recovered ends it and asks for
		// it again under a new ID; starting it here as well would run the
		// two at once (two kind creates of one cluster).
		for name, e := range st.Envs {
			if e.Status.Run.Active() {
				d.runner.started[name] = e.Status.Run.ID
			}
		}
	}
	d.runner.stateDir = d.stateDir
	d.ctx, d.cancel = context.WithCancel(ctx)
	defer d.cancel()

	persistDone := make(chan struct{})
	pctx, pcancel := context.WithCancel(context.Background())
	changes := d.store.Watch()
	go func() {
		defer close(persistDone)
		persist(pctx, d.store, changes, d.StatePath(), 200*time.Millisecond, persistRetry, d.log, d.setStateErr)
	}()
	runnerDone := make(chan struct{})
	runCtx, runCancel := context.WithCancel(context.Background())
	runChanges := d.store.Watch()
	go func() {
		defer close(runnerDone)
		d.runner.run(runCtx, runChanges)
	}()
	redDone := make(chan struct{})
	go func() {
		defer close(redDone)
		red := newREDScraper(d.store)
		red.followed = func() bool { return d.followers.Load() > 0 }
		red.run(runCtx)
	}()
	watchDone := make(chan struct{})
	if d.deps.Watch != nil {
		ws := newWatchers(d.store, d.deps.Watch, d.log)
		d.watchers = ws
		d.runner.attachLive(ws)
		wchanges := d.store.Watch()
		go func() {
			defer close(watchDone)
			ws.run(runCtx, wchanges)
		}()
	} else {
		close(watchDone)
	}
	trimDone := make(chan struct{})
	trimChanges := d.store.Watch()
	go func() {
		defer close(trimDone)
		trimWhenIdle(runCtx, d.store, trimChanges, idleAfter, func() { trim(d.log) })
	}()
	known := d.store.List(d.ctx)
	lastRun := int64(0)
	if st != nil {
		lastRun = st.LastRun
	}
	go d.recover(d.ctx, known, lastRun)

	srv := &http.Server{Handler: d.handler(), ReadHeaderTimeout: 10 * time.Second}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(peerListener{Listener: ln, uid: d.peerUID, log: d.log}) }()
	d.log.Info("daemon listening", "socket", d.socket, "pid", os.Getpid(), "version", d.version)

	select {
	case <-d.ctx.Done():
	case err = <-serveErr:
	}
	d.cancel()
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = srv.Shutdown(shutdownCtx)
	runCancel()
	<-runnerDone
	<-redDone
	<-trimDone
	<-watchDone
	d.runner.forwards.closeAll()
	pcancel()
	<-persistDone
	d.store.Close()
	_ = os.Remove(d.socket)
	d.log.Info("daemon stopped")
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

func (d *Daemon) stop() {
	d.stopOnce.Do(func() {
		if d.cancel != nil {
			d.cancel()
		}
	})
}

// recover picks up where the previous daemon stopped. It merges the
// environments the clusters know with the state file — clusters made by
// devctl are found even when the file is gone, and entries whose cluster is
// gone are dropped — and then lets the reducer restart what was left
// unfinished and resume what was ready (Recovered).
//
// Only environments known at start are reconciled against the clusters:
// one accepted since is being created and is not in any cluster yet.
func (d *Daemon) recover(ctx context.Context, known []api.Environment, lastRun int64) {
	defer close(d.rediscovered)
	lctx, cancel := context.WithTimeout(ctx, time.Minute)
	live, err := d.deps.Environments.List(lctx)
	cancel()
	if err != nil {
		// Without the list, trust the state file: runs that need a cluster
		// will say what is wrong.
		d.log.Warn("rediscover environments", "err", err)
	}
	found := map[string]bool{}
	for _, e := range live {
		found[e.Name] = true
		d.store.Dispatch(Discovered{Name: e.Name, Spec: e.Spec, Kubeconfig: e.Kubeconfig, Created: e.Created, Stopped: e.Stopped, Start: e.Start})
	}
	for _, e := range known {
		if err == nil && !found[e.Name] && !e.Status.Run.Active() && e.Status.Queued == nil && e.Status.Phase.Settled() {
			d.log.Info("forgetting environment whose cluster is gone", "env", e.Name)
			d.store.Dispatch(Forgotten{Name: e.Name})
			continue
		}
		d.store.Dispatch(Recovered{Name: e.Name, LastRun: lastRun})
	}
	// A no-op applied after all of the above: once it returns, readers see
	// the merged environments.
	_, _ = d.store.DispatchSync(ctx, Forgotten{})
}

// lockFile takes an exclusive lock on path, or fails with ErrAlreadyRunning.
func lockFile(path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open daemon lock %s: %w", path, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		_ = f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w on %s (lock %s is held): stop it with `devctl daemon stop`", ErrAlreadyRunning, strings.TrimSuffix(path, ".lock"), path)
		}
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	return func() { _ = f.Close() }, nil
}

// listen binds the unix socket with mode 0600. A socket file nobody answers
// on is stale and replaced; a live one means another daemon runs.
func listen(ctx context.Context, socket string) (net.Listener, error) {
	if _, err := os.Stat(socket); err == nil {
		c := api.NewClient(socket)
		hctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		h, herr := c.Health(hctx)
		cancel()
		if herr == nil {
			return nil, fmt.Errorf("%w (pid %d) on %s: stop it with `devctl daemon stop`", ErrAlreadyRunning, h.PID, socket)
		}
		if err := os.Remove(socket); err != nil {
			return nil, fmt.Errorf("remove stale socket %s: %w", socket, err)
		}
	}
	old := syscall.Umask(0o177)
	ln, err := net.Listen("unix", socket)
	syscall.Umask(old)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", socket, err)
	}
	if err := os.Chmod(socket, 0o600); err != nil {
		_ = ln.Close()
		return nil, fmt.Errorf("chmod %s: %w", socket, err)
	}
	return ln, nil
}
