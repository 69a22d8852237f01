package externalsecrets_test

import (
	"context"
	"net/http/httptest"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/dynamic"
	"sigs.k8s.io/yaml"

	"github.com/devctl/devctl/charts"
	"github.com/devctl/devctl/internal/k8stest"
	"github.com/devctl/devctl/internal/mocks/externalsecrets"
	"github.com/devctl/devctl/internal/mocks/vault"
)

// TestIntegrationController runs the controller against a real API server
// (with the garbage collector) and the chart's CRDs: an ExternalSecret
// becomes a Secret, follows Vault on refresh, reports errors in its status,
// and takes its Secret with it when deleted.
func TestIntegrationController(t *testing.T) {
	if testing.Short() {
		t.Skip("needs the local control plane (make k8s-tools)")
	}
	cp := k8stest.Start(t)
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	dyn, err := dynamic.NewForConfig(cp.RESTConfig())
	if err != nil {
		t.Fatal(err)
	}
	crds := schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}
	for _, f := range []string{"externalsecrets", "secretstores", "clustersecretstores", "servicemonitors", "prometheusrules"} {
		b, err := charts.FS.ReadFile("platform-mocks/files/crds/" + f + ".yaml")
		if err != nil {
			t.Fatal(err)
		}
		var u unstructured.Unstructured
		if err := yaml.Unmarshal(b, &u.Object); err != nil {
			t.Fatal(err)
		}
		if _, err := dyn.Resource(crds).Create(ctx, &u, metav1.CreateOptions{}); err != nil {
			t.Fatalf("create CRD %s: %v", f, err)
		}
	}
	start := time.Now()
	poll(ctx, t, "ExternalSecret CRD established", func() bool {
		_, err := dyn.Resource(externalsecrets.ExternalSecretsV1).Namespace(ns).List(ctx, metav1.ListOptions{})
		return err == nil
	})
	t.Logf("CRDs established in %v", time.Since(start).Round(time.Millisecond))

	v, err := vault.New("tok", vault.WithSeed(vault.Seed{"app/db": {"password": "one"}}))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(v)
	t.Cleanup(srv.Close)
	nsObj := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": "Namespace", "metadata": map[string]any{"name": ns}}}
	if _, err := dyn.Resource(schema.GroupVersionResource{Version: "v1", Resource: "namespaces"}).Create(ctx, nsObj, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := dyn.Resource(schema.GroupVersionResource{Version: "v1", Resource: "secrets"}).Namespace(ns).Create(ctx, tokenSecret("tok"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := externalsecrets.EnsureClusterStore(ctx, dyn, externalsecrets.VaultStore{
		Name: "vault", Server: srv.URL, Path: "secret", TokenNamespace: ns, TokenName: "vault-token"}); err != nil {
		t.Fatal(err)
	}
	c := externalsecrets.New(dyn)
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- c.Run(runCtx, 2) }()
	t.Cleanup(func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("controller: %v", err)
		}
	})

	es := obj("db", map[string]any{
		"secretStoreRef":  map[string]any{"name": "vault", "kind": "ClusterSecretStore"},
		"refreshInterval": "1s",
		"data":            []any{map[string]any{"secretKey": "password", "remoteRef": map[string]any{"key": "app/db", "property": "password"}}},
	})
	delete(es.Object["metadata"].(map[string]any), "uid")
	start = time.Now()
	if _, err := dyn.Resource(externalsecrets.ExternalSecretsV1).Namespace(ns).Create(ctx, es, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	secrets := dyn.Resource(schema.GroupVersionResource{Version: "v1", Resource: "secrets"}).Namespace(ns)
	secretHas := func(want string) func() bool {
		return func() bool {
			u, err := secrets.Get(ctx, "db", metav1.GetOptions{})
			if err != nil {
				return false
			}
			got, _, _ := unstructured.NestedString(u.Object, "data", "password")
			return got == want
		}
	}
	poll(ctx, t, "Secret db with password one", secretHas("b25l")) // base64("one")
	t.Logf("ExternalSecret synced %v after creation", time.Since(start).Round(time.Millisecond))
	poll(ctx, t, "Ready=True", func() bool {
		u, err := dyn.Resource(externalsecrets.ExternalSecretsV1).Namespace(ns).Get(ctx, "db", metav1.GetOptions{})
		if err != nil {
			return false
		}
		conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
		return len(conds) == 1 && conds[0].(map[string]any)["status"] == "True"
	})

	// Vault changes reach the Secret on the next refresh.
	if _, err := vaultClientPut(srv.URL, "tok", "app/db", `{"data":{"password":"two"}}`); err != nil {
		t.Fatal(err)
	}
	poll(ctx, t, "Secret db with password two", secretHas("dHdv"))

	// Deleting the ExternalSecret deletes its Secret (garbage collection).
	if err := dyn.Resource(externalsecrets.ExternalSecretsV1).Namespace(ns).Delete(ctx, "db", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	poll(ctx, t, "Secret db deleted", func() bool {
		_, err := secrets.Get(ctx, "db", metav1.GetOptions{})
		return apierrors.IsNotFound(err)
	})
}

func poll(ctx context.Context, t *testing.T, what string, cond func() bool) {
	t.Helper()
	if err := wait.PollUntilContextCancel(ctx, 50*time.Millisecond, true, func(context.Context) (bool, error) { return cond(), nil }); err != nil {
		t.Fatalf("waiting for %s: %v", what, err)
	}
}
