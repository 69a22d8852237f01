package policy

import (
	"fmt"
	"reflect"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// nestedMap returns the map at path without copying it.
func nestedMap(obj map[string]any, path ...string) (map[string]any, bool) {
	v, found, err := unstructured.NestedFieldNoCopy(obj, path...)
	if err != nil || !found {
		return nil, false
	}
	m, ok := v.(map[string]any)
	return m, ok
}

// workload is an object that runs pods, expanded to the pod template its
// controller creates. Findings on the pod map back to the parent object
// through specPath.
type workload struct {
	doc *Document
	ref ObjectRef
	// template is the pod (metadata + spec) the controller creates, with
	// the API server's defaults that matter to the rules applied.
	template corev1.PodTemplateSpec
	// templatePath is the field path of the pod template in the parent
	// ("" for a Pod, "spec.template" for a Deployment,
	// "spec.jobTemplate.spec.template" for a CronJob).
	templatePath string
	// replicas is spec.replicas (nil when the kind has none or it is unset).
	replicas *int64
	// longRunning is false for Jobs and CronJobs (no probes expected).
	longRunning bool
}

// specPath returns the field path of the pod spec in the parent object.
func (w *workload) specPath() string {
	if w.templatePath == "" {
		return "spec"
	}
	return w.templatePath + ".spec"
}

func (w *workload) containerPath(c containerRef) string {
	return fmt.Sprintf("%s.%s[%d]", w.specPath(), c.field, c.index)
}

type containerRef struct {
	field string // containers or initContainers
	index int
	c     *corev1.Container
}

// containers lists the regular then the init containers.
func (w *workload) containers(withInit bool) []containerRef {
	var out []containerRef
	for i := range w.template.Spec.Containers {
		out = append(out, containerRef{"containers", i, &w.template.Spec.Containers[i]})
	}
	if withInit {
		for i := range w.template.Spec.InitContainers {
			out = append(out, containerRef{"initContainers", i, &w.template.Spec.InitContainers[i]})
		}
	}
	return out
}

// podTemplatePaths are where pod-creating kinds keep their pod template:
// the built-in controllers, and custom resources that follow them
// (OpenShift DeploymentConfig, Argo Rollout, Knative Service: spec.template;
// CronJob-like kinds: spec.jobTemplate.spec.template). Any kind with a pod
// template (a spec with containers) at one of these paths is checked.
var podTemplatePaths = [][]string{
	{"spec", "template"},
	{"spec", "jobTemplate", "spec", "template"},
}

// builtinWorkloads are the built-in controllers (any version) and where
// their pod template is: it is required there.
var builtinWorkloads = map[schema.GroupKind][]string{
	{Group: "", Kind: "ReplicationController"}: {"spec", "template"},
	{Group: "apps", Kind: "Deployment"}:        {"spec", "template"},
	{Group: "apps", Kind: "StatefulSet"}:       {"spec", "template"},
	{Group: "apps", Kind: "ReplicaSet"}:        {"spec", "template"},
	{Group: "apps", Kind: "DaemonSet"}:         {"spec", "template"},
	{Group: "batch", Kind: "Job"}:              {"spec", "template"},
	{Group: "batch", Kind: "CronJob"}:          {"spec", "jobTemplate", "spec", "template"},
}

// findPodTemplate returns the path of the object's pod template, nil for
// a Pod (the object is its own template), and false when it has none.
// required is true for the built-in controllers, which must have one.
func findPodTemplate(gvk schema.GroupVersionKind, obj map[string]any) (path []string, found, required bool) {
	if gvk.Group == "" && gvk.Kind == "Pod" {
		return nil, true, true
	}
	if p, ok := builtinWorkloads[gvk.GroupKind()]; ok {
		_, found := nestedMap(obj, p...)
		return p, found, true
	}
	for _, p := range podTemplatePaths {
		t, ok := nestedMap(obj, p...)
		if !ok {
			continue
		}
		if spec, ok := t["spec"].(map[string]any); ok {
			if _, ok := spec["containers"]; ok {
				return p, true, false
			}
		}
	}
	return nil, false, false
}

// runsToCompletion reports whether a kind's pods finish (Jobs, CronJobs
// and their look-alikes): no probes are expected.
func runsToCompletion(kind string, templatePath []string) bool {
	return len(templatePath) > 2 || strings.Contains(kind, "Job")
}

var podTemplateType = reflect.TypeFor[corev1.PodTemplateSpec]()

// newWorkload makes the workload of a document whose pod template (at
// path; nil for a Pod) was decoded as tmpl.
func newWorkload(d *Document, ref ObjectRef, path []string, tmpl *corev1.PodTemplateSpec) *workload {
	w := &workload{doc: d, ref: ref, longRunning: !runsToCompletion(ref.Kind, path), template: *tmpl}
	applyPodDefaults(&w.template.Spec)
	if path != nil {
		w.templatePath = strings.Join(path, ".")
		if r, ok := integer(nestedValue(d.Object.Object, "spec", "replicas")); ok {
			w.replicas = &r
		}
	}
	return w
}

func nestedValue(obj map[string]any, path ...string) any {
	v, _, _ := unstructured.NestedFieldNoCopy(obj, path...)
	return v
}

// applyPodDefaults applies the API server's defaults the rules depend on:
// a volume with no source is an emptyDir.
func applyPodDefaults(spec *corev1.PodSpec) {
	for i := range spec.Volumes {
		if reflect.ValueOf(spec.Volumes[i].VolumeSource).IsZero() {
			spec.Volumes[i].EmptyDir = &corev1.EmptyDirVolumeSource{}
		}
	}
}
