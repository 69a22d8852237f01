//go:build !devctl_lean

package policy

import (
	"context"
	"fmt"
	"strings"
	"sync"

	admissionv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apiserver/pkg/admission"
	"k8s.io/apiserver/pkg/admission/plugin/cel"
	"k8s.io/apiserver/pkg/admission/plugin/policy/generic"
	"k8s.io/apiserver/pkg/admission/plugin/policy/matching"
	"k8s.io/apiserver/pkg/admission/plugin/policy/validating"
	"k8s.io/apiserver/pkg/admission/plugin/webhook/matchconditions"
	celconfig "k8s.io/apiserver/pkg/apis/cel"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/cel/environment"
	listersv1 "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
)

// vapChecker evaluates ValidatingAdmissionPolicies the way the API server
// does: the policy's matchConstraints, its bindings' matchResources,
// paramRef and validationActions, then the compiled CEL validations
// (k8s.io/apiserver's validator, which does none of the former itself).
type vapChecker struct {
	policies  []*compiledPolicy
	params    []*unstructured.Unstructured
	namespace string
	matcher   generic.PolicyMatcher
	nsIndexer cache.Indexer
	objIfaces admission.ObjectInterfaces
	mu        sync.Mutex // guards nsIndexer updates
}

type compiledPolicy struct {
	policy    *admissionv1.ValidatingAdmissionPolicy
	bindings  []*admissionv1.ValidatingAdmissionPolicyBinding
	validator validating.Validator
	rule      Rule
}

var compositionEnv = sync.OnceValue(func() *environment.EnvSet {
	return environment.MustBaseEnvSet(environment.DefaultCompatibilityVersion())
})

// compileVAP compiles a policy with the API server's CEL environment.
func compileVAP(p *admissionv1.ValidatingAdmissionPolicy) (validating.Validator, error) {
	hasParams := p.Spec.ParamKind != nil
	vars := cel.OptionalVariableDeclarations{HasParams: hasParams, HasAuthorizer: true}
	msgVars := cel.OptionalVariableDeclarations{HasParams: hasParams}
	c, err := cel.NewCompositedCompiler(compositionEnv())
	if err != nil {
		return nil, fmt.Errorf("compile policy %q: %w", p.Name, err)
	}
	named := make([]cel.NamedExpressionAccessor, len(p.Spec.Variables))
	for i, v := range p.Spec.Variables {
		named[i] = &validating.Variable{Name: v.Name, Expression: v.Expression}
	}
	c.CompileAndStoreVariables(named, vars, environment.StoredExpressions)
	var matcher matchconditions.Matcher
	if len(p.Spec.MatchConditions) > 0 {
		acc := make([]cel.ExpressionAccessor, len(p.Spec.MatchConditions))
		for i := range p.Spec.MatchConditions {
			acc[i] = (*matchconditions.MatchCondition)(&p.Spec.MatchConditions[i])
		}
		matcher = matchconditions.NewMatcher(c.CompileCondition(acc, vars, environment.StoredExpressions), p.Spec.FailurePolicy, "policy", "validate", p.Name)
	}
	validations := make([]cel.ExpressionAccessor, len(p.Spec.Validations))
	messages := make([]cel.ExpressionAccessor, len(p.Spec.Validations))
	for i, v := range p.Spec.Validations {
		validations[i] = &validating.ValidationCondition{Expression: v.Expression, Message: v.Message, Reason: v.Reason}
		if v.MessageExpression != "" {
			messages[i] = &validating.MessageExpressionCondition{MessageExpression: v.MessageExpression}
		}
	}
	audit := make([]cel.ExpressionAccessor, len(p.Spec.AuditAnnotations))
	for i, a := range p.Spec.AuditAnnotations {
		audit[i] = &validating.AuditAnnotationCondition{Key: a.Key, ValueExpression: a.ValueExpression}
	}
	v := validating.NewValidator(
		c.CompileCondition(validations, vars, environment.StoredExpressions),
		matcher,
		c.CompileCondition(audit, vars, environment.StoredExpressions),
		c.CompileCondition(messages, msgVars, environment.StoredExpressions),
		p.Spec.FailurePolicy, nil)
	if err := v.CompileError(); err != nil {
		return nil, fmt.Errorf("compile policy %q: %w: %w", p.Name, ErrInvalidPolicy, err)
	}
	// The validator keeps per-expression compile errors to report at
	// evaluation; surface them now so a broken rules folder fails early.
	for _, check := range compileErrors(c, p, vars, msgVars) {
		return nil, fmt.Errorf("compile policy %q: %w: %s", p.Name, ErrInvalidPolicy, check)
	}
	return v, nil
}

// compileErrors returns the compile errors of every expression of p.
func compileErrors(c *cel.CompositedCompiler, p *admissionv1.ValidatingAdmissionPolicy, vars, msgVars cel.OptionalVariableDeclarations) []string {
	var out []string
	add := func(what, expr string, acc cel.ExpressionAccessor, decl cel.OptionalVariableDeclarations) {
		if r := c.CompileCELExpression(acc, decl, environment.StoredExpressions); r.Error != nil {
			out = append(out, fmt.Sprintf("%s %q: %v", what, expr, r.Error))
		}
	}
	for _, v := range p.Spec.Validations {
		add("validation", v.Expression, &validating.ValidationCondition{Expression: v.Expression}, vars)
		if v.MessageExpression != "" {
			add("messageExpression", v.MessageExpression, &validating.MessageExpressionCondition{MessageExpression: v.MessageExpression}, msgVars)
		}
	}
	for i := range p.Spec.MatchConditions {
		add("matchCondition", p.Spec.MatchConditions[i].Expression, (*matchconditions.MatchCondition)(&p.Spec.MatchConditions[i]), vars)
	}
	return out
}

func newVAPChecker(policies []*admissionv1.ValidatingAdmissionPolicy, bindings []*admissionv1.ValidatingAdmissionPolicyBinding, params []*unstructured.Unstructured, namespace string) (*vapChecker, []Rule, error) {
	idx := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{})
	scheme := runtime.NewScheme()
	v := &vapChecker{
		params:    params,
		namespace: namespace,
		nsIndexer: idx,
		matcher:   generic.NewPolicyMatcher(matching.NewMatcher(listersv1.NewNamespaceLister(idx), nil)),
		objIfaces: admission.NewObjectInterfacesFromScheme(scheme),
	}
	var rules []Rule
	for _, p := range policies {
		val, err := compileVAP(p)
		if err != nil {
			return nil, nil, err
		}
		cp := &compiledPolicy{policy: p, validator: val, rule: Rule{ID: p.Name, Severity: High, Title: p.Name, Fix: p.Annotations[AnnotationFix]}}
		if t := p.Annotations["policy.devctl.dev/title"]; t != "" {
			cp.rule.Title = t
		}
		if s := p.Annotations[AnnotationSeverity]; s != "" {
			sev, err := ParseSeverity(s)
			if err != nil {
				return nil, nil, fmt.Errorf("policy %q: annotation %s: %w", p.Name, AnnotationSeverity, err)
			}
			cp.rule.Severity = sev
		}
		for _, b := range bindings {
			if b.Spec.PolicyName == p.Name {
				cp.bindings = append(cp.bindings, b)
			}
		}
		v.policies = append(v.policies, cp)
		rules = append(rules, cp.rule)
	}
	return v, rules, nil
}

// target is one object admission would see: a document, or a pod its
// controller would create.
type target struct {
	obj    *unstructured.Unstructured
	parent *Document
	path   string // path of the object inside parent ("" for the parent itself)
}

func (v *vapChecker) check(ctx context.Context, s *objectSet) ([]Finding, error) {
	var targets []target
	for _, d := range s.docs {
		targets = append(targets, target{obj: d.Object, parent: d})
	}
	for _, w := range s.workloads {
		if w.templatePath == "" {
			continue
		}
		pod := podFromTemplate(w)
		targets = append(targets, target{obj: pod, parent: w.doc, path: w.templatePath})
	}
	v.mu.Lock()
	for _, t := range targets {
		v.addNamespace(t.obj)
	}
	v.mu.Unlock()

	var out []Finding
	seen := map[string]bool{}
	for _, t := range targets {
		fs, err := v.evaluate(ctx, t)
		if err != nil {
			return nil, err
		}
		for _, f := range fs {
			key := f.Rule + "\x00" + f.Object.String() + "\x00" + f.Message
			if !seen[key] {
				seen[key] = true
				out = append(out, f)
			}
		}
	}
	return out, nil
}

func (v *vapChecker) nsOf(obj *unstructured.Unstructured) string {
	if ns := obj.GetNamespace(); ns != "" {
		return ns
	}
	return v.namespace
}

func (v *vapChecker) addNamespace(obj *unstructured.Unstructured) {
	if obj.GetKind() == "Namespace" && obj.GetAPIVersion() == "v1" {
		l := map[string]string{corev1.LabelMetadataName: obj.GetName()}
		for k, val := range obj.GetLabels() {
			l[k] = val
		}
		_ = v.nsIndexer.Update(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: obj.GetName(), Labels: l}})
		return
	}
	ns := v.nsOf(obj)
	if ns == "" {
		return
	}
	if _, exists, _ := v.nsIndexer.GetByKey(ns); !exists {
		_ = v.nsIndexer.Add(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns, Labels: map[string]string{corev1.LabelMetadataName: ns}}})
	}
}

func podFromTemplate(w *workload) *unstructured.Unstructured {
	path := strings.Split(w.templatePath, ".")
	tmpl, _, _ := unstructured.NestedMap(w.doc.Object.Object, path...)
	pod := &unstructured.Unstructured{Object: tmpl}
	pod.SetAPIVersion("v1")
	pod.SetKind("Pod")
	pod.SetName(w.doc.Object.GetName())
	pod.SetNamespace(w.doc.Object.GetNamespace())
	// Like a controller-created pod, it is owned by its parent.
	ctrl := true
	pod.SetOwnerReferences([]metav1.OwnerReference{{APIVersion: w.doc.Object.GetAPIVersion(),
		Kind: w.doc.Object.GetKind(), Name: w.doc.Object.GetName(), Controller: &ctrl}})
	return pod
}

func (v *vapChecker) evaluate(ctx context.Context, t target) ([]Finding, error) {
	gvk := t.obj.GroupVersionKind()
	gvr := metaResource(gvk)
	ns := v.nsOf(t.obj)
	if isClusterScoped(gvk) {
		ns = ""
	}
	attrs := admission.NewAttributesRecord(t.obj, nil, gvk, ns, t.obj.GetName(), gvr, "", admission.Create,
		&metav1.CreateOptions{}, false, &user.DefaultInfo{Name: "devctl"})
	var nsObj *corev1.Namespace
	if ns != "" {
		if o, ok, _ := v.nsIndexer.GetByKey(ns); ok {
			nsObj = o.(*corev1.Namespace)
		}
	}
	var out []Finding
	for _, p := range v.policies {
		ok, matchedGVR, matchedGVK, err := v.matcher.DefinitionMatches(attrs, v.objIfaces, validating.NewValidatingAdmissionPolicyAccessor(p.policy))
		if err != nil {
			return nil, fmt.Errorf("policy %q: match constraints: %w", p.policy.Name, err)
		}
		if !ok {
			continue
		}
		for _, b := range p.bindings {
			ok, err := v.matcher.BindingMatches(attrs, v.objIfaces, validating.NewValidatingAdmissionPolicyBindingAccessor(b))
			if err != nil {
				return nil, fmt.Errorf("binding %q: match resources: %w", b.Name, err)
			}
			if !ok {
				continue
			}
			params, denyMissing, err := v.paramsFor(p.policy, b, ns)
			if err != nil {
				return nil, err
			}
			if len(params) == 0 && p.policy.Spec.ParamKind != nil {
				if denyMissing {
					out = append(out, v.finding(p, b, t, fmt.Sprintf("no params found for policy binding %q with paramRef; add the param object to the rules folder", b.Name)))
				}
				continue
			}
			if len(params) == 0 {
				params = []runtime.Object{nil}
			}
			va := &admission.VersionedAttributes{Attributes: attrs, VersionedKind: matchedGVK, VersionedObject: admission.NewLazyObject(t.obj)}
			for _, param := range params {
				res := p.validator.Validate(ctx, matchedGVR, va, param, nsObj, celconfig.RuntimeCELCostBudget, nil)
				for i, d := range res.Decisions {
					if d.Action != validating.ActionDeny {
						continue
					}
					msg := d.Message
					if msg == "" && i < len(p.policy.Spec.Validations) {
						msg = fmt.Sprintf("failed expression: %s", p.policy.Spec.Validations[i].Expression)
					}
					out = append(out, v.finding(p, b, t, msg))
				}
			}
		}
	}
	return out, nil
}

// finding turns a denial into a finding whose severity follows the
// binding's validationActions.
func (v *vapChecker) finding(p *compiledPolicy, b *admissionv1.ValidatingAdmissionPolicyBinding, t target, msg string) Finding {
	sev := Info
	for _, a := range b.Spec.ValidationActions {
		switch a {
		case admissionv1.Deny:
			sev = max(sev, p.rule.Severity)
		case admissionv1.Warn:
			sev = max(sev, min(p.rule.Severity, Medium))
		case admissionv1.Audit:
		}
	}
	return Finding{Rule: p.rule.ID, Severity: sev, Object: t.parent.Ref(), Path: t.path, Message: msg, Fix: p.rule.Fix, doc: t.parent}
}

// paramsFor resolves a binding's paramRef against the param objects of
// the rules folder.
func (v *vapChecker) paramsFor(p *admissionv1.ValidatingAdmissionPolicy, b *admissionv1.ValidatingAdmissionPolicyBinding, ns string) ([]runtime.Object, bool, error) {
	if p.Spec.ParamKind == nil {
		return nil, false, nil
	}
	ref := b.Spec.ParamRef
	if ref == nil {
		return nil, true, nil
	}
	deny := ref.ParameterNotFoundAction == nil || *ref.ParameterNotFoundAction == admissionv1.DenyAction
	var sel = labels.Everything()
	if ref.Selector != nil {
		s, err := metav1.LabelSelectorAsSelector(ref.Selector)
		if err != nil {
			return nil, false, fmt.Errorf("binding %q: paramRef.selector: %w", b.Name, err)
		}
		sel = s
	}
	var out []runtime.Object
	for _, o := range v.params {
		if o.GetAPIVersion() != p.Spec.ParamKind.APIVersion || o.GetKind() != p.Spec.ParamKind.Kind {
			continue
		}
		pns := ref.Namespace
		if pns == "" && o.GetNamespace() != "" {
			pns = ns
		}
		if o.GetNamespace() != "" && o.GetNamespace() != pns {
			continue
		}
		if ref.Name != "" && o.GetName() != ref.Name {
			continue
		}
		if ref.Name == "" && !sel.Matches(labels.Set(o.GetLabels())) {
			continue
		}
		out = append(out, o)
	}
	return out, deny, nil
}
