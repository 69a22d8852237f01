package goldenpath

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"helm.sh/helm/v3/pkg/releaseutil"
	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/yaml"

	"github.com/devctl/devctl/internal/helm"
)

func loadExample(t *testing.T, name string) *Project {
	t.Helper()
	p, err := Load(filepath.Join("..", "..", "examples", name), "")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// deployment finds the Deployment in a rendered manifest.
func deployment(t *testing.T, manifest string) *appsv1.Deployment {
	t.Helper()
	for _, doc := range releaseutil.SplitManifests(manifest) {
		var d appsv1.Deployment
		if err := yaml.Unmarshal([]byte(doc), &d); err == nil && d.Kind == "Deployment" {
			return &d
		}
	}
	t.Fatalf("no Deployment in\n%s", manifest)
	return nil
}

// Each escape hatch renders to a release that runs the built image, carries
// the label devctl finds its pods by, names its workload, and installs the
// same objects that were checked.
func TestRenderEscapeHatches(t *testing.T) {
	t.Parallel()
	const built = "devctl.local/x/svc:0123456789abcdef"
	for _, tt := range []struct {
		example, chartName, chartVersion string
		replicas                         int32
		limitsMemory                     string
	}{
		{"chart-svc", "chart-svc", "1.2.0", 1, "32Mi"}, // values (1 replica) and values-dev.yaml (32Mi) applied
		{"kustomize-svc", "kustomize-svc", "0.1.0", 1, "64Mi"},
	} {
		t.Run(tt.example, func(t *testing.T) {
			t.Parallel()
			p := loadExample(t, tt.example)
			s := &p.Services[0]
			rels, err := Render(context.Background(), p, Target{Env: "e", Branch: "main"}, map[string]string{s.Name: built})
			if err != nil {
				t.Fatal(err)
			}
			r := rels[0]
			if r.Chart.Name() != tt.chartName || r.Chart.Metadata.Version != tt.chartVersion {
				t.Errorf("chart %s-%s, want %s-%s", r.Chart.Name(), r.Chart.Metadata.Version, tt.chartName, tt.chartVersion)
			}
			if r.Workload != s.Name {
				t.Errorf("workload %q, want %q", r.Workload, s.Name)
			}
			d := deployment(t, r.Manifest)
			if got := d.Spec.Template.Spec.Containers[0].Image; got != built {
				t.Errorf("image %q, want the built %q", got, built)
			}
			if got := d.Spec.Template.Labels["app.kubernetes.io/instance"]; got != s.Name {
				t.Errorf("pod template instance label %q, want %q", got, s.Name)
			}
			if *d.Spec.Replicas != tt.replicas {
				t.Errorf("replicas %d, want %d", *d.Spec.Replicas, tt.replicas)
			}
			if got := d.Spec.Template.Spec.Containers[0].Resources.Limits.Memory().String(); got != tt.limitsMemory {
				t.Errorf("memory limit %s, want %s", got, tt.limitsMemory)
			}
			// What Helm installs is exactly what was checked.
			installed, err := helm.Render(context.Background(), r.Chart, r.Name, r.Namespace, r.Values)
			if err != nil {
				t.Fatal(err)
			}
			if got := deployment(t, installed).Spec.Template.Spec.Containers[0].Image; got != built {
				t.Errorf("the wrapper chart installs image %q, want %q", got, built)
			}
			// The API server would accept every label.
			for _, doc := range releaseutil.SplitManifests(r.Manifest) {
				var obj struct {
					Metadata struct{ Labels map[string]string } `json:"metadata"`
				}
				if err := yaml.Unmarshal([]byte(doc), &obj); err != nil {
					t.Fatal(err)
				}
				for k, v := range obj.Metadata.Labels {
					if errs := validation.IsValidLabelValue(v); len(errs) > 0 {
						t.Errorf("label %s=%q: %v", k, v, errs)
					}
				}
			}
			// The policy check of the example is clean at its failOn.
			rep, err := NewChecker(nil).Check(context.Background(), p, rels)
			if err != nil {
				t.Fatal(err)
			}
			if len(rep.Findings) != 0 {
				t.Errorf("findings on the example: %+v", rep.Findings)
			}
		})
	}
}

// The release digest, and so a Helm upgrade, changes with the image and
// not otherwise.
func TestEscapeHatchDigestFollowsTheImage(t *testing.T) {
	t.Parallel()
	p := loadExample(t, "kustomize-svc")
	render := func(img string) string {
		rels, err := Render(context.Background(), p, Target{Env: "e"}, map[string]string{"kustomize-svc": img})
		if err != nil {
			t.Fatal(err)
		}
		d, err := helm.Digest(rels[0].Chart, rels[0].Values)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	a, b, c := render("devctl.local/k/k:aaa"), render("devctl.local/k/k:aaa"), render("devctl.local/k/k:bbb")
	if a != b {
		t.Error("the same render has two digests: every up would upgrade")
	}
	if a == c {
		t.Error("a new image does not change the digest: it would never be deployed")
	}
}

func TestRewriteImages(t *testing.T) {
	t.Parallel()
	in := `# Source: x/templates/cron.yaml
apiVersion: batch/v1
kind: CronJob
metadata: {name: job}
spec:
  jobTemplate:
    spec:
      template:
        spec:
          initContainers:
          - {name: init, image: "docker.io/library/app@sha256:` + strings.Repeat("a", 64) + `"}
          containers:
          - {name: app, image: app:1.0}
          - {name: side, image: busybox:1.36}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  template:
    metadata:
      labels: {app.kubernetes.io/instance: keep}
    spec:
      containers:
      - {name: app, image: "app"}
`
	out, rw, err := RewriteImages(in, "app", "devctl.local/p/app:abc", "svc")
	if err != nil {
		t.Fatal(err)
	}
	if rw.Count != 3 {
		t.Errorf("replaced %d images, want 3 (init, CronJob container, Deployment container):\n%s", rw.Count, out)
	}
	if strings.Count(out, "devctl.local/p/app:abc") != 3 || !strings.Contains(out, "busybox:1.36") {
		t.Errorf("output:\n%s", out)
	}
	if len(rw.Seen) != 1 || rw.Seen[0] != "busybox:1.36" {
		t.Errorf("seen %v, want [busybox:1.36]", rw.Seen)
	}
	if rw.Workload != "web" {
		t.Errorf("workload %q, want web", rw.Workload)
	}
	if !strings.Contains(out, "instance: keep") {
		t.Errorf("an existing instance label was replaced:\n%s", out)
	}
	if !strings.Contains(out, "# Source: x/templates/cron.yaml") {
		t.Errorf("the Source comment was lost (findings point at templates through it):\n%s", out)
	}
}

// A service whose manifests do not use the image it declares would run
// someone else's image: that is an error naming what they do use.
func TestEscapeHatchWithoutTheImage(t *testing.T) {
	t.Parallel()
	p := loadExample(t, "kustomize-svc")
	p.Services[0].Image = "ghcr.io/acme/other"
	_, err := Render(context.Background(), p, Target{Env: "e"}, map[string]string{"kustomize-svc": "devctl.local/k/k:1"})
	if err == nil || !strings.Contains(err.Error(), `no container uses the image "ghcr.io/acme/other"`) ||
		!strings.Contains(err.Error(), "registry.example.com/shop/kustomize-svc:2.0.0") || !strings.Contains(err.Error(), "services[].image") {
		t.Fatalf("err = %v", err)
	}
}

// A manifests hatch deploys the files it lists.
func TestRenderManifestsHatch(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "deploy"), 0o755); err != nil {
		t.Fatal(err)
	}
	dep := "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: api}\nspec:\n  template:\n    spec:\n      containers:\n      - {name: a, image: api:dev}\n"
	if err := os.WriteFile(filepath.Join(dir, "deploy", "d.yaml"), []byte(dep), 0o644); err != nil {
		t.Fatal(err)
	}
	cm := "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cfg}\ndata: {a: \"{{ not a template }}\"}\n"
	if err := os.WriteFile(filepath.Join(dir, "deploy", "c.yml"), []byte(cm), 0o644); err != nil {
		t.Fatal(err)
	}
	p := project(nil)
	p.Dir = dir
	p.Services[0].Name = "api"
	p.Services[0].Manifests = []string{"deploy"}
	rels, err := Render(context.Background(), p, Target{Env: "e"}, map[string]string{"api": "devctl.local/h/api:9"})
	if err != nil {
		t.Fatal(err)
	}
	installed, err := helm.Render(context.Background(), rels[0].Chart, "api", "ns", rels[0].Values)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"devctl.local/h/api:9", "{{ not a template }}", "# Source: deploy/c.yml", "kind: ConfigMap"} {
		if !strings.Contains(installed, want) {
			t.Errorf("installed manifest lacks %q:\n%s", want, installed)
		}
	}
}

// A StatefulSet (the seed of escape hatches: custom storage) runs the
// image: it is rewritten and labelled, and there is no Deployment to wait
// on, so readiness comes from its pods.
func TestRewriteImagesStatefulSet(t *testing.T) {
	t.Parallel()
	in := "apiVersion: apps/v1\nkind: StatefulSet\nmetadata: {name: db}\nspec:\n  template:\n    spec:\n      containers:\n      - {name: db, image: ghcr.io/acme/db:1}\n"
	out, rw, err := RewriteImages(in, "ghcr.io/acme/db", "devctl.local/p/db:2", "db")
	if err != nil {
		t.Fatal(err)
	}
	if rw.Count != 1 || rw.Workload != "" || !strings.Contains(out, "devctl.local/p/db:2") || !strings.Contains(out, "app.kubernetes.io/instance: db") {
		t.Errorf("rewrite %+v:\n%s", rw, out)
	}
}
