// Package charts embeds the Helm charts devctl installs: the golden-path chart
// every service is deployed with (and, beside it, the platform stand-ins).
//
// Each chart is a directory next to this file, loaded from the binary with
// Helm's loader, so devctl never reads charts from disk at run time.
package charts

import (
	"embed"
	"fmt"
	"io/fs"
	"path"

	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chart/loader"
)

// GoldenPathName is the name of the golden-path chart (its directory and its
// Chart.yaml name).
const GoldenPathName = "golden-path"

// PlatformMocksName is the name of the chart of local stand-ins for a
// service's platform dependencies (secrets store, database, object store,
// monitoring CRDs).
const PlatformMocksName = "platform-mocks"

// FS holds the chart sources, one directory per chart. The all: prefix keeps
// dot-files such as .helmignore.
//
//go:embed all:golden-path all:platform-mocks
var FS embed.FS

// GoldenPath loads the embedded golden-path chart.
func GoldenPath() (*chart.Chart, error) {
	return Load(GoldenPathName)
}

// PlatformMocks loads the embedded platform-mocks chart.
func PlatformMocks() (*chart.Chart, error) {
	return Load(PlatformMocksName)
}

// Load loads the embedded chart in directory name. Each call returns a fresh
// *chart.Chart, so callers may modify it.
func Load(name string) (*chart.Chart, error) {
	var files []*loader.BufferedFile
	err := fs.WalkDir(FS, name, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := FS.ReadFile(p)
		if err != nil {
			return err
		}
		rel := p[len(name)+1:] // path inside the chart, always "/"-separated
		files = append(files, &loader.BufferedFile{Name: path.Clean(rel), Data: data})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read embedded chart %q: %w", name, err)
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("read embedded chart %q: no such chart", name)
	}
	ch, err := loader.LoadFiles(files)
	if err != nil {
		return nil, fmt.Errorf("load embedded chart %q: %w", name, err)
	}
	return ch, nil
}
