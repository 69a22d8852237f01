//go:build tools

// Package tools pins crictl, which `kind load` runs inside the node image.
package tools

import _ "sigs.k8s.io/cri-tools/cmd/crictl"
