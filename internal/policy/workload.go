package policy

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
)

// workload is an object that runs pods, expanded to the pod template its
// controller creates. Findings on the pod map back to the parent object
// through specPath.
type workload struct {
	doc *Document
	// template is the pod (metadata + spec) the controller creates.
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

// workloadKinds maps group/kind of pod-creating objects to the path of
// their pod template.
var workloadKinds = map[string]struct {
	path        []string
	longRunning bool
}{
	"/Pod":                   {nil, true},
	"/ReplicationController": {[]string{"spec", "template"}, true},
	"apps/Deployment":        {[]string{"spec", "template"}, true},
	"apps/StatefulSet":       {[]string{"spec", "template"}, true},
	"apps/ReplicaSet":        {[]string{"spec", "template"}, true},
	"apps/DaemonSet":         {[]string{"spec", "template"}, true},
	"batch/Job":              {[]string{"spec", "template"}, false},
	"batch/CronJob":          {[]string{"spec", "jobTemplate", "spec", "template"}, false},
}

// expandWorkload returns the workload of an object that creates pods, or
// nil for other kinds.
func expandWorkload(d *Document) (*workload, error) {
	gvk := d.Object.GroupVersionKind()
	k, ok := workloadKinds[gvk.Group+"/"+gvk.Kind]
	if !ok {
		return nil, nil
	}
	w := &workload{doc: d, longRunning: k.longRunning}
	var tmpl map[string]any
	if k.path == nil {
		tmpl = map[string]any{}
		if m, ok := d.Object.Object["metadata"].(map[string]any); ok {
			tmpl["metadata"] = m
		}
		if s, ok := d.Object.Object["spec"].(map[string]any); ok {
			tmpl["spec"] = s
		}
	} else {
		t, _, err := unstructured.NestedMap(d.Object.Object, k.path...)
		if err != nil {
			return nil, fmt.Errorf("read pod template of %s: %w: %w", d.Ref(), ErrInvalidManifest, err)
		}
		tmpl = t
		w.templatePath = joinPath(k.path)
	}
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(tmpl, &w.template); err != nil {
		return nil, fmt.Errorf("read pod template of %s: %w: %w", d.Ref(), ErrInvalidManifest, err)
	}
	if r, found, err := unstructured.NestedInt64(d.Object.Object, "spec", "replicas"); found && err == nil && gvk.Kind != "Pod" {
		w.replicas = &r
	}
	return w, nil
}

func joinPath(p []string) string {
	out := ""
	for i, s := range p {
		if i > 0 {
			out += "."
		}
		out += s
	}
	return out
}
