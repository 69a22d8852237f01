//go:build !vclusterchart

package vcluster

import (
	"bytes"
	"io"
)

func embeddedChart() ([]byte, bool) { return nil, false }

func bytesReader(b []byte) io.Reader { return bytes.NewReader(b) }
