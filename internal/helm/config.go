// Package helm is devctl's glue to the Helm SDK: client-side rendering of a
// chart, and chart operations on one environment's cluster as small action
// structs sharing a [Config], in the shape of Helm's pkg/action:
//
//	cfg, err := helm.NewConfig(kubeconfig, "my-service", helm.WithLogger(l))
//	d := helm.NewDeploy(cfg)
//	d.ReleaseName, d.Wait = "my-service", true
//	res, err := d.Run(ctx, chart, values)
//
// Releases are stored as Secrets in the Config's namespace, like the helm CLI,
// so `helm ls -n <namespace>` shows what devctl deployed.
package helm

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"

	"helm.sh/helm/v3/pkg/action"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
)

// storageDriver is where Helm records releases: Secrets, the helm CLI default.
const storageDriver = "secrets"

// Config holds what every action shares: Helm's action configuration for one
// kubeconfig file and one namespace, and the logger. A Config is safe for
// sequential use by several actions; build one per environment.
type Config struct {
	action    *action.Configuration
	namespace string
	logger    *slog.Logger
}

// Option configures a Config.
type Option func(*Config)

// WithLogger sends Helm's debug log and Kubernetes API warnings to l at
// debug level. Without it the package is silent.
func WithLogger(l *slog.Logger) Option {
	return func(c *Config) {
		if l != nil {
			c.logger = l
		}
	}
}

// NewConfig returns a Config for the cluster in the kubeconfig file at
// kubeconfigPath (its current context) and namespace. Only that file is read:
// neither $KUBECONFIG nor ~/.kube is consulted, and discovery is cached in
// memory, not on disk. The cluster is not contacted until an action runs.
func NewConfig(kubeconfigPath, namespace string, opts ...Option) (*Config, error) {
	if kubeconfigPath == "" {
		return nil, fmt.Errorf("helm config: %w: the kubeconfig path is empty", ErrInvalidArgument)
	}
	if namespace == "" {
		return nil, fmt.Errorf("helm config: %w: the namespace is empty", ErrInvalidArgument)
	}
	if _, err := os.Stat(kubeconfigPath); err != nil {
		return nil, fmt.Errorf("helm config: read kubeconfig: %w (is the environment up? `devctl up` writes it)", err)
	}
	c := &Config{
		namespace: namespace,
		logger:    slog.New(slog.DiscardHandler),
	}
	for _, o := range opts {
		o(c)
	}
	getter := newRESTClientGetter(kubeconfigPath, namespace, c.logger)
	ac := new(action.Configuration)
	if err := ac.Init(getter, namespace, storageDriver, c.debugf); err != nil {
		return nil, fmt.Errorf("helm config for %q: %w", kubeconfigPath, err)
	}
	ac.SetHookOutputFunc(func(_, _, _ string) io.Writer { return io.Discard })
	c.action = ac
	return c, nil
}

// debugf adapts Helm's printf-style debug log to slog.
func (c *Config) debugf(format string, v ...any) {
	if !c.logger.Enabled(context.Background(), slog.LevelDebug) {
		return
	}
	c.logger.Debug(fmt.Sprintf(format, v...))
}

// restClientGetter is genericclioptions.ConfigFlags restricted to one
// kubeconfig file, with discovery cached in memory so that nothing is written
// under ~/.kube.
type restClientGetter struct {
	*genericclioptions.ConfigFlags

	mu        sync.Mutex
	discovery discovery.CachedDiscoveryInterface
	mapper    meta.RESTMapper
}

func newRESTClientGetter(kubeconfigPath, namespace string, logger *slog.Logger) *restClientGetter {
	flags := genericclioptions.NewConfigFlags(false)
	flags.KubeConfig = &kubeconfigPath
	flags.Namespace = &namespace
	flags.WrapConfigFn = func(rc *rest.Config) *rest.Config {
		// Helm issues bursts of GETs while waiting; the client-go defaults
		// (5 QPS) make it sleep.
		rc.QPS, rc.Burst = 50, 100
		rc.WarningHandler = warningLogger{logger}
		return rc
	}
	return &restClientGetter{ConfigFlags: flags}
}

func (g *restClientGetter) ToDiscoveryClient() (discovery.CachedDiscoveryInterface, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.discovery != nil {
		return g.discovery, nil
	}
	rc, err := g.ToRESTConfig()
	if err != nil {
		return nil, err
	}
	dc, err := discovery.NewDiscoveryClientForConfig(rc)
	if err != nil {
		return nil, err
	}
	g.discovery = memory.NewMemCacheClient(dc)
	return g.discovery, nil
}

func (g *restClientGetter) ToRESTMapper() (meta.RESTMapper, error) {
	dc, err := g.ToDiscoveryClient()
	if err != nil {
		return nil, err
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.mapper == nil {
		g.mapper = restmapper.NewShortcutExpander(restmapper.NewDeferredDiscoveryRESTMapper(dc), dc, nil)
	}
	return g.mapper, nil
}

// warningLogger sends API server warnings (deprecations, PodSecurity) to the
// logger instead of stderr.
type warningLogger struct{ logger *slog.Logger }

func (w warningLogger) HandleWarningHeader(_ int, _ string, text string) {
	w.logger.Debug("kubernetes API warning", "warning", text)
}
