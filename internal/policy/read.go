package policy

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// ChartFile is the file that makes a folder a Helm chart.
const ChartFile = "Chart.yaml"

// ReadManifests reads a manifest file, or a folder: every .yaml, .yml and
// .json file below it, hidden folders skipped, in a stable order. A chart
// folder (one with a Chart.yaml) in it, or p itself, is handed to
// renderChart and not read as files. It returns the documents it could
// read and a ManifestErrors for the rest, so that one broken file does not
// hide the others.
func ReadManifests(p string, renderChart func(dir string) ([]Document, error)) ([]Document, error) {
	fi, err := os.Stat(p)
	if err != nil {
		return nil, ManifestErrors{fileError(p, err)}
	}
	if !fi.IsDir() {
		return readManifestFile(p)
	}
	var (
		docs []Document
		errs ManifestErrors
	)
	add := func(d []Document, err error) {
		docs = append(docs, d...)
		errs = append(errs, AsManifestErrors(err)...)
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
			if IsChart(path) {
				add(renderChart(path))
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

// HasChart says whether ReadManifests(p) would render a chart: p is a
// folder with a chart in it (or is one).
func HasChart(p string) bool {
	found := false
	_ = filepath.WalkDir(p, func(path string, d fs.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return nil //nolint:nilerr // ReadManifests reports what cannot be read
		}
		if path != p && strings.HasPrefix(d.Name(), ".") {
			return filepath.SkipDir
		}
		if IsChart(path) {
			found = true
			return fs.SkipAll
		}
		return nil
	})
	return found
}

// IsChart says whether dir is a Helm chart folder.
func IsChart(dir string) bool {
	fi, err := os.Stat(filepath.Join(dir, ChartFile))
	return err == nil && fi.Mode().IsRegular()
}

func fileError(path string, err error) *ManifestError {
	msg := err.Error()
	var pe *fs.PathError
	if errors.As(err, &pe) {
		msg = pe.Err.Error()
	}
	return &ManifestError{File: path, Message: msg, Err: err}
}

// readManifestFile reads a manifest file. Files that belong to a chart or
// a Kustomize overlay are not manifests: the error says what to do.
func readManifestFile(path string) ([]Document, error) {
	switch strings.ToLower(filepath.Base(path)) {
	case "chart.yaml", "values.yaml", "values.schema.json":
		return nil, ManifestErrors{{File: path, Err: ErrHelmTemplate,
			Message: "this file belongs to a Helm chart: pass the chart's folder (" + filepath.Dir(path) + ") and devctl renders it"}}
	case "kustomization.yaml", "kustomization.yml":
		return nil, ManifestErrors{{File: path,
			Message: "this is a Kustomize overlay, not a manifest: check what it builds: kustomize build " + filepath.Dir(path) + " | devctl check -"}}
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, ManifestErrors{fileError(path, err)}
	}
	return ParseManifests(path, data)
}
