package policy

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"
)

const privilegedLatest = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: evil
spec:
  selector:
    matchLabels: {app: evil}
  template:
    metadata:
      labels: {app: evil}
    spec:
      containers:
        - name: c
          image: nginx:latest
          securityContext:
            privileged: true
`

func kinds(docs []Document) string {
	var out []string
	for _, d := range docs {
		out = append(out, d.Object.GetKind()+"/"+d.Object.GetName())
	}
	return strings.Join(out, " ")
}

// A line longer than any buffer is read like any other: nothing after it
// is lost.
func TestParseManifestsReadsLongLines(t *testing.T) {
	t.Parallel()
	var b bytes.Buffer
	b.WriteString("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: big}\ndata:\n  blob: ")
	b.Write(bytes.Repeat([]byte("x"), 17<<20))
	b.WriteString("\n---\n" + privilegedLatest)
	docs, err := ParseManifests("big.yaml", b.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if got := kinds(docs); got != "ConfigMap/big Deployment/evil" {
		t.Fatalf("documents = %s", got)
	}
	if docs[1].Line != 7 {
		t.Errorf("Deployment starts on line %d, want 7", docs[1].Line)
	}
	if got := len(docs[0].Object.Object["data"].(map[string]any)["blob"].(string)); got != 17<<20 {
		t.Errorf("blob has %d bytes, want %d", got, 17<<20)
	}
}

func TestParseManifestsExpandsJSONAndLists(t *testing.T) {
	t.Parallel()
	dep := func(name string) string {
		return fmt.Sprintf(`{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":%q},"spec":{"template":{"spec":{"containers":[{"name":"c","image":"nginx"}]}}}}`, name)
	}
	tests := []struct {
		name, in, want string
	}{
		{"one-line JSON List", `{"apiVersion":"v1","kind":"List","items":[` + dep("a") + `,` + dep("b") + `]}`, "Deployment/a Deployment/b"},
		{"typed list, items without kind", `{"apiVersion":"apps/v1","kind":"DeploymentList","metadata":{},"items":[{"metadata":{"name":"a"}}]}`, "Deployment/a"},
		{"YAML List", "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: ConfigMap\n  metadata: {name: a}\n", "ConfigMap/a"},
		{"empty List", "apiVersion: v1\nkind: List\nitems: []\n", ""},
		{"JSON values back to back (jq)", dep("a") + "\n" + dep("b") + "\n", "Deployment/a Deployment/b"},
		{"JSON indented with tabs", "{\n\t\"apiVersion\": \"v1\",\n\t\"kind\": \"ConfigMap\",\n\t\"metadata\": {\"name\": \"a\"}\n}\n", "ConfigMap/a"},
		{"JSON array", "[" + dep("a") + "]", "Deployment/a"},
		{"document on the marker line", "--- {apiVersion: v1, kind: ConfigMap, metadata: {name: a}}\n--- " + dep("b") + "\n", "ConfigMap/a Deployment/b"},
		{"document end marker", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n...\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: b}\n", "ConfigMap/a ConfigMap/b"},
		{"CRLF and BOM", "\xEF\xBB\xBFapiVersion: v1\r\nkind: ConfigMap\r\nmetadata: {name: a}\r\n---\r\napiVersion: v1\r\nkind: ConfigMap\r\nmetadata: {name: b}\r\n", "ConfigMap/a ConfigMap/b"},
		{"comments and empty documents", "# nothing\n---\n---\n# Source: x\n", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			docs, err := ParseManifests("in", []byte(tt.in))
			if err != nil {
				t.Fatal(err)
			}
			if got := kinds(docs); got != tt.want {
				t.Errorf("documents = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestParseManifestsYAMLValues(t *testing.T) {
	t.Parallel()
	docs, err := ParseManifests("in", []byte(`apiVersion: v1
kind: ConfigMap
metadata:
  name: a
  annotations: &ann
    created: 2024-01-02
    count: "3"
data: &base
  a: x
  b: y
binaryData:
  <<: *base
  b: z
other: {80: http, port: 0x50, ratio: 1.5, on: yes, empty: ~}
`))
	if err != nil {
		t.Fatal(err)
	}
	obj := docs[0].Object.Object
	ann := obj["metadata"].(map[string]any)["annotations"].(map[string]any)
	if ann["created"] != "2024-01-02" {
		t.Errorf("a timestamp decodes as %T %v, want the string (as kubectl sends it)", ann["created"], ann["created"])
	}
	merged := obj["binaryData"].(map[string]any)
	if merged["a"] != "x" || merged["b"] != "z" {
		t.Errorf("merge key: %v, want a=x from the anchor and b=z from the mapping", merged)
	}
	other := obj["other"].(map[string]any)
	want := map[string]any{"80": "http", "port": int64(80), "ratio": 1.5, "on": "yes", "empty": nil}
	for k, v := range want {
		if other[k] != v {
			t.Errorf("other[%s] = %#v, want %#v", k, other[k], v)
		}
	}
}

func TestParseManifestsErrors(t *testing.T) {
	t.Parallel()
	good := "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: good}\n"
	tests := []struct {
		name     string
		in       string
		wantLine int
		wantMsg  string
		wantErr  error
	}{
		{"syntax error in the second document", good + "---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: [oops\n", 8, "YAML:", nil},
		{"no kind", good + "---\napiVersion: v1\nmetadata: {name: x}\n", 5, "kind is missing", nil},
		{"kind not a string", good + "---\napiVersion: v1\nkind: [a]\n", 6, "kind: expected string, got array", nil},
		{"scalar document", good + "---\njust text\n", 5, "a document must be a Kubernetes object", nil},
		{"duplicate key", good + "---\napiVersion: v1\nkind: ConfigMap\nkind: Secret\n", 7, `mapping key "kind" already defined`, nil},
		{"Helm template", good + "---\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {{ include \"web.fullname\" . }}\n", 8, "pass the chart's folder", ErrHelmTemplate},
		{"quoted Helm template", good + "---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: \"{{ .Release.Name }}\"\n", 8, "Helm template", ErrHelmTemplate},
		{"alias bomb", good + "---\na: &a [x, x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\ne: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\nf: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]\ng: [*f, *f, *f, *f, *f, *f, *f, *f, *f, *f]\n", 5, "aliases", nil},
		{"binary", good + "---\n\x00\x01\x02", 5, "not UTF-8 text", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			docs, err := ParseManifests("in.yaml", []byte(tt.in))
			if !errors.Is(err, ErrInvalidManifest) {
				t.Fatalf("err = %v, want an ErrInvalidManifest", err)
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Errorf("err = %v, want %v", err, tt.wantErr)
			}
			es := AsManifestErrors(err)
			if len(es) != 1 {
				t.Fatalf("errors = %v, want one", es)
			}
			if es[0].File != "in.yaml" || es[0].Line != tt.wantLine || !strings.Contains(es[0].Error(), tt.wantMsg) {
				t.Errorf("error = %q (line %d), want line %d and %q", es[0].Error(), es[0].Line, tt.wantLine, tt.wantMsg)
			}
			// The other documents are still read (binary input is refused whole).
			if tt.name != "binary" && kinds(docs) != "ConfigMap/good" {
				t.Errorf("documents = %q, want the good one", kinds(docs))
			}
		})
	}
}

func TestParseManifestsFieldLinesAreFileAbsolute(t *testing.T) {
	t.Parallel()
	in := "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\n" + privilegedLatest +
		"---\napiVersion: v1\nkind: List\nitems:\n- " + strings.ReplaceAll(strings.TrimSpace(privilegedLatest), "\n", "\n  ") + "\n"
	docs, err := ParseManifests("in.yaml", []byte(in))
	if err != nil {
		t.Fatal(err)
	}
	if len(docs) != 3 {
		t.Fatalf("documents = %s", kinds(docs))
	}
	const field = "spec.template.spec.containers[0].securityContext.privileged"
	for i, want := range map[int]int{1: 20, 2: 40} {
		if line, ok := docs[i].lineOfPath(field); !ok || line != want {
			t.Errorf("document %d: line of %s = %d (found %v), want %d", i, field, line, ok, want)
		}
	}
	if docs[2].Line != 25 {
		t.Errorf("List item starts on line %d, want 25", docs[2].Line)
	}
}
