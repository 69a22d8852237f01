package goldenpath

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

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
	fi, err := os.Stat(p)
	if err != nil {
		return nil, policy.ManifestErrors{fileError(p, err)}
	}
	if !fi.IsDir() {
		return readManifestFile(p)
	}
	var (
		docs []policy.Document
		errs policy.ManifestErrors
	)
	add := func(d []policy.Document, err error) {
		docs = append(docs, d...)
		errs = append(errs, policy.AsManifestErrors(err)...)
	}
	err = filepath.WalkDir(p, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			errs = append(errs, fileError(path, err))
			if d != nil && d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if d.IsDir() {
			if path != p && strings.HasPrefix(d.Name(), ".") {
				return filepath.SkipDir // .git, .github: not manifests
			}
			if isChart(path) {
				add(renderChart(ctx, path, namespace))
				return filepath.SkipDir
			}
			return nil
		}
		switch strings.ToLower(filepath.Ext(path)) {
		case ".yaml", ".yml", ".json":
			add(readManifestFile(path))
		}
		return nil
	})
	if err != nil {
		errs = append(errs, fileError(p, err))
	}
	if len(errs) > 0 {
		return docs, errs
	}
	return docs, nil
}

func fileError(path string, err error) *policy.ManifestError {
	msg := err.Error()
	var pe *fs.PathError
	if errors.As(err, &pe) {
		msg = pe.Err.Error()
	}
	return &policy.ManifestError{File: path, Message: msg, Err: err}
}

// readManifestFile reads a manifest file. Files that belong to a chart or
// a Kustomize overlay are not manifests: the error says what to do.
func readManifestFile(path string) ([]policy.Document, error) {
	switch strings.ToLower(filepath.Base(path)) {
	case "chart.yaml", "values.yaml", "values.schema.json":
		return nil, policy.ManifestErrors{{File: path, Err: policy.ErrHelmTemplate,
			Message: "this file belongs to a Helm chart: pass the chart's folder (" + filepath.Dir(path) + ") and devctl renders it"}}
	case "kustomization.yaml", "kustomization.yml":
		return nil, policy.ManifestErrors{{File: path,
			Message: "this is a Kustomize overlay, not a manifest: check what it builds: kustomize build " + filepath.Dir(path) + " | devctl check -"}}
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, policy.ManifestErrors{fileError(path, err)}
	}
	return policy.ParseManifests(path, data)
}

func isChart(dir string) bool {
	fi, err := os.Stat(filepath.Join(dir, chartutil.ChartfileName))
	return err == nil && fi.Mode().IsRegular()
}

// renderChart renders a chart folder with its own values, as `helm
// template` would, and points findings at its templates.
func renderChart(ctx context.Context, dir, namespace string) ([]policy.Document, error) {
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
