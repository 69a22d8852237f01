package envs

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/devctl/devctl/internal/api"
)

func TestWriteFileAtomic(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "envs", "x")
	path := filepath.Join(dir, "kubeconfig")
	for _, content := range []string{"first", "second"} {
		if err := writeFileAtomic(path, []byte(content)); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(path)
		if err != nil || string(b) != content {
			t.Fatalf("read %q, %v; want %q", b, err, content)
		}
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("kubeconfig mode = %v, want 0600", fi.Mode().Perm())
	}
	di, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if di.Mode().Perm() != 0o700 {
		t.Errorf("dir mode = %v, want 0700", di.Mode().Perm())
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("temporary files left: %v", entries)
	}
}

func TestMetadataRoundTrip(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		env  Env
	}{
		{name: "full", env: Env{
			Name: "hello-feature-x-1a2b3c",
			Spec: api.EnvSpec{
				Provider:  api.ProviderKind,
				Project:   "hello",
				Repo:      "github.com/acme/hello",
				Branch:    "feature/X_y",
				Dir:       "/home/me/src/hello",
				Config:    "/home/me/src/hello/devctl.yaml",
				NodeImage: "devctl.local/kind-node:v1.35.0",
				Watch:     true,
				Labels:    map[string]string{"team": "a", "not a k8s/label key!": "ok \"quoted\"\n"},
			},
			Created: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
		}},
		{name: "bare", env: Env{Name: "bare", Created: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}},
		{name: "created in another zone", env: Env{
			Name:    "zoned",
			Spec:    api.EnvSpec{Provider: api.ProviderVCluster},
			Created: time.Date(2026, 6, 1, 12, 0, 0, 0, time.FixedZone("CEST", 2*60*60)),
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cm, err := encodeMetadata(tt.env)
			if err != nil {
				t.Fatal(err)
			}
			if cm.Namespace != MetadataNamespace || cm.Name != MetadataName || cm.Labels[LabelManaged] != "true" || cm.Labels[LabelEnv] != tt.env.Name {
				t.Errorf("configmap meta = %s/%s %v", cm.Namespace, cm.Name, cm.Labels)
			}
			got, err := decodeMetadata(cm)
			if err != nil {
				t.Fatal(err)
			}
			if !got.Created.Equal(tt.env.Created) {
				t.Errorf("created = %v, want %v", got.Created, tt.env.Created)
			}
			want := tt.env
			got.Created, want.Created = time.Time{}, time.Time{}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("round trip = %+v\nwant         %+v", got, want)
			}
		})
	}
}

// Environments made before the spec was stored as JSON keep what their
// metadata recorded.
func TestDecodeLegacyMetadata(t *testing.T) {
	t.Parallel()
	cm := &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{LabelManaged: "true", LabelEnv: "hello-main"}},
		Data: map[string]string{
			"name":      "hello-main",
			"provider":  "kind",
			"project":   "hello",
			"repo":      "github.com/acme/hello",
			"branch":    "main",
			"nodeImage": "devctl.local/kind-node:v1.35.0",
			"created":   "2026-11-20T10:00:00Z",
			"labels":    `{"team":"a"}`,
		},
	}
	got, err := decodeMetadata(cm)
	if err != nil {
		t.Fatal(err)
	}
	want := Env{
		Name: "hello-main",
		Spec: api.EnvSpec{
			Provider: "kind", Project: "hello", Repo: "github.com/acme/hello", Branch: "main",
			NodeImage: "devctl.local/kind-node:v1.35.0", Labels: map[string]string{"team": "a"},
		},
		Created: time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC),
	}
	if !got.Created.Equal(want.Created) {
		t.Errorf("created = %v, want %v", got.Created, want.Created)
	}
	got.Created, want.Created = time.Time{}, time.Time{}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("decoded = %+v\nwant      %+v", got, want)
	}
}

func TestDecodeMetadataRejects(t *testing.T) {
	t.Parallel()
	managed := map[string]string{LabelManaged: "true"}
	tests := []struct {
		name       string
		cm         corev1.ConfigMap
		noMetadata bool
	}{
		{name: "unlabelled", cm: corev1.ConfigMap{Data: map[string]string{keyName: "x"}}, noMetadata: true},
		{name: "bad created", cm: corev1.ConfigMap{Data: map[string]string{keyCreated: "yesterday"}}},
		{name: "bad spec", cm: corev1.ConfigMap{Data: map[string]string{keySpec: "{"}}},
		{name: "spec of the wrong type", cm: corev1.ConfigMap{Data: map[string]string{keySpec: `{"watch":"yes"}`}}},
		{name: "bad legacy labels", cm: corev1.ConfigMap{Data: map[string]string{legacyKeyLabels: "{"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cm := tt.cm
			if !tt.noMetadata {
				cm.Labels = managed
			}
			_, err := decodeMetadata(&cm)
			if err == nil {
				t.Fatal("decoded without error")
			}
			if got := errors.Is(err, errNoMetadata); got != tt.noMetadata {
				t.Errorf("errNoMetadata = %v, want %v (%v)", got, tt.noMetadata, err)
			}
		})
	}
}
