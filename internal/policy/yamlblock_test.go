package policy

import (
	"bytes"
	"errors"
	"io"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// readYAMLv3 reads one document the general way: yaml.v3's node tree,
// converted. ok is false when yaml.v3 or the conversion fails.
func readYAMLv3(text []byte) (any, *lineTable, bool) {
	dec := yaml.NewDecoder(bytes.NewReader(text))
	var root yaml.Node
	if err := dec.Decode(&root); err != nil || len(root.Content) == 0 {
		return nil, nil, false
	}
	var next yaml.Node
	if err := dec.Decode(&next); !errors.Is(err, io.EOF) {
		return nil, nil, false
	}
	table := &lineTable{}
	conv := yamlConverter{table: table, budget: 2*len(text) + 1<<16}
	v, err := conv.value(root.Content[0], -1, -1, "", 0)
	if err != nil {
		return nil, nil, false
	}
	return v, table, true
}

// sameValue is reflect.DeepEqual with NaN equal to NaN.
func sameValue(a, b any) bool {
	if fa, ok := a.(float64); ok {
		fb, ok := b.(float64)
		return ok && (fa == fb || (math.IsNaN(fa) && math.IsNaN(fb)))
	}
	switch x := a.(type) {
	case map[string]any:
		y, ok := b.(map[string]any)
		if !ok || len(x) != len(y) || (x == nil) != (y == nil) {
			return false
		}
		for k, v := range x {
			w, ok := y[k]
			if !ok || !sameValue(v, w) {
				return false
			}
		}
		return true
	case []any:
		y, ok := b.([]any)
		if !ok || len(x) != len(y) || (x == nil) != (y == nil) {
			return false
		}
		for i := range x {
			if !sameValue(x[i], y[i]) {
				return false
			}
		}
		return true
	}
	return reflect.DeepEqual(a, b)
}

// checkBlockMatches fails when the block reader accepts text and reads it
// otherwise than yaml.v3's path. It reports whether the block reader
// accepted it.
func checkBlockMatches(t *testing.T, text []byte) bool {
	t.Helper()
	got, gotTable, ok := readBlockYAML(string(text))
	if !ok {
		return false
	}
	want, wantTable, wantOK := readYAMLv3(text)
	if !wantOK {
		t.Fatalf("the block reader accepted a document yaml.v3 refuses:\n%s", text)
	}
	if !sameValue(got, want) {
		t.Fatalf("values differ\nblock:  %#v\nyaml.v3: %#v\ninput:\n%s", got, want, text)
	}
	if !reflect.DeepEqual(gotTable.entries, wantTable.entries) {
		t.Fatalf("line tables differ\nblock:  %+v\nyaml.v3: %+v\ninput:\n%s", gotTable.entries, wantTable.entries, text)
	}
	return true
}

// The block reader reads what it accepts exactly as yaml.v3's path does:
// the same values and the same line of every field, on the repository's
// manifests, charts' values and these cases.
func TestReadBlockYAMLMatchesYAMLv3(t *testing.T) {
	t.Parallel()
	cases := map[string]struct {
		in     string
		accept bool // the block reader must read it (not leave it to yaml.v3)
	}{
		"scalars": {accept: true, in: `a: 1
b: -2
c: 0x1F
d: 1.5e3
e: .inf
f: -.Inf
g: .nan
h: true
i: False
j: yes
k: ~
l: null
m:
n: 2024-01-02T03:04:05Z
o: 0o17
p: +12
q: 1_000
r: "1"
s: 'it''s'
t: "a \"b\" \\ c\n\td"
u: http://x:80/y
v: a#b
w: a # comment
x: -x
y: 12:30
z: 0b101
aa: 9223372036854775808
ab: .5
ac: 08
ad: Null
ae: NULL
af: nullish
ag: <<x
ah: '#x'
ai: "  spaced  "
`},
		"nesting": {accept: true, in: `# Source: web/templates/deployment.yaml
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels:
    app.kubernetes.io/name: web

spec:
  replicas: 2
  template:
    spec:
      containers:
      - name: app
        image: registry.devctl.localhost/web:3f2a9c1
        args:
          - --port=8080
          -   -v
        ports:
        -   containerPort: 8080
            name: http
        env: []
        resources: {}
      -
        name: side
      volumes:
        - name: tmp
          emptyDir: {}   # comment
`},
		"sequence at the key's indentation": {accept: true, in: "a:\n- 1\n- b: 2\n  c:\n  - 3\nd: 4\n"},
		"quoted keys":                       {accept: true, in: "\"a b\": 1\n'c''d': 2\n\"80\": x\n90: y\n"},
		"empty values":                      {accept: true, in: "a:\nb:   # c\nc:\n  d:\n"},
		"trailing key":                      {accept: true, in: "a: 1\nb:"},
		"flow":                              {accept: true, in: "a: {b: c, \"d\": [1, 'x', {e: -1}], f: {}}\nb: [ ]\nc: [a b, \"c,d\"]  # c\n"},
		"flow sequence":                     {accept: true, in: "a:\n- [1, 2.5, true, ~]\n- {}\n"},
		"flow on its own line":              {accept: true, in: "a:\n  b:\n    {}\n  c:\n      [x, {y: z}]\nd: 1\n"},
		"flow on its own line, continued":   {in: "a:\n  {}\n  b: 1\n"},
		"flow trailing comma":               {in: "a: [1, 2, ]\n"},
		"flow multi-line":                   {in: "a: [1,\n  2]\n"},
		"flow null value":                   {in: "a: {b: }\n"},
		"flow colon":                        {in: "a: [b:c]\n"},
		"flow adjacent colon":               {in: "a: {\"b\":1}\n"},
		"flow after":                        {in: "a: [1] x\n"},
		"block scalar":                      {in: "a: |\n  x\n"},
		"folded":                            {in: "a: >-\n  x\n"},
		"anchor":                            {in: "a: &x 1\nb: *x\n"},
		"merge":                             {in: "a: &x {c: 1}\nb:\n  <<: *x\n"},
		"tag":                               {in: "a: !!str 1\n"},
		"multi-line plain":                  {in: "a: b\n  c\n"},
		"multi-line quoted":                 {in: "a: \"b\n  c\"\n"},
		"tab":                               {in: "a:\t1\n"},
		"crlf":                              {in: "a: 1\r\nb: 2\r\n"},
		"non-ascii":                         {in: "a: é\n"},
		"duplicate":                         {in: "a: 1\na: 2\n"},
		"bad indentation":                   {in: "a:\n    b: 1\n  c: 2\n"},
		"more indented key":                 {in: "a: 1\n  b: 2\n"},
		"mapping in a value":                {in: "a: b: c\n"},
		"trailing colon":                    {in: "a: b:\n"},
		"root sequence":                     {in: "- a\n- b\n"},
		"root scalar":                       {in: "hello\n"},
		"nested sequence":                   {in: "a:\n- - 1\n"},
		"empty item":                        {in: "a:\n-\n- 1\n"},
		"space before colon":                {in: "a : 1\n"},
		"escape":                            {in: "a: \"\\x41\"\n"},
		"comment without space":             {in: "a: \"b\"#c\n"},
		"directive":                         {in: "%YAML 1.2\n---\na: 1\n"},
		"dash value":                        {in: "a: - b\n"},
		"question":                          {in: "? a\n: b\n"},
		"scalar then mapping":               {in: "a:\n  b\n  c: d\n"},
		"sequence then more indented":       {in: "a:\n- 1\n  - 2\n"},
		"indented root":                     {in: "  a: 1\n  b: 2\n"},
		"unclosed quote":                    {in: "a: 'b\n"},
		"slash escape":                      {in: "a: \"\\/\"\n"},
	}
	for name, c := range cases {
		accepted := checkBlockMatches(t, []byte(c.in))
		if c.accept && !accepted {
			t.Errorf("%s: the block reader left it to yaml.v3", name)
		}
		if !c.accept && accepted {
			// Accepting more is fine only when it matches (checked above);
			// these are the forms the reader is meant to leave alone.
			t.Errorf("%s: the block reader read it", name)
		}
	}
	// Every YAML file of the repository: charts, examples, test data; at
	// least nine in ten of its documents (not templates) are read by the
	// block reader.
	root := filepath.Join("..", "..")
	var files, docs, accepted int
	err := filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == ".git" || d.Name() == "bin" || d.Name() == "node_modules") {
			return filepath.SkipDir
		}
		if d.IsDir() || (!strings.HasSuffix(path, ".yaml") && !strings.HasSuffix(path, ".yml")) {
			return nil
		}
		// Templates are not YAML yet: both readers refuse most of them.
		templates := strings.Contains(filepath.ToSlash(path), "/templates/")
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		files++
		for _, c := range splitDocuments(data) {
			if firstContent(c.text) == 0 {
				continue
			}
			if checkBlockMatches(t, c.text) && !templates {
				accepted++
			}
			if !templates {
				docs++
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d YAML files, %d documents, %d read by the block reader", files, docs, accepted)
	if accepted < docs*9/10 {
		t.Errorf("the block reader read only %d of %d documents", accepted, docs)
	}
}

// Helm's output, the common case, never needs yaml.v3: the golden-path
// render, and the workloads of BenchmarkCheckWorkloads.
func TestReadBlockYAMLReadsHelmOutput(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile("testdata/rendered.yaml")
	if err != nil {
		t.Fatal(err)
	}
	data = append(data, workloadsManifest(t, 200)...)
	for _, c := range splitDocuments(data) {
		if firstContent(c.text) == 0 {
			continue
		}
		if !checkBlockMatches(t, c.text) {
			t.Errorf("the document at line %d went to yaml.v3:\n%s", c.line, c.text)
		}
	}
}

// FuzzReadBlockYAML: whatever the block reader accepts, yaml.v3's path
// reads the same way.
func FuzzReadBlockYAML(f *testing.F) {
	for _, s := range []string{
		"a: 1\nb:\n  c: [ ]\n  d:\n  - e: 'f'\n    g: \"h\"\n",
		"a:\n- 1\n- b: 2\n  c:\n  - 3\nd: 4\n",
		"kind: Pod\nspec:\n  containers:\n  -   name: x # c\n      image: y:1\n",
		"a: -1\nb: .5\nc: 1e3\nd: 0o7\ne: ~\nf:\n",
		"\"a\": 'b''c'\nd: \"e\\\\f\"\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		checkBlockMatches(t, data)
	})
}
