package policy

import (
	"context"
	"testing"

	admissionv1 "k8s.io/api/admissionregistration/v1"
)

func admissionChecker(t testing.TB, namespace string) *vapChecker {
	t.Helper()
	objs, err := AdmissionPolicies(namespace)
	if err != nil {
		t.Fatal(err)
	}
	var ps []*admissionv1.ValidatingAdmissionPolicy
	var bs []*admissionv1.ValidatingAdmissionPolicyBinding
	for _, o := range objs {
		switch v := o.(type) {
		case *admissionv1.ValidatingAdmissionPolicy:
			ps = append(ps, v)
		case *admissionv1.ValidatingAdmissionPolicyBinding:
			bs = append(bs, v)
			if v.Spec.MatchResources.NamespaceSelector.MatchLabels["kubernetes.io/metadata.name"] != namespace {
				t.Errorf("binding %s not scoped to %s", v.Name, namespace)
			}
		}
	}
	if len(ps) != len(celRules) || len(bs) != len(celRules) {
		t.Fatalf("got %d policies, %d bindings; want %d each", len(ps), len(bs), len(celRules))
	}
	// newVAPChecker compiles every expression and fails on any error.
	v, _, err := newVAPChecker(ps, bs, nil, namespace)
	if err != nil {
		t.Fatalf("generated CEL does not compile: %v", err)
	}
	return v
}

func TestAdmissionPoliciesCompile(t *testing.T) {
	t.Parallel()
	admissionChecker(t, "team-a")
	if _, err := AdmissionPolicies(""); err == nil {
		t.Error("AdmissionPolicies without namespace succeeded")
	}
}

// TestAdmissionAgreesWithLocalRules runs the local rules and the
// generated CEL policies on the same manifests: both must pass or fail,
// with the same message.
func TestAdmissionAgreesWithLocalRules(t *testing.T) {
	t.Parallel()
	vap := admissionChecker(t, "team-a")
	local := newTestEngine(t, Options{})
	ctr := func(d map[string]any) map[string]any { return container(d) }
	cases := map[string]func(d map[string]any){
		"compliant":           func(map[string]any) {},
		"writable root":       func(d map[string]any) { ctr(d)["securityContext"].(map[string]any)["readOnlyRootFilesystem"] = false },
		"no security context": func(d map[string]any) { delete(ctr(d), "securityContext") },
		"no requests":         func(d map[string]any) { delete(ctr(d)["resources"].(map[string]any), "requests") },
		"no memory limit": func(d map[string]any) {
			delete(ctr(d)["resources"].(map[string]any)["limits"].(map[string]any), "memory")
		},
		"no probes":          func(d map[string]any) { delete(ctr(d), "readinessProbe"); delete(ctr(d), "livenessProbe") },
		"latest":             func(d map[string]any) { ctr(d)["image"] = "registry.devctl.localhost/web:latest" },
		"untagged with port": func(d map[string]any) { ctr(d)["image"] = "localhost:5000/web" },
		"digest":             func(d map[string]any) { ctr(d)["image"] = "web@sha256:0123" },
		"missing labels": func(d map[string]any) {
			d["metadata"].(map[string]any)["labels"] = map[string]any{"devctl.dev/owner": "bob"}
		},
		"no labels at all": func(d map[string]any) { delete(d["metadata"].(map[string]any), "labels") },
		"init container no res": func(d map[string]any) {
			spec := d["spec"].(map[string]any)["template"].(map[string]any)["spec"].(map[string]any)
			spec["initContainers"] = []any{map[string]any{"name": "init", "image": "busybox:1.36"}}
		},
	}
	for name, mutate := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			docs := golden(t, func(d map[string]any) []Document { mutate(d); return nil })
			for i := range docs {
				docs[i].Object.SetNamespace("team-a")
			}
			lr, err := local.Check(context.Background(), docs, nil)
			if err != nil {
				t.Fatal(err)
			}
			set := &objectSet{}
			for i := range docs {
				set.docs = append(set.docs, &docs[i])
			}
			cel, err := vap.check(context.Background(), set)
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range celRules {
				var localMsg, celMsg string
				for _, f := range lr.Findings {
					if f.Rule == c.id && localMsg == "" {
						localMsg = f.Message
					}
				}
				for _, f := range cel {
					if f.Rule == AdmissionPolicyPrefix+c.id {
						celMsg = f.Message
					}
				}
				if localMsg != celMsg {
					t.Errorf("rule %s: local %q, admission %q", c.id, localMsg, celMsg)
				}
			}
			if name == "compliant" && len(cel) != 0 {
				t.Errorf("compliant manifests denied: %+v", cel)
			}
		})
	}
}
