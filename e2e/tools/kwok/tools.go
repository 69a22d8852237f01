//go:build tools

// Package tools pins kwok (KWOK_VERSION in e2e/tools/versions.env); the
// binary is built with `go build sigs.k8s.io/kwok/cmd/kwok` from this module.
package tools

import _ "sigs.k8s.io/kwok/cmd/kwok"
