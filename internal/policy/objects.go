package policy

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync/atomic"

	autoscalingv1 "k8s.io/api/autoscaling/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation"
)

// objectSet is the input every checker sees: the documents that could be
// read, the workloads among them expanded to their pod templates, and an
// index of the objects that select pods (built once, so that cross-object
// rules take linear time).
type objectSet struct {
	docs []*Document
	// typed holds the decoded object of each document of a built-in kind
	// (a pointer to the k8s.io/api type), nil for others.
	typed     []any
	workloads []*workload
	index     *podSelectors
	// namespace is the namespace of objects that set none.
	namespace string
}

// Unchecked is an object the built-in rules have nothing to say about: a
// custom resource (or a kind at an API version the cluster does not
// serve) that runs no pods. Organisation rules still saw it.
type Unchecked struct {
	Object ObjectRef `json:"object"`
	Source Source    `json:"source"`
	Reason string    `json:"reason"`
}

// prepared is what reading one document produced.
type prepared struct {
	readable bool
	ref      ObjectRef
	typed    any
	workload *workload
	problems []fieldProblem // type errors make the document unreadable
	findings []Finding      // unknown fields, API versions
	// unchecked is set for kinds the built-in rules do not know.
	unchecked string
}

var (
	objectMetaType = reflect.TypeFor[metav1.ObjectMeta]()
	podSpecType    = reflect.TypeFor[corev1.PodSpec]()
)

// prepare validates a document against its kind's schema, decides whether
// the built-in rules know it, and expands a workload to its pod.
func prepare(d *Document, reg *kindRegistry) prepared {
	p := prepared{ref: d.Ref()}
	obj := d.Object.Object
	gvk := d.Object.GroupVersionKind()
	typ, known := reg.lookup(gvk)
	tmplPath, hasTemplate, required := findPodTemplate(gvk, obj)
	if required && !hasTemplate {
		p.problems = append(p.problems, fieldProblem{path: strings.Join(tmplPath, "."),
			msg: fmt.Sprintf("required: a %s runs the pods of its template (metadata.labels and spec.containers)", gvk.Kind)})
	}
	var tmpl *corev1.PodTemplateSpec
	if known {
		typed := decodeAs(obj, typ, nil, &p.problems)
		p.typed = typed.Interface()
		if hasTemplate {
			tmpl = templateOf(typed, tmplPath)
		}
	} else {
		meta := decodeAs(obj["metadata"], objectMetaType, rootPath("metadata"), &p.problems).Interface().(*metav1.ObjectMeta)
		if f, ok := apiVersionFinding(reg, gvk, p.ref); ok {
			f.doc = d
			p.findings = append(p.findings, f)
		}
		switch {
		case hasTemplate && tmplPath == nil: // a Pod at an unknown version
			spec := decodeAs(obj["spec"], podSpecType, rootPath("spec"), &p.problems).Interface().(*corev1.PodSpec)
			tmpl = &corev1.PodTemplateSpec{ObjectMeta: *meta, Spec: *spec}
		case hasTemplate:
			t, _ := nestedMap(obj, tmplPath...)
			tmpl = decodeAs(t, podTemplateType, rootPath(strings.Join(tmplPath, ".")), &p.problems).Interface().(*corev1.PodTemplateSpec)
		}
	}
	p.problems = append(p.problems, labelProblems("metadata.labels", d.Object.GetLabels())...)
	if tmpl != nil && tmplPath != nil {
		p.problems = append(p.problems, labelProblems(strings.Join(tmplPath, ".")+".metadata.labels", tmpl.Labels)...)
	}
	var typeErrors []fieldProblem
	for _, pr := range p.problems {
		if pr.unknown {
			p.findings = append(p.findings, Finding{Rule: RuleUnknownField, Severity: builtinRule(RuleUnknownField).Severity,
				Object: p.ref, Path: pr.path, Message: pr.msg, doc: d})
		} else {
			typeErrors = append(typeErrors, pr)
		}
	}
	p.problems = typeErrors
	if len(typeErrors) > 0 {
		sortProblems(p.problems)
		return p
	}
	p.readable = true
	if tmpl != nil {
		p.workload = newWorkload(d, p.ref, tmplPath, tmpl)
		return p
	}
	if !known {
		if reg.builtinGroup(gvk.Group) {
			p.unchecked = fmt.Sprintf("the API server does not serve %s %s", gvk.Kind, gvk.GroupVersion())
		} else {
			p.unchecked = fmt.Sprintf("custom resource (%s): no built-in rules, no pod template", gvk.GroupVersion())
		}
	}
	return p
}

// labelProblems are the labels the API server refuses: a key that is not
// a qualified name, a value that is not a label value (an e-mail address,
// a branch with a slash). Like a type error, the object cannot be applied.
func labelProblems(path string, labels map[string]string) []fieldProblem {
	var bad []string
	for k, v := range labels {
		if !plainQualifiedName(k) || !plainLabelValue(v) {
			bad = append(bad, k)
		}
	}
	if len(bad) == 0 {
		return nil
	}
	slices.Sort(bad)
	var out []fieldProblem
	for _, k := range bad {
		at := fmt.Sprintf("%s[%q]", path, k)
		if errs := validation.IsQualifiedName(k); len(errs) > 0 {
			out = append(out, fieldProblem{path: at, msg: fmt.Sprintf("%q is not a valid label key: %s", k, strings.Join(errs, "; "))})
		}
		if errs := validation.IsValidLabelValue(labels[k]); len(errs) > 0 {
			out = append(out, fieldProblem{path: at, msg: fmt.Sprintf("%q is not a valid label value, the API server refuses it: use at most 63 letters, digits, '-', '_' and '.', starting and ending with a letter or digit (replace '@' and '/')", labels[k])})
		}
	}
	return out
}

// plainLabelValue and plainQualifiedName accept, without a regular
// expression, labels that validation.IsValidLabelValue and
// validation.IsQualifiedName accept (the common case, every label of
// every object); a label they refuse goes to validation, which decides
// and says why.
func plainLabelValue(s string) bool {
	if s == "" {
		return true
	}
	if len(s) > validation.LabelValueMaxLength || !alnum(s[0]) || !alnum(s[len(s)-1]) {
		return false
	}
	for i := 1; i < len(s)-1; i++ {
		if c := s[i]; !alnum(c) && c != '-' && c != '_' && c != '.' {
			return false
		}
	}
	return true
}

func plainQualifiedName(s string) bool {
	prefix, name, found := strings.Cut(s, "/")
	if !found {
		name = prefix
	} else if !plainDNSSubdomain(prefix) {
		return false
	}
	return name != "" && plainLabelValue(name)
}

// plainDNSSubdomain: lower-case letters, digits, '-' and '.'; each part
// between dots starts and ends with a letter or digit.
func plainDNSSubdomain(s string) bool {
	if s == "" || len(s) > validation.DNS1123SubdomainMaxLength {
		return false
	}
	for part := range strings.SplitSeq(s, ".") {
		if part == "" || !lowerAlnum(part[0]) || !lowerAlnum(part[len(part)-1]) {
			return false
		}
		for i := 1; i < len(part)-1; i++ {
			if c := part[i]; !lowerAlnum(c) && c != '-' {
				return false
			}
		}
	}
	return true
}

func alnum(c byte) bool { return lowerAlnum(c) || (c >= 'A' && c <= 'Z') }

func lowerAlnum(c byte) bool { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') }

// apiVersionFinding reports a built-in kind at a version the API server
// does not serve (apps/v1beta1 Deployment, v1 Deployment) or a kind a
// built-in group does not have (v1 Deploymnet).
func apiVersionFinding(reg *kindRegistry, gvk schema.GroupVersionKind, ref ObjectRef) (Finding, bool) {
	r := builtinRule(RuleAPIVersion)
	f := Finding{Rule: r.ID, Severity: r.Severity, Object: ref, Path: "apiVersion"}
	served := reg.servedAt(gvk.Kind)
	switch {
	case len(served) > 0 && reg.builtinGroup(gvk.Group):
		f.Message = fmt.Sprintf("the API server does not serve %s as %s: use apiVersion %s", gvk.Kind, gvk.GroupVersion(), strings.Join(served, " or "))
	case len(served) == 0 && reg.builtinGroup(gvk.Group):
		f.Path = "kind"
		f.Message = fmt.Sprintf("%s has no kind %q", gvk.GroupVersion(), gvk.Kind)
		var kinds []string
		for k := range reg.served {
			kinds = append(kinds, k)
		}
		if s := closest(gvk.Kind, kinds); s != "" {
			f.Message += fmt.Sprintf(" (did you mean %q, served as %s?)", s, strings.Join(reg.servedAt(s), " or "))
		}
	default:
		return Finding{}, false
	}
	return f, true
}

// podSelectors indexes, per namespace, the objects that select pods by
// label: NetworkPolicies and PodDisruptionBudgets, and the
// HorizontalPodAutoscalers by their target.
type podSelectors struct {
	netpols map[string]*selectorIndex[*netpol]
	pdbs    map[string]*selectorIndex[*pdb]
	hpaMin  map[ObjectRef]int64 // target (namespace/kind/name) → minReplicas
}

type netpol struct {
	doc             *Document
	name            string
	ingress, egress bool
}

type pdb struct {
	doc *Document
	ref ObjectRef
	obj *policyv1.PodDisruptionBudget
}

func (s *objectSet) nsOf(d *Document) string {
	if ns := d.Object.GetNamespace(); ns != "" {
		return ns
	}
	return s.namespace
}

// buildIndex reads the NetworkPolicies, PodDisruptionBudgets and
// HorizontalPodAutoscalers once.
func (s *objectSet) buildIndex() {
	x := &podSelectors{
		netpols: map[string]*selectorIndex[*netpol]{},
		pdbs:    map[string]*selectorIndex[*pdb]{},
		hpaMin:  map[ObjectRef]int64{},
	}
	for i, d := range s.docs {
		ns := s.nsOf(d)
		switch o := s.typed[i].(type) {
		case *networkingv1.NetworkPolicy:
			n := &netpol{doc: d, name: o.Name}
			types := o.Spec.PolicyTypes
			if len(types) == 0 {
				// The API server's default: Ingress always, Egress when
				// egress rules are given.
				types = []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}
				if len(o.Spec.Egress) > 0 {
					types = append(types, networkingv1.PolicyTypeEgress)
				}
			}
			n.ingress = slices.Contains(types, networkingv1.PolicyTypeIngress)
			n.egress = slices.Contains(types, networkingv1.PolicyTypeEgress)
			idx := x.netpols[ns]
			if idx == nil {
				idx = &selectorIndex[*netpol]{}
				x.netpols[ns] = idx
			}
			idx.add(&o.Spec.PodSelector, n)
		case *policyv1.PodDisruptionBudget:
			if o.Spec.Selector == nil {
				continue // a null selector selects no pods
			}
			idx := x.pdbs[ns]
			if idx == nil {
				idx = &selectorIndex[*pdb]{}
				x.pdbs[ns] = idx
			}
			idx.add(o.Spec.Selector, &pdb{doc: d, ref: d.Ref(), obj: o})
		case *autoscalingv2.HorizontalPodAutoscaler:
			x.addHPA(ns, o.Spec.ScaleTargetRef.Kind, o.Spec.ScaleTargetRef.Name, o.Spec.MinReplicas)
		case *autoscalingv1.HorizontalPodAutoscaler:
			x.addHPA(ns, o.Spec.ScaleTargetRef.Kind, o.Spec.ScaleTargetRef.Name, o.Spec.MinReplicas)
		}
	}
	s.index = x
}

func (x *podSelectors) addHPA(ns, kind, name string, minReplicas *int32) {
	m := int64(1)
	if minReplicas != nil {
		m = int64(*minReplicas)
	}
	target := ObjectRef{Kind: kind, Namespace: ns, Name: name}
	x.hpaMin[target] = max(x.hpaMin[target], m)
}

// templateOf returns the pod template at path in a decoded object (a
// pointer to a k8s.io/api struct); for a Pod (path nil), the pod itself.
func templateOf(typed reflect.Value, path []string) *corev1.PodTemplateSpec {
	if pod, ok := typed.Interface().(*corev1.Pod); ok {
		return &corev1.PodTemplateSpec{ObjectMeta: pod.ObjectMeta, Spec: pod.Spec}
	}
	v := typed
	for _, key := range path {
		for v.Kind() == reflect.Pointer {
			if v.IsNil() {
				return nil
			}
			v = v.Elem()
		}
		if v.Kind() != reflect.Struct {
			return nil
		}
		f, ok := structInfoFor(v.Type()).fields[key]
		if !ok {
			return nil
		}
		v = v.FieldByIndex(f.index)
	}
	if v.Kind() == reflect.Pointer {
		if v.IsNil() {
			return nil
		}
		v = v.Elem()
	}
	t, ok := v.Addr().Interface().(*corev1.PodTemplateSpec)
	if !ok {
		return nil
	}
	return t
}

// hpaMinReplicas returns the minReplicas of a HorizontalPodAutoscaler
// targeting the workload.
func (s *objectSet) hpaMinReplicas(w *workload) (int64, bool) {
	m, ok := s.index.hpaMin[ObjectRef{Kind: w.ref.Kind, Namespace: s.nsOf(w.doc), Name: w.ref.Name}]
	return m, ok
}

// replicas is how many pods a long-running workload runs at least (its
// replicas, or its autoscaler's minimum), and false when that is not
// known (DaemonSets run one per node).
func (s *objectSet) replicas(w *workload) (int64, bool) {
	if !w.longRunning || w.templatePath == "" || w.ref.Kind == "DaemonSet" {
		return 0, false
	}
	r := int64(1)
	if w.replicas != nil {
		r = *w.replicas
	}
	if m, ok := s.hpaMinReplicas(w); ok && m > r {
		r = m
	}
	return r, true
}

// selectorIndex finds the label selectors that match a pod's labels
// without trying every selector: a selector with matchLabels is filed
// under one of its key=value pairs and only tried for pods that have it.
type selectorIndex[T any] struct {
	entries []selectorEntry[T]
	byLabel map[string][]int
	scan    []int // selectors without matchLabels: tried for every pod
	// tries counts selector evaluations (it shows the index at work).
	tries atomic.Int64
}

type selectorEntry[T any] struct {
	sel  labels.Selector
	item T
}

func (x *selectorIndex[T]) add(ls *metav1.LabelSelector, item T) {
	sel, err := metav1.LabelSelectorAsSelector(ls)
	if err != nil {
		return // an invalid selector matches nothing (the API server rejects it)
	}
	i := len(x.entries)
	x.entries = append(x.entries, selectorEntry[T]{sel: sel, item: item})
	if len(ls.MatchLabels) == 0 {
		x.scan = append(x.scan, i)
		return
	}
	keys := make([]string, 0, len(ls.MatchLabels))
	for k := range ls.MatchLabels {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	if x.byLabel == nil {
		x.byLabel = map[string][]int{}
	}
	key := keys[0] + "=" + ls.MatchLabels[keys[0]]
	x.byLabel[key] = append(x.byLabel[key], i)
}

// matching returns the items whose selector matches the labels, in the
// order they were added.
func (x *selectorIndex[T]) matching(podLabels map[string]string) []T {
	if x == nil {
		return nil
	}
	var hits []int
	set := labels.Set(podLabels)
	tries := len(x.scan)
	for _, i := range x.scan {
		if x.entries[i].sel.Matches(set) {
			hits = append(hits, i)
		}
	}
	for k, v := range podLabels {
		for _, i := range x.byLabel[k+"="+v] {
			tries++
			if x.entries[i].sel.Matches(set) {
				hits = append(hits, i)
			}
		}
	}
	x.tries.Add(int64(tries))
	slices.Sort(hits)
	out := make([]T, len(hits))
	for j, i := range hits {
		out[j] = x.entries[i].item
	}
	return out
}
