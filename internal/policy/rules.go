package policy

import (
	"context"
	"fmt"
	"path"
	"slices"
	"strings"

	"github.com/distribution/reference"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
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
	RulePDBAllowsDisruption    = "pdb-allows-disruption"
	RuleNetworkPolicy          = "network-policy"
	RuleRootGroup              = "run-as-root-group"
	RuleSensitiveHostPath      = "sensitive-host-path"
	RuleSelectorMatchesLabels  = "selector-matches-labels"
	RuleUnknownField           = "unknown-field"
	RuleAPIVersion             = "api-version"
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
	{ID: RulePDBAllowsDisruption, Severity: Medium, Title: "PodDisruptionBudgets allow at least one disruption",
		Fix: "set maxUnavailable: 1 (or a minAvailable below the number of replicas) so that node drains and cluster upgrades can evict a pod"},
	{ID: RuleNetworkPolicy, Severity: Medium, Title: "Pods are selected by NetworkPolicies restricting both ingress and egress",
		Fix: "add a NetworkPolicy in the namespace whose podSelector matches the pods, with policyTypes [Ingress, Egress] and rules allowing only the traffic they need"},
	{ID: RuleRootGroup, Severity: High, Title: "Pods and containers do not run with the root group (GID 0)",
		Fix: "set runAsGroup and fsGroup to a non-zero GID (the golden-path chart uses 65532), and leave 0 out of supplementalGroups"},
	{ID: RuleSensitiveHostPath, Severity: Critical, Strict: true, Title: "Pods do not mount the container runtime socket or sensitive node paths",
		Fix: "remove the hostPath volume: a container that reaches the runtime socket or the node's system directories controls the node; use the Kubernetes API, a CSI driver or a DaemonSet owned by the platform team instead"},
	{ID: RuleSelectorMatchesLabels, Severity: High, Title: "Workload selectors match their pod template's labels",
		Fix: "make spec.selector.matchLabels a subset of spec.template.metadata.labels (the API server rejects the object otherwise)"},
	{ID: RuleUnknownField, Severity: High, Title: "Objects have only fields their kind defines",
		Fix: "correct or remove the field: the API server rejects unknown fields under strict validation (kubectl's default) and drops them otherwise; `kubectl explain` lists the fields of a kind"},
	{ID: RuleAPIVersion, Severity: High, Title: "Objects use an apiVersion and kind the API server serves",
		Fix: "set apiVersion and kind to one the cluster serves (`kubectl api-resources` lists them)"},
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

// checker is one rule implementation.
type checker interface {
	check(ctx context.Context, s *objectSet) ([]Finding, error)
}

type checkerFunc func(ctx context.Context, s *objectSet) []Finding

func (f checkerFunc) check(ctx context.Context, s *objectSet) ([]Finding, error) {
	return f(ctx, s), nil
}

func newFinding(r Rule, w *workload, c *containerRef, path, msg string) Finding {
	f := Finding{Rule: r.ID, Severity: r.Severity, Object: w.ref, Path: path, Message: msg, Fix: r.Fix, doc: w.doc}
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

// missingResources names the resources of list (requests or limits)
// that are not set: "resources.requests.cpu and resources.requests.memory".
func missingResources(list corev1.ResourceList, field string) (string, bool) {
	var missing []string
	for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		if _, ok := list[r]; !ok {
			missing = append(missing, "resources."+field+"."+string(r))
		}
	}
	return strings.Join(missing, " and "), len(missing) > 0
}

func resourceRequests(c *corev1.Container) (string, string, bool) {
	missing, bad := missingResources(c.Resources.Requests, "requests")
	if !bad {
		return "", "", false
	}
	return "resources.requests", fmt.Sprintf("container %q must set %s", c.Name, missing), true
}

func resourceLimits(c *corev1.Container) (string, string, bool) {
	missing, bad := missingResources(c.Resources.Limits, "limits")
	if !bad {
		return "", "", false
	}
	return "resources.limits", fmt.Sprintf("container %q must set %s", c.Name, missing), true
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
// digest), the way the container runtime resolves it: Docker Hub names
// get docker.io and, for official images, library/ (nginx,
// docker.io/nginx and index.docker.io/library/nginx are all
// docker.io/library/nginx).
func normalizeImage(image string) string {
	if named, err := reference.ParseNormalizedNamed(image); err == nil {
		return named.Name()
	}
	// Not a valid reference (the API server accepts any string): compare
	// it as written, without tag or digest.
	name, _, _ := strings.Cut(image, "@")
	if i := strings.LastIndex(name, ":"); i > strings.LastIndex(name, "/") {
		name = name[:i]
	}
	return name
}

// registryPrefixes returns the normalised prefixes an allowed-registries
// entry stands for. Docker Hub hosts are all docker.io; an entry with one
// path element on Docker Hub ("docker.io/nginx") is both that account and
// the official image of that name (docker.io/library/nginx).
func registryPrefixes(entry string) []string {
	entry = strings.TrimSuffix(entry, "/")
	host, rest, found := strings.Cut(entry, "/")
	switch host {
	case "docker.io", "index.docker.io", "registry-1.docker.io":
		if !found {
			return []string{"docker.io"}
		}
		if !strings.Contains(rest, "/") && rest != "library" {
			return []string{"docker.io/" + rest, "docker.io/library/" + rest}
		}
		return []string{"docker.io/" + rest}
	}
	return []string{entry}
}

func allowedRegistries(allowed []string) checker {
	var prefixes []string
	for _, a := range allowed {
		prefixes = append(prefixes, registryPrefixes(a)...)
	}
	return containerRule(RuleAllowedRegistries, true, nil, func(c *corev1.Container) (string, string, bool) {
		img := normalizeImage(c.Image)
		for _, a := range prefixes {
			if img == a || strings.HasPrefix(img, a+"/") {
				return "", "", false
			}
		}
		msg := fmt.Sprintf("container %q image %q is not from an allowed registry (%s)", c.Name, c.Image, strings.Join(allowed, ", "))
		if !strings.HasPrefix(c.Image, img) {
			msg += "; it resolves to " + img
		}
		return "image", msg, true
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

func podDisruptionBudget() checker {
	r := builtinRule(RulePodDisruptionBudget)
	return checkerFunc(func(_ context.Context, s *objectSet) []Finding {
		var out []Finding
		for _, w := range s.workloads {
			replicas, ok := s.replicas(w)
			if !ok || replicas <= 1 {
				continue
			}
			if len(s.index.pdbs[s.nsOf(w.doc)].matching(w.template.Labels)) > 0 {
				continue
			}
			out = append(out, newFinding(r, w, nil, "spec.replicas", fmt.Sprintf("%s %q runs %d replicas but no PodDisruptionBudget selects its pods", w.ref.Kind, w.ref.Name, replicas)))
		}
		return out
	})
}

// pdbAllowsDisruption flags PodDisruptionBudgets that let no pod be
// evicted: maxUnavailable 0, or minAvailable at least the pods they
// select (the replicas of the workloads whose pods they select).
func pdbAllowsDisruption() checker {
	r := builtinRule(RulePDBAllowsDisruption)
	return checkerFunc(func(_ context.Context, s *objectSet) []Finding {
		type budget struct {
			pods     int64
			known    bool // every selected workload's replicas are known
			selected []string
		}
		budgets := map[*pdb]*budget{}
		var order []*pdb
		for _, idx := range s.index.pdbs {
			for _, e := range idx.entries {
				budgets[e.item] = &budget{known: true}
				order = append(order, e.item)
			}
		}
		for _, w := range s.workloads {
			for _, p := range s.index.pdbs[s.nsOf(w.doc)].matching(w.template.Labels) {
				b := budgets[p]
				replicas, ok := s.replicas(w)
				b.known = b.known && ok
				b.pods += replicas
				b.selected = append(b.selected, fmt.Sprintf("%s %q", w.ref.Kind, w.ref.Name))
			}
		}
		var out []Finding
		for _, p := range order {
			b := budgets[p]
			path, msg, bad := pdbBlocks(p.obj, b.pods, b.known && len(b.selected) > 0)
			if !bad {
				continue
			}
			if len(b.selected) > 0 {
				msg += " (it selects the pods of " + strings.Join(b.selected, ", ") + ")"
			}
			out = append(out, Finding{Rule: r.ID, Severity: r.Severity, Object: p.ref, Path: path, Message: msg, Fix: r.Fix, doc: p.doc})
		}
		return out
	})
}

// pdbBlocks reports whether a budget allows no disruption of pods pods
// (podsKnown false: only what holds for any number of pods).
func pdbBlocks(b *policyv1.PodDisruptionBudget, pods int64, podsKnown bool) (string, string, bool) {
	name := fmt.Sprintf("PodDisruptionBudget %q", b.Name)
	if mu := b.Spec.MaxUnavailable; mu != nil {
		zero := (mu.Type == intstr.Int && mu.IntVal <= 0) || (mu.Type == intstr.String && strings.TrimSpace(mu.StrVal) == "0%")
		if zero {
			return "spec.maxUnavailable", fmt.Sprintf("%s sets maxUnavailable %s: no pod can ever be evicted, so node drains and cluster upgrades block", name, mu.String()), true
		}
		if podsKnown && mu.Type == intstr.String {
			if n, err := intstr.GetScaledValueFromIntOrPercent(mu, int(pods), true); err == nil && n <= 0 {
				return "spec.maxUnavailable", fmt.Sprintf("%s sets maxUnavailable %s of %d pods: no pod can be evicted", name, mu.String(), pods), true
			}
		}
		return "", "", false
	}
	ma := b.Spec.MinAvailable
	if ma == nil {
		return "", "", false
	}
	if ma.Type == intstr.String && strings.TrimSpace(ma.StrVal) == "100%" {
		return "spec.minAvailable", fmt.Sprintf("%s sets minAvailable 100%%: no pod can ever be evicted, so node drains and cluster upgrades block", name), true
	}
	if !podsKnown {
		return "", "", false
	}
	need, err := intstr.GetScaledValueFromIntOrPercent(ma, int(pods), true)
	if err != nil || int64(need) < pods {
		return "", "", false
	}
	return "spec.minAvailable", fmt.Sprintf("%s requires minAvailable %s but the workloads it selects run %d pods: no pod can be evicted, so node drains and cluster upgrades block", name, ma.String(), pods), true
}

func networkPolicy() checker {
	r := builtinRule(RuleNetworkPolicy)
	return checkerFunc(func(_ context.Context, s *objectSet) []Finding {
		var out []Finding
		for _, w := range s.workloads {
			ns := s.nsOf(w.doc)
			nps := s.index.netpols[ns].matching(w.template.Labels)
			var ingress, egress bool
			names := make([]string, len(nps))
			for i, np := range nps {
				ingress = ingress || np.ingress
				egress = egress || np.egress
				names[i] = fmt.Sprintf("%q", np.name)
			}
			if ingress && egress {
				continue
			}
			where := "the release namespace"
			if ns != "" {
				where = fmt.Sprintf("namespace %q", ns)
			}
			path := "metadata.labels"
			if w.templatePath != "" {
				path = w.templatePath + ".metadata.labels"
			}
			var msg string
			switch {
			case len(nps) == 0:
				msg = fmt.Sprintf("no NetworkPolicy in %s selects the pods of %s %q", where, w.ref.Kind, w.ref.Name)
			case !egress:
				msg = fmt.Sprintf("the pods of %s %q have no egress policy: the NetworkPolicies selecting them (%s) restrict Ingress only; add Egress to policyTypes with the egress they need", w.ref.Kind, w.ref.Name, strings.Join(names, ", "))
			default:
				msg = fmt.Sprintf("the pods of %s %q have no ingress policy: the NetworkPolicies selecting them (%s) restrict Egress only; add Ingress to policyTypes with the ingress they need", w.ref.Kind, w.ref.Name, strings.Join(names, ", "))
			}
			out = append(out, newFinding(r, w, nil, path, msg))
		}
		return out
	})
}

// rootGroup flags the root group (GID 0) given to the pod or a container:
// runAsGroup, fsGroup and supplementalGroups (Pod Security does not).
func rootGroup() checker {
	r := builtinRule(RuleRootGroup)
	return checkerFunc(func(_ context.Context, s *objectSet) []Finding {
		var out []Finding
		for _, w := range s.workloads {
			if sc := w.template.Spec.SecurityContext; sc != nil {
				base := w.specPath() + ".securityContext"
				if sc.RunAsGroup != nil && *sc.RunAsGroup == 0 {
					out = append(out, newFinding(r, w, nil, base+".runAsGroup", "the pod runs as the root group: securityContext.runAsGroup is 0"))
				}
				if sc.FSGroup != nil && *sc.FSGroup == 0 {
					out = append(out, newFinding(r, w, nil, base+".fsGroup", "the pod's volumes are owned by the root group: securityContext.fsGroup is 0"))
				}
				if i := slices.Index(sc.SupplementalGroups, 0); i >= 0 {
					out = append(out, newFinding(r, w, nil, fmt.Sprintf("%s.supplementalGroups[%d]", base, i), "the pod joins the root group: securityContext.supplementalGroups contains 0"))
				}
			}
			for _, c := range w.containers(true) {
				if sc := c.c.SecurityContext; sc != nil && sc.RunAsGroup != nil && *sc.RunAsGroup == 0 {
					out = append(out, newFinding(r, w, &c, w.containerPath(c)+".securityContext.runAsGroup",
						fmt.Sprintf("container %q runs as the root group: securityContext.runAsGroup is 0", c.c.Name)))
				}
			}
		}
		return out
	})
}

// sensitiveHostPaths are node paths that give a container control of the
// node: container runtime sockets exactly, system directories and
// everything under them.
var (
	runtimeSockets = map[string]string{
		"/var/run/docker.sock":                "the Docker socket",
		"/run/docker.sock":                    "the Docker socket",
		"/var/run/containerd/containerd.sock": "the containerd socket",
		"/run/containerd/containerd.sock":     "the containerd socket",
		"/var/run/crio/crio.sock":             "the CRI-O socket",
		"/run/crio/crio.sock":                 "the CRI-O socket",
		"/var/run/cri-dockerd.sock":           "the cri-dockerd socket",
		"/run/cri-dockerd.sock":               "the cri-dockerd socket",
		"/var/run/podman/podman.sock":         "the Podman socket",
		"/run/podman/podman.sock":             "the Podman socket",
	}
	sensitiveDirs = map[string]string{
		"/":                   "the node's root filesystem",
		"/etc":                "the node's configuration (/etc)",
		"/root":               "root's home directory",
		"/home":               "the node's home directories",
		"/var":                "the node's /var",
		"/var/run":            "the node's runtime directory (with the container runtime socket)",
		"/run":                "the node's runtime directory (with the container runtime socket)",
		"/proc":               "the node's /proc",
		"/sys":                "the node's /sys",
		"/dev":                "the node's devices (/dev)",
		"/boot":               "the node's boot files",
		"/usr":                "the node's /usr",
		"/bin":                "the node's binaries",
		"/sbin":               "the node's binaries",
		"/lib":                "the node's libraries",
		"/var/lib/kubelet":    "the kubelet's directory (with other pods' secrets)",
		"/var/lib/docker":     "Docker's data directory",
		"/var/lib/containerd": "containerd's data directory",
		"/var/lib/etcd":       "etcd's data",
		"/etc/kubernetes":     "the node's Kubernetes configuration and credentials",
		"/var/log":            "the node's logs",
	}
	// sensitiveTrees are directories nothing may be mounted from.
	sensitiveTrees = []string{"/proc", "/sys", "/dev", "/root", "/boot", "/var/lib/kubelet", "/var/lib/docker",
		"/var/lib/containerd", "/var/lib/etcd", "/etc/kubernetes", "/var/run/containerd", "/run/containerd",
		"/var/run/crio", "/run/crio", "/var/run/docker", "/run/docker"}
)

// sensitiveHostPath says what a hostPath exposes, or "" when it is not
// one of the paths that hand over the node.
func sensitiveHostPath(p string) string {
	if p == "" {
		return ""
	}
	clean := path.Clean("/" + strings.TrimSpace(p))
	if what, ok := runtimeSockets[clean]; ok {
		return what
	}
	if what, ok := sensitiveDirs[clean]; ok {
		return what
	}
	for _, t := range sensitiveTrees {
		if strings.HasPrefix(clean, t+"/") {
			if what, ok := sensitiveDirs[t]; ok {
				return "a path under " + what
			}
			return "a path under " + t
		}
	}
	return ""
}

func sensitiveHostPaths() checker {
	r := builtinRule(RuleSensitiveHostPath)
	return checkerFunc(func(_ context.Context, s *objectSet) []Finding {
		var out []Finding
		for _, w := range s.workloads {
			for i, v := range w.template.Spec.Volumes {
				if v.HostPath == nil {
					continue
				}
				what := sensitiveHostPath(v.HostPath.Path)
				if what == "" {
					continue
				}
				out = append(out, newFinding(r, w, nil, fmt.Sprintf("%s.volumes[%d].hostPath.path", w.specPath(), i),
					fmt.Sprintf("volume %q mounts %s (%s) from the node: whoever controls the container controls the node", v.Name, what, v.HostPath.Path)))
			}
		}
		return out
	})
}

// selectorMatchesLabels flags a workload whose selector does not select
// its own pods (or is missing where the API requires it): the API server
// rejects it, and a controller would never see its pods.
func selectorMatchesLabels() checker {
	r := builtinRule(RuleSelectorMatchesLabels)
	return checkerFunc(func(_ context.Context, s *objectSet) []Finding {
		var out []Finding
		for _, w := range s.workloads {
			if w.templatePath != "spec.template" {
				continue
			}
			gvk := w.doc.Object.GroupVersionKind()
			raw, found, _ := unstructured.NestedFieldNoCopy(w.doc.Object.Object, "spec", "selector")
			required := gvk.Group == "apps"
			if !found || raw == nil {
				if required {
					out = append(out, newFinding(r, w, nil, "spec.selector", fmt.Sprintf("%s %q has no spec.selector; %s requires one that matches the pod template's labels", w.ref.Kind, w.ref.Name, gvk.GroupVersion())))
				}
				continue
			}
			m, ok := raw.(map[string]any)
			if !ok {
				continue // a type error, reported when reading
			}
			if gvk.Group == "batch" && gvk.Kind == "Job" {
				if manual, _, _ := unstructured.NestedBool(w.doc.Object.Object, "spec", "manualSelector"); !manual {
					continue // the Job controller generates its selector
				}
			}
			var sel labels.Selector
			_, hasML := m["matchLabels"]
			_, hasME := m["matchExpressions"]
			if hasML || hasME || required {
				var ls metav1.LabelSelector
				if err := fromUnstructured(m, &ls); err != nil {
					continue
				}
				if len(ls.MatchLabels) == 0 && len(ls.MatchExpressions) == 0 {
					out = append(out, newFinding(r, w, nil, "spec.selector", fmt.Sprintf("%s %q has an empty selector; it must select the pod template's labels", w.ref.Kind, w.ref.Name)))
					continue
				}
				var err error
				if sel, err = metav1.LabelSelectorAsSelector(&ls); err != nil {
					out = append(out, newFinding(r, w, nil, "spec.selector", fmt.Sprintf("%s %q has an invalid selector: %v", w.ref.Kind, w.ref.Name, err)))
					continue
				}
			} else {
				// ReplicationController, DeploymentConfig: a plain label map.
				set := labels.Set{}
				for k, v := range m {
					s, ok := v.(string)
					if !ok {
						continue
					}
					set[k] = s
				}
				if len(set) == 0 {
					continue // defaults to the template's labels
				}
				sel = labels.SelectorFromSet(set)
			}
			if sel.Matches(labels.Set(w.template.Labels)) {
				continue
			}
			out = append(out, newFinding(r, w, nil, "spec.selector", fmt.Sprintf("the selector of %s %q (%s) does not match its pod template's labels (%s): the API server rejects it",
				w.ref.Kind, w.ref.Name, sel, labels.Set(w.template.Labels))))
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
		pdbAllowsDisruption(),
		networkPolicy(),
		rootGroup(),
		sensitiveHostPaths(),
		selectorMatchesLabels(),
	}
	if len(allowed) > 0 {
		cs = append(cs, allowedRegistries(allowed))
	}
	return cs
}
