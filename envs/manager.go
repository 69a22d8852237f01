// Package envs makes the ephemeral Kubernetes environments devctl runs
// services in: one per repository branch, each with its own kubeconfig file,
// rediscovered from metadata stored in the environment itself.
//
// A Manager drives a backend (kind clusters on the local Docker engine by
// default) behind a small internal interface:
//
//	m := envs.New(envs.WithLogger(logger), envs.WithProgress(show))
//	env, err := m.Up(ctx, envs.Spec{Repo: "hello", Branch: "main"})
package envs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/devctl/devctl/envs/internal/providers"
	"github.com/devctl/devctl/envs/internal/providers/kind"
)

// DefaultNodeImage is the kind node image used when Spec.NodeImage is empty.
const DefaultNodeImage = kind.DefaultNodeImage

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

// Spec describes the environment Up should make.
type Spec struct {
	// Name is the environment name; empty derives it with Name(Repo, Branch).
	Name    string
	Project string
	Repo    string
	Branch  string
	// NodeImage is the kind node image; empty means DefaultNodeImage.
	NodeImage string
	// Labels are free-form and recorded with the environment.
	Labels map[string]string
	// ConfigPatches are extra kubeadm config patches (kind), applied after
	// the ones devctl needs.
	ConfigPatches []string
}

// Env is an environment as recorded in its metadata.
type Env struct {
	Name      string
	Provider  string
	Project   string
	Repo      string
	Branch    string
	NodeImage string
	// Kubeconfig is the path of the environment's own kubeconfig file.
	Kubeconfig string
	Created    time.Time
	Labels     map[string]string
	// New is set by Up when that call created the cluster.
	New bool `json:"-"`
}

// Manager creates, finds and removes environments. It keeps no state in
// memory, so it is safe for concurrent use and survives restarts.
type Manager struct {
	logger       *slog.Logger
	stateDir     string
	provider     providers.Provider
	progress     func(Progress)
	readyTimeout time.Duration
	store        metadataStore
	now          func() time.Time
}

// Option configures a Manager.
type Option func(*Manager)

// WithLogger sends the Manager's and its backend's logs to l.
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

// WithProvider replaces the backend (tests use a fake).
func WithProvider(p providers.Provider) Option { return func(m *Manager) { m.provider = p } }

// WithProgress sends the slow steps of every operation to f, which is
// called synchronously by the goroutine running the operation.
func WithProgress(f func(Progress)) Option { return func(m *Manager) { m.progress = f } }

// WithReadyTimeout bounds the wait for a new control plane
// (default DefaultReadyTimeout).
func WithReadyTimeout(d time.Duration) Option { return func(m *Manager) { m.readyTimeout = d } }

// New returns a Manager. Without WithProvider it makes kind clusters on the
// local Docker engine.
func New(opts ...Option) *Manager {
	m := &Manager{
		logger:       slog.New(slog.DiscardHandler),
		stateDir:     DefaultStateDir(),
		readyTimeout: DefaultReadyTimeout,
		store:        kubeStore{timeout: listTimeout},
		now:          time.Now,
	}
	for _, o := range opts {
		o(m)
	}
	if m.provider == nil {
		m.provider = kind.New(m.logger)
	}
	return m
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

// Up makes the environment described by spec unless it exists, writes its
// kubeconfig file and records its metadata in the environment. It is
// idempotent: for an existing environment it refreshes the kubeconfig file
// and returns the recorded metadata.
func (m *Manager) Up(ctx context.Context, spec Spec) (*Env, error) {
	name := spec.Name
	if name == "" {
		if spec.Repo == "" && spec.Branch == "" {
			return nil, fmt.Errorf("up: %w: set Spec.Name or Spec.Repo and Spec.Branch", ErrInvalidName)
		}
		name = Name(spec.Repo, spec.Branch)
	}
	if err := ValidateName(name); err != nil {
		return nil, fmt.Errorf("up: %w", err)
	}
	exists, err := m.exists(ctx, name)
	if err != nil {
		return nil, fmt.Errorf("up %q: %w", name, err)
	}
	if !exists {
		err = m.create(ctx, name, spec)
		if errors.Is(err, providers.ErrExists) {
			exists, err = true, nil // made concurrently by another caller
		}
		if err != nil {
			return nil, fmt.Errorf("up %q: %w", name, err)
		}
		if !exists {
			env, err := m.record(ctx, name, spec)
			if env != nil {
				env.New = true
			}
			return env, err
		}
	}
	env, err := m.get(ctx, name)
	if errors.Is(err, errNoMetadata) {
		// A cluster without metadata is ours only if an earlier Up began it
		// (its state directory exists) and stopped before recording it.
		if _, statErr := os.Stat(m.envDir(name)); statErr == nil {
			return m.record(ctx, name, spec)
		}
		return nil, fmt.Errorf("up %q: %w", name, ErrNotManaged)
	}
	if err != nil {
		return nil, fmt.Errorf("up %q: %w", name, err)
	}
	return env, nil
}

func (m *Manager) create(ctx context.Context, name string, spec Spec) error {
	image := spec.NodeImage
	if image == "" {
		image = DefaultNodeImage
	}
	if err := os.MkdirAll(m.envDir(name), 0o700); err != nil {
		return fmt.Errorf("state directory: %w", err)
	}
	t := m.track(name)
	done := t.start(fmt.Sprintf("creating %s cluster %s (node image %s)", m.provider.Name(), name, image))
	m.logger.InfoContext(ctx, "creating environment", logKeyEnv, name)
	err := m.provider.Create(ctx, name, providers.CreateOptions{
		NodeImage:      image,
		KubeconfigPath: m.KubeconfigPath(name),
		ConfigPatches:  spec.ConfigPatches,
		WaitForReady:   m.readyTimeout,
		Progress:       t.backend,
	})
	done(err)
	if err != nil && !errors.Is(err, providers.ErrExists) {
		if rmErr := os.RemoveAll(m.envDir(name)); rmErr != nil {
			m.logger.WarnContext(ctx, "remove state directory", logKeyEnv, name, logKeyError, rmErr)
		}
	}
	return err
}

// record writes the kubeconfig file and the metadata of a fresh environment.
func (m *Manager) record(ctx context.Context, name string, spec Spec) (*Env, error) {
	t := m.track(name)
	env := &Env{
		Name:      name,
		Provider:  m.provider.Name(),
		Project:   spec.Project,
		Repo:      spec.Repo,
		Branch:    spec.Branch,
		NodeImage: spec.NodeImage,
		Created:   m.now().UTC().Truncate(time.Second),
		Labels:    spec.Labels,
	}
	if env.NodeImage == "" {
		env.NodeImage = DefaultNodeImage
	}
	done := t.start("writing kubeconfig")
	kc, err := m.writeKubeconfig(ctx, name)
	done(err)
	if err != nil {
		return nil, fmt.Errorf("up %q: %w", name, err)
	}
	env.Kubeconfig = m.KubeconfigPath(name)
	done = t.start("recording environment metadata")
	err = m.store.write(ctx, kc, *env)
	done(err)
	if err != nil {
		return nil, fmt.Errorf("up %q: %w", name, err)
	}
	return env, nil
}

// writeKubeconfig refreshes the environment's kubeconfig file from the
// backend and returns its content.
func (m *Manager) writeKubeconfig(ctx context.Context, name string) ([]byte, error) {
	kc, err := m.provider.Kubeconfig(ctx, name)
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

func (m *Manager) exists(ctx context.Context, name string) (bool, error) {
	names, err := m.provider.List(ctx)
	if err != nil {
		return false, err
	}
	return slices.Contains(names, name), nil
}

// Get returns the environment name. It fails with ErrEnvNotFound when there
// is no such environment or devctl did not create it.
func (m *Manager) Get(ctx context.Context, name string) (*Env, error) {
	exists, err := m.exists(ctx, name)
	if err != nil {
		return nil, fmt.Errorf("get %q: %w", name, err)
	}
	if !exists {
		return nil, fmt.Errorf("get %q: %w", name, ErrEnvNotFound)
	}
	env, err := m.get(ctx, name)
	if err != nil {
		return nil, fmt.Errorf("get %q: %w", name, err)
	}
	return env, nil
}

// get reads the metadata of an existing cluster and refreshes its
// kubeconfig file. A cluster without metadata gives an error matching both
// ErrEnvNotFound and errNoMetadata.
func (m *Manager) get(ctx context.Context, name string) (*Env, error) {
	kc, err := m.provider.Kubeconfig(ctx, name)
	if err != nil {
		return nil, err
	}
	env, err := m.store.read(ctx, kc)
	if errors.Is(err, errNoMetadata) {
		return nil, fmt.Errorf("%w: the cluster was not created by devctl: %w", ErrEnvNotFound, err)
	}
	if err != nil {
		return nil, err
	}
	if env.Name != name {
		return nil, fmt.Errorf("metadata names environment %q, not %q: %w", env.Name, name, ErrEnvNotFound)
	}
	path := m.KubeconfigPath(name)
	if err := writeFileAtomic(path, kc); err != nil {
		return nil, fmt.Errorf("write kubeconfig %s: %w", path, err)
	}
	env.Kubeconfig = path
	return &env, nil
}

// List returns the environments devctl made, sorted by name, rediscovered
// from the backend and the metadata in each cluster; their kubeconfig files
// are refreshed. Clusters devctl did not make are ignored, and ones that
// cannot be reached are logged and left out.
func (m *Manager) List(ctx context.Context) ([]Env, error) {
	names, err := m.provider.List(ctx)
	if err != nil {
		return nil, fmt.Errorf("list environments: %w", err)
	}
	slices.Sort(names)
	envs := make([]Env, 0, len(names))
	for _, name := range names {
		env, err := m.listOne(ctx, name)
		switch {
		case errors.Is(err, errNoMetadata):
			m.logger.DebugContext(ctx, "ignoring cluster not made by devctl", logKeyEnv, name)
		case ctx.Err() != nil:
			return nil, fmt.Errorf("list environments: %w", ctx.Err())
		case err != nil:
			m.logger.WarnContext(ctx, "cannot read environment", logKeyEnv, name, logKeyError, err)
		default:
			envs = append(envs, *env)
		}
	}
	return envs, nil
}

func (m *Manager) listOne(ctx context.Context, name string) (*Env, error) {
	ctx, cancel := context.WithTimeout(ctx, listTimeout)
	defer cancel()
	return m.get(ctx, name)
}

// Delete removes the environment and its state directory. It refuses
// clusters devctl did not make, and fails with ErrEnvNotFound when there is
// nothing to delete.
func (m *Manager) Delete(ctx context.Context, name string) error {
	exists, err := m.exists(ctx, name)
	if err != nil {
		return fmt.Errorf("delete %q: %w", name, err)
	}
	dir := m.envDir(name)
	_, statErr := os.Stat(dir)
	haveDir := statErr == nil
	if !exists && !haveDir {
		return fmt.Errorf("delete %q: %w", name, ErrEnvNotFound)
	}
	if exists {
		// Delete only clusters known to be ours: they carry our metadata, or
		// an earlier Up of ours began them (the state directory exists).
		if _, err := m.get(ctx, name); err != nil && !haveDir {
			if errors.Is(err, errNoMetadata) {
				return fmt.Errorf("delete %q: %w", name, ErrNotManaged)
			}
			return fmt.Errorf("delete %q: cannot confirm devctl made this cluster: %w", name, err)
		}
		done := m.track(name).start(fmt.Sprintf("deleting %s cluster %s", m.provider.Name(), name))
		err := m.provider.Delete(ctx, name)
		done(err)
		if err != nil {
			return fmt.Errorf("delete %q: %w", name, err)
		}
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("delete %q: remove %s: %w", name, dir, err)
	}
	return nil
}

// LoadImages puts an image archive (e.g. a `docker save` stream) into every
// node of the environment. archive may be called more than once, once per
// node; each stream is closed. It fails with ErrNotSupported when the
// backend cannot load images.
func (m *Manager) LoadImages(ctx context.Context, name string, archive func() (io.ReadCloser, error)) error {
	loader, ok := m.provider.(providers.ImageLoader)
	if !ok {
		return fmt.Errorf("load images into %q: %s backend: %w", name, m.provider.Name(), ErrNotSupported)
	}
	exists, err := m.exists(ctx, name)
	if err != nil {
		return fmt.Errorf("load images into %q: %w", name, err)
	}
	if !exists {
		return fmt.Errorf("load images into %q: %w", name, ErrEnvNotFound)
	}
	done := m.track(name).start("loading images into " + name)
	err = loader.LoadImages(ctx, name, archive)
	done(err)
	if err != nil {
		return fmt.Errorf("load images into %q: %w", name, err)
	}
	return nil
}

// KubeconfigExport merges the environment's kubeconfig into the file at path
// (created when missing) and makes it the current context. It is the only
// way devctl touches a kubeconfig other than the environment's own file.
func (m *Manager) KubeconfigExport(ctx context.Context, name, path string) error {
	if path == "" {
		return fmt.Errorf("export kubeconfig of %q: no destination path given (for example ~/.kube/config)", name)
	}
	if _, err := m.Get(ctx, name); err != nil {
		return fmt.Errorf("export kubeconfig: %w", err)
	}
	kc, err := os.ReadFile(m.KubeconfigPath(name))
	if err != nil {
		return fmt.Errorf("export kubeconfig of %q: %w", name, err)
	}
	if err := mergeKubeconfig(path, kc); err != nil {
		return fmt.Errorf("export kubeconfig of %q: %w", name, err)
	}
	m.logger.InfoContext(ctx, "exported kubeconfig", logKeyEnv, name, logKeyPath, path)
	return nil
}
