package policy

import (
	"context"
	"os"
	"testing"
)

func TestSourceMapping(t *testing.T) {
	t.Parallel()
	plain, err := ParseManifests("k8s/web.yaml", []byte(`apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  template:
    spec:
      containers:
      - name: app
        image: nginx
        securityContext:
          readOnlyRootFilesystem: false
`))
	if err != nil {
		t.Fatal(err)
	}
	chart := &ChartSource{FS: os.DirFS("testdata/chart/web"), Dir: "charts/web"}
	tests := []struct {
		name  string
		docs  []Document
		chart *ChartSource
		rule  string
		want  Source
	}{
		{"template field set through toYaml", loadDocs(t, "testdata/chart/rendered-bad.yaml"), chart, RuleReadOnlyRootFilesystem,
			Source{File: "charts/web/templates/deployment.yaml", Line: 20, ValuesKey: "securityContext"}},
		{"template field on the line", loadDocs(t, "testdata/chart/rendered-bad.yaml"), chart, RuleImageTag,
			Source{File: "charts/web/templates/deployment.yaml", Line: 19, ValuesKey: "image.repository, image.tag"}},
		{"template enclosing block", loadDocs(t, "testdata/chart/rendered-bad.yaml"), chart, RuleReadinessProbe,
			Source{File: "charts/web/templates/deployment.yaml", Line: 17}},
		{"template replicas", loadDocs(t, "testdata/chart/rendered-bad.yaml"), chart, RulePodDisruptionBudget,
			Source{File: "charts/web/templates/deployment.yaml", Line: 8, ValuesKey: "replicaCount"}},
		{"rendered without chart files", loadDocs(t, "testdata/chart/rendered-bad.yaml"), nil, RuleReadOnlyRootFilesystem,
			Source{File: "web/templates/deployment.yaml"}},
		{"plain manifest line", plain, nil, RuleReadOnlyRootFilesystem, Source{File: "k8s/web.yaml", Line: 12}},
		{"plain manifest image", plain, nil, RuleImageTag, Source{File: "k8s/web.yaml", Line: 10}},
	}
	e := newTestEngine(t, Options{})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r, err := e.Check(context.Background(), tt.docs, tt.chart)
			if err != nil {
				t.Fatal(err)
			}
			for _, f := range r.Findings {
				if f.Rule == tt.rule {
					if f.Source != tt.want {
						t.Fatalf("source = %+v, want %+v", f.Source, tt.want)
					}
					return
				}
			}
			t.Fatalf("no %s finding in %+v", tt.rule, r.Findings)
		})
	}
}

func TestParseManifestsKeepsSourceAndLines(t *testing.T) {
	t.Parallel()
	docs := loadDocs(t, "testdata/rendered.yaml")
	if len(docs) != 6 {
		t.Fatalf("got %d docs, want 6", len(docs))
	}
	d := docs[2]
	if d.Template != "web/templates/deployment.yaml" || d.Object.GetKind() != "Deployment" {
		t.Fatalf("doc 2 = %s from %q", d.Ref(), d.Template)
	}
	if line, ok := d.lineOfPath("spec.template.spec.containers[0].resources.limits.memory"); !ok || line != 76 {
		t.Errorf("line of limits.memory = %d, %v; want 76", line, ok)
	}
	if _, err := ParseManifests("bad.yaml", []byte("kind: Pod\n")); err == nil {
		t.Error("a document without apiVersion parsed")
	}
}
