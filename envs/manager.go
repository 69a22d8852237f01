// Package envs makes the ephemeral Kubernetes environments devctl runs
// services in: one per repository branch, each with its own kubeconfig file,
// rediscovered from metadata stored in the environment itself.
//
// A Manager drives backends by name (kind clusters on the local Docker
// engine, or vclusters in a shared host cluster) behind a small internal interface:
//
//	m := envs.New(envs.WithLogger(logger))
//	env, err := m.Up(ctx, "hello-main", api.EnvSpec{Provider: "kind", Repo: "hello", Branch: "main"})
package envs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/devctl/devctl/envs/internal/providers"
	"github.com/devctl/devctl/envs/internal/providers/kind"
	"github.com/devctl/devctl/envs/internal/providers/vcluster"
	"github.com/devctl/devctl/internal/api"
	"github.com/devctl/devctl/internal/freezer"
)

// DefaultProvider is the backend used when a spec names none.
const DefaultProvider = api.ProviderKind

// DefaultReadyTimeout bounds the wait for a new environment's control plane.
const DefaultReadyTimeout = 3 * time.Minute

// listTimeout bounds the metadata lookup of each environment in List.
const listTimeout = 10 * time.Second

// slog attribute keys.
const (
	logKeyEnv   = "env"
	logKeyPath  = "path"
	logKeyError = "error"
)

// Env is an environment as recorded in its metadata.
type Env struct {
	Name string
	Spec api.EnvSpec
	// Kubeconfig is the path of the environment's own kubeconfig file.
	Kubeconfig string
	Created    time.Time
	// New is set by Up when that call created the cluster.
	New bool
	// Stopped is set by List for an environment devctl finished whose
	// cluster does not answer (its node containers are stopped, or Docker
	// is too busy to reach them); Spec is then what was recorded locally,
	// and Start says how to start it again.
	Stopped bool
	Start   string
	// Err is why a Stopped environment could not be reached.
	Err string
}

// Manager creates, finds and removes environments. It keeps no state in
// memory, so it is safe for concurrent use and survives restarts.
type Manager struct {
	logger       *slog.Logger
	stateDir     string
	providers    map[string]providers.Provider
	progress     func(Progress)
	readyTimeout time.Duration
	store        metadataStore
	now          func() time.Time
	registryDir  string
	host         *api.HostCluster
	// freezerRoot is where the Docker containers' freezer cgroups are.
	freezerRoot string
}

// Option configures a Manager.
type Option func(*Manager)

// WithLogger sends the Manager's and its backends' logs to l.
func WithLogger(l *slog.Logger) Option {
	return func(m *Manager) {
		if l != nil {
			m.logger = l
		}
	}
}

// WithStateDir sets where environments' kubeconfig files live
// (default DefaultStateDir()).
func WithStateDir(dir string) Option { return func(m *Manager) { m.stateDir = dir } }

// withProvider adds (or replaces) a backend under its name; tests use fakes.
func withProvider(p providers.Provider) Option {
	return func(m *Manager) { m.providers[p.Name()] = p }
}

// WithProgress sends the slow steps of every operation to f, which is
// called synchronously by the goroutine running the operation. A progress
// function in an operation's context (ContextWithProgress) takes precedence.
func WithProgress(f func(Progress)) Option { return func(m *Manager) { m.progress = f } }

// WithRegistryHostsDir makes new environments pull images from the
// daemon's registry, through the containerd hosts files in dir.
func WithRegistryHostsDir(dir string) Option { return func(m *Manager) { m.registryDir = dir } }

// WithReadyTimeout bounds the wait for a new control plane
// (default DefaultReadyTimeout).
func WithReadyTimeout(d time.Duration) Option { return func(m *Manager) { m.readyTimeout = d } }

// New returns a Manager with every built-in backend.
func New(opts ...Option) *Manager {
	m := &Manager{
		logger:       slog.New(slog.DiscardHandler),
		stateDir:     DefaultStateDir(),
		providers:    map[string]providers.Provider{},
		readyTimeout: DefaultReadyTimeout,
		store:        kubeStore{timeout: listTimeout},
		now:          time.Now,
		freezerRoot:  freezer.DefaultRoot,
	}
	for _, o := range opts {
		o(m)
	}
	if _, ok := m.providers[api.ProviderKind]; !ok {
		m.providers[api.ProviderKind] = kind.New(m.logger)
	}
	if _, ok := m.providers[api.ProviderVCluster]; !ok {
		// The local host cluster is made by the kind backend (a test's
		// fake kind backend makes none).
		kindHost, _ := m.providers[api.ProviderKind].(vcluster.KindHost)
		m.providers[api.ProviderVCluster] = vcluster.New(vcluster.Options{
			Logger: m.logger, StateDir: m.stateDir, Kind: kindHost, Host: m.host,
		})
	}
	return m
}

// WithHost makes host the host cluster of vcluster environments whose spec
// names none (default: devctl's local kind host cluster, made on first use).
func WithHost(host *api.HostCluster) Option { return func(m *Manager) { m.host = host } }

// VClusterNamespace is the host namespace of the vcluster environment name
// when it was made for it: "devctl-vc-<name>", holding one vcluster, the
// Helm release called name. An environment that claimed a spare vcluster
// keeps the spare's namespace and release; look it up by its devctl.dev/env
// label.
// The namespace is labelled devctl.dev/env=<name>,
// devctl.dev/managed-by=devctl and with every spec label under devctl.dev/.
func VClusterNamespace(name string) string { return vcluster.Namespace(name) }

// Spare is a vcluster started ahead of time on devctl's local host, which
// the next new vcluster environment claims instead of waiting for one to
// start. It is not an environment.
type Spare struct {
	vcluster.Spare
	// Host is the local host's kind cluster name.
	Host string `json:"host"`
}

// Spares lists the unclaimed spare vclusters on devctl's local host (none
// without one). It asks no docker or kind command.
func (m *Manager) Spares(ctx context.Context) ([]Spare, error) {
	vc, ok := m.providers[api.ProviderVCluster].(*vcluster.Provider)
	if !ok {
		return nil, nil
	}
	spares, err := vc.Spares(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]Spare, len(spares))
	for i, s := range spares {
		out[i] = Spare{Spare: s, Host: vc.HostName()}
	}
	return out, nil
}

// Close releases what the Manager holds: the port-forwards to vclusters.
func (m *Manager) Close() {
	for _, p := range m.providers {
		if c, ok := p.(interface{ Close() }); ok {
			c.Close()
		}
	}
}

// Providers lists the names of the backends the Manager knows.
func (m *Manager) Providers() []string { return slices.Sorted(maps.Keys(m.providers)) }

// provider returns the backend called name ("" is DefaultProvider).
func (m *Manager) provider(name string) (providers.Provider, error) {
	if name == "" {
		name = DefaultProvider
	}
	p, ok := m.providers[name]
	if !ok {
		return nil, fmt.Errorf("%w %q: use one of %s", ErrUnknownProvider, name, strings.Join(m.Providers(), ", "))
	}
	return p, nil
}

// CheckProvider reports whether name is a known backend, with the list of
// known ones when it is not.
func (m *Manager) CheckProvider(name string) error {
	_, err := m.provider(name)
	return err
}

// DefaultStateDir is $XDG_STATE_HOME/devctl, or ~/.local/state/devctl.
func DefaultStateDir() string {
	if d := os.Getenv("XDG_STATE_HOME"); d != "" {
		return filepath.Join(d, "devctl")
	}
	if home, err := os.UserHomeDir(); err == nil {
		return filepath.Join(home, ".local", "state", "devctl")
	}
	return filepath.Join(os.TempDir(), "devctl-state")
}

// KubeconfigPath is where the environment's kubeconfig file lives.
func (m *Manager) KubeconfigPath(name string) string {
	return filepath.Join(m.envDir(name), "kubeconfig")
}

func (m *Manager) envDir(name string) string { return filepath.Join(m.stateDir, "envs", name) }

// Up makes the environment name as spec says unless it exists, writes its
// kubeconfig file and records its metadata in the environment. It is
// idempotent: for an existing environment it refreshes the kubeconfig file
// and returns the recorded metadata.
//
// A cluster devctl began creating but did not finish (its metadata, written
// last, is missing, or its API server does not answer and the local
// completion marker was never written: the daemon was killed mid-way) is
// deleted and created again rather than trusted. A cluster devctl did not make is refused with
// ErrNotManaged.
func (m *Manager) Up(ctx context.Context, name string, spec api.EnvSpec) (*Env, error) {
	if err := ValidateName(name); err != nil {
		return nil, fmt.Errorf("up: %w", err)
	}
	p, err := m.provider(spec.Provider)
	if err != nil {
		return nil, fmt.Errorf("up %q: %w", name, err)
	}
	spec.Provider = p.Name()
	exists, err := m.exists(ctx, p, name)
	if err != nil {
		return nil, fmt.Errorf("up %q: %w", name, err)
	}
	if exists {
		env, err := m.get(ctx, p, name)
		_, statErr := os.Stat(m.envDir(name))
		ours := statErr == nil
		switch {
		case err == nil:
			return env, nil
		case errors.Is(err, errNoMetadata) && !ours:
			return nil, fmt.Errorf("up %q: %w", name, ErrNotManaged)
		case !errors.Is(err, errNoMetadata) && (!ours || m.completed(name)):
			// Finished once and not answering now (its node stopped or
			// killed, or Docker is busy): it is started again where the
			// backend can, never deleted on a guess.
			if env, startErr := m.start(ctx, p, name); startErr == nil {
				return env, nil
			} else if !errors.Is(startErr, errCannotStart) {
				err = startErr
			}
			return nil, fmt.Errorf("up %q: the cluster does not answer: start it with `%s` and try again, or delete it with `devctl down`: %w",
				name, startCommand(ctx, p, name), err)
		}
		// Ours (the state directory exists) but never finished: start over.
		done := m.track(ctx, name).start(fmt.Sprintf("deleting %s cluster %s: its creation never finished", p.Name(), name))
		_, err = m.deleteCluster(ctx, p, name)
		done(err)
		if err != nil {
			return nil, fmt.Errorf("up %q: delete the half-made cluster: %w", name, err)
		}
	}
	err = m.create(ctx, p, name, spec)
	if errors.Is(err, providers.ErrExists) {
		// Another caller (a second daemon, another state directory) made it
		// between our List and Create: once it recorded it, it is the same
		// environment.
		env, getErr := m.get(ctx, p, name)
		if getErr == nil {
			return env, nil
		}
		return nil, fmt.Errorf("up %q: another devctl is creating this cluster; try again once it is done: %w", name, err)
	}
	if err != nil {
		return nil, fmt.Errorf("up %q: %w", name, err)
	}
	env, err := m.record(ctx, p, name, spec)
	if err != nil {
		return nil, err
	}
	env.New = true
	return env, nil
}

func (m *Manager) create(ctx context.Context, p providers.Provider, name string, spec api.EnvSpec) error {
	if err := os.MkdirAll(m.envDir(name), 0o700); err != nil {
		return fmt.Errorf("state directory: %w", err)
	}
	t := m.track(ctx, name)
	what := fmt.Sprintf("creating %s cluster %s", p.Name(), name)
	if spec.NodeImage != "" {
		what += " (node image " + spec.NodeImage + ")"
	}
	done := t.start(what)
	m.logger.InfoContext(ctx, "creating environment", logKeyEnv, name)
	// What is at the kubeconfig path after Create is the provider's own
	// (kind writes it): record reads it instead of asking again.
	if err := os.Remove(m.KubeconfigPath(name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		done(err)
		return fmt.Errorf("remove the old kubeconfig: %w", err)
	}
	o := providers.CreateOptions{
		Spec:             spec,
		KubeconfigPath:   m.KubeconfigPath(name),
		RegistryHostsDir: m.registryDir,
		WaitForReady:     m.readyTimeout,
		Progress:         t.backend,
	}
	if f := APIReadyFunc(ctx); f != nil {
		o.APIReady = func() { f(m.KubeconfigPath(name)) }
	}
	err := p.Create(ctx, name, o)
	done(err)
	if err != nil && !errors.Is(err, providers.ErrExists) {
		// Leave nothing half-made behind: a failed create is removed, so
		// the next Up starts clean instead of trusting it. When the cluster
		// cannot be removed, the state directory stays: it is what lets the
		// next Up or Delete recognise the cluster as ours.
		if _, delErr := m.deleteCluster(context.WithoutCancel(ctx), p, name); delErr != nil {
			m.logger.WarnContext(ctx, "remove failed cluster", logKeyEnv, name, logKeyError, delErr)
			return err
		}
		if rmErr := os.RemoveAll(m.envDir(name)); rmErr != nil {
			m.logger.WarnContext(ctx, "remove state directory", logKeyEnv, name, logKeyError, rmErr)
		}
	}
	return err
}

// record writes the kubeconfig file and then the metadata of a fresh
// environment: the metadata is the completion marker.
func (m *Manager) record(ctx context.Context, p providers.Provider, name string, spec api.EnvSpec) (*Env, error) {
	t := m.track(ctx, name)
	env := &Env{Name: name, Spec: spec, Created: m.now().UTC().Truncate(time.Second)}
	// A provider that wrote the kubeconfig while creating (kind) is not
	// asked again: that costs a docker exec and two docker calls.
	kc, err := os.ReadFile(m.KubeconfigPath(name))
	if err != nil || len(kc) == 0 {
		done := t.start("writing kubeconfig")
		kc, err = m.writeKubeconfig(ctx, p, name)
		done(err)
	}
	if err != nil {
		return nil, fmt.Errorf("up %q: %w", name, err)
	}
	env.Kubeconfig = m.KubeconfigPath(name)
	done := t.start("recording environment metadata")
	err = m.store.write(ctx, kc, *env)
	done(err)
	if err != nil {
		return nil, fmt.Errorf("up %q: %w", name, err)
	}
	if err := m.writeCompleted(*env); err != nil {
		return nil, fmt.Errorf("up %q: record completion: %w", name, err)
	}
	return env, nil
}

// completedRecord is what the local completion marker holds: the
// metadata, so an environment whose cluster does not answer is still
// listed with what it was made from.
type completedRecord struct {
	Name    string      `json:"name"`
	Spec    api.EnvSpec `json:"spec"`
	Created time.Time   `json:"created"`
}

func (m *Manager) writeCompleted(env Env) error {
	b, err := json.Marshal(completedRecord{Name: env.Name, Spec: env.Spec, Created: env.Created})
	if err != nil {
		return err
	}
	return writeFileAtomic(m.completedPath(env.Name), append(b, '\n'))
}

// readCompleted returns what the completion marker of name recorded.
func (m *Manager) readCompleted(name string) (Env, bool) {
	b, err := os.ReadFile(m.completedPath(name))
	if err != nil {
		return Env{}, false
	}
	var rec completedRecord
	if json.Unmarshal(b, &rec) != nil || rec.Name != name {
		return Env{Name: name}, true
	}
	return Env{Name: rec.Name, Spec: rec.Spec, Created: rec.Created}, true
}

// completedPath is the local twin of the metadata's completion marker:
// written last, it tells a finished cluster whose API server does not
// answer (stopped) from one whose creation was interrupted before its
// API server answered.
func (m *Manager) completedPath(name string) string {
	return filepath.Join(m.envDir(name), "created")
}

// completed says whether an Up of this machine finished name.
func (m *Manager) completed(name string) bool {
	_, err := os.Stat(m.completedPath(name))
	return err == nil
}

// writeKubeconfig refreshes the environment's kubeconfig file from the
// backend and returns its content.
func (m *Manager) writeKubeconfig(ctx context.Context, p providers.Provider, name string) ([]byte, error) {
	kc, err := p.Kubeconfig(ctx, name)
	if err != nil {
		return nil, err
	}
	path := m.KubeconfigPath(name)
	if err := writeFileAtomic(path, kc); err != nil {
		return nil, fmt.Errorf("write kubeconfig %s: %w", path, err)
	}
	m.logger.DebugContext(ctx, "wrote kubeconfig", logKeyEnv, name, logKeyPath, path)
	return kc, nil
}

func (m *Manager) exists(ctx context.Context, p providers.Provider, name string) (bool, error) {
	names, err := p.List(ctx)
	if err != nil {
		return false, err
	}
	return slices.Contains(names, name), nil
}

// get reads the metadata of an existing cluster and refreshes its
// kubeconfig file. A cluster without metadata gives an error matching both
// ErrEnvNotFound and errNoMetadata.
func (m *Manager) get(ctx context.Context, p providers.Provider, name string) (*Env, error) {
	env, kc, err := m.metadata(ctx, p, name)
	if err != nil {
		return nil, err
	}
	path := m.KubeconfigPath(name)
	if err := writeFileAtomic(path, kc); err != nil {
		return nil, fmt.Errorf("write kubeconfig %s: %w", path, err)
	}
	env.Kubeconfig = path
	return env, nil
}

// metadata reads the metadata of an existing cluster and returns it with
// the cluster's kubeconfig, touching no file. Its errors are get's.
func (m *Manager) metadata(ctx context.Context, p providers.Provider, name string) (*Env, []byte, error) {
	kc, err := p.Kubeconfig(ctx, name)
	if err != nil {
		return nil, nil, err
	}
	env, err := m.store.read(ctx, kc)
	if errors.Is(err, errNoMetadata) {
		return nil, nil, fmt.Errorf("%w: the cluster was not created by devctl, or its creation never finished: %w", ErrEnvNotFound, err)
	}
	if err != nil {
		return nil, nil, err
	}
	if env.Name != name {
		return nil, nil, fmt.Errorf("metadata names environment %q, not %q: %w", env.Name, name, ErrEnvNotFound)
	}
	env.Spec.Provider = p.Name()
	return &env, kc, nil
}

// List returns the environments devctl made with every backend, sorted by
// name, rediscovered from the metadata in each cluster; their kubeconfig
// files are refreshed. Clusters devctl did not make are ignored. One devctl
// finished that cannot be reached is listed Stopped, with its locally
// recorded spec and the command that starts it; other unreadable ones are
// logged and left out.
func (m *Manager) List(ctx context.Context) ([]Env, error) {
	var out []Env
	for _, pname := range m.Providers() {
		p := m.providers[pname]
		names, err := p.List(ctx)
		if err != nil {
			return nil, fmt.Errorf("list environments: %w", err)
		}
		slices.Sort(names)
		for _, name := range names {
			env, err := m.listOne(ctx, p, name)
			switch {
			case errors.Is(err, errNoMetadata):
				m.logger.DebugContext(ctx, "ignoring cluster not made by devctl", logKeyEnv, name)
			case ctx.Err() != nil:
				return nil, fmt.Errorf("list environments: %w", ctx.Err())
			case err != nil:
				rec, ok := m.readCompleted(name)
				if !ok {
					m.logger.WarnContext(ctx, "cannot read environment", logKeyEnv, name, logKeyError, err)
					continue
				}
				rec.Spec.Provider = p.Name()
				rec.Stopped, rec.Err, rec.Start = true, err.Error(), startCommand(ctx, p, name)
				if _, statErr := os.Stat(m.KubeconfigPath(name)); statErr == nil {
					rec.Kubeconfig = m.KubeconfigPath(name)
				}
				out = append(out, rec)
			default:
				out = append(out, *env)
			}
		}
	}
	slices.SortFunc(out, func(a, b Env) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// errCannotStart is start's answer for a backend that cannot start a
// stopped environment.
var errCannotStart = errors.New("the backend cannot start a stopped environment")

// startWait bounds how long start waits for a started cluster to answer.
var startWait = 3 * time.Minute

// start starts name's stopped cluster and waits until it answers (its
// metadata can be read), reporting progress.
func (m *Manager) start(ctx context.Context, p providers.Provider, name string) (*Env, error) {
	s, ok := p.(providers.Starter)
	if !ok {
		return nil, errCannotStart
	}
	done := m.track(ctx, name).start(fmt.Sprintf("starting %s cluster %s: it does not answer (its node stopped?)", p.Name(), name))
	env, err := func() (*Env, error) {
		if err := s.Start(ctx, name); err != nil {
			return nil, err
		}
		wctx, cancel := context.WithTimeout(ctx, startWait)
		defer cancel()
		for {
			env, err := m.get(wctx, p, name)
			if err == nil {
				return env, nil
			}
			select {
			case <-wctx.Done():
				return nil, fmt.Errorf("started the nodes of %s, but the cluster did not answer within %s: %w", name, startWait, err)
			case <-time.After(2 * time.Second):
			}
		}
	}()
	done(err)
	return env, err
}

// startCommand says how to start name's cluster again.
func startCommand(ctx context.Context, p providers.Provider, name string) string {
	if s, ok := p.(providers.Starter); ok {
		return s.StartCommand(ctx, name)
	}
	return "devctl down && devctl up"
}

func (m *Manager) listOne(ctx context.Context, p providers.Provider, name string) (*Env, error) {
	ctx, cancel := context.WithTimeout(ctx, listTimeout)
	defer cancel()
	return m.get(ctx, p, name)
}

// Deleted says what Delete removed.
type Deleted struct {
	// Cluster is true when a cluster was deleted.
	Cluster bool
	// Files is true when the environment's state directory was removed.
	Files bool
	// Thawed counts the frozen freezer cgroups (cgroup v1) that kept the
	// cluster's containers from being removed until Delete thawed them.
	Thawed int
}

// deleteCluster deletes name's cluster. On a cgroup v1 host a container
// whose pod cgroup was left frozen cannot be removed ("did not receive an
// exit event"): its frozen freezer cgroups are thawed and the delete tried
// again. It returns the cgroups it thawed.
func (m *Manager) deleteCluster(ctx context.Context, p providers.Provider, name string) ([]string, error) {
	err := p.Delete(ctx, name)
	// Docker may still be removing a container from before (a delete
	// interrupted by a crash): wait for it instead of failing.
	for deadline := m.now().Add(removalWait); removalInProgress(err) && m.now().Before(deadline); {
		m.logger.InfoContext(ctx, "docker is still removing the cluster's containers; waiting", logKeyEnv, name)
		select {
		case <-ctx.Done():
			return nil, errors.Join(err, ctx.Err())
		case <-time.After(removalPoll):
		}
		err = p.Delete(ctx, name)
	}
	c, ok := p.(providers.Containerized)
	if !freezer.Stuck(err) || !ok {
		return nil, err
	}
	ids, cerr := c.Containers(ctx, name)
	if cerr != nil {
		return nil, errors.Join(err, cerr)
	}
	var thawed []string
	for _, id := range ids {
		t, terr := freezer.Thaw(m.freezerRoot, id)
		thawed = append(thawed, t...)
		if terr != nil {
			return thawed, fmt.Errorf("%w; thawing its frozen cgroups failed (try as root: `find %s -name freezer.state -exec sh -c 'echo THAWED > {}' \\;`): %w",
				err, filepath.Join(m.freezerRoot, id), terr)
		}
	}
	if len(thawed) == 0 {
		return nil, err
	}
	m.logger.WarnContext(ctx, "thawed frozen cgroups", logKeyEnv, name, "cgroups", thawed)
	done := m.track(ctx, name).start(fmt.Sprintf("thawed %d frozen cgroup(s) that kept %s's containers from being removed; deleting again", len(thawed), name))
	err = p.Delete(ctx, name)
	done(err)
	return thawed, err
}

// Delete removes the environment's cluster (of the backend providerName,
// "" for the default) and its state directory. It is idempotent: deleting
// what is already gone succeeds and says so in the result. It refuses
// clusters devctl did not make.
func (m *Manager) Delete(ctx context.Context, name, providerName string) (Deleted, error) {
	var d Deleted
	if err := validateExistingName(name); err != nil {
		return d, fmt.Errorf("delete: %w", err)
	}
	p, err := m.provider(providerName)
	if err != nil {
		return d, fmt.Errorf("delete %q: %w", name, err)
	}
	exists, err := m.exists(ctx, p, name)
	if err != nil {
		return d, fmt.Errorf("delete %q: %w", name, err)
	}
	dir := m.envDir(name)
	_, statErr := os.Stat(dir)
	haveDir := statErr == nil
	if exists {
		// Delete only clusters known to be ours: they carry our metadata, or
		// an earlier Up of ours began them (the state directory exists).
		if _, _, err := m.metadata(ctx, p, name); err != nil && !haveDir {
			if errors.Is(err, errNoMetadata) {
				return d, fmt.Errorf("delete %q: %w", name, ErrNotManaged)
			}
			return d, fmt.Errorf("delete %q: cannot confirm devctl made this cluster: %w", name, err)
		}
		done := m.track(ctx, name).start(fmt.Sprintf("deleting %s cluster %s", p.Name(), name))
		thawed, err := m.deleteCluster(ctx, p, name)
		done(err)
		d.Thawed = len(thawed)
		if err != nil {
			return d, fmt.Errorf("delete %q: %w", name, err)
		}
		d.Cluster = true
	}
	if haveDir {
		if err := os.RemoveAll(dir); err != nil {
			return d, fmt.Errorf("delete %q: remove %s: %w", name, dir, err)
		}
		d.Files = true
	}
	return d, nil
}

// PullsFromRegistry reports whether the environment's nodes pull from the
// daemon's registry (see WithRegistryHostsDir); false for backends that
// cannot tell.
func (m *Manager) PullsFromRegistry(ctx context.Context, name, providerName string) (bool, error) {
	p, err := m.provider(providerName)
	if err != nil {
		return false, err
	}
	rp, ok := p.(providers.RegistryPuller)
	if !ok {
		return false, nil
	}
	return rp.PullsFromRegistry(ctx, name)
}

// Prepull has the environment's nodes pull refs now, where the backend can
// (kind: through the CRI, from the registry containerd is pointed at); it
// does nothing for other backends. Pods that start later find the images.
func (m *Manager) Prepull(ctx context.Context, name, providerName string, refs []string) error {
	p, err := m.provider(providerName)
	if err != nil {
		return err
	}
	pp, ok := p.(providers.Prepuller)
	if !ok || len(refs) == 0 {
		return nil
	}
	return pp.Prepull(ctx, name, refs)
}

// CanLoadImages reports whether the backend providerName can put image
// archives straight into its nodes (LoadImages).
func (m *Manager) CanLoadImages(providerName string) bool {
	p, err := m.provider(providerName)
	if err != nil {
		return false
	}
	_, ok := p.(providers.ImageLoader)
	return ok
}

// LoadImages puts an image archive (e.g. a `docker save` stream) into every
// node of the environment. archive may be called more than once, once per
// node; each stream is closed. It fails with ErrNotSupported when the
// backend cannot load images and with ErrEnvNotFound when there is no such
// environment.
func (m *Manager) LoadImages(ctx context.Context, name, providerName string, archive func() (io.ReadCloser, error)) error {
	if err := validateExistingName(name); err != nil {
		return fmt.Errorf("load images: %w", err)
	}
	p, err := m.provider(providerName)
	if err != nil {
		return fmt.Errorf("load images into %q: %w", name, err)
	}
	loader, ok := p.(providers.ImageLoader)
	if !ok {
		return fmt.Errorf("load images into %q: %s backend: %w", name, p.Name(), ErrNotSupported)
	}
	done := m.track(ctx, name).start("loading images into " + name)
	err = loader.LoadImages(ctx, name, archive)
	done(err)
	if errors.Is(err, providers.ErrNotFound) {
		return fmt.Errorf("load images into %q: %w: %w", name, ErrEnvNotFound, err)
	}
	if err != nil {
		return fmt.Errorf("load images into %q: %w", name, err)
	}
	return nil
}

// Get returns the existing environment name of the backend providerName
// ("" for the default) and refreshes its kubeconfig file. It fails with
// ErrEnvNotFound when there is no such environment or devctl did not make it.
func (m *Manager) Get(ctx context.Context, name, providerName string) (*Env, error) {
	if err := validateExistingName(name); err != nil {
		return nil, fmt.Errorf("get: %w", err)
	}
	p, err := m.provider(providerName)
	if err != nil {
		return nil, fmt.Errorf("get %q: %w", name, err)
	}
	exists, err := m.exists(ctx, p, name)
	if err != nil {
		return nil, fmt.Errorf("get %q: %w", name, err)
	}
	if !exists {
		return nil, fmt.Errorf("get %q: %w", name, ErrEnvNotFound)
	}
	env, err := m.get(ctx, p, name)
	if err != nil {
		return nil, fmt.Errorf("get %q: %w", name, err)
	}
	return env, nil
}

// How long deleteCluster waits for a removal Docker already began.
var (
	removalWait = time.Minute
	removalPoll = time.Second
)

func removalInProgress(err error) bool {
	return err != nil && strings.Contains(err.Error(), "is already in progress")
}

// Orphan is something devctl made that no environment accounts for: a
// cluster whose metadata is gone though devctl began it (its state
// directory exists), or a state directory without a cluster.
type Orphan struct {
	Name     string
	Provider string
	// Cluster is true when there is a cluster; otherwise only files.
	Cluster bool
}

// Orphans lists what devctl made that has no environment metadata. A
// cluster without metadata and without a state directory was not made by
// devctl and is never listed. The caller leaves out names it is creating.
func (m *Manager) Orphans(ctx context.Context) ([]Orphan, error) {
	var out []Orphan
	seen := map[string]bool{}
	for _, pname := range m.Providers() {
		p := m.providers[pname]
		names, err := p.List(ctx)
		if err != nil {
			return nil, fmt.Errorf("list orphans: %w", err)
		}
		for _, name := range names {
			seen[name] = true
			if _, err := os.Stat(m.envDir(name)); err != nil {
				continue
			}
			lctx, cancel := context.WithTimeout(ctx, listTimeout)
			_, _, err := m.metadata(lctx, p, name)
			cancel()
			if errors.Is(err, errNoMetadata) {
				out = append(out, Orphan{Name: name, Provider: pname, Cluster: true})
			}
		}
	}
	dirs, err := os.ReadDir(filepath.Join(m.stateDir, "envs"))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("list orphans: %w", err)
	}
	for _, d := range dirs {
		if d.IsDir() && !seen[d.Name()] && validateExistingName(d.Name()) == nil {
			out = append(out, Orphan{Name: d.Name(), Provider: DefaultProvider})
		}
	}
	slices.SortFunc(out, func(a, b Orphan) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}
