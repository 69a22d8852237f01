package vcluster

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"

	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chart/loader"
)

// Version is the vcluster release whose chart devctl installs. It is the
// newest the Go module proxy serves; the images e2e/images/vcluster.sh builds
// are of the same version.
const Version = "v0.30.0"

// Module is the Go module the chart is taken from.
const Module = "github.com/loft-sh/vcluster"

// ErrNoChart says this build of devctl carries no vcluster chart and the Go
// module cache has none either.
var ErrNoChart = errors.New("the vcluster chart is not available")

var (
	chartOnce sync.Once
	chartVal  *chart.Chart
	chartErr  error
)

// Chart returns the vcluster chart: the archive `make build` embeds (build
// tag vclusterchart), or else the chart folder of the module in the Go module
// cache (a plain `go build` or `go test`).
func Chart() (*chart.Chart, error) {
	chartOnce.Do(func() {
		chartVal, chartErr = loadChart()
		if chartErr == nil {
			// The module's Chart.yaml carries a placeholder version that
			// vcluster's release pipeline replaces.
			chartVal.Metadata.Version = strings.TrimPrefix(Version, "v")
			chartVal.Metadata.AppVersion = strings.TrimPrefix(Version, "v")
		}
	})
	return chartVal, chartErr
}

func loadChart() (*chart.Chart, error) {
	if b, ok := embeddedChart(); ok {
		ch, err := loader.LoadArchive(bytesReader(b))
		if err != nil {
			return nil, fmt.Errorf("load the embedded vcluster chart: %w", err)
		}
		return ch, nil
	}
	dir := moduleChartDir()
	if _, err := os.Stat(filepath.Join(dir, "Chart.yaml")); err != nil {
		return nil, fmt.Errorf("%w: this devctl was built without it (build with `make build`), and %s is missing (fetch it with `go mod download %s@%s`)",
			ErrNoChart, dir, Module, Version)
	}
	ch, err := loader.LoadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("load the vcluster chart from %s: %w", dir, err)
	}
	return ch, nil
}

// moduleChartDir is where the Go module cache keeps the chart folder.
func moduleChartDir() string {
	cache := os.Getenv("GOMODCACHE")
	if cache == "" {
		if out, err := exec.Command("go", "env", "GOMODCACHE").Output(); err == nil {
			cache = strings.TrimSpace(string(out))
		}
	}
	if cache == "" {
		gopath := os.Getenv("GOPATH")
		if gopath == "" {
			home, _ := os.UserHomeDir()
			gopath = filepath.Join(home, "go")
		}
		cache = filepath.Join(strings.Split(gopath, string(os.PathListSeparator))[0], "pkg", "mod")
	}
	return filepath.Join(cache, filepath.FromSlash(Module)+"@"+Version, "chart")
}
