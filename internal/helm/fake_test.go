package helm

import (
	"context"
	"io"
	"log/slog"
	"time"

	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/kube"
	kubefake "helm.sh/helm/v3/pkg/kube/fake"
	"helm.sh/helm/v3/pkg/storage"
	"helm.sh/helm/v3/pkg/storage/driver"
)

// newMemoryConfig returns a Config for namespace testNS whose releases live
// in memory and whose Kubernetes client only prints, as in Helm's own action
// tests. wait replaces the readiness wait; nil means always ready.
func newMemoryConfig(wait func(context.Context, kube.ResourceList, time.Duration) error) *Config {
	mem := driver.NewMemory()
	mem.SetNamespace(testNS)
	if wait == nil {
		wait = func(context.Context, kube.ResourceList, time.Duration) error { return nil }
	}
	c := &Config{
		action: &action.Configuration{
			Releases:     storage.Init(mem),
			KubeClient:   &kubefake.PrintingKubeClient{Out: io.Discard},
			Capabilities: chartutil.DefaultCapabilities,
			Log:          func(string, ...any) {},
		},
		namespace: testNS,
		logger:    slog.New(slog.DiscardHandler),
		waitReady: wait,
	}
	return c
}
