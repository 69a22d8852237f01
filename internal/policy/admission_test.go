//go:build !devctl_lean

package policy

import (
	"context"
	"testing"
	"time"

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

// Admission lets through what a waiver in force waives, and nothing an
// expired waiver, a waiver for another object or a waiver of a strict
// rule names: the same waivers as the local check, no exemption else.
func TestAdmissionHonoursWaivers(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	waiver := func(rule, kind, name, expires string) Waiver {
		return Waiver{Rule: rule, Target: WaiverTarget{Kind: kind, Name: name}, Reason: "r", Approver: "a", Expires: expires}
	}
	writable := func(d map[string]any) []Document {
		container(d)["securityContext"].(map[string]any)["readOnlyRootFilesystem"] = false
		return nil
	}
	for _, tt := range []struct {
		name    string
		waivers []Waiver
		denied  bool
	}{
		{"no waiver", nil, true},
		{"waiver in force", []Waiver{waiver(RuleReadOnlyRootFilesystem, "Deployment", "web", "2026-06-30")}, false},
		{"waiver for every object of the rule", []Waiver{waiver(RuleReadOnlyRootFilesystem, "", "", "2026-06-30")}, false},
		{"expired waiver", []Waiver{waiver(RuleReadOnlyRootFilesystem, "Deployment", "web", "2026-05-31")}, true},
		{"waiver expiring this day still holds", []Waiver{waiver(RuleReadOnlyRootFilesystem, "Deployment", "web", "2026-06-01")}, false},
		{"waiver for another object", []Waiver{waiver(RuleReadOnlyRootFilesystem, "Deployment", "api", "2026-06-30")}, true},
		{"waiver of another rule", []Waiver{waiver(RuleLivenessProbe, "Deployment", "web", "2026-06-30")}, true},
		{"waiver for another namespace", []Waiver{{Rule: RuleReadOnlyRootFilesystem, Target: WaiverTarget{Namespace: "team-b"}, Expires: "2026-06-30"}}, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			objs, err := AdmissionPoliciesWaived("team-a", tt.waivers, now)
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
				}
			}
			vap, _, err := newVAPChecker(ps, bs, nil, "team-a")
			if err != nil {
				t.Fatal(err)
			}
			docs := golden(t, writable)
			set := &objectSet{}
			for i := range docs {
				docs[i].Object.SetNamespace("team-a")
				set.docs = append(set.docs, &docs[i])
			}
			fs, err := vap.check(context.Background(), set)
			if err != nil {
				t.Fatal(err)
			}
			denied := false
			for _, f := range fs {
				if f.Rule == AdmissionPolicyPrefix+RuleReadOnlyRootFilesystem && f.Object.Kind == "Deployment" {
					denied = true
				}
			}
			if denied != tt.denied {
				t.Errorf("denied = %v, want %v (findings %+v)", denied, tt.denied, fs)
			}
		})
	}
}

// A strict rule's binding excludes nothing, whatever the waivers say.
func TestAdmissionStrictRulesIgnoreWaivers(t *testing.T) {
	t.Parallel()
	for _, r := range celRules {
		ex := waiverExclusions(r.id, "ns", []Waiver{{Rule: r.id, Expires: "2999-01-01"}}, time.Now())
		if builtinRule(r.id).Strict != (len(ex) == 0) {
			t.Errorf("rule %s (strict %v): %d exclusions", r.id, builtinRule(r.id).Strict, len(ex))
		}
	}
}
