// Package externalsecrets is a stand-in for the External Secrets Operator
// with a Vault KV v2 store: a controller that turns ExternalSecret objects
// (external-secrets.io/v1, and v1beta1 with the same fields) into Secrets
// read from Vault's HTTP API, as ESO does with a SecretStore or
// ClusterSecretStore of provider vault (path + version v2, token auth).
//
// Supported: spec.secretStoreRef (SecretStore or ClusterSecretStore),
// spec.target.name (default: the ExternalSecret's name), spec.data[]
// (secretKey, remoteRef.key, remoteRef.property, remoteRef.version),
// spec.dataFrom[].extract.key, spec.refreshInterval (default 1h, "0" syncs
// once). The Secret is owned by its ExternalSecret (deleting the
// ExternalSecret deletes it) and status.conditions[type=Ready] says whether
// the last sync worked, with reason SecretSynced or SecretSyncedError and a
// message saying what to fix. Templates, other providers and push secrets
// are not supported; they fail with Ready=False and say so.
package externalsecrets

import (
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// Group is the External Secrets API group.
const Group = "external-secrets.io"

// Resources the controller reads and writes.
var (
	ExternalSecretsV1     = schema.GroupVersionResource{Group: Group, Version: "v1", Resource: "externalsecrets"}
	SecretStoresV1        = schema.GroupVersionResource{Group: Group, Version: "v1", Resource: "secretstores"}
	ClusterSecretStoresV1 = schema.GroupVersionResource{Group: Group, Version: "v1", Resource: "clustersecretstores"}
	secrets               = schema.GroupVersionResource{Version: "v1", Resource: "secrets"}
)

// Condition reasons, as ESO sets them.
const (
	ReasonSynced      = "SecretSynced"
	ReasonSyncedError = "SecretSyncedError"
)

// ManagedLabel marks the Secrets the controller writes.
const ManagedLabel = "reconcile.external-secrets.io/managed"
