package policy

import (
	"context"
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
)

// Labels every workload must carry: who owns it and who pays for it.
const (
	LabelName       = "app.kubernetes.io/name"
	LabelTeam       = "devctl.dev/team"
	LabelOwner      = "devctl.dev/owner"
	LabelCostCenter = "devctl.dev/cost-center"
	// LabelBranch is set by the golden-path chart; it is not required.
	LabelBranch = "devctl.dev/branch"
)

// RequiredLabels are the labels the required-labels rule asks for, in the
// order they are reported.
var RequiredLabels = []string{LabelName, LabelTeam, LabelOwner, LabelCostCenter}

// Built-in rule ids.
const (
	RuleReadOnlyRootFilesystem = "read-only-root-filesystem"
	RuleResourceRequests       = "resource-requests"
	RuleResourceLimits         = "resource-limits"
	RuleReadinessProbe         = "readiness-probe"
	RuleLivenessProbe          = "liveness-probe"
	RuleImageTag               = "image-tag"
	RuleAllowedRegistries      = "allowed-registries"
	RuleRequiredLabels         = "required-labels"
	RulePodDisruptionBudget    = "pod-disruption-budget"
	RuleNetworkPolicy          = "network-policy"
)

// Rule describes a rule: built-in, or loaded from the rules folder.
type Rule struct {
	ID       string   `json:"id"`
	Severity Severity `json:"severity"`
	// Title is a one-line summary.
	Title string `json:"title"`
	// Fix says how to make the finding go away.
	Fix string `json:"fix,omitempty"`
	// Strict rules are enforced by the platform: local waivers for them
	// are rejected.
	Strict bool `json:"strict,omitempty"`
}

var builtinRules = []Rule{
	{ID: RuleReadOnlyRootFilesystem, Severity: Medium, Title: "Containers run with a read-only root filesystem",
		Fix: "set securityContext.readOnlyRootFilesystem: true on the container; mount an emptyDir for paths the process writes (/tmp, caches)"},
	{ID: RuleResourceRequests, Severity: Medium, Title: "Containers request CPU and memory",
		Fix: "set resources.requests.cpu and resources.requests.memory on the container (the chart's resources value)"},
	{ID: RuleResourceLimits, Severity: Medium, Title: "Containers set CPU and memory limits",
		Fix: "set resources.limits.cpu and resources.limits.memory on the container (the chart's resources value)"},
	{ID: RuleReadinessProbe, Severity: Medium, Title: "Long-running containers have a readiness probe",
		Fix: "add a readinessProbe (httpGet on the service's health endpoint, or tcpSocket) to the container"},
	{ID: RuleLivenessProbe, Severity: Low, Title: "Long-running containers have a liveness probe",
		Fix: "add a livenessProbe to the container; it should fail only when a restart helps"},
	{ID: RuleImageTag, Severity: High, Title: "Images are pinned: no :latest and no missing tag",
		Fix: "use an immutable tag (a version or content hash) or a digest (@sha256:...) for the image"},
	{ID: RuleAllowedRegistries, Severity: High, Strict: true, Title: "Images come only from allowed registries",
		Fix: "push the image to one of the allowed registries and reference it from there"},
	{ID: RuleRequiredLabels, Severity: Medium, Title: "Workloads carry ownership and cost labels",
		Fix: "set the labels " + strings.Join(RequiredLabels, ", ") + " in metadata.labels (the golden-path chart sets them from .Values.team, .Values.owner and .Values.costCenter)"},
	{ID: RulePodDisruptionBudget, Severity: Low, Title: "Replicated workloads have a PodDisruptionBudget",
		Fix: "add a PodDisruptionBudget whose selector matches the pod labels (for example maxUnavailable: 1)"},
	{ID: RuleNetworkPolicy, Severity: Medium, Title: "Pods are selected by a NetworkPolicy in their namespace",
		Fix: "add a NetworkPolicy in the namespace whose podSelector matches the pods and allows only the traffic they need"},
}

// Rules lists the built-in rules, the Pod Security ones included.
func Rules() []Rule {
	out := slices.Clone(builtinRules)
	for _, r := range pssRules {
		out = append(out, r.Rule)
	}
	return out
}

func builtinRule(id string) Rule {
	for _, r := range builtinRules {
		if r.ID == id {
			return r
		}
	}
	panic("policy: unknown built-in rule " + id)
}

// objectSet is the input every checker sees: all documents, and the
// workloads among them expanded to their pod templates.
type objectSet struct {
	docs      []*Document
	workloads []*workload
}

// checker is one rule implementation.
type checker interface {
	check(ctx context.Context, s *objectSet) ([]Finding, error)
}

type checkerFunc func(ctx context.Context, s *objectSet) []Finding

func (f checkerFunc) check(ctx context.Context, s *objectSet) ([]Finding, error) {
	return f(ctx, s), nil
}

func newFinding(r Rule, w *workload, c *containerRef, path, msg string) Finding {
	f := Finding{Rule: r.ID, Severity: r.Severity, Object: w.doc.Ref(), Path: path, Message: msg, Fix: r.Fix}
	if c != nil {
		f.Container = c.c.Name
	}
	return f
}

// containerRule checks every container (and init container when withInit)
// of every workload the filter accepts.
func containerRule(id string, withInit bool, filter func(*workload) bool, fn func(c *corev1.Container) (field, msg string, bad bool)) checker {
	r := builtinRule(id)
	return checkerFunc(func(_ context.Context, s *objectSet) []Finding {
		var out []Finding
		for _, w := range s.workloads {
			if filter != nil && !filter(w) {
				continue
			}
			for _, c := range w.containers(withInit) {
				if field, msg, bad := fn(c.c); bad {
					path := w.containerPath(c)
					if field != "" {
						path += "." + field
					}
					out = append(out, newFinding(r, w, &c, path, msg))
				}
			}
		}
		return out
	})
}

func longRunning(w *workload) bool { return w.longRunning }

// The messages below are also produced by the CEL policies in
// admission.go; keep both in step (TestAdmissionAgreesWithLocalRules).

func readOnlyRootFilesystem(c *corev1.Container) (string, string, bool) {
	sc := c.SecurityContext
	if sc != nil && sc.ReadOnlyRootFilesystem != nil && *sc.ReadOnlyRootFilesystem {
		return "", "", false
	}
	return "securityContext.readOnlyRootFilesystem",
		fmt.Sprintf("container %q must set securityContext.readOnlyRootFilesystem=true", c.Name), true
}

func resourceRequests(c *corev1.Container) (string, string, bool) {
	if _, ok := c.Resources.Requests[corev1.ResourceCPU]; ok {
		if _, ok := c.Resources.Requests[corev1.ResourceMemory]; ok {
			return "", "", false
		}
	}
	return "resources.requests",
		fmt.Sprintf("container %q must set resources.requests.cpu and resources.requests.memory", c.Name), true
}

func resourceLimits(c *corev1.Container) (string, string, bool) {
	if _, ok := c.Resources.Limits[corev1.ResourceCPU]; ok {
		if _, ok := c.Resources.Limits[corev1.ResourceMemory]; ok {
			return "", "", false
		}
	}
	return "resources.limits",
		fmt.Sprintf("container %q must set resources.limits.cpu and resources.limits.memory", c.Name), true
}

func readinessProbe(c *corev1.Container) (string, string, bool) {
	if c.ReadinessProbe != nil {
		return "", "", false
	}
	return "readinessProbe", fmt.Sprintf("container %q must set readinessProbe", c.Name), true
}

func livenessProbe(c *corev1.Container) (string, string, bool) {
	if c.LivenessProbe != nil {
		return "", "", false
	}
	return "livenessProbe", fmt.Sprintf("container %q must set livenessProbe", c.Name), true
}

// imagePinned reports whether an image reference has a digest, or a tag
// other than latest.
func imagePinned(image string) bool {
	if strings.Contains(image, "@") {
		return true
	}
	return strings.LastIndex(image, ":") > strings.LastIndex(image, "/") && !strings.HasSuffix(image, ":latest")
}

func imageTag(c *corev1.Container) (string, string, bool) {
	if imagePinned(c.Image) {
		return "", "", false
	}
	return "image", fmt.Sprintf("container %q image %q must be pinned to a tag other than latest or a digest", c.Name, c.Image), true
}

// normalizeImage returns the image as registry/repository (no tag or
// digest), filling in Docker Hub's defaults.
func normalizeImage(image string) string {
	name := image
	if i := strings.Index(name, "@"); i >= 0 {
		name = name[:i]
	}
	if i := strings.LastIndex(name, ":"); i > strings.LastIndex(name, "/") {
		name = name[:i]
	}
	first, _, found := strings.Cut(name, "/")
	if !found || (!strings.ContainsAny(first, ".:") && first != "localhost") {
		if !found {
			name = "library/" + name
		}
		return "docker.io/" + name
	}
	return name
}

func allowedRegistries(allowed []string) checker {
	return containerRule(RuleAllowedRegistries, true, nil, func(c *corev1.Container) (string, string, bool) {
		img := normalizeImage(c.Image)
		for _, a := range allowed {
			a = strings.TrimSuffix(a, "/")
			if img == a || strings.HasPrefix(img, a+"/") {
				return "", "", false
			}
		}
		return "image", fmt.Sprintf("container %q image %q is not from an allowed registry (%s)", c.Name, c.Image, strings.Join(allowed, ", ")), true
	})
}

func requiredLabels() checker {
	r := builtinRule(RuleRequiredLabels)
	return checkerFunc(func(_ context.Context, s *objectSet) []Finding {
		var out []Finding
		for _, w := range s.workloads {
			if msg, bad := missingLabels(w.doc.Object.GetLabels()); bad {
				out = append(out, newFinding(r, w, nil, "metadata.labels", msg))
			}
		}
		return out
	})
}

func missingLabels(have map[string]string) (string, bool) {
	var missing []string
	for _, l := range RequiredLabels {
		if have[l] == "" {
			missing = append(missing, l)
		}
	}
	if len(missing) == 0 {
		return "", false
	}
	return "missing required labels: " + strings.Join(missing, ", "), true
}

func selects(sel *metav1.LabelSelector, podLabels map[string]string) bool {
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		return false
	}
	return s.Matches(labels.Set(podLabels))
}

func podDisruptionBudget() checker {
	r := builtinRule(RulePodDisruptionBudget)
	return checkerFunc(func(_ context.Context, s *objectSet) []Finding {
		var out []Finding
		for _, w := range s.workloads {
			if !w.longRunning || w.doc.Object.GetKind() == "DaemonSet" {
				continue
			}
			replicas := int64(1)
			if w.replicas != nil {
				replicas = *w.replicas
			}
			if hpaMin, ok := hpaMinReplicas(s, w); ok && hpaMin > replicas {
				replicas = hpaMin
			}
			if replicas <= 1 {
				continue
			}
			if hasSelecting(s, w, "policy", "PodDisruptionBudget", "spec", "selector") {
				continue
			}
			f := newFinding(r, w, nil, "spec.replicas", fmt.Sprintf("%s %q runs %d replicas but no PodDisruptionBudget selects its pods", w.doc.Object.GetKind(), w.doc.Object.GetName(), replicas))
			out = append(out, f)
		}
		return out
	})
}

// hpaMinReplicas returns the minReplicas of a HorizontalPodAutoscaler
// targeting the workload.
func hpaMinReplicas(s *objectSet, w *workload) (int64, bool) {
	for _, d := range s.docs {
		gvk := d.Object.GroupVersionKind()
		if gvk.Group != "autoscaling" || gvk.Kind != "HorizontalPodAutoscaler" || d.Object.GetNamespace() != w.doc.Object.GetNamespace() {
			continue
		}
		kind, _, _ := unstructured.NestedString(d.Object.Object, "spec", "scaleTargetRef", "kind")
		name, _, _ := unstructured.NestedString(d.Object.Object, "spec", "scaleTargetRef", "name")
		if kind != w.doc.Object.GetKind() || name != w.doc.Object.GetName() {
			continue
		}
		if m, found, _ := unstructured.NestedInt64(d.Object.Object, "spec", "minReplicas"); found {
			return m, true
		}
		return 1, true
	}
	return 0, false
}

// hasSelecting reports whether an object of group/kind in the workload's
// namespace has a label selector at selPath that matches its pods.
func hasSelecting(s *objectSet, w *workload, group, kind string, selPath ...string) bool {
	for _, d := range s.docs {
		gvk := d.Object.GroupVersionKind()
		if gvk.Group != group || gvk.Kind != kind || d.Object.GetNamespace() != w.doc.Object.GetNamespace() {
			continue
		}
		m, found, _ := unstructured.NestedMap(d.Object.Object, selPath...)
		if !found {
			if kind == "NetworkPolicy" {
				return true // a missing podSelector is the empty selector: all pods
			}
			continue
		}
		var sel metav1.LabelSelector
		if err := fromUnstructured(m, &sel); err != nil {
			continue
		}
		if selects(&sel, w.template.Labels) {
			return true
		}
	}
	return false
}

func networkPolicy() checker {
	r := builtinRule(RuleNetworkPolicy)
	return checkerFunc(func(_ context.Context, s *objectSet) []Finding {
		var out []Finding
		for _, w := range s.workloads {
			if hasSelecting(s, w, "networking.k8s.io", "NetworkPolicy", "spec", "podSelector") {
				continue
			}
			ns := w.doc.Object.GetNamespace()
			where := "the release namespace"
			if ns != "" {
				where = fmt.Sprintf("namespace %q", ns)
			}
			path := "metadata.labels"
			if w.templatePath != "" {
				path = w.templatePath + ".metadata.labels"
			}
			out = append(out, newFinding(r, w, nil, path, fmt.Sprintf("no NetworkPolicy in %s selects the pods of %s %q", where, w.doc.Object.GetKind(), w.doc.Object.GetName())))
		}
		return out
	})
}

// builtinCheckers returns the baseline; allowed is the registry list (the
// registry rule is off when it is empty).
func builtinCheckers(allowed []string) []checker {
	cs := []checker{
		pssChecker(),
		containerRule(RuleReadOnlyRootFilesystem, true, nil, readOnlyRootFilesystem),
		containerRule(RuleResourceRequests, true, nil, resourceRequests),
		containerRule(RuleResourceLimits, true, nil, resourceLimits),
		containerRule(RuleReadinessProbe, false, longRunning, readinessProbe),
		containerRule(RuleLivenessProbe, false, longRunning, livenessProbe),
		containerRule(RuleImageTag, true, nil, imageTag),
		requiredLabels(),
		podDisruptionBudget(),
		networkPolicy(),
	}
	if len(allowed) > 0 {
		cs = append(cs, allowedRegistries(allowed))
	}
	return cs
}
