package policy

import (
	"context"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	psapi "k8s.io/pod-security-admission/api"
	pss "k8s.io/pod-security-admission/policy"
)

// Pod Security Standards run through the API server's own
// pod-security-admission checks at the restricted level (latest version),
// so a pod that passes here passes a namespace labelled
// pod-security.kubernetes.io/enforce=restricted.

// PSSRulePrefix starts the id of every Pod Security rule.
const PSSRulePrefix = "pss-"

type pssRule struct {
	Rule
	reason string // the check's ForbiddenReason
	// podField / containerField are the fields to report (relative to the
	// pod spec / the container).
	podField, containerField string
}

var pssRules = []pssRule{
	{Rule{ID: "pss-privileged", Severity: Critical, Title: "Containers are not privileged"}, "privileged", "", "securityContext.privileged"},
	{Rule{ID: "pss-host-namespaces", Severity: Critical, Title: "Pods do not share host namespaces (hostNetwork, hostPID, hostIPC)"}, "host namespaces", "hostNetwork", ""},
	{Rule{ID: "pss-volumes", Severity: High, Title: "Pods use only allowed volume types (no hostPath)"}, "restricted volume types", "volumes", ""},
	{Rule{ID: "pss-host-path", Severity: High, Title: "Pods do not mount hostPath volumes"}, "hostPath volumes", "volumes", ""},
	{Rule{ID: "pss-host-ports", Severity: High, Title: "Containers do not use host ports"}, "hostPort", "", "ports"},
	{Rule{ID: "pss-allow-privilege-escalation", Severity: High, Title: "Containers disallow privilege escalation"}, "allowPrivilegeEscalation != false", "", "securityContext.allowPrivilegeEscalation"},
	{Rule{ID: "pss-run-as-non-root", Severity: High, Title: "Containers run as non-root"}, "runAsNonRoot != true", "securityContext.runAsNonRoot", "securityContext.runAsNonRoot"},
	{Rule{ID: "pss-run-as-user", Severity: High, Title: "Containers do not run as UID 0"}, "runAsUser=0", "securityContext.runAsUser", "securityContext.runAsUser"},
	{Rule{ID: "pss-capabilities", Severity: High, Title: "Containers drop ALL capabilities and add at most NET_BIND_SERVICE"}, "unrestricted capabilities", "", "securityContext.capabilities"},
	{Rule{ID: "pss-capabilities-baseline", Severity: High, Title: "Containers add no non-default capabilities"}, "non-default capabilities", "", "securityContext.capabilities.add"},
	{Rule{ID: "pss-seccomp-profile", Severity: High, Title: "Pods use the RuntimeDefault or Localhost seccomp profile"}, "seccompProfile", "securityContext.seccompProfile", "securityContext.seccompProfile"},
	{Rule{ID: "pss-proc-mount", Severity: High, Title: "Containers use the default /proc mount"}, "procMount", "", "securityContext.procMount"},
	{Rule{ID: "pss-selinux", Severity: High, Title: "Pods set no custom SELinux user or role"}, "seLinuxOptions", "securityContext.seLinuxOptions", "securityContext.seLinuxOptions"},
	{Rule{ID: "pss-apparmor", Severity: High, Title: "Pods do not override the AppArmor profile"}, "forbidden AppArmor profile", "securityContext.appArmorProfile", "securityContext.appArmorProfile"},
	{Rule{ID: "pss-sysctls", Severity: High, Title: "Pods set only safe sysctls"}, "forbidden sysctls", "securityContext.sysctls", ""},
	{Rule{ID: "pss-windows-host-process", Severity: Critical, Title: "Pods are not Windows HostProcess pods"}, "hostProcess", "securityContext.windowsOptions.hostProcess", "securityContext.windowsOptions.hostProcess"},
	{Rule{ID: "pss-probe-host", Severity: High, Title: "Probes and lifecycle hooks do not target other hosts"}, "probe or lifecycle host", "", "livenessProbe"},
}

func init() {
	for i := range pssRules {
		r := &pssRules[i].Rule
		r.Strict = true
		if r.Fix == "" {
			r.Fix = "follow the message: it names the field to set (Pod Security Standards, restricted level)"
		}
	}
}

func pssRuleFor(reason string) pssRule {
	for _, r := range pssRules {
		if reason == r.reason || strings.HasPrefix(reason, r.reason) {
			return r
		}
	}
	slug := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			return r
		}
		if r >= 'A' && r <= 'Z' {
			return r + 'a' - 'A'
		}
		return '-'
	}, reason)
	return pssRule{Rule: Rule{ID: PSSRulePrefix + slug, Severity: High, Strict: true, Title: reason,
		Fix: "follow the message: it names the field to set (Pod Security Standards, restricted level)"}}
}

func pssChecker() checker {
	ev, err := pss.NewEvaluator(pss.DefaultChecks(), nil)
	if err != nil {
		// DefaultChecks is a fixed, valid set; failing here is a programming error.
		panic(fmt.Sprintf("policy: pod security checks: %v", err))
	}
	lv := psapi.LevelVersion{Level: psapi.LevelRestricted, Version: psapi.LatestVersion()}
	return checkerFunc(func(_ context.Context, s *objectSet) []Finding {
		var out []Finding
		for _, w := range s.workloads {
			out = append(out, evaluatePSS(ev, lv, w)...)
		}
		return out
	})
}

// evaluatePSS attributes each failed check to the pod (when it fails with
// no containers at all) or to the containers that fail it on their own.
func evaluatePSS(ev pss.Evaluator, lv psapi.LevelVersion, w *workload) []Finding {
	meta := w.template.ObjectMeta
	spec := w.template.Spec
	podLevel := map[string]bool{}
	var out []Finding

	bare := spec
	bare.Containers, bare.InitContainers, bare.EphemeralContainers = nil, nil, nil
	for _, res := range ev.EvaluatePod(lv, &meta, &bare) {
		if res.Allowed {
			continue
		}
		podLevel[res.ForbiddenReason] = true
		r := pssRuleFor(res.ForbiddenReason)
		field := r.podField
		if r.reason == "host namespaces" {
			field = hostNamespaceField(&spec)
		}
		path := w.specPath()
		if field != "" {
			path += "." + field
		}
		out = append(out, newFinding(r.Rule, w, nil, path, pssMessage(res)))
	}
	for _, c := range w.containers(true) {
		one := bare
		if c.field == "containers" {
			one.Containers = []corev1.Container{*c.c}
		} else {
			one.InitContainers = []corev1.Container{*c.c}
		}
		for _, res := range ev.EvaluatePod(lv, &meta, &one) {
			if res.Allowed || podLevel[res.ForbiddenReason] {
				continue
			}
			r := pssRuleFor(res.ForbiddenReason)
			path := w.containerPath(c)
			if r.containerField != "" {
				path += "." + r.containerField
			}
			out = append(out, newFinding(r.Rule, w, &c, path, pssMessage(res)))
		}
	}
	return out
}

func hostNamespaceField(spec *corev1.PodSpec) string {
	switch {
	case spec.HostNetwork:
		return "hostNetwork"
	case spec.HostPID:
		return "hostPID"
	case spec.HostIPC:
		return "hostIPC"
	}
	return ""
}

func pssMessage(res pss.CheckResult) string {
	if res.ForbiddenDetail == "" {
		return res.ForbiddenReason
	}
	return fmt.Sprintf("%s (%s)", res.ForbiddenReason, res.ForbiddenDetail)
}
