// Package fake is an in-memory environment backend for tests, with a
// failure knob per method.
package fake

import (
	"context"
	"fmt"
	"io"
	"os"
	"slices"
	"sync"

	"github.com/devctl/devctl/envs/internal/providers"
)

// Provider keeps environments in memory. Set an XxxError field to make the
// matching method fail with it. Its zero value is not usable; call New.
type Provider struct {
	// CreateError makes Create fail after the environment appeared, the way
	// kind fails when kubeadm does: the half-made environment stays until
	// someone deletes it.
	CreateError     error
	DeleteError     error
	ListError       error
	KubeconfigError error
	LoadImagesError error
	// BeforeCreate, when set, runs first in Create; a test uses it to act
	// as a concurrent caller. Its error is returned as is.
	BeforeCreate func(ctx context.Context, name string) error
	// WritesKubeconfig makes Create write the kubeconfig to
	// o.KubeconfigPath, as kind does.
	WritesKubeconfig bool

	name string

	mu          sync.Mutex
	envs        map[string]providers.CreateOptions
	images      map[string][][]byte
	creates     int
	deletes     int
	kubeconfigs int
}

var _ providers.Provider = (*Provider)(nil)

// New returns an empty fake backend called name holding the given
// pre-existing environments (as if made by someone else).
func New(name string, existing ...string) *Provider {
	p := &Provider{name: name, envs: map[string]providers.CreateOptions{}, images: map[string][][]byte{}}
	for _, n := range existing {
		p.envs[n] = providers.CreateOptions{}
	}
	return p
}

// Name implements providers.Provider.
func (p *Provider) Name() string { return p.name }

// Create implements providers.Provider. It reports one step through
// o.Progress, like a real backend, and like kind it checks ctx once more
// after that step: cancelling during the step leaves a half-made
// environment behind and returns ctx's error.
func (p *Provider) Create(ctx context.Context, name string, o providers.CreateOptions) error {
	if p.BeforeCreate != nil {
		if err := p.BeforeCreate(ctx, name); err != nil {
			return err
		}
	}
	p.mu.Lock()
	if _, ok := p.envs[name]; ok {
		p.mu.Unlock()
		return fmt.Errorf("fake create %q: %w", name, providers.ErrExists)
	}
	p.envs[name] = o
	p.mu.Unlock()

	const step = "starting fake control plane"
	o.Report(step, providers.StepStarted)
	err := p.CreateError
	if err == nil {
		err = ctx.Err()
	}
	if err != nil {
		o.Report(step, providers.StepFailed)
		return fmt.Errorf("fake create %q: %w", name, err)
	}
	o.Report(step, providers.StepDone)
	if p.WritesKubeconfig && o.KubeconfigPath != "" {
		if err := os.WriteFile(o.KubeconfigPath, []byte(Kubeconfig(p.name, name)), 0o600); err != nil {
			return fmt.Errorf("fake create %q: %w", name, err)
		}
	}
	p.mu.Lock()
	p.creates++
	p.mu.Unlock()
	return nil
}

// Delete implements providers.Provider. Like kind's, it does not start once
// ctx is done.
func (p *Provider) Delete(ctx context.Context, name string) error {
	if p.DeleteError != nil {
		return p.DeleteError
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("fake delete %q: %w", name, err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.envs, name)
	delete(p.images, name)
	p.deletes++
	return nil
}

// List implements providers.Provider.
func (p *Provider) List(context.Context) ([]string, error) {
	if p.ListError != nil {
		return nil, p.ListError
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	names := make([]string, 0, len(p.envs))
	for n := range p.envs {
		names = append(names, n)
	}
	slices.Sort(names)
	return names, nil
}

// Kubeconfig implements providers.Provider. The kubeconfig is unique per
// backend and environment (see Kubeconfig), so tests can tell which one
// they were given.
func (p *Provider) Kubeconfig(_ context.Context, name string) ([]byte, error) {
	if p.KubeconfigError != nil {
		return nil, p.KubeconfigError
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.kubeconfigs++
	if _, ok := p.envs[name]; !ok {
		return nil, fmt.Errorf("fake kubeconfig %q: %w", name, providers.ErrNotFound)
	}
	return []byte(Kubeconfig(p.name, name)), nil
}

// KubeconfigCalls counts calls of Kubeconfig.
func (p *Provider) KubeconfigCalls() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.kubeconfigs
}

// Kubeconfig is the kubeconfig the fake backend called provider returns for
// the environment name.
func Kubeconfig(provider, name string) string {
	return fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: %[1]s-%[2]s
  cluster:
    server: https://%[2]s.%[1]s.invalid:6443
contexts:
- name: %[1]s-%[2]s
  context:
    cluster: %[1]s-%[2]s
    user: %[1]s-%[2]s
current-context: %[1]s-%[2]s
users:
- name: %[1]s-%[2]s
  user:
    token: token-%[2]s
`, provider, name)
}

// Add makes the environment name appear, as another caller would.
func (p *Provider) Add(name string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.envs[name] = providers.CreateOptions{}
}

// Created returns the options the environment was created with and whether
// it exists.
func (p *Provider) Created(name string) (providers.CreateOptions, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	o, ok := p.envs[name]
	return o, ok
}

// Creates counts successful Create calls.
func (p *Provider) Creates() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.creates
}

// Deletes counts successful Delete calls, including those of absent
// environments.
func (p *Provider) Deletes() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.deletes
}

// ImageLoader is a fake backend that can also load images.
type ImageLoader struct {
	*Provider
}

var _ providers.ImageLoader = ImageLoader{}

// LoadImages implements providers.ImageLoader by reading the archive once
// and remembering its bytes.
func (l ImageLoader) LoadImages(_ context.Context, name string, archive func() (io.ReadCloser, error)) error {
	if l.LoadImagesError != nil {
		return l.LoadImagesError
	}
	l.mu.Lock()
	_, ok := l.envs[name]
	l.mu.Unlock()
	if !ok {
		return fmt.Errorf("fake load images %q: %w", name, providers.ErrNotFound)
	}
	rc, err := archive()
	if err != nil {
		return err
	}
	defer func() { _ = rc.Close() }()
	b, err := io.ReadAll(rc)
	if err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.images[name] = append(l.images[name], b)
	return nil
}

// Images returns the archives loaded into the environment.
func (p *Provider) Images(name string) [][]byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.images[name])
}
