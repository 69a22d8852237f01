// Package fake is an in-memory environment backend for tests, with a
// failure knob per method.
package fake

import (
	"context"
	"fmt"
	"io"
	"slices"
	"sync"

	"github.com/devctl/devctl/envs/internal/providers"
)

// Provider keeps environments in memory. Set an XxxError field to make the
// matching method fail with it. Its zero value is not usable; call New.
type Provider struct {
	CreateError     error
	DeleteError     error
	ListError       error
	KubeconfigError error
	LoadImagesError error

	mu      sync.Mutex
	envs    map[string]providers.CreateOptions
	images  map[string][][]byte
	creates int
}

var _ providers.Provider = (*Provider)(nil)

// New returns an empty fake backend holding the given pre-existing
// environments (as if made by someone else).
func New(existing ...string) *Provider {
	p := &Provider{envs: map[string]providers.CreateOptions{}, images: map[string][][]byte{}}
	for _, n := range existing {
		p.envs[n] = providers.CreateOptions{}
	}
	return p
}

// Name implements providers.Provider.
func (p *Provider) Name() string { return "fake" }

// Create implements providers.Provider. It reports one step through
// o.Progress, like a real backend.
func (p *Provider) Create(_ context.Context, name string, o providers.CreateOptions) error {
	if p.CreateError != nil {
		return p.CreateError
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, ok := p.envs[name]; ok {
		return fmt.Errorf("fake create %q: %w", name, providers.ErrExists)
	}
	o.Report("starting fake control plane", providers.StepStarted)
	p.envs[name] = o
	p.creates++
	o.Report("starting fake control plane", providers.StepDone)
	return nil
}

// Delete implements providers.Provider.
func (p *Provider) Delete(_ context.Context, name string) error {
	if p.DeleteError != nil {
		return p.DeleteError
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.envs, name)
	delete(p.images, name)
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
// environment, so tests can tell which one they were given.
func (p *Provider) Kubeconfig(_ context.Context, name string) ([]byte, error) {
	if p.KubeconfigError != nil {
		return nil, p.KubeconfigError
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, ok := p.envs[name]; !ok {
		return nil, fmt.Errorf("fake kubeconfig %q: %w", name, providers.ErrNotFound)
	}
	return []byte(Kubeconfig(name)), nil
}

// Kubeconfig is the kubeconfig the fake returns for the environment name.
func Kubeconfig(name string) string {
	return fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: fake-%[1]s
  cluster:
    server: https://%[1]s.invalid:6443
contexts:
- name: fake-%[1]s
  context:
    cluster: fake-%[1]s
    user: fake-%[1]s
current-context: fake-%[1]s
users:
- name: fake-%[1]s
  user:
    token: token-%[1]s
`, name)
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
	if _, ok := l.envs[name]; !ok {
		return fmt.Errorf("fake load images %q: %w", name, providers.ErrNotFound)
	}
	l.images[name] = append(l.images[name], b)
	return nil
}

// Images returns the archives loaded into the environment.
func (p *Provider) Images(name string) [][]byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.images[name])
}
