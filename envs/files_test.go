package envs

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
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
	tests := []Env{
		{Name: "hello-main", Provider: "kind", Project: "hello", Repo: "github.com/acme/hello", Branch: "feature/x", NodeImage: "img:1",
			Created: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), Labels: map[string]string{"team": "a", "not a k8s/label key!": "ok"}},
		{Name: "bare"},
	}
	for _, env := range tests {
		cm, err := encodeMetadata(env)
		if err != nil {
			t.Fatal(err)
		}
		if cm.Namespace != MetadataNamespace || cm.Name != MetadataName || cm.Labels[LabelManaged] != "true" || cm.Labels[LabelEnv] != env.Name {
			t.Errorf("configmap meta = %s/%s %v", cm.Namespace, cm.Name, cm.Labels)
		}
		got, err := decodeMetadata(cm)
		if err != nil {
			t.Fatal(err)
		}
		if !got.Created.Equal(env.Created) && (!env.Created.IsZero() || got.Created.Year() != 1) {
			t.Errorf("created = %v, want %v", got.Created, env.Created)
		}
		got.Created, env.Created = time.Time{}, time.Time{}
		if !reflect.DeepEqual(got, env) {
			t.Errorf("round trip = %+v, want %+v", got, env)
		}
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
		{name: "bad labels", cm: corev1.ConfigMap{Data: map[string]string{keyLabels: "{"}}},
	}
	for _, tt := range tests {
		cm := tt.cm
		if !tt.noMetadata {
			cm.Labels = managed
		}
		_, err := decodeMetadata(&cm)
		if err == nil {
			t.Errorf("%s: decoded without error", tt.name)
			continue
		}
		if got := errors.Is(err, errNoMetadata); got != tt.noMetadata {
			t.Errorf("%s: errNoMetadata = %v, want %v (%v)", tt.name, got, tt.noMetadata, err)
		}
	}
}
