//go:build devctl_lean

package policy

import (
	"context"

	admissionv1 "k8s.io/api/admissionregistration/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// The lean build (the devctl_lean tag: devctl's front binary, see
// cmd/devctl) checks the built-in rules only; it hands a project with
// organisation rules to the full build before it gets here.

func newVAPChecker(_ []*admissionv1.ValidatingAdmissionPolicy, _ []*admissionv1.ValidatingAdmissionPolicyBinding, _ []*unstructured.Unstructured, _ string) (checker, []Rule, error) {
	return nil, nil, ErrLeanBuild
}

func newRegoChecker(context.Context, map[string]string) (checker, []Rule, error) {
	return nil, nil, ErrLeanBuild
}
