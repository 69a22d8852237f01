package policy

import (
	"reflect"
	"slices"
	"strings"
	"sync"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	certificatesv1 "k8s.io/api/certificates/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	eventsv1 "k8s.io/api/events/v1"
	flowcontrolv1 "k8s.io/api/flowcontrol/v1"
	networkingv1 "k8s.io/api/networking/v1"
	nodev1 "k8s.io/api/node/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	resourcev1 "k8s.io/api/resource/v1"
	resourcev1beta1 "k8s.io/api/resource/v1beta1"
	resourcev1beta2 "k8s.io/api/resource/v1beta2"
	schedulingv1 "k8s.io/api/scheduling/v1"
	storagev1 "k8s.io/api/storage/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// servedAPIs are the built-in API group versions a current cluster serves
// by default. An object of a built-in kind at another version (a
// Deployment in v1 or extensions/v1beta1, a PodDisruptionBudget in
// policy/v1beta1) is rejected by the API server, and reported.
var servedAPIs = []func(*runtime.Scheme) error{
	corev1.AddToScheme, appsv1.AddToScheme, batchv1.AddToScheme,
	autoscalingv1.AddToScheme, autoscalingv2.AddToScheme,
	networkingv1.AddToScheme, policyv1.AddToScheme, rbacv1.AddToScheme,
	storagev1.AddToScheme, schedulingv1.AddToScheme, coordinationv1.AddToScheme,
	discoveryv1.AddToScheme, nodev1.AddToScheme, certificatesv1.AddToScheme,
	admissionregistrationv1.AddToScheme, flowcontrolv1.AddToScheme,
	eventsv1.AddToScheme, apiextensionsv1.AddToScheme,
	// Dynamic resource allocation went GA in 1.34; its betas are still
	// served beside v1.
	resourcev1.AddToScheme, resourcev1beta2.AddToScheme, resourcev1beta1.AddToScheme,
}

// kindRegistry knows the Go type (and so the schema) of every built-in kind.
type kindRegistry struct {
	types map[schema.GroupVersionKind]reflect.Type
	// served lists the apiVersions each kind name is served at.
	served map[string][]string
	// groups are the built-in API groups ("" is the core group), and
	// extensions, which the API server no longer serves.
	groups map[string]bool
}

// builtinKinds is built on first use: the check path pays for it, other
// devctl commands do not.
var builtinKinds = sync.OnceValue(func() *kindRegistry {
	s := runtime.NewScheme()
	for _, add := range servedAPIs {
		if err := add(s); err != nil {
			panic("policy: register built-in kinds: " + err.Error()) // fixed input
		}
	}
	r := &kindRegistry{types: map[schema.GroupVersionKind]reflect.Type{}, served: map[string][]string{},
		groups: map[string]bool{"extensions": true}}
	for gvk, t := range s.AllKnownTypes() {
		// Every group version also registers the request option kinds and
		// WatchEvent; lists are expanded before checking.
		if strings.HasSuffix(gvk.Kind, "Options") || strings.HasSuffix(gvk.Kind, "List") || gvk.Kind == "WatchEvent" {
			continue
		}
		r.types[gvk] = t
		r.served[gvk.Kind] = append(r.served[gvk.Kind], gvk.GroupVersion().String())
		r.groups[gvk.Group] = true
	}
	for _, vs := range r.served {
		slices.Sort(vs)
	}
	return r
})

// lookup returns the Go type of a built-in kind at a served version.
func (r *kindRegistry) lookup(gvk schema.GroupVersionKind) (reflect.Type, bool) {
	t, ok := r.types[gvk]
	return t, ok
}

// servedAt returns the apiVersions a built-in kind is served at (none for
// custom resources).
func (r *kindRegistry) servedAt(kind string) []string { return r.served[kind] }

// builtinGroup reports whether group is a built-in API group.
func (r *kindRegistry) builtinGroup(group string) bool { return r.groups[group] }
