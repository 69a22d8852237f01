package externalsecrets

import (
	"context"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/dynamic"
)

// VaultStore describes a ClusterSecretStore of provider vault (KV v2, token
// auth) pointing at the Vault stand-in.
type VaultStore struct {
	Name   string // ClusterSecretStore name
	Server string // e.g. http://mocks-vault.ns.svc:8200
	Path   string // the KV v2 mount, e.g. "secret"
	// TokenSecret holds the token: namespace, name and key (default "token").
	TokenNamespace, TokenName, TokenKey string
}

// EnsureClusterStore creates the ClusterSecretStore, or updates its spec to
// match.
func EnsureClusterStore(ctx context.Context, dyn dynamic.Interface, s VaultStore) error {
	key := s.TokenKey
	if key == "" {
		key = "token"
	}
	want := map[string]any{
		"provider": map[string]any{
			"vault": map[string]any{
				"server":  s.Server,
				"path":    s.Path,
				"version": "v2",
				"auth": map[string]any{
					"tokenSecretRef": map[string]any{"name": s.TokenName, "key": key, "namespace": s.TokenNamespace},
				},
			},
		},
	}
	client := dyn.Resource(ClusterSecretStoresV1)
	cur, err := client.Get(ctx, s.Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		u := &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": ClusterSecretStoresV1.GroupVersion().String(),
			"kind":       "ClusterSecretStore",
			"metadata": map[string]any{
				"name":   s.Name,
				"labels": map[string]any{"app.kubernetes.io/managed-by": "devctl-mocks"},
			},
			"spec": want,
		}}
		if _, err := client.Create(ctx, u, metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("create ClusterSecretStore %s: %w", s.Name, err)
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("get ClusterSecretStore %s: %w", s.Name, err)
	}
	cur.Object["spec"] = want
	if _, err := client.Update(ctx, cur, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("update ClusterSecretStore %s: %w", s.Name, err)
	}
	return nil
}
