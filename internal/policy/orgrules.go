package policy

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	admissionv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// loadRulesDir compiles the organisation rules in dir: every .yaml/.yml
// file's ValidatingAdmissionPolicies, their bindings and param objects,
// and every .rego file.
func loadRulesDir(ctx context.Context, dir, namespace string) ([]checker, []Rule, error) {
	var (
		policies []*admissionv1.ValidatingAdmissionPolicy
		bindings []*admissionv1.ValidatingAdmissionPolicyBinding
		params   []*unstructured.Unstructured
		rego     = map[string]string{}
	)
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		switch filepath.Ext(p) {
		case ".rego":
			if strings.HasSuffix(p, "_test.rego") {
				return nil
			}
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			rego[p] = string(b)
		case ".yaml", ".yml":
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			docs, err := ParseManifests(p, b)
			if err != nil {
				return err
			}
			for _, d := range docs {
				gvk := d.Object.GroupVersionKind()
				switch {
				case gvk.Group == "admissionregistration.k8s.io" && gvk.Kind == "ValidatingAdmissionPolicy":
					var vap admissionv1.ValidatingAdmissionPolicy
					if err := fromUnstructured(d.Object.Object, &vap); err != nil {
						return fmt.Errorf("%s:%d: %w: %w", p, d.Line, ErrInvalidPolicy, err)
					}
					defaultPolicy(&vap)
					policies = append(policies, &vap)
				case gvk.Group == "admissionregistration.k8s.io" && gvk.Kind == "ValidatingAdmissionPolicyBinding":
					var b admissionv1.ValidatingAdmissionPolicyBinding
					if err := fromUnstructured(d.Object.Object, &b); err != nil {
						return fmt.Errorf("%s:%d: %w: %w", p, d.Line, ErrInvalidPolicy, err)
					}
					if m := b.Spec.MatchResources; m != nil {
						defaultMatchResources(m)
					}
					bindings = append(bindings, &b)
				default:
					params = append(params, d.Object)
				}
			}
		}
		return nil
	})
	if err != nil {
		return nil, nil, fmt.Errorf("load rules %q: %w", dir, err)
	}
	var (
		checkers []checker
		rules    []Rule
	)
	builtin := Rules()
	for _, p := range policies {
		if slices.ContainsFunc(builtin, func(r Rule) bool { return r.ID == p.Name }) {
			return nil, nil, fmt.Errorf("load rules %q: policy %q: %w: the name is a built-in rule id; rename the policy", dir, p.Name, ErrInvalidPolicy)
		}
	}
	if len(policies) > 0 {
		v, rs, err := newVAPChecker(policies, bindings, params, namespace)
		if err != nil {
			return nil, nil, fmt.Errorf("load rules %q: %w", dir, err)
		}
		checkers = append(checkers, v)
		rules = append(rules, rs...)
	}
	if len(rego) > 0 {
		r, rs, err := newRegoChecker(ctx, rego)
		if err != nil {
			return nil, nil, fmt.Errorf("load rules %q: %w", dir, err)
		}
		checkers = append(checkers, r)
		rules = append(rules, rs...)
	}
	return checkers, rules, nil
}

// defaultPolicy applies the API server's defaults, so a policy read from
// a file behaves as the stored one does.
func defaultPolicy(p *admissionv1.ValidatingAdmissionPolicy) {
	if p.Spec.FailurePolicy == nil {
		f := admissionv1.Fail
		p.Spec.FailurePolicy = &f
	}
	if p.Spec.MatchConstraints == nil {
		p.Spec.MatchConstraints = &admissionv1.MatchResources{}
	}
	defaultMatchResources(p.Spec.MatchConstraints)
}

func defaultMatchResources(m *admissionv1.MatchResources) {
	if m.NamespaceSelector == nil {
		m.NamespaceSelector = &metav1.LabelSelector{}
	}
	if m.ObjectSelector == nil {
		m.ObjectSelector = &metav1.LabelSelector{}
	}
	if m.MatchPolicy == nil {
		e := admissionv1.Equivalent
		m.MatchPolicy = &e
	}
}
