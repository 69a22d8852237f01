package policy

import (
	"errors"
	"fmt"
	"strings"
	"time"

	admissionv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// AdmissionPolicyPrefix starts the name of every generated policy; the
// rest is the built-in rule id.
const AdmissionPolicyPrefix = "devctl-"

// ErrNoNamespace is returned by AdmissionPolicies without a namespace.
var ErrNoNamespace = errors.New("a namespace is required to bind admission policies")

// celRule is a built-in rule expressed in CEL. The messages equal the
// local rule's (see rules.go).
type celRule struct {
	id        string
	resources []admissionv1.NamedRuleWithOperations
	variables []admissionv1.Variable
	expr      string
	message   string // messageExpression
}

func resourceRule(group string, resources ...string) admissionv1.NamedRuleWithOperations {
	return admissionv1.NamedRuleWithOperations{RuleWithOperations: admissionv1.RuleWithOperations{
		Operations: []admissionv1.OperationType{admissionv1.Create, admissionv1.Update},
		Rule:       admissionv1.Rule{APIGroups: []string{group}, APIVersions: []string{"v1"}, Resources: resources},
	}}
}

var (
	allWorkloads = []admissionv1.NamedRuleWithOperations{
		resourceRule("", "pods", "replicationcontrollers"),
		resourceRule("apps", "deployments", "statefulsets", "daemonsets", "replicasets"),
		resourceRule("batch", "jobs", "cronjobs"),
	}
	longRunningWorkloads = []admissionv1.NamedRuleWithOperations{
		resourceRule("", "pods", "replicationcontrollers"),
		resourceRule("apps", "deployments", "statefulsets", "daemonsets", "replicasets"),
	}
	podSpecVar = admissionv1.Variable{Name: "spec", Expression: "object.kind == 'Pod' ? object.spec : " +
		"(object.kind == 'CronJob' ? object.spec.jobTemplate.spec.template.spec : object.spec.template.spec)"}
	allContainersVar = admissionv1.Variable{Name: "containers", Expression: "variables.spec.containers + " +
		"(has(variables.spec.initContainers) ? variables.spec.initContainers : [])"}
	containersVar = admissionv1.Variable{Name: "containers", Expression: "variables.spec.containers"}
)

func containerCEL(id string, resources []admissionv1.NamedRuleWithOperations, containers admissionv1.Variable, ok, msgTail string) celRule {
	return celRule{
		id:        id,
		resources: resources,
		variables: []admissionv1.Variable{podSpecVar, containers,
			{Name: "bad", Expression: "variables.containers.filter(c, !(" + ok + "))"}},
		expr:    "size(variables.bad) == 0",
		message: `'container "' + variables.bad[0].name + '" ` + msgTail,
	}
}

// resourcesCEL names the missing resources as the local rule does:
// "must set resources.limits.memory", or cpu and memory.
func resourcesCEL(id, field string) celRule {
	has := func(r string) string {
		return "has(c.resources) && has(c.resources." + field + ") && '" + r + "' in c.resources." + field
	}
	c := containerCEL(id, allWorkloads, allContainersVar, has("cpu")+" && "+has("memory"), "")
	bad := "variables.bad[0]"
	c.variables = append(c.variables, admissionv1.Variable{Name: "missing", Expression: "['cpu', 'memory'].filter(r, !has(" + bad + ".resources) || !has(" + bad + ".resources." + field + ") || !(r in " + bad + ".resources." + field + "))"})
	c.message = `'container "' + variables.bad[0].name + '" must set ' + variables.missing.map(r, 'resources.` + field + `.' + r).join(' and ')`
	return c
}

func requiredLabelsList() string {
	q := make([]string, len(RequiredLabels))
	for i, l := range RequiredLabels {
		q[i] = "'" + l + "'"
	}
	return "[" + strings.Join(q, ", ") + "]"
}

var celRules = []celRule{
	containerCEL(RuleReadOnlyRootFilesystem, allWorkloads, allContainersVar,
		"has(c.securityContext) && has(c.securityContext.readOnlyRootFilesystem) && c.securityContext.readOnlyRootFilesystem == true",
		`must set securityContext.readOnlyRootFilesystem=true'`),
	resourcesCEL(RuleResourceRequests, "requests"),
	resourcesCEL(RuleResourceLimits, "limits"),
	containerCEL(RuleReadinessProbe, longRunningWorkloads, containersVar, "has(c.readinessProbe)", `must set readinessProbe'`),
	containerCEL(RuleLivenessProbe, longRunningWorkloads, containersVar, "has(c.livenessProbe)", `must set livenessProbe'`),
	containerCEL(RuleImageTag, allWorkloads, allContainersVar,
		"c.image.contains('@') || (c.image.lastIndexOf(':') > c.image.lastIndexOf('/') && !c.image.endsWith(':latest'))",
		`image \"' + variables.bad[0].image + '\" must be pinned to a tag other than latest or a digest'`),
	{
		id:        RuleRequiredLabels,
		resources: allWorkloads,
		variables: []admissionv1.Variable{{Name: "missing", Expression: requiredLabelsList() +
			".filter(l, !has(object.metadata.labels) || !(l in object.metadata.labels) || object.metadata.labels[l] == '')"}},
		expr:    "size(variables.missing) == 0",
		message: "'missing required labels: ' + variables.missing.join(', ')",
	},
}

// notOwned skips objects a controller created: their owner was checked.
var notOwned = admissionv1.MatchCondition{Name: "not-owned-by-a-controller",
	Expression: "!has(object.metadata.ownerReferences) || size(object.metadata.ownerReferences) == 0"}

// AdmissionPolicies returns the built-in rules that CEL can express as
// ValidatingAdmissionPolicies with bindings that deny violations in
// namespace. Rules that need other objects (PodDisruptionBudget,
// NetworkPolicy) stay local-only; Pod Security is enforced in the cluster
// by the pod-security-admission controller itself: label the namespace
// with PodSecurityLabels.
func AdmissionPolicies(namespace string) ([]runtime.Object, error) {
	return AdmissionPoliciesWaived(namespace, nil, time.Time{})
}

// AdmissionPoliciesWaived is AdmissionPolicies with the waivers in force
// at now excluded from each rule's binding (by kind and name), so that
// admission lets through exactly what `devctl check` waives: a waiver that
// has expired, names another namespace or waives a strict rule excludes
// nothing. The API server has no clock in CEL: an exclusion stays until
// the policies are installed again (every devctl up), so a waiver that
// expires while an environment runs still admits its object until then.
func AdmissionPoliciesWaived(namespace string, waivers []Waiver, now time.Time) ([]runtime.Object, error) {
	if namespace == "" {
		return nil, ErrNoNamespace
	}
	fail := admissionv1.Fail
	equivalent := admissionv1.Equivalent
	var out []runtime.Object
	for _, c := range celRules {
		r := builtinRule(c.id)
		name := AdmissionPolicyPrefix + c.id
		p := &admissionv1.ValidatingAdmissionPolicy{
			TypeMeta: metav1.TypeMeta{APIVersion: "admissionregistration.k8s.io/v1", Kind: "ValidatingAdmissionPolicy"},
			ObjectMeta: metav1.ObjectMeta{Name: name,
				Labels:      map[string]string{"app.kubernetes.io/managed-by": "devctl"},
				Annotations: map[string]string{AnnotationSeverity: r.Severity.String(), AnnotationFix: r.Fix, "policy.devctl.dev/title": r.Title}},
			Spec: admissionv1.ValidatingAdmissionPolicySpec{
				FailurePolicy: &fail,
				MatchConstraints: &admissionv1.MatchResources{
					NamespaceSelector: &metav1.LabelSelector{},
					ObjectSelector:    &metav1.LabelSelector{},
					MatchPolicy:       &equivalent,
					ResourceRules:     c.resources,
				},
				MatchConditions: []admissionv1.MatchCondition{notOwned},
				Variables:       c.variables,
				Validations: []admissionv1.Validation{{
					Expression:        c.expr,
					MessageExpression: c.message,
					Message:           r.Title,
				}},
			},
		}
		b := &admissionv1.ValidatingAdmissionPolicyBinding{
			TypeMeta:   metav1.TypeMeta{APIVersion: "admissionregistration.k8s.io/v1", Kind: "ValidatingAdmissionPolicyBinding"},
			ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("%s-%s", name, namespace), Labels: map[string]string{"app.kubernetes.io/managed-by": "devctl"}},
			Spec: admissionv1.ValidatingAdmissionPolicyBindingSpec{
				PolicyName:        name,
				ValidationActions: []admissionv1.ValidationAction{admissionv1.Deny},
				MatchResources: &admissionv1.MatchResources{
					NamespaceSelector:    &metav1.LabelSelector{MatchLabels: map[string]string{corev1.LabelMetadataName: namespace}},
					ObjectSelector:       &metav1.LabelSelector{},
					ExcludeResourceRules: waiverExclusions(c.id, namespace, waivers, now),
				},
			},
		}
		out = append(out, p, b)
	}
	return out, nil
}

// waiverExclusions are the objects the waivers of rule in force at now
// exempt from its binding in namespace.
func waiverExclusions(rule, namespace string, waivers []Waiver, now time.Time) []admissionv1.NamedRuleWithOperations {
	var out []admissionv1.NamedRuleWithOperations
	if builtinRule(rule).Strict {
		return nil
	}
	for _, w := range waivers {
		if w.Rule != rule || (w.Target.Namespace != "" && w.Target.Namespace != namespace) {
			continue
		}
		exp := w.expires
		if exp.IsZero() {
			var err error
			if exp, err = parseExpiry(w.Expires); err != nil {
				continue
			}
		}
		if !now.Before(exp) {
			continue
		}
		resource := "*"
		if w.Target.Kind != "" {
			resource = metaResource(schema.GroupVersionKind{Kind: w.Target.Kind}).Resource
		}
		r := admissionv1.NamedRuleWithOperations{RuleWithOperations: admissionv1.RuleWithOperations{
			Operations: []admissionv1.OperationType{admissionv1.OperationAll},
			Rule:       admissionv1.Rule{APIGroups: []string{"*"}, APIVersions: []string{"*"}, Resources: []string{resource}},
		}}
		if w.Target.Name != "" {
			r.ResourceNames = []string{w.Target.Name}
		}
		out = append(out, r)
	}
	return out
}

// PodSecurityLabels are the namespace labels that make the API server's
// own Pod Security admission enforce the restricted level, the same checks
// the pss-* rules run locally.
func PodSecurityLabels() map[string]string {
	return map[string]string{
		"pod-security.kubernetes.io/enforce":         "restricted",
		"pod-security.kubernetes.io/enforce-version": "latest",
		"pod-security.kubernetes.io/warn":            "restricted",
		"pod-security.kubernetes.io/warn-version":    "latest",
	}
}
