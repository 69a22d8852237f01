package policy

import (
	"errors"
	"strings"

	"k8s.io/apimachinery/pkg/runtime/schema"
)

// ErrInvalidPolicy is returned for a ValidatingAdmissionPolicy that does
// not compile or is incomplete.
var ErrInvalidPolicy = errors.New("invalid policy")

// AnnotationSeverity on a ValidatingAdmissionPolicy sets the severity of
// its findings (default: high for Deny, medium for Warn, info for Audit).
const AnnotationSeverity = "policy.devctl.dev/severity"

// AnnotationFix on a ValidatingAdmissionPolicy is the fix hint of its
// findings.
const AnnotationFix = "policy.devctl.dev/fix"

// ErrInvalidRego is returned for Rego files that do not compile.
var ErrInvalidRego = errors.New("invalid rego policy")

// metaResource guesses the resource of a kind (deployments for
// Deployment), as a RESTMapper without discovery would.
func metaResource(gvk schema.GroupVersionKind) schema.GroupVersionResource {
	kind := strings.ToLower(gvk.Kind)
	var plural string
	switch {
	case strings.HasSuffix(kind, "s"):
		plural = kind + "es"
	case strings.HasSuffix(kind, "y") && !strings.HasSuffix(kind, "ey"):
		plural = strings.TrimSuffix(kind, "y") + "ies"
	default:
		plural = kind + "s"
	}
	return gvk.GroupVersion().WithResource(plural)
}

var clusterScoped = map[string]bool{
	"Namespace": true, "ClusterRole": true, "ClusterRoleBinding": true, "CustomResourceDefinition": true,
	"PriorityClass": true, "StorageClass": true, "PersistentVolume": true, "IngressClass": true,
	"ValidatingAdmissionPolicy": true, "ValidatingAdmissionPolicyBinding": true,
	"ValidatingWebhookConfiguration": true, "MutatingWebhookConfiguration": true, "APIService": true, "Node": true,
}

func isClusterScoped(gvk schema.GroupVersionKind) bool { return clusterScoped[gvk.Kind] }

// ErrLeanBuild is what New returns, in a build without the organisation
// rule engines (the devctl_lean build tag, which leaves out the API server's
// CEL admission code and OPA), for a rules folder that holds
// ValidatingAdmissionPolicies or Rego.
var ErrLeanBuild = errors.New("organisation rules (ValidatingAdmissionPolicy, Rego) are not in this build of the policy engine")
