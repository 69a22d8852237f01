package helm

import (
	"io"
	"log/slog"

	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chartutil"
	kubefake "helm.sh/helm/v3/pkg/kube/fake"
	"helm.sh/helm/v3/pkg/storage"
	"helm.sh/helm/v3/pkg/storage/driver"
)

// newMemoryConfig returns a Config for namespace testNS whose releases live
// in memory and whose Kubernetes client only prints, as in Helm's own action
// tests.
func newMemoryConfig() *Config {
	mem := driver.NewMemory()
	mem.SetNamespace(testNS)
	c := &Config{
		action: &action.Configuration{
			Releases:     storage.Init(mem),
			KubeClient:   &kubefake.PrintingKubeClient{Out: io.Discard},
			Capabilities: chartutil.DefaultCapabilities,
			Log:          func(string, ...any) {},
		},
		namespace: testNS,
		logger:    slog.New(slog.DiscardHandler),
	}
	return c
}
