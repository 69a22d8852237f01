package policy

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
)

func check(t *testing.T, manifest string) *Report {
	t.Helper()
	docs, err := ParseManifests("in.yaml", []byte(manifest))
	if err != nil {
		t.Fatal(err)
	}
	r, err := newTestEngine(t, Options{}).Check(context.Background(), docs, nil)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func findingsOf(r *Report, rule string) []Finding {
	var out []Finding
	for _, f := range r.Findings {
		if f.Rule == rule {
			out = append(out, f)
		}
	}
	return out
}

const podTemplate = `
    metadata:
      labels: {app: x}
    spec:
      containers:
        - name: c
          image: nginx:latest
          securityContext: {privileged: true}`

// Workloads of any kind with a pod template are checked; kinds the
// built-in rules do not know are reported, never skipped.
func TestCheckWorkloadsOfAnyKind(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, manifest string
		wantPath       string // of the pss-privileged finding; "" for none
		wantAPIVersion string // message of the api-version finding
		wantUnchecked  bool
	}{
		{"OpenShift DeploymentConfig", "apiVersion: apps.openshift.io/v1\nkind: DeploymentConfig\nmetadata: {name: x}\nspec:\n  selector: {app: x}\n  template:" + podTemplate,
			"spec.template.spec.containers[0].securityContext.privileged", "", false},
		{"Argo Rollout", "apiVersion: argoproj.io/v1alpha1\nkind: Rollout\nmetadata: {name: x}\nspec:\n  template:" + podTemplate,
			"spec.template.spec.containers[0].securityContext.privileged", "", false},
		{"CronJob-like custom resource", "apiVersion: example.com/v1\nkind: Nightly\nmetadata: {name: x}\nspec:\n  jobTemplate:\n    spec:\n      template:" + strings.ReplaceAll(podTemplate, "\n", "\n    "),
			"spec.jobTemplate.spec.template.spec.containers[0].securityContext.privileged", "", false},
		{"Deployment in v1", "apiVersion: v1\nkind: Deployment\nmetadata: {name: x}\nspec:\n  template:" + podTemplate,
			"spec.template.spec.containers[0].securityContext.privileged", "the API server does not serve Deployment as v1: use apiVersion apps/v1", false},
		{"removed extensions/v1beta1", "apiVersion: extensions/v1beta1\nkind: Deployment\nmetadata: {name: x}\nspec:\n  template:" + podTemplate,
			"spec.template.spec.containers[0].securityContext.privileged", "the API server does not serve Deployment as extensions/v1beta1: use apiVersion apps/v1", false},
		{"misspelled kind", "apiVersion: apps/v1\nkind: Deploymnet\nmetadata: {name: x}\nspec:\n  template:" + podTemplate,
			"spec.template.spec.containers[0].securityContext.privileged", `apps/v1 has no kind "Deploymnet" (did you mean "Deployment", served as apps/v1?)`, false},
		{"custom resource without pods", "apiVersion: monitoring.coreos.com/v1\nkind: ServiceMonitor\nmetadata: {name: x}\nspec: {}\n", "", "", true},
		{"PodDisruptionBudget in policy/v1beta1", "apiVersion: policy/v1beta1\nkind: PodDisruptionBudget\nmetadata: {name: x}\nspec: {maxUnavailable: 1}\n", "",
			"the API server does not serve PodDisruptionBudget as policy/v1beta1: use apiVersion policy/v1", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := check(t, tt.manifest)
			priv := findingsOf(r, "pss-privileged")
			switch {
			case tt.wantPath == "" && len(priv) > 0:
				t.Errorf("unexpected pss-privileged findings: %+v", priv)
			case tt.wantPath != "" && (len(priv) != 1 || priv[0].Path != tt.wantPath || priv[0].Severity != Critical):
				t.Errorf("pss-privileged findings = %+v, want one at %s", priv, tt.wantPath)
			}
			av := findingsOf(r, RuleAPIVersion)
			if tt.wantAPIVersion == "" && len(av) > 0 || tt.wantAPIVersion != "" && (len(av) != 1 || av[0].Message != tt.wantAPIVersion) {
				t.Errorf("api-version findings = %+v, want %q", av, tt.wantAPIVersion)
			}
			if got := len(r.NotChecked) == 1; got != tt.wantUnchecked {
				t.Errorf("not checked = %+v, want %v", r.NotChecked, tt.wantUnchecked)
			}
			if tt.wantUnchecked && (r.NotChecked[0].Reason == "" || r.NotChecked[0].Source.Line != 1) {
				t.Errorf("not-checked entry lacks a reason or line: %+v", r.NotChecked[0])
			}
			if r.Objects+len(r.NotChecked) != 1 {
				t.Errorf("objects %d + not checked %d, want 1 in all", r.Objects, len(r.NotChecked))
			}
		})
	}
}

func TestCheckEmptyInput(t *testing.T) {
	t.Parallel()
	r := check(t, "# nothing here\n---\n")
	if !r.Empty() || r.Failed(Info) {
		t.Errorf("report of an empty input: %+v", r)
	}
	var b strings.Builder
	if err := r.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "no Kubernetes objects in the input") {
		t.Errorf("text report does not say the input is empty:\n%s", b.String())
	}
}

// Fields of the wrong type make the object unreadable: the error names the
// file, the line and the field, and the other objects are still checked.
func TestCheckTypeErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, field, value string
		wantPath, wantMsg  string
	}{
		{"string port", "ports: [{containerPort: \"8080\"}]", "", "spec.template.spec.containers[0].ports[0].containerPort", "expected integer, got string"},
		{"number env value", "env: [{name: A, value: 8080}]", "", "spec.template.spec.containers[0].env[0].value", `expected string, got integer (quote the value: "8080")`},
		{"bad quantity", "resources: {limits: {memory: 1 Gi}}", "", "spec.template.spec.containers[0].resources.limits.memory", `"1 Gi" is not a quantity`},
		{"port out of range", "ports: [{containerPort: 99999999999}]", "", "spec.template.spec.containers[0].ports[0].containerPort", "out of range for int32"},
		{"object for a list", "args: {a: b}", "", "spec.template.spec.containers[0].args", "expected array, got object"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			manifest := "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: fine}\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\nspec:\n  selector: {matchLabels: {app: x}}\n  template:\n    metadata: {labels: {app: x}}\n    spec:\n      containers:\n      - name: c\n        image: nginx:1.27\n        " + tt.field + "\n"
			r := check(t, manifest)
			if len(r.Errors) != 1 {
				t.Fatalf("errors = %v, want one", r.Errors)
			}
			e := r.Errors[0]
			if e.File != "in.yaml" || e.Line != 16 || e.Path != tt.wantPath || !strings.Contains(e.Message, tt.wantMsg) {
				t.Errorf("error = %q (%+v), want in.yaml:16 at %s: %s", e.Error(), e, tt.wantPath, tt.wantMsg)
			}
			if !strings.HasPrefix(e.Error(), "in.yaml:16: "+tt.wantPath+": ") {
				t.Errorf("error text %q does not start with file:line: field", e.Error())
			}
			if r.Objects != 1 || len(r.Findings) != 0 {
				t.Errorf("objects %d, findings %+v: want the ConfigMap checked and nothing about the unreadable Deployment", r.Objects, r.Findings)
			}
		})
	}
}

func TestCheckUnknownFields(t *testing.T) {
	t.Parallel()
	r := check(t, `apiVersion: apps/v1
kind: Deployment
metadata: {name: x, label: {a: b}}
spec:
  selector: {matchLabels: {app: x}}
  template:
    metadata: {labels: {app: x}}
    spec:
      containers:
      - name: c
        image: nginx:1.27
        imagePullPolcy: Always
        Ports: []
---
apiVersion: example.com/v1
kind: Thing
metadata: {name: t, lables: {a: b}}
spec: {anything: goes}
`)
	got := map[string]string{}
	for _, f := range findingsOf(r, RuleUnknownField) {
		got[f.Path] = fmt.Sprintf("%s at line %d", f.Message, f.Source.Line)
	}
	want := map[string]string{
		"metadata.label": `unknown field "label" (did you mean "labels"?) at line 3`,
		"spec.template.spec.containers[0].imagePullPolcy": `unknown field "imagePullPolcy" (did you mean "imagePullPolicy"?) at line 12`,
		"spec.template.spec.containers[0].Ports":          `unknown field "Ports" (did you mean "ports"?) at line 13`,
		"metadata.lables":                                 `unknown field "lables" (did you mean "labels"?) at line 17`,
	}
	for path, msg := range want {
		if got[path] != msg {
			t.Errorf("%s: got %q, want %q", path, got[path], msg)
		}
	}
	if len(got) != len(want) {
		t.Errorf("unknown-field findings = %v, want %v", got, want)
	}
}

func TestCheckNewRules(t *testing.T) {
	t.Parallel()
	const ctr = "spec.template.spec.containers[0]"
	tests := []struct {
		name     string
		rule     string
		mutate   func(t testing.TB, dep map[string]any) []Document
		wantPath string
		wantMsg  string // "" for no finding at all
		wantSev  Severity
	}{
		{"runAsGroup 0", RuleRootGroup, func(t testing.TB, d map[string]any) []Document {
			set(t, d, int64(0), "spec", "template", "spec", "securityContext", "runAsGroup")
			return nil
		}, "spec.template.spec.securityContext.runAsGroup", "the pod runs as the root group: securityContext.runAsGroup is 0", High},
		{"fsGroup 0", RuleRootGroup, func(t testing.TB, d map[string]any) []Document {
			set(t, d, int64(0), "spec", "template", "spec", "securityContext", "fsGroup")
			return nil
		}, "spec.template.spec.securityContext.fsGroup", "securityContext.fsGroup is 0", High},
		{"container runAsGroup 0", RuleRootGroup, func(t testing.TB, d map[string]any) []Document {
			container(d)["securityContext"].(map[string]any)["runAsGroup"] = int64(0)
			return nil
		}, ctr + ".securityContext.runAsGroup", `container "app" runs as the root group`, High},
		{"Docker socket", RuleSensitiveHostPath, func(t testing.TB, d map[string]any) []Document {
			set(t, d, []any{map[string]any{"name": "docker", "hostPath": map[string]any{"path": "/var/run/docker.sock"}}}, "spec", "template", "spec", "volumes")
			return nil
		}, "spec.template.spec.volumes[0].hostPath.path", `volume "docker" mounts the Docker socket (/var/run/docker.sock) from the node`, Critical},
		{"kubelet directory", RuleSensitiveHostPath, func(t testing.TB, d map[string]any) []Document {
			set(t, d, []any{map[string]any{"name": "k", "hostPath": map[string]any{"path": "/var/lib/kubelet/pods/"}}}, "spec", "template", "spec", "volumes")
			return nil
		}, "spec.template.spec.volumes[0].hostPath.path", "a path under the kubelet's directory", Critical},
		{"harmless host path", RuleSensitiveHostPath, func(t testing.TB, d map[string]any) []Document {
			set(t, d, []any{map[string]any{"name": "k", "hostPath": map[string]any{"path": "/opt/data"}}}, "spec", "template", "spec", "volumes")
			return nil
		}, "", "", 0},
		{"selector does not match", RuleSelectorMatchesLabels, func(t testing.TB, d map[string]any) []Document {
			set(t, d, map[string]any{"app.kubernetes.io/name": "wbe"}, "spec", "selector", "matchLabels")
			return nil
		}, "spec.selector", `the selector of Deployment "web" (app.kubernetes.io/name=wbe) does not match its pod template's labels`, High},
		{"no selector", RuleSelectorMatchesLabels, func(t testing.TB, d map[string]any) []Document {
			delete(d["spec"].(map[string]any), "selector")
			return nil
		}, "spec.selector", `Deployment "web" has no spec.selector`, High},
		{"ingress-only NetworkPolicy", RuleNetworkPolicy, func(t testing.TB, d map[string]any) []Document {
			return setNetworkPolicy(t, map[string]any{"policyTypes": []any{"Ingress"}})
		}, "spec.template.metadata.labels", `restrict Ingress only; add Egress to policyTypes`, Medium},
		{"NetworkPolicy with egress rules and no policyTypes", RuleNetworkPolicy, func(t testing.TB, d map[string]any) []Document {
			return setNetworkPolicy(t, map[string]any{"egress": []any{map[string]any{}}})
		}, "", "", 0},
		{"maxUnavailable 0", RulePDBAllowsDisruption, func(t testing.TB, d map[string]any) []Document {
			return setPDB(t, map[string]any{"maxUnavailable": int64(0)})
		}, "spec.maxUnavailable", `PodDisruptionBudget "web" sets maxUnavailable 0: no pod can ever be evicted`, Medium},
		{"minAvailable equal to replicas", RulePDBAllowsDisruption, func(t testing.TB, d map[string]any) []Document {
			return setPDB(t, map[string]any{"minAvailable": int64(2)})
		}, "spec.minAvailable", `requires minAvailable 2 but the workloads it selects run 2 pods`, Medium},
		{"minAvailable 100%", RulePDBAllowsDisruption, func(t testing.TB, d map[string]any) []Document {
			return setPDB(t, map[string]any{"minAvailable": "100%"})
		}, "spec.minAvailable", `sets minAvailable 100%`, Medium},
		{"minAvailable 50% of 2", RulePDBAllowsDisruption, func(t testing.TB, d map[string]any) []Document {
			return setPDB(t, map[string]any{"minAvailable": "50%"})
		}, "", "", 0},
		{"volume without a source is an emptyDir", "pss-volumes", func(t testing.TB, d map[string]any) []Document {
			set(t, d, []any{map[string]any{"name": "tmp"}}, "spec", "template", "spec", "volumes")
			return nil
		}, "", "", 0},
	}
	e := newTestEngine(t, Options{AllowedRegistries: []string{"registry.devctl.localhost"}})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			docs := golden(t, func(d map[string]any) []Document { return tt.mutate(t, d) })
			docs = dropReplaced(docs)
			r, err := e.Check(context.Background(), docs, nil)
			if err != nil {
				t.Fatal(err)
			}
			if len(r.Errors) > 0 {
				t.Fatalf("errors: %v", r.Errors)
			}
			got := findingsOf(r, tt.rule)
			if tt.wantMsg == "" {
				if len(got) != 0 {
					t.Fatalf("want no %s finding, got %+v", tt.rule, got)
				}
				return
			}
			if len(got) != 1 {
				t.Fatalf("want one %s finding, got %+v (all: %+v)", tt.rule, got, r.Findings)
			}
			f := got[0]
			if f.Path != tt.wantPath || !strings.Contains(f.Message, tt.wantMsg) || f.Severity != tt.wantSev {
				t.Errorf("finding = %s %s %q at %s, want %s %q at %s", f.Rule, f.Severity, f.Message, f.Path, tt.wantSev, tt.wantMsg, tt.wantPath)
			}
			if f.Fix == "" || f.Source.File == "" {
				t.Errorf("finding lacks fix or source: %+v", f)
			}
		})
	}
}

// setNetworkPolicy and setPDB return a replacement for the golden render's
// NetworkPolicy or PodDisruptionBudget (see dropReplaced).
func setNetworkPolicy(t testing.TB, spec map[string]any) []Document {
	spec["podSelector"] = map[string]any{"matchLabels": map[string]any{"app.kubernetes.io/name": "web"}}
	return replacement(t, "networking.k8s.io/v1", "NetworkPolicy", spec)
}

func setPDB(t testing.TB, spec map[string]any) []Document {
	spec["selector"] = map[string]any{"matchLabels": map[string]any{"app.kubernetes.io/name": "web"}}
	return replacement(t, "policy/v1", "PodDisruptionBudget", spec)
}

func replacement(t testing.TB, apiVersion, kind string, spec map[string]any) []Document {
	docs, err := ParseManifests("replacement.yaml", []byte(fmt.Sprintf("apiVersion: %s\nkind: %s\nmetadata: {name: web, annotations: {replaces: golden}}\nspec: {}\n", apiVersion, kind)))
	if err != nil {
		t.Fatal(err)
	}
	docs[0].Object.Object["spec"] = spec
	return docs
}

// dropReplaced removes the golden render's objects that a replacement
// stands in for.
func dropReplaced(docs []Document) []Document {
	replaced := map[string]bool{}
	for _, d := range docs {
		if d.Object.GetAnnotations()["replaces"] == "golden" {
			replaced[d.Object.GetKind()] = true
		}
	}
	return slices.DeleteFunc(docs, func(d Document) bool {
		return replaced[d.Object.GetKind()] && d.Object.GetAnnotations()["replaces"] != "golden"
	})
}

func TestAllowedRegistriesNormaliseDockerHub(t *testing.T) {
	t.Parallel()
	tests := []struct {
		allowed []string
		image   string
		ok      bool
	}{
		{[]string{"docker.io/library/nginx"}, "nginx:1.27", true},
		{[]string{"docker.io/library/nginx"}, "docker.io/nginx:1.27", true},
		{[]string{"docker.io/library/nginx"}, "index.docker.io/library/nginx:1.27", true},
		{[]string{"docker.io/nginx"}, "nginx:1.27", true},
		{[]string{"docker.io/library"}, "docker.io/nginx@sha256:0123456789012345678901234567890123456789012345678901234567890123", true},
		{[]string{"docker.io/library/nginx"}, "docker.io/nginxx:1.27", false},
		{[]string{"docker.io/library/nginx"}, "evil.io/library/nginx:1.27", false},
		{[]string{"ghcr.io/acme"}, "ghcr.io/acme/web:1", true},
		{[]string{"ghcr.io/acme"}, "ghcr.io/acmecorp/web:1", false},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.allowed, ",")+" "+tt.image, func(t *testing.T) {
			t.Parallel()
			e := newTestEngine(t, Options{AllowedRegistries: tt.allowed})
			docs := golden(t, func(d map[string]any) []Document { container(d)["image"] = tt.image; return nil })
			r, err := e.Check(context.Background(), docs, nil)
			if err != nil {
				t.Fatal(err)
			}
			if got := len(findingsOf(r, RuleAllowedRegistries)) == 0; got != tt.ok {
				t.Errorf("allowed = %v, want %v (findings %+v)", got, tt.ok, findingsOf(r, RuleAllowedRegistries))
			}
		})
	}
}

// Cross-object rules look selectors up in an index: the work per
// workload does not grow with the number of NetworkPolicies and
// PodDisruptionBudgets.
func TestSelectorIndexIsLinear(t *testing.T) {
	t.Parallel()
	const n = 3000
	var x selectorIndex[int]
	for i := range n {
		x.add(&metav1.LabelSelector{MatchLabels: map[string]string{"app": fmt.Sprint(i), "tier": "web"}}, i)
	}
	x.add(&metav1.LabelSelector{}, -1) // selects every pod
	for i := range n {
		got := x.matching(map[string]string{"app": fmt.Sprint(i), "tier": "web"})
		if !slices.Equal(got, []int{i, -1}) {
			t.Fatalf("pod %d: matching = %v, want [%d -1]", i, got, i)
		}
	}
	// Each pod is tried against its own selector and the match-all one.
	if tries := x.tries.Load(); tries > 2*n {
		t.Errorf("%d selector evaluations for %d pods and %d selectors, want at most %d", tries, n, n+1, 2*n)
	}
}

// A built-in controller without a pod template is not a workload that
// passes every pod rule: it cannot be read.
func TestCheckWorkloadWithoutTemplate(t *testing.T) {
	t.Parallel()
	r := check(t, "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\nspec:\n  selector: {matchLabels: {app: x}}\n  podTemplate: {}\n")
	if len(r.Errors) != 1 || r.Errors[0].Path != "spec.template" || !strings.Contains(r.Errors[0].Message, "required") || r.Errors[0].Line != 4 {
		t.Errorf("errors = %v, want spec.template required at line 4", r.Errors)
	}
}

// The whole check, cross-object rules included, does work in proportion
// to its input: four times the workloads (and NetworkPolicies and
// PodDisruptionBudgets) cost about four times the allocations, not
// sixteen. A count, not a timing: it holds on a busy machine.
// BenchmarkCheckWorkloads gives the time and memory of 10,000.
func TestCheckScalesLinearly(t *testing.T) {
	if testing.Short() {
		t.Skip("checks 2,500 workloads; BenchmarkCheckWorkloads and the full unit run cover it")
	}
	e := newTestEngine(t, Options{AllowedRegistries: []string{"registry.devctl.localhost"}})
	allocs := func(n int) float64 {
		data := workloadsManifest(t, n)
		return testing.AllocsPerRun(1, func() {
			docs, err := ParseManifests("workloads.yaml", data)
			if err != nil {
				t.Fatal(err)
			}
			r, err := e.Check(context.Background(), docs, nil)
			if err != nil {
				t.Fatal(err)
			}
			if r.Objects < n {
				t.Fatalf("%d objects checked, want at least %d", r.Objects, n)
			}
		})
	}
	small, big := allocs(500), allocs(2000)
	ratio := big / small
	t.Logf("allocations: 500 workloads %.0f, 2,000 workloads %.0f (×%.2f)", small, big, ratio)
	if ratio > 5 {
		t.Errorf("4× the workloads cost %.1f× the allocations: the check is no longer linear", ratio)
	}
}

// Labels the API server refuses make the object unreadable, at the line
// of the label: an owner's e-mail address is the usual one.
func TestCheckInvalidLabels(t *testing.T) {
	t.Parallel()
	r := check(t, `apiVersion: v1
kind: Service
metadata:
  name: web
  labels:
    app: web
    devctl.dev/owner: dx@example.com
spec: {ports: [{port: 80}]}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata:
      labels:
        app: web
        bad key!: x
    spec:
      containers: [{name: c, image: "nginx:1.27"}]
`)
	got := map[string]string{}
	for _, e := range r.Errors {
		got[e.Path] = fmt.Sprintf("%d: %s", e.Line, e.Message)
	}
	want := map[string]string{
		`metadata.labels["devctl.dev/owner"]`:       `7: "dx@example.com" is not a valid label value, the API server refuses it`,
		`spec.template.metadata.labels["bad key!"]`: `19: "bad key!" is not a valid label key`,
	}
	for path, w := range want {
		if !strings.HasPrefix(got[path], w) {
			t.Errorf("%s: got %q, want %q...", path, got[path], w)
		}
	}
	if len(r.Errors) != 2 {
		t.Errorf("errors %v, want 2", r.Errors)
	}
}

// The label checks without regular expressions accept only what the API
// server's validation accepts, and accept the labels objects carry.
func TestPlainLabelChecksAgreeWithValidation(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(1, 2))
	const alphabet = "abcXYZ019-_./@ "
	random := func() string {
		b := make([]byte, rng.IntN(12))
		for i := range b {
			b[i] = alphabet[rng.IntN(len(alphabet))]
		}
		return string(b)
	}
	cases := []string{"", "a", "web", "app.kubernetes.io/name", "devctl.dev/team", "web-00001", "a.b_c-d",
		"-a", "a-", "a/b/c", "/a", "a/", "A.example.com/x", "example.com/" + strings.Repeat("x", 63),
		"example.com/" + strings.Repeat("x", 64), strings.Repeat("x", 63), strings.Repeat("x", 64),
		strings.Repeat("a.", 127) + "a/x", strings.Repeat("a.", 126) + "a/x", "a..b/x", "a-.b/x", "alice@example.com", "feature/x"}
	for range 20000 {
		cases = append(cases, random())
	}
	for _, s := range cases {
		if plainLabelValue(s) != (len(validation.IsValidLabelValue(s)) == 0) {
			t.Errorf("label value %q: plain %v, validation %v", s, plainLabelValue(s), validation.IsValidLabelValue(s))
		}
		if plainQualifiedName(s) != (len(validation.IsQualifiedName(s)) == 0) {
			t.Errorf("label key %q: plain %v, validation %v", s, plainQualifiedName(s), validation.IsQualifiedName(s))
		}
	}
}
