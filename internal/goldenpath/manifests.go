package goldenpath

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"

	"github.com/devctl/devctl/internal/helm"
	"github.com/devctl/devctl/internal/policy"
)

// ReadManifests reads a manifest file, a chart folder (rendered with its
// own values in namespace), or a folder (every .yaml, .yml and .json file
// below it, charts rendered, hidden folders skipped), in a stable order.
// It returns the documents it could read and a policy.ManifestErrors for
// the rest, so that one broken file does not hide the others. `devctl
// check PATH`, `devctl check` (devctl.yaml's manifests:) and `devctl up`
// all read manifests with it.
func ReadManifests(ctx context.Context, p, namespace string) ([]policy.Document, error) {
	return policy.ReadManifests(p, func(dir string) ([]policy.Document, error) { return RenderChart(ctx, dir, namespace) })
}

// RenderChart renders a chart folder with its own values, as `helm
// template` would, and points findings at its templates.
func RenderChart(ctx context.Context, dir, namespace string) ([]policy.Document, error) {
	fail := func(err error) ([]policy.Document, error) {
		return nil, policy.ManifestErrors{{File: dir, Err: err,
			Message: fmt.Sprintf("render the Helm chart: %v", err)}}
	}
	ch, err := loader.LoadDir(dir)
	if err != nil {
		return fail(err)
	}
	release := ch.Name()
	if chartutil.ValidateReleaseName(release) != nil {
		release = "release"
	}
	out, err := helm.Render(ctx, ch, release, namespace, nil)
	if err != nil {
		return fail(err)
	}
	docs, err := policy.ParseManifests(filepath.Join(dir, "(rendered)"), []byte(out))
	src := &policy.ChartSource{FS: os.DirFS(dir), Dir: dir}
	for i := range docs {
		docs[i].Chart = src
	}
	return docs, err
}
