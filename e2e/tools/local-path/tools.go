//go:build tools

// Package tools pins local-path-provisioner, the default storage class of
// the kind node image (PersistentVolumeClaims bind to node-local paths).
package tools

import _ "github.com/rancher/local-path-provisioner"
