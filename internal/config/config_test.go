package config

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// full is the documented example, with every key.
const full = `apiVersion: devctl.dev/v1alpha1
kind: Project
name: hello
team: platform-dx
owner: dx@example.com
costCenter: cc-0042
cluster:
  provider: vcluster
  nodeImage: ""
  hostContext: ci-cluster
policy:
  rules: testdata
  waivers: .devctl/waivers.yaml
  allowedRegistries: [devctl.local]
  failOn: medium
manifests: [testdata/extra.yaml]
services:
  - name: hello
    context: .
    dockerfile: Dockerfile
    go:
      package: ./cmd/hello
      output: bin/hello
    port: 9090
    values:
      replicas: 2
      env: {LOG_LEVEL: debug}
      args: [--verbose]
    watch:
      ignore: ["*.md"]
`

func TestParseFull(t *testing.T) {
	t.Parallel()
	c, err := Parse(FileName, []byte(full))
	if err != nil {
		t.Fatal(err)
	}
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	want := Config{
		APIVersion: APIVersion, Kind: Kind, Name: "hello", Team: "platform-dx",
		Owner: "dx@example.com", CostCenter: "cc-0042",
		Cluster: Cluster{Provider: ProviderVCluster, HostContext: "ci-cluster"},
		Policy: Policy{Rules: "testdata", Waivers: ".devctl/waivers.yaml",
			AllowedRegistries: []string{"devctl.local"}, FailOn: "medium"},
		Manifests: []string{"testdata/extra.yaml"},
		Services: []Service{{
			Name: "hello", Context: ".", Dockerfile: "Dockerfile",
			Go:   &GoBuild{Package: "./cmd/hello", Output: "bin/hello"},
			Port: 9090,
			Values: map[string]any{
				"replicas": 2,
				"env":      map[string]any{"LOG_LEVEL": "debug"},
				"args":     []any{"--verbose"},
			},
			Watch: Watch{Ignore: []string{"*.md"}},
		}},
		Dir:  wd,
		Path: filepath.Join(wd, FileName),
	}
	if got := public(c); !reflect.DeepEqual(got, want) {
		t.Errorf("Parse:\n got %+v\nwant %+v", got, want)
	}
}

func TestParseDefaults(t *testing.T) {
	t.Parallel()
	c, err := Parse(FileName, []byte(minimal+"  - name: api\n    go: {}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Cluster.Provider != ProviderKind || c.Policy.FailOn != DefaultFailOn {
		t.Errorf("cluster/policy defaults: %+v %+v", c.Cluster, c.Policy)
	}
	want := []Service{
		{Name: "hello", Context: ".", Dockerfile: "Dockerfile", Port: 8080},
		{Name: "api", Context: ".", Dockerfile: "Dockerfile", Port: 8080, Go: &GoBuild{Package: ".", Output: "bin/api"}},
	}
	if !reflect.DeepEqual(c.Services, want) {
		t.Errorf("services:\n got %+v\nwant %+v", c.Services, want)
	}
}

// minimal ends in an open services list so cases can add to it.
// Line 6 is "  - name: hello".
const minimal = `apiVersion: devctl.dev/v1alpha1
kind: Project
name: hello
team: platform-dx
services:
  - name: hello
`

func TestParseErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		yaml string
		want []string
	}{{
		name: "unknown top-level field with suggestion",
		yaml: "apiVersion: devctl.dev/v1alpha1\nkind: Project\nnmae: hello\n",
		want: []string{`devctl.yaml:3:1: unknown field "nmae" (did you mean "name"?)`},
	}, {
		name: "unknown nested field with suggestion",
		yaml: minimal + "    prot: 8080\n",
		want: []string{`devctl.yaml:7:5: services[0]: unknown field "prot" (did you mean "port"?)`},
	}, {
		name: "unknown field without a close match",
		yaml: minimal + "    replicas: 3\n",
		want: []string{`devctl.yaml:7:5: services[0]: unknown field "replicas"`},
	}, {
		name: "case typo",
		yaml: strings.Replace(minimal, "name: hello\nteam", "name: hello\nTeam", 1),
		want: []string{`devctl.yaml:4:1: unknown field "Team" (did you mean "team"?)`},
	}, {
		name: "port out of range",
		yaml: minimal + "    port: 70000\n",
		want: []string{`devctl.yaml:7:11: services[0].port: 70000 is out of range (1-65535)`},
	}, {
		name: "port of the wrong type",
		yaml: minimal + "    port: \"8080\"\n",
		want: []string{`devctl.yaml:7:11: services[0].port: expected an integer, got string "8080"`},
	}, {
		name: "list expected",
		yaml: "apiVersion: devctl.dev/v1alpha1\nkind: Project\nname: hello\nteam: x\nservices: hello\n",
		want: []string{`devctl.yaml:5:11: services: expected a list, got string "hello"`},
	}, {
		name: "mapping expected",
		yaml: minimal + "    values: [a]\n",
		want: []string{`devctl.yaml:7:13: services[0].values: expected a mapping, got a list`},
	}, {
		name: "string expected",
		yaml: minimal + "    context: {a: b}\n",
		want: []string{`devctl.yaml:7:14: services[0].context: expected a string, got a mapping`},
	}, {
		name: "all decode problems at once",
		yaml: "apiVersion: devctl.dev/v1alpha1\nkind: Project\nnmae: hello\nteam: [x]\nservices:\n  - port: high\n",
		want: []string{
			`devctl.yaml:3:1: unknown field "nmae" (did you mean "name"?)`,
			`devctl.yaml:4:7: team: expected a string, got a list`,
			`devctl.yaml:6:11: services[0].port: expected an integer, got string "high"`,
		},
	}, {
		name: "all validation problems at once, missing fields at their parent",
		yaml: "apiVersion: devctl.dev/v1\nteam: platform dx\ncluster:\n  hostContext: ci\npolicy:\n  failOn: severe\n  allowedRegistries: [\"https://ghcr.io\"]\nservices:\n  - name: Hello_World\n    context: nope\n  - name: api\n    go: {output: ../bin/api}\n  - name: api\n    port: 0\n",
		want: []string{
			`devctl.yaml:1:13: apiVersion: "devctl.dev/v1" is not supported; use devctl.dev/v1alpha1`,
			`devctl.yaml:1:1: kind: required: set it to Project`,
			`devctl.yaml:1:1: name: required: a DNS-1123 label such as my-service`,
			`devctl.yaml:2:7: team: "platform dx" is not a valid Kubernetes label value: use at most 63 letters, digits, '-', '_' and '.', starting and ending with a letter or digit`,
			`devctl.yaml:4:16: cluster.hostContext: only used with provider "vcluster"; remove it or set cluster.provider: vcluster`,
			`devctl.yaml:6:11: policy.failOn: "severe" is not a severity; use one of info, low, medium, high, critical`,
			`devctl.yaml:7:23: policy.allowedRegistries[0]: "https://ghcr.io": give the registry host without a scheme, such as ghcr.io`,
			`devctl.yaml:9:11: services[0].name: "Hello_World" is not a DNS-1123 label: use at most 63 lowercase letters, digits and '-', starting and ending with a letter or digit`,
			`devctl.yaml:10:14: services[0].context: "nope" does not exist; paths are relative to the folder of devctl.yaml`,
			`devctl.yaml:12:18: services[1].go.output: "../bin/api" must be a path inside the build context, such as bin/api`,
			`devctl.yaml:13:11: services[2].name: duplicate service name "api" (also services[1]); service names must be unique`,
			// port 0 is "not set": the default applies.
		},
	}, {
		name: "no services",
		yaml: "apiVersion: devctl.dev/v1alpha1\nkind: Project\nname: hello\nteam: x\nservices: []\n",
		want: []string{"devctl.yaml:5:11: services: at least one service is required; run `devctl init` to detect one"},
	}, {
		name: "wrong kind and provider",
		yaml: strings.Replace(minimal, "kind: Project", "kind: Deployment\ncluster: {provider: minikube}", 1),
		want: []string{
			`devctl.yaml:2:7: kind: "Deployment" is not supported; use Project`,
			`devctl.yaml:3:21: cluster.provider: "minikube" is not a provider; use "kind" or "vcluster"`,
		},
	}, {
		name: "absolute paths",
		yaml: minimal + "    dockerfile: /etc/Dockerfile\nmanifests: [/etc]\n",
		want: []string{
			`devctl.yaml:8:13: manifests[0]: "/etc" is absolute; give a path relative to the folder of devctl.yaml`,
			`devctl.yaml:7:17: services[0].dockerfile: "/etc/Dockerfile" is absolute; give a path relative to the context`,
		},
	}, {
		name: "duplicate field",
		yaml: minimal + "    port: 80\n    port: 81\n",
		want: []string{`devctl.yaml:8:5: services[0]: duplicate field "port" (first set at line 7)`},
	}, {
		name: "duplicate values key",
		yaml: minimal + "    values:\n      a: 1\n      a: 2\n",
		want: []string{`devctl.yaml:9:7: services[0].values: duplicate key "a"`},
	}, {
		name: "merge keys",
		yaml: "base: &b {port: 80}\n" + minimal + "    <<: *b\n",
		want: []string{
			`devctl.yaml:1:1: unknown field "base"`,
			`devctl.yaml:8:5: services[0]: YAML merge keys (<<) are not supported; write the fields out`,
		},
	}, {
		name: "recursive alias",
		yaml: minimal + "    values: &v {a: 1, b: [*v]}\n",
		want: []string{`devctl.yaml:7:27: services[0].values.b[0]: alias *v refers to itself`},
	}, {
		name: "syntax error keeps the yaml line",
		yaml: "apiVersion: devctl.dev/v1alpha1\nkind: Project\nname hello\nteam: x\n",
		want: []string{`devctl.yaml:3: could not find expected ':'`},
	}, {
		name: "empty file",
		yaml: "# nothing here\n",
		want: []string{"devctl.yaml: the file is empty; run `devctl init` to write one"},
	}, {
		name: "two documents",
		yaml: minimal + "---\nname: again\n",
		want: []string{`devctl.yaml:7:1: a second YAML document; devctl.yaml holds exactly one`},
	}, {
		name: "not a mapping",
		yaml: "- a\n- b\n",
		want: []string{`devctl.yaml:1:1: expected a mapping, got a list`},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, err := Parse(FileName, []byte(tt.yaml))
			if err == nil {
				t.Fatalf("Parse succeeded: %+v", c)
			}
			if got, want := err.Error(), strings.Join(tt.want, "\n"); got != want {
				t.Errorf("Parse error:\n got %s\nwant %s", got, want)
			}
			var e *Error
			if !errors.As(err, &e) || e.File != FileName {
				t.Errorf("error %#v is not a *config.Error for %s", err, FileName)
			}
		})
	}
}

func TestErrorFields(t *testing.T) {
	t.Parallel()
	_, err := Parse("testdata/devctl.yaml", []byte(minimal+"    port: 70000\n"))
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("got %v, want *Error", err)
	}
	want := Error{File: "testdata/devctl.yaml", Line: 7, Col: 11, Field: "services[0].port", Msg: "70000 is out of range (1-65535)"}
	if *e != want {
		t.Errorf("got %+v, want %+v", *e, want)
	}
}

func TestValidateWithoutPositions(t *testing.T) {
	t.Parallel()
	c := &Config{APIVersion: APIVersion, Kind: Kind, Name: "x", Team: "t",
		Services: []Service{{Name: "x", Context: ".", Dockerfile: "Dockerfile", Port: 0}}}
	err := c.Validate()
	if want := "devctl.yaml: services[0].port: 0 is out of range (1-65535)"; err == nil || err.Error() != want {
		t.Errorf("Validate = %v, want %s", err, want)
	}
}

func TestMarshalRoundTrip(t *testing.T) {
	t.Parallel()
	for _, src := range []string{full, minimal} {
		c, err := Parse(FileName, []byte(src))
		if err != nil {
			t.Fatal(err)
		}
		out, err := Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(string(out), "# devctl.yaml: ") {
			t.Errorf("no header comment:\n%s", out)
		}
		back, err := Parse(FileName, out)
		if err != nil {
			t.Fatalf("Parse(Marshal) failed: %v\n%s", err, out)
		}
		if !reflect.DeepEqual(public(back), public(c)) {
			t.Errorf("round trip changed the config:\n got %+v\nwant %+v\n%s", public(back), public(c), out)
		}
	}
}

func TestMarshalTeamComment(t *testing.T) {
	t.Parallel()
	c, err := Parse(FileName, []byte(strings.Replace(minimal, "platform-dx", DefaultTeam, 1)))
	if err != nil {
		t.Fatal(err)
	}
	out, err := Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(out), "team: unassigned # set the owning team") {
		t.Errorf("no hint on the unassigned team:\n%s", out)
	}
}

func TestLoad(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if _, err := Load(filepath.Join(dir, FileName)); !errors.Is(err, ErrNotFound) {
		t.Errorf("Load(missing) = %v, want ErrNotFound", err)
	}
	p := filepath.Join(dir, FileName)
	if err := os.WriteFile(p, []byte(minimal+"    context: app\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// The context is resolved against the file's folder, not the working directory.
	if _, err := Load(p); err == nil || !strings.Contains(err.Error(), `context: "app" does not exist`) {
		t.Errorf("Load with missing context = %v", err)
	}
	if err := os.Mkdir(filepath.Join(dir, "app"), 0o755); err != nil {
		t.Fatal(err)
	}
	c, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	if c.Dir != dir || c.Path != p {
		t.Errorf("Dir, Path = %q, %q; want %q, %q", c.Dir, c.Path, dir, p)
	}
}

func TestFind(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	deep := filepath.Join(root, "repo", "svc", "a", "b")
	mustMkdir(t, deep)
	mustMkdir(t, filepath.Join(root, "repo", ".git"))
	// Above the git root: never found.
	mustWrite(t, filepath.Join(root, FileName), minimal)

	if _, err := Find(deep); !errors.Is(err, ErrNotFound) {
		t.Errorf("Find without file = %v, want ErrNotFound", err)
	}
	repoFile := filepath.Join(root, "repo", FileName)
	mustWrite(t, repoFile, minimal)
	if got, err := Find(deep); err != nil || got != repoFile {
		t.Errorf("Find = %q, %v; want %q", got, err, repoFile)
	}
	svcFile := filepath.Join(root, "repo", "svc", FileName)
	mustWrite(t, svcFile, minimal)
	if got, err := Find(deep); err != nil || got != svcFile {
		t.Errorf("Find = %q, %v; want the nearest %q", got, err, svcFile)
	}
	// Without a git root the walk goes on to the filesystem root.
	noGit := filepath.Join(root, "plain", "x")
	mustMkdir(t, noGit)
	if got, err := Find(noGit); err != nil || got != filepath.Join(root, FileName) {
		t.Errorf("Find outside git = %q, %v; want %q", got, err, filepath.Join(root, FileName))
	}
}

func TestScratchDockerfile(t *testing.T) {
	t.Parallel()
	got := string(ScratchDockerfile("bin/hello", 9090))
	for _, want := range []string{"FROM scratch\n", `COPY ["bin/hello", "/hello"]`, "USER 65532:65532\n", "EXPOSE 9090\n", `ENTRYPOINT ["/hello"]`} {
		if !strings.Contains(got, want) {
			t.Errorf("Dockerfile lacks %q:\n%s", want, got)
		}
	}
	if port, ok := exposedPort([]byte(got)); !ok || port != 9090 {
		t.Errorf("exposedPort(ScratchDockerfile) = %d, %v", port, ok)
	}
}

func TestSuggest(t *testing.T) {
	t.Parallel()
	names := []string{"name", "team", "services", "costCenter", "port", "go"}
	for in, want := range map[string]string{
		"nmae": "name", "servcies": "services", "costcenter": "costCenter", "cost_center": "costCenter",
		"prot": "port", "x": "", "gp": "", "replicas": "", "image": "",
	} {
		if got := suggest(in, names); got != want {
			t.Errorf("suggest(%q) = %q, want %q", in, got, want)
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(full))
	f.Add([]byte(minimal))
	f.Add([]byte("a: &a [*a, *a]\nb: &b [*a, *a]\nservices: [*b, *b, *b]\n"))
	f.Add([]byte("services:\n  - values: {<<: {a: 1}}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse(FileName, data)
		if err != nil {
			return
		}
		out, err := Marshal(c)
		if err != nil {
			t.Fatalf("Marshal of a parsed config: %v", err)
		}
		if _, err := Parse(FileName, out); err != nil {
			t.Fatalf("Parse(Marshal(c)): %v\n%s", err, out)
		}
	})
}

// public drops the unexported bookkeeping so configs compare by content.
func public(c *Config) Config {
	cp := *c
	cp.file, cp.pos = "", nil
	return cp
}

func mustMkdir(t *testing.T, dir string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
}

func mustWrite(t *testing.T, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

func BenchmarkParse(b *testing.B) {
	for b.Loop() {
		if _, err := Parse(FileName, []byte(full)); err != nil {
			b.Fatal(err)
		}
	}
}

func TestParseLive(t *testing.T) {
	const base = "apiVersion: devctl.dev/v1alpha1\nkind: Project\nname: hello\nteam: dx\nservices:\n  - name: hello\n    go: {package: .}\n"
	c, err := Parse("devctl.yaml", []byte(base+"    live: {}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Services[0].Live == nil {
		t.Fatal("live: {} did not turn live update on")
	}
	c, err = Parse("devctl.yaml", []byte(base+"    live:\n      restart: true\n      sync: [{path: static, dest: /static}]\n      run: [/app/hello, reload]\n"))
	if err != nil {
		t.Fatal(err)
	}
	if l := c.Services[0].Live; !l.Restart || len(l.Sync) != 1 || l.Sync[0].Dest != "/static" || len(l.Run) != 2 {
		t.Errorf("live = %+v", l)
	}
	_, err = Parse("devctl.yaml", []byte(base+"    live:\n      restart: yes please\n"))
	if err == nil || !strings.Contains(err.Error(), "services[0].live.restart: expected true or false") {
		t.Errorf("error %v, want services[0].live.restart: expected true or false", err)
	}
	_, err = Parse("devctl.yaml", []byte(base+"    live:\n      sync: [{path: ../up, dest: static}]\n"))
	for _, want := range []string{`"../up" must be a folder inside`, `"static" must be an absolute folder`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v does not say %q", err, want)
		}
	}
}
