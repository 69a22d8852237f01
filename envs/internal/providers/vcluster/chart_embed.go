//go:build vclusterchart

package vcluster

import (
	"bytes"
	_ "embed"
	"io"
)

// chartArchive is the chart folder of the vcluster module, packed by
// `make vcluster-chart` (which `make build` runs) into chart/, which git
// ignores.
//
//go:embed chart/vcluster.tgz
var chartArchive []byte

func embeddedChart() ([]byte, bool) { return chartArchive, true }

func bytesReader(b []byte) io.Reader { return bytes.NewReader(b) }
