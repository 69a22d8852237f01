# The devctl golden-path baseline written as conftest policy, used by the
# Rego engine tests and by e2e/tools/bench-conftest.sh.
package main

import rego.v1

pod_spec := input.spec if input.kind == "Pod"

pod_spec := input.spec.jobTemplate.spec.template.spec if input.kind == "CronJob"

pod_spec := input.spec.template.spec if {
	input.kind in {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "ReplicationController"}
}

containers contains c if some c in pod_spec.containers

containers contains c if some c in pod_spec.initContainers

required_labels := ["app.kubernetes.io/name", "devctl.dev/team", "devctl.dev/owner", "devctl.dev/cost-center"]

deny contains msg if {
	some c in containers
	not c.securityContext.readOnlyRootFilesystem == true
	msg := sprintf("container %q must set securityContext.readOnlyRootFilesystem=true", [c.name])
}

deny contains msg if {
	some c in containers
	not c.securityContext.allowPrivilegeEscalation == false
	msg := sprintf("container %q must set securityContext.allowPrivilegeEscalation=false", [c.name])
}

deny contains msg if {
	some c in containers
	not "ALL" in object.get(c, ["securityContext", "capabilities", "drop"], [])
	msg := sprintf("container %q must set securityContext.capabilities.drop=[\"ALL\"]", [c.name])
}

deny contains msg if {
	some c in containers
	not c.securityContext.runAsNonRoot == true
	not pod_spec.securityContext.runAsNonRoot == true
	msg := sprintf("container %q must set securityContext.runAsNonRoot=true", [c.name])
}

deny contains msg if {
	pod_spec
	not pod_spec.securityContext.seccompProfile.type in {"RuntimeDefault", "Localhost"}
	msg := "pod must set securityContext.seccompProfile.type to \"RuntimeDefault\" or \"Localhost\""
}

deny contains msg if {
	some ns in ["hostNetwork", "hostPID", "hostIPC"]
	pod_spec[ns] == true
	msg := sprintf("pod must not set %s=true", [ns])
}

deny contains msg if {
	some v in pod_spec.volumes
	v.hostPath
	msg := sprintf("volume %q must not use hostPath", [v.name])
}

deny contains msg if {
	some c in containers
	some k in ["cpu", "memory"]
	not c.resources.requests[k]
	msg := sprintf("container %q must set resources.requests.cpu and resources.requests.memory", [c.name])
}

deny contains msg if {
	some c in containers
	some k in ["cpu", "memory"]
	not c.resources.limits[k]
	msg := sprintf("container %q must set resources.limits.cpu and resources.limits.memory", [c.name])
}

deny contains msg if {
	not input.kind in {"Job", "CronJob"}
	some c in pod_spec.containers
	not c.readinessProbe
	msg := sprintf("container %q must set readinessProbe", [c.name])
}

warn contains msg if {
	not input.kind in {"Job", "CronJob"}
	some c in pod_spec.containers
	not c.livenessProbe
	msg := sprintf("container %q must set livenessProbe", [c.name])
}

deny contains msg if {
	some c in containers
	not pinned(c.image)
	msg := sprintf("container %q image %q must be pinned to a tag other than latest or a digest", [c.name, c.image])
}

pinned(image) if contains(image, "@")

pinned(image) if {
	not contains(image, "@")
	parts := split(image, "/")
	contains(parts[count(parts) - 1], ":")
	not endswith(image, ":latest")
}

deny contains msg if {
	pod_spec
	missing := [l | some l in required_labels; not input.metadata.labels[l]]
	count(missing) > 0
	msg := sprintf("missing required labels: %s", [concat(", ", missing)])
}
