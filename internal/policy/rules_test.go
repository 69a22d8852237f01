package policy

import (
	"context"
	"os"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

func loadDocs(t testing.TB, path string) []Document {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	docs, err := ParseManifests(path, b)
	if err != nil {
		t.Fatal(err)
	}
	return docs
}

func newTestEngine(t testing.TB, o Options) *Engine {
	t.Helper()
	e, err := New(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// golden returns the compliant golden-path render with the Deployment
// mutated by fn.
func golden(t testing.TB, fn func(dep map[string]any) []Document) []Document {
	docs := loadDocs(t, "testdata/rendered.yaml")
	var extra []Document
	for i := range docs {
		if docs[i].Object.GetKind() == "Deployment" && fn != nil {
			extra = fn(docs[i].Object.Object)
		}
	}
	return append(docs, extra...)
}

func set(t testing.TB, obj map[string]any, value any, path ...string) {
	t.Helper()
	if err := unstructured.SetNestedField(obj, value, path...); err != nil {
		t.Fatal(err)
	}
}

func container(obj map[string]any) map[string]any {
	spec := obj["spec"].(map[string]any)["template"].(map[string]any)["spec"].(map[string]any)
	return spec["containers"].([]any)[0].(map[string]any)
}

func TestBuiltinRulesPassOnGoldenPath(t *testing.T) {
	t.Parallel()
	e := newTestEngine(t, Options{AllowedRegistries: []string{"registry.devctl.localhost"}})
	r, err := e.Check(context.Background(), golden(t, nil), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Findings) != 0 {
		var b strings.Builder
		_ = r.WriteText(&b)
		t.Fatalf("compliant render has findings:\n%s", b.String())
	}
	if r.Objects != 6 {
		t.Errorf("objects = %d, want 6", r.Objects)
	}
}

func TestBuiltinRulesFail(t *testing.T) {
	t.Parallel()
	const ctr = "spec.template.spec.containers[0]"
	tests := []struct {
		rule     string
		mutate   func(t testing.TB, dep map[string]any) []Document
		wantPath string
		wantMsg  string
	}{
		{"pss-run-as-non-root", func(t testing.TB, d map[string]any) []Document {
			unstructured.RemoveNestedField(d, "spec", "template", "spec", "securityContext", "runAsNonRoot")
			return nil
		}, ctr + ".securityContext.runAsNonRoot", `container "app" must set securityContext.runAsNonRoot=true`},
		{"pss-allow-privilege-escalation", func(t testing.TB, d map[string]any) []Document {
			delete(container(d)["securityContext"].(map[string]any), "allowPrivilegeEscalation")
			return nil
		}, ctr + ".securityContext.allowPrivilegeEscalation", "securityContext.allowPrivilegeEscalation=false"},
		{"pss-capabilities", func(t testing.TB, d map[string]any) []Document {
			delete(container(d)["securityContext"].(map[string]any), "capabilities")
			return nil
		}, ctr + ".securityContext.capabilities", `securityContext.capabilities.drop=["ALL"]`},
		{"pss-seccomp-profile", func(t testing.TB, d map[string]any) []Document {
			unstructured.RemoveNestedField(d, "spec", "template", "spec", "securityContext", "seccompProfile")
			return nil
		}, ctr + ".securityContext.seccompProfile", `securityContext.seccompProfile.type to "RuntimeDefault" or "Localhost"`},
		{"pss-host-namespaces", func(t testing.TB, d map[string]any) []Document {
			set(t, d, true, "spec", "template", "spec", "hostNetwork")
			return nil
		}, "spec.template.spec.hostNetwork", "hostNetwork=true"},
		{"pss-volumes", func(t testing.TB, d map[string]any) []Document {
			set(t, d, []any{map[string]any{"name": "tmp", "hostPath": map[string]any{"path": "/tmp"}}}, "spec", "template", "spec", "volumes")
			return nil
		}, "spec.template.spec.volumes", `hostPath`},
		{RuleReadOnlyRootFilesystem, func(t testing.TB, d map[string]any) []Document {
			container(d)["securityContext"].(map[string]any)["readOnlyRootFilesystem"] = false
			return nil
		}, ctr + ".securityContext.readOnlyRootFilesystem", `container "app" must set securityContext.readOnlyRootFilesystem=true`},
		{RuleResourceRequests, func(t testing.TB, d map[string]any) []Document {
			delete(container(d)["resources"].(map[string]any)["requests"].(map[string]any), "memory")
			return nil
		}, ctr + ".resources.requests", `container "app" must set resources.requests.memory`},
		{RuleResourceLimits, func(t testing.TB, d map[string]any) []Document {
			delete(container(d)["resources"].(map[string]any), "limits")
			return nil
		}, ctr + ".resources.limits", `container "app" must set resources.limits.cpu and resources.limits.memory`},
		{RuleReadinessProbe, func(t testing.TB, d map[string]any) []Document {
			delete(container(d), "readinessProbe")
			return nil
		}, ctr + ".readinessProbe", `container "app" must set readinessProbe`},
		{RuleLivenessProbe, func(t testing.TB, d map[string]any) []Document {
			delete(container(d), "livenessProbe")
			return nil
		}, ctr + ".livenessProbe", `container "app" must set livenessProbe`},
		{RuleImageTag, func(t testing.TB, d map[string]any) []Document {
			container(d)["image"] = "registry.devctl.localhost/web:latest"
			return nil
		}, ctr + ".image", `must be pinned`},
		{RuleImageTag, func(t testing.TB, d map[string]any) []Document {
			container(d)["image"] = "registry.devctl.localhost:5000/web"
			return nil
		}, ctr + ".image", `"registry.devctl.localhost:5000/web" must be pinned`},
		{RuleAllowedRegistries, func(t testing.TB, d map[string]any) []Document {
			container(d)["image"] = "nginx:1.27"
			return nil
		}, ctr + ".image", `image "nginx:1.27" is not from an allowed registry (registry.devctl.localhost)`},
		{RuleRequiredLabels, func(t testing.TB, d map[string]any) []Document {
			unstructured.RemoveNestedField(d, "metadata", "labels", LabelCostCenter)
			unstructured.RemoveNestedField(d, "metadata", "labels", LabelTeam)
			return nil
		}, "metadata.labels", "missing required labels: devctl.dev/team, devctl.dev/cost-center"},
		{RulePodDisruptionBudget, func(t testing.TB, d map[string]any) []Document {
			set(t, d, map[string]any{"app.kubernetes.io/name": "other"}, "spec", "template", "metadata", "labels")
			return nil
		}, "spec.replicas", `Deployment "web" runs 2 replicas but no PodDisruptionBudget selects its pods`},
		{RuleNetworkPolicy, func(t testing.TB, d map[string]any) []Document {
			set(t, d, map[string]any{"app.kubernetes.io/name": "other"}, "spec", "template", "metadata", "labels")
			return nil
		}, "spec.template.metadata.labels", `no NetworkPolicy in the release namespace selects the pods of Deployment "web"`},
		{"pss-run-as-non-root", func(t testing.TB, d map[string]any) []Document {
			// a CronJob's pods are checked at spec.jobTemplate.spec.template.spec
			docs, err := ParseManifests("cron.yaml", []byte(`apiVersion: batch/v1
kind: CronJob
metadata: {name: nightly}
spec:
  schedule: "@daily"
  jobTemplate:
    spec:
      template:
        spec:
          containers:
          - name: job
            image: busybox:1.36
`))
			if err != nil {
				t.Fatal(err)
			}
			return docs
		}, "spec.jobTemplate.spec.template.spec.containers[0].securityContext.runAsNonRoot", `container "job" must set securityContext.runAsNonRoot=true`},
	}
	e := newTestEngine(t, Options{AllowedRegistries: []string{"registry.devctl.localhost"}})
	for _, tt := range tests {
		t.Run(tt.rule, func(t *testing.T) {
			t.Parallel()
			docs := golden(t, func(d map[string]any) []Document { return tt.mutate(t, d) })
			r, err := e.Check(context.Background(), docs, nil)
			if err != nil {
				t.Fatal(err)
			}
			var got []Finding
			for _, f := range r.Findings {
				if f.Rule == tt.rule && f.Path == tt.wantPath {
					got = append(got, f)
				}
			}
			if len(got) != 1 {
				t.Fatalf("want one %s finding at %s, got findings %+v", tt.rule, tt.wantPath, r.Findings)
			}
			f := got[0]
			if !strings.Contains(f.Message, tt.wantMsg) {
				t.Errorf("message %q does not contain %q", f.Message, tt.wantMsg)
			}
			if f.Fix == "" || f.Source.File == "" {
				t.Errorf("finding lacks fix or source: %+v", f)
			}
			if f.Severity != r.Rule(tt.rule).Severity {
				t.Errorf("severity %v, want the rule's %v", f.Severity, r.Rule(tt.rule).Severity)
			}
		})
	}
}
