package app

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/joshdk/go-junit"
)

func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// compliant is a Deployment every built-in rule accepts, with its
// NetworkPolicy; IMAGE is replaced.
const compliant = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels: {app.kubernetes.io/name: web, devctl.dev/team: dx, devctl.dev/owner: dx, devctl.dev/cost-center: cc-1}
spec:
  replicas: 1
  selector: {matchLabels: {app.kubernetes.io/name: web}}
  template:
    metadata: {labels: {app.kubernetes.io/name: web}}
    spec:
      securityContext: {runAsNonRoot: true, runAsUser: 65532, seccompProfile: {type: RuntimeDefault}}
      containers:
        - name: app
          image: IMAGE
          securityContext: {allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: {drop: [ALL]}}
          readinessProbe: {httpGet: {path: /, port: 8080}}
          livenessProbe: {httpGet: {path: /, port: 8080}}
          resources: {requests: {cpu: 10m, memory: 16Mi}, limits: {cpu: 100m, memory: 64Mi}}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: web}
spec:
  podSelector: {matchLabels: {app.kubernetes.io/name: web}}
  policyTypes: [Ingress, Egress]
`

func compliantWith(image string) string { return strings.Replace(compliant, "IMAGE", image, 1) }

const privileged = `apiVersion: apps/v1
kind: Deployment
metadata: {name: evil}
spec:
  selector: {matchLabels: {app: evil}}
  template:
    metadata: {labels: {app: evil}}
    spec:
      containers: [{name: c, image: "nginx:latest", securityContext: {privileged: true}}]
`

// Input that does not fit a buffer is read to the end: the privileged
// Deployment after a 17 MiB line, every item of a one-line JSON List.
func TestCheckReadsEverything(t *testing.T) {
	dir := t.TempDir()
	long := "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: big}\ndata:\n  blob: " + strings.Repeat("x", 17<<20) + "\n---\n" + privileged
	item := `{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"evil%d"},"spec":{"selector":{"matchLabels":{"app":"evil"}},"template":{"metadata":{"labels":{"app":"evil"}},"spec":{"containers":[{"name":"c","image":"nginx:latest","securityContext":{"privileged":true},"env":[{"name":"PAD","value":"` + strings.Repeat("y", 1<<20) + `"}]}]}}}}`
	list := `{"apiVersion":"v1","kind":"List","items":[` + strings.Replace(item, "%d", "1", 1) + "," + strings.Replace(item, "%d", "2", 1) + `]}`
	writeFiles(t, dir, map[string]string{"long.yaml": long, "list.json": list})
	for file, want := range map[string]string{"long.yaml": "2 objects checked", "list.json": "2 objects checked"} {
		out, errOut, code := run(t, dir, "check", file)
		if code != 1 || !strings.Contains(out, want) || !strings.Contains(out, "pss-privileged") {
			t.Errorf("check %s: exit %d, want 1 with %q and pss-privileged:\n%.600s\n%s", file, code, want, out, errOut)
		}
	}
}

func TestCheckEmptyInput(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"empty.yaml": "# nothing yet\n---\n"})
	out, _, code := run(t, dir, "check", "empty.yaml")
	if code != 0 || !strings.Contains(out, "no Kubernetes objects in the input") {
		t.Errorf("empty input: exit %d, output %q", code, out)
	}
	_, errOut, code := run(t, dir, "check", "--fail-on-empty", "empty.yaml")
	if code != 2 || !strings.Contains(errOut, "--fail-on-empty") {
		t.Errorf("empty input with --fail-on-empty: exit %d, stderr %q", code, errOut)
	}
}

func TestCheckStdin(t *testing.T) {
	out, _, code := runStdin(t, t.TempDir(), privileged, "check", "--format", "json", "-")
	var rep struct {
		Objects  int `json:"objects"`
		Findings []struct {
			Rule   string `json:"rule"`
			Source struct {
				File string `json:"file"`
				Line int    `json:"line"`
			} `json:"source"`
		} `json:"findings"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("json: %v\n%s", err, out)
	}
	if code != 1 || rep.Objects != 1 {
		t.Fatalf("exit %d, %d objects; want 1 and 1", code, rep.Objects)
	}
	for _, f := range rep.Findings {
		if f.Rule == "pss-privileged" && (f.Source.File != "-" || f.Source.Line != 9) {
			t.Errorf("pss-privileged at %+v, want -:9", f.Source)
		}
	}
}

// With PATHs, devctl.yaml (found upward, or given with -f) still sets the
// registries, the threshold, the organisation's rules and the waivers.
func TestCheckPathsHonourConfig(t *testing.T) {
	project := func(policy string) map[string]string {
		return map[string]string{
			"devctl.yaml":            "apiVersion: devctl.dev/v1alpha1\nkind: Project\nname: shop\nteam: dx\nservices:\n  - name: web\n    context: .\n    dockerfile: Dockerfile\n    port: 8080\npolicy:\n" + policy,
			"Dockerfile":             "FROM scratch\n",
			"deploy/web.yaml":        compliantWith("docker.io/nginx:1.27"),
			"policies/no-nginx.rego": "package main\n\nimport rego.v1\n\ndeny contains msg if {\n\tsome c in input.spec.template.spec.containers\n\tcontains(c.image, \"nginx\")\n\tmsg := \"no nginx here\"\n}\n",
			"waivers.yaml":           "waivers:\n- rule: main.deny\n  target: {kind: Deployment, name: web}\n  reason: migrating\n  approver: lead@example.com\n  expires: 2999-01-01\n",
		}
	}
	tests := []struct {
		name     string
		policy   string
		args     []string
		wantCode int
		want     []string // in stdout
		wantNot  []string
	}{
		{"allowed registries", "  allowedRegistries: [ghcr.io/acme]\n", nil, 1,
			[]string{`image "docker.io/nginx:1.27" is not from an allowed registry (ghcr.io/acme)`}, nil},
		{"Docker Hub short names", "  allowedRegistries: [docker.io/library/nginx]\n", nil, 0, []string{"2 objects checked: 0 findings"}, nil},
		{"failOn", "  allowedRegistries: [ghcr.io/acme]\n  failOn: critical\n", nil, 0, []string{"allowed-registries"}, nil},
		{"--fail-on beats failOn", "  allowedRegistries: [ghcr.io/acme]\n  failOn: critical\n", []string{"--fail-on", "high"}, 1, []string{"allowed-registries"}, nil},
		{"organisation rules", "  rules: policies\n", nil, 1, []string{"main.deny: no nginx here"}, nil},
		{"waivers", "  rules: policies\n  waivers: waivers.yaml\n", nil, 0, []string{"Waived (1)", "main.deny: no nginx here"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := gitRepo(t, project(tt.policy))
			// From a subfolder: devctl.yaml is found upward.
			args := append([]string{"check"}, tt.args...)
			out, errOut, code := run(t, filepath.Join(dir, "deploy"), append(args, "web.yaml")...)
			if code != tt.wantCode {
				t.Errorf("exit %d, want %d\n%s\n%s", code, tt.wantCode, out, errOut)
			}
			for _, w := range tt.want {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
			// The same from elsewhere with -f.
			out2, _, code2 := run(t, t.TempDir(), append(append(args, "-f", filepath.Join(dir, "devctl.yaml")), filepath.Join(dir, "deploy", "web.yaml"))...)
			if code2 != tt.wantCode || !strings.Contains(out2, tt.want[0]) {
				t.Errorf("with -f: exit %d, want %d, output:\n%s", code2, tt.wantCode, out2)
			}
		})
	}
	// Without devctl.yaml the defaults apply.
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"web.yaml": compliantWith("docker.io/nginx:1.27")})
	if out, errOut, code := run(t, dir, "check", "web.yaml"); code != 0 {
		t.Errorf("no devctl.yaml: exit %d\n%s\n%s", code, out, errOut)
	}
}

// Unreadable input exits 2 (a policy failure exits 1), is reported in
// every format, and does not stop the other files from being checked.
func TestCheckUnreadableInput(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"manifests/good.yaml":         compliantWith("ghcr.io/acme/web:1.0"),
		"manifests/bad.yaml":          "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: ok}\n---\n" + strings.Replace(privileged, "image:", "ports: [{containerPort: \"80\"}], image:", 1),
		"manifests/.github/ci.yaml":   "on: push\n",
		"manifests/chart/Chart.yaml":  "apiVersion: v2\nname: web\nversion: 0.1.0\n",
		"manifests/chart/values.yaml": "image: ghcr.io/acme/web:2.0\n",
		"manifests/chart/templates/deployment.yaml": strings.Replace(strings.Replace(compliant, "name: web\n", "name: {{ .Release.Name }}-chart\n", 1),
			"image: IMAGE", "image: {{ .Values.image | quote }}", 1),
	})
	out, errOut, code := run(t, dir, "check", "manifests")
	if code != 2 {
		t.Fatalf("exit %d, want 2\n%s\n%s", code, out, errOut)
	}
	for _, w := range []string{
		"manifests/bad.yaml:13: spec.template.spec.containers[0].ports[0].containerPort: expected integer, got string",
		"5 objects checked, 1 unreadable", // good.yaml (2), bad.yaml's ConfigMap, the chart (2)
	} {
		if !strings.Contains(out, w) {
			t.Errorf("output lacks %q:\n%s", w, out)
		}
	}
	if strings.Contains(out, "ci.yaml") {
		t.Errorf("a hidden folder was read:\n%s", out)
	}
	if !strings.Contains(errOut, "policy check incomplete") {
		t.Errorf("stderr: %q", errOut)
	}

	for _, format := range []string{"json", "sarif", "junit"} {
		out, _, code := run(t, dir, "check", "--format", format, "manifests/bad.yaml")
		if code != 2 {
			t.Errorf("--format %s: exit %d, want 2", format, code)
		}
		assertDescribesError(t, format, out, "expected integer, got string")
	}
	// An error before any input is read (-f names no file) is described too.
	out, errOut, code = run(t, dir, "check", "--format", "json", "-f", "missing.yaml", "manifests")
	if code != 2 || !strings.Contains(errOut, "ERROR:") {
		t.Errorf("missing -f file: exit %d, stderr %q", code, errOut)
	}
	assertDescribesError(t, "json", out, "not found")
}

func assertDescribesError(t *testing.T, format, out, want string) {
	t.Helper()
	switch format {
	case "json":
		var rep struct {
			Errors []struct {
				Message string `json:"message"`
			} `json:"errors"`
		}
		if err := json.Unmarshal([]byte(out), &rep); err != nil || len(rep.Errors) == 0 || !strings.Contains(rep.Errors[0].Message, want) {
			t.Errorf("json: %v, errors %+v, want %q:\n%s", err, rep.Errors, want, out)
		}
	case "sarif":
		var log struct {
			Version string `json:"version"`
			Runs    []struct {
				Invocations []struct {
					ExecutionSuccessful bool `json:"executionSuccessful"`
					Notifications       []struct {
						Message struct{ Text string } `json:"message"`
					} `json:"toolExecutionNotifications"`
				} `json:"invocations"`
			} `json:"runs"`
		}
		if err := json.Unmarshal([]byte(out), &log); err != nil || log.Version != "2.1.0" || len(log.Runs) != 1 ||
			log.Runs[0].Invocations[0].ExecutionSuccessful || !strings.Contains(log.Runs[0].Invocations[0].Notifications[0].Message.Text, want) {
			t.Errorf("sarif: %v:\n%s", err, out)
		}
	case "junit":
		suites, err := junit.Ingest([]byte(out))
		if err != nil || len(suites) == 0 || suites[0].Tests[0].Status != junit.StatusError || !strings.Contains(suites[0].Tests[0].Message, want) {
			t.Errorf("junit: %v:\n%s", err, out)
		}
	}
}

// A chart folder is rendered; a template passed as a file says so.
func TestCheckCharts(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"chart/Chart.yaml":  "apiVersion: v2\nname: web\nversion: 0.1.0\n",
		"chart/values.yaml": "image: nginx:latest\n",
		"chart/templates/deployment.yaml": strings.Replace(strings.Replace(compliant, "name: web\n", "name: {{ .Release.Name }}\n", 1),
			"image: IMAGE", "image: {{ .Values.image | quote }}", 1),
	})
	out, errOut, code := run(t, dir, "check", "chart")
	if code != 1 || !strings.Contains(out, "image-tag") || !strings.Contains(out, filepath.Join("chart", "templates", "deployment.yaml")+":15 (.Values.image)") {
		t.Errorf("chart folder: exit %d, want 1 with image-tag at the template line:\n%s\n%s", code, out, errOut)
	}
	out, _, code = run(t, dir, "check", "chart/templates/deployment.yaml")
	if code != 2 || !strings.Contains(out, "pass the chart's folder") {
		t.Errorf("template file: exit %d, want 2 saying to pass the chart:\n%s", code, out)
	}
}
