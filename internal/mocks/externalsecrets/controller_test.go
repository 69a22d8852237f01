package externalsecrets_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	dynamicfake "k8s.io/client-go/dynamic/fake"

	"github.com/devctl/devctl/internal/mocks/externalsecrets"
	"github.com/devctl/devctl/internal/mocks/vault"
)

const ns = "shop"

func obj(name string, spec map[string]any) *unstructured.Unstructured {
	namespace := ns
	u := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "external-secrets.io/v1", "kind": "ExternalSecret",
		"metadata": map[string]any{"name": name, "namespace": namespace, "uid": name + "-uid"}}}
	if spec != nil {
		u.Object["spec"] = spec
	}
	return u
}

func tokenSecret(token string) *unstructured.Unstructured {
	s := &corev1.Secret{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
		ObjectMeta: metav1.ObjectMeta{Name: "vault-token", Namespace: ns}, Data: map[string][]byte{"token": []byte(token)}}
	m, _ := runtime.DefaultUnstructuredConverter.ToUnstructured(s)
	return &unstructured.Unstructured{Object: m}
}

// setup returns a fake API holding a ClusterSecretStore for a real Vault
// stand-in seeded with app/db, and the controller.
func setup(t *testing.T, extra ...runtime.Object) (*dynamicfake.FakeDynamicClient, *externalsecrets.Controller) {
	t.Helper()
	v, err := vault.New("tok", vault.WithSeed(vault.Seed{"app/db": {"username": "app", "password": "pw", "port": 5432}}))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(v)
	t.Cleanup(srv.Close)
	gvrs := map[schema.GroupVersionResource]string{
		externalsecrets.ExternalSecretsV1:     "ExternalSecretList",
		externalsecrets.SecretStoresV1:        "SecretStoreList",
		externalsecrets.ClusterSecretStoresV1: "ClusterSecretStoreList",
		{Version: "v1", Resource: "secrets"}:  "SecretList",
	}
	dyn := dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(), gvrs, append([]runtime.Object{tokenSecret("tok")}, extra...)...)
	if err := externalsecrets.EnsureClusterStore(context.Background(), dyn, externalsecrets.VaultStore{
		Name: "vault", Server: srv.URL, Path: "secret", TokenNamespace: ns, TokenName: "vault-token"}); err != nil {
		t.Fatal(err)
	}
	return dyn, externalsecrets.New(dyn)
}

func readSecret(t *testing.T, dyn *dynamicfake.FakeDynamicClient, name string) *corev1.Secret {
	t.Helper()
	u, err := dyn.Resource(schema.GroupVersionResource{Version: "v1", Resource: "secrets"}).Namespace(ns).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var s corev1.Secret
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &s); err != nil {
		t.Fatal(err)
	}
	return &s
}

func readyCondition(t *testing.T, dyn *dynamicfake.FakeDynamicClient, name string) map[string]any {
	t.Helper()
	u, err := dyn.Resource(externalsecrets.ExternalSecretsV1).Namespace(ns).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
	if len(conds) != 1 {
		t.Fatalf("conditions = %v", conds)
	}
	return conds[0].(map[string]any)
}

func TestSync(t *testing.T) {
	t.Parallel()
	es := obj("db", map[string]any{
		"secretStoreRef":  map[string]any{"name": "vault", "kind": "ClusterSecretStore"},
		"refreshInterval": "30s",
		"target":          map[string]any{"name": "db-credentials"},
		"data": []any{
			map[string]any{"secretKey": "DB_PASSWORD", "remoteRef": map[string]any{"key": "app/db", "property": "password"}},
			map[string]any{"secretKey": "DB_PORT", "remoteRef": map[string]any{"key": "secret/app/db", "property": "port"}},
		},
		"dataFrom": []any{map[string]any{"extract": map[string]any{"key": "app/db"}}},
	})
	dyn, c := setup(t, es)
	refresh, err := c.Sync(context.Background(), ns, "db")
	if err != nil {
		t.Fatal(err)
	}
	if refresh.String() != "30s" {
		t.Errorf("refresh = %v, want 30s", refresh)
	}
	s := readSecret(t, dyn, "db-credentials")
	want := map[string]string{"DB_PASSWORD": "pw", "DB_PORT": "5432", "username": "app", "password": "pw", "port": "5432"}
	for k, v := range want {
		if string(s.Data[k]) != v {
			t.Errorf("secret[%s] = %q, want %q", k, s.Data[k], v)
		}
	}
	if ctl := metav1.GetControllerOf(s); ctl == nil || ctl.Kind != "ExternalSecret" || ctl.Name != "db" || ctl.UID != "db-uid" {
		t.Errorf("owner = %+v, want the ExternalSecret", ctl)
	}
	if c := readyCondition(t, dyn, "db"); c["status"] != "True" || c["reason"] != externalsecrets.ReasonSynced {
		t.Errorf("Ready = %v", c)
	}
}

func TestSyncFailures(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		spec map[string]any
		want string
	}{
		{"missing property", map[string]any{
			"secretStoreRef": map[string]any{"name": "vault", "kind": "ClusterSecretStore"},
			"data":           []any{map[string]any{"secretKey": "X", "remoteRef": map[string]any{"key": "app/db", "property": "nope"}}},
		}, `property "nope" of "app/db": not found (it has password, port, username)`},
		{"missing secret", map[string]any{
			"secretStoreRef": map[string]any{"name": "vault", "kind": "ClusterSecretStore"},
			"data":           []any{map[string]any{"secretKey": "X", "remoteRef": map[string]any{"key": "app/none"}}},
		}, "vault kv put secret/app/none"},
		{"missing store", map[string]any{
			"secretStoreRef": map[string]any{"name": "other"},
			"data":           []any{map[string]any{"secretKey": "X", "remoteRef": map[string]any{"key": "app/db"}}},
		}, `SecretStore "other" not found`},
		{"bad refresh", map[string]any{
			"secretStoreRef":  map[string]any{"name": "vault", "kind": "ClusterSecretStore"},
			"refreshInterval": "soon",
		}, "spec.refreshInterval"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dyn, c := setup(t, obj("es", tt.spec))
			_, err := c.Sync(context.Background(), ns, "es")
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Sync: %v, want an error containing %q", err, tt.want)
			}
			cond := readyCondition(t, dyn, "es")
			if cond["status"] != "False" || cond["reason"] != externalsecrets.ReasonSyncedError || !strings.Contains(cond["message"].(string), tt.want) {
				t.Errorf("Ready = %v", cond)
			}
		})
	}
}

func TestTemplateAndForeignSecret(t *testing.T) {
	t.Parallel()
	es := obj("dsn", map[string]any{
		"secretStoreRef": map[string]any{"name": "vault", "kind": "ClusterSecretStore"},
		"dataFrom":       []any{map[string]any{"extract": map[string]any{"key": "app/db"}}},
		"target": map[string]any{"template": map[string]any{
			"data": map[string]any{"DSN": "postgres://{{ .username }}:{{ .password }}@db:{{ .port }}/app"},
		}},
	})
	dyn, c := setup(t, es)
	if _, err := c.Sync(context.Background(), ns, "dsn"); err != nil {
		t.Fatal(err)
	}
	s := readSecret(t, dyn, "dsn")
	if len(s.Data) != 1 || string(s.Data["DSN"]) != "postgres://app:pw@db:5432/app" {
		t.Fatalf("templated secret = %v", s.Data)
	}

	// A Secret controlled by something else is not taken over.
	other := obj("other", map[string]any{
		"secretStoreRef": map[string]any{"name": "vault", "kind": "ClusterSecretStore"},
		"target":         map[string]any{"name": "dsn"},
		"dataFrom":       []any{map[string]any{"extract": map[string]any{"key": "app/db"}}},
	})
	if _, err := dyn.Resource(externalsecrets.ExternalSecretsV1).Namespace(ns).Create(context.Background(), other, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Sync(context.Background(), ns, "other"); err == nil || !strings.Contains(err.Error(), "is controlled by ExternalSecret dsn") {
		t.Fatalf("taking over another's Secret: %v", err)
	}
}

// vaultClientPut writes a KV v2 secret over Vault's HTTP API.
func vaultClientPut(addr, token, path, body string) (*http.Response, error) {
	req, err := http.NewRequest(http.MethodPost, addr+"/v1/secret/data/"+path, strings.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("X-Vault-Token", token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return resp, fmt.Errorf("vault put %s: %s", path, resp.Status)
	}
	return resp, nil
}
