package kube

import (
	"context"
	"fmt"
	"sort"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/devctl/devctl/internal/api"
)

// Resources lists the Deployments, Pods and Services of the namespaces with
// their readiness and, for what is not ready, the reason a developer needs:
// the container's waiting or terminated reason, the failing probe, the
// scheduler's message or the last warning event, never just "Pending".
func (c *Client) Resources(ctx context.Context, namespaces ...string) ([]api.Resource, error) {
	var out []api.Resource
	for _, ns := range namespaces {
		items, err := c.namespaceResources(ctx, ns)
		if err != nil {
			return nil, err
		}
		out = append(out, items...)
	}
	return out, nil
}

func (c *Client) namespaceResources(ctx context.Context, ns string) ([]api.Resource, error) {
	deps, err := c.Set.AppsV1().Deployments(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("list deployments in %s: %w", ns, err)
	}
	pods, err := c.Set.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("list pods in %s: %w", ns, err)
	}
	svcs, err := c.Set.CoreV1().Services(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("list services in %s: %w", ns, err)
	}
	// Events and endpoint slices only refine the reasons: without them the
	// listing is still right, so their errors are not fatal.
	var events []corev1.Event
	if evs, err := c.Set.CoreV1().Events(ns).List(ctx, metav1.ListOptions{}); err == nil {
		events = evs.Items
		sort.SliceStable(events, func(i, j int) bool { return EventTime(&events[i]).Before(EventTime(&events[j])) })
	}
	var slices []discoveryv1.EndpointSlice
	if es, err := c.Set.DiscoveryV1().EndpointSlices(ns).List(ctx, metav1.ListOptions{}); err == nil {
		slices = es.Items
	}

	var out []api.Resource
	for i := range deps.Items {
		out = append(out, deploymentResource(&deps.Items[i], events))
	}
	for i := range pods.Items {
		out = append(out, podResource(&pods.Items[i], events))
	}
	for i := range svcs.Items {
		out = append(out, serviceResource(&svcs.Items[i], slices))
	}
	return out, nil
}

func release(labels map[string]string) string {
	if v := labels[InstanceLabel]; v != "" {
		return v
	}
	return labels["app.kubernetes.io/name"]
}

func deploymentResource(d *appsv1.Deployment, events []corev1.Event) api.Resource {
	want := int32(1)
	if d.Spec.Replicas != nil {
		want = *d.Spec.Replicas
	}
	r := api.Resource{
		Kind: api.KindDeployment, Namespace: d.Namespace, Name: d.Name, Service: release(d.Labels),
		Ready:   fmt.Sprintf("%d/%d", d.Status.ReadyReplicas, want),
		OK:      rolledOut(d),
		Created: d.CreationTimestamp.Time,
	}
	r.Status = "Available"
	if !r.OK {
		r.Status = "Progressing"
		for _, cond := range d.Status.Conditions {
			switch {
			case cond.Type == appsv1.DeploymentReplicaFailure && cond.Status == corev1.ConditionTrue:
				r.Status, r.Reason = cond.Reason, cond.Message
			case cond.Type == appsv1.DeploymentProgressing && cond.Status == corev1.ConditionFalse:
				r.Status, r.Reason = cond.Reason, cond.Message
			}
		}
		if r.Reason == "" {
			r.Reason = lastWarning(events, "Deployment", d.Name)
		}
		if r.Reason == "" {
			r.Reason = fmt.Sprintf("%d of %d replicas ready, %d updated", d.Status.ReadyReplicas, want, d.Status.UpdatedReplicas)
		}
	}
	return r
}

func podResource(p *corev1.Pod, events []corev1.Event) api.Resource {
	r := api.Resource{
		Kind: api.KindPod, Namespace: p.Namespace, Name: p.Name, Service: release(p.Labels),
		Status: string(p.Status.Phase), Created: p.CreationTimestamp.Time,
	}
	ready := 0
	for _, cs := range p.Status.ContainerStatuses {
		r.Restarts += cs.RestartCount
		if cs.Ready {
			ready++
		}
	}
	r.Ready = fmt.Sprintf("%d/%d", ready, len(p.Spec.Containers))
	r.OK = p.Status.Phase == corev1.PodSucceeded || (p.Status.Phase == corev1.PodRunning && podReady(p))
	if p.DeletionTimestamp != nil {
		r.Status, r.OK = "Terminating", false
		r.Reason = "being deleted"
		return r
	}
	if r.OK {
		return r
	}
	r.Status, r.Reason = podReason(p, events)
	return r
}

// podReason says why a pod is not ready, most specific first.
func podReason(p *corev1.Pod, events []corev1.Event) (status, reason string) {
	status = string(p.Status.Phase)
	for _, cond := range p.Status.Conditions {
		if cond.Type == corev1.PodScheduled && cond.Status == corev1.ConditionFalse {
			return orElse(cond.Reason, "Unschedulable"), cond.Message
		}
	}
	all := append(append([]corev1.ContainerStatus{}, p.Status.InitContainerStatuses...), p.Status.ContainerStatuses...)
	for _, cs := range all {
		if w := cs.State.Waiting; w != nil && w.Reason != "" && w.Reason != "PodInitializing" && w.Reason != "ContainerCreating" {
			msg := w.Message
			if t := cs.LastTerminationState.Terminated; t != nil {
				msg = joinNonEmpty("; ", msg, terminated(cs.Name, t))
			}
			return w.Reason, joinNonEmpty(": ", "container "+cs.Name, msg)
		}
		if t := cs.State.Terminated; t != nil && t.ExitCode != 0 {
			return orElse(t.Reason, "Error"), terminated(cs.Name, t)
		}
	}
	if probe := lastEvent(events, "Pod", p.Name, "Unhealthy"); probe != "" {
		return "NotReady", probe
	}
	if w := lastWarning(events, "Pod", p.Name); w != "" {
		return status, w
	}
	for _, cs := range all {
		if w := cs.State.Waiting; w != nil && w.Reason != "" {
			return w.Reason, "container " + cs.Name + " is starting"
		}
	}
	for _, cond := range p.Status.Conditions {
		if cond.Type == corev1.PodReady && cond.Status == corev1.ConditionFalse && cond.Message != "" {
			return "NotReady", cond.Message
		}
	}
	return status, "waiting for the kubelet to report the pod"
}

func terminated(container string, t *corev1.ContainerStateTerminated) string {
	s := fmt.Sprintf("container %s last exited with code %d", container, t.ExitCode)
	if t.Reason != "" {
		s += " (" + t.Reason + ")"
	}
	if m := strings.TrimSpace(t.Message); m != "" {
		s += ": " + m
	}
	return s
}

func serviceResource(s *corev1.Service, slices []discoveryv1.EndpointSlice) api.Resource {
	r := api.Resource{
		Kind: api.KindService, Namespace: s.Namespace, Name: s.Name, Service: release(s.Labels),
		Status: string(s.Spec.Type), Created: s.CreationTimestamp.Time,
	}
	var ports []string
	for _, p := range s.Spec.Ports {
		ports = append(ports, fmt.Sprintf("%d/%s", p.Port, p.Protocol))
	}
	if len(ports) > 0 {
		r.Status += " " + strings.Join(ports, ",")
	}
	if len(s.Spec.Selector) == 0 {
		r.Ready, r.OK = "-", true
		return r
	}
	ready, total := 0, 0
	for _, sl := range slices {
		if sl.Labels[discoveryv1.LabelServiceName] != s.Name {
			continue
		}
		for _, ep := range sl.Endpoints {
			total++
			if ep.Conditions.Ready == nil || *ep.Conditions.Ready {
				ready++
			}
		}
	}
	r.Ready = fmt.Sprintf("%d/%d", ready, total)
	r.OK = ready > 0
	if !r.OK {
		r.Reason = "no ready endpoints: no ready pod matches the selector " + selectorString(s.Spec.Selector)
	}
	return r
}

func selectorString(sel map[string]string) string {
	keys := make([]string, 0, len(sel))
	for k := range sel {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + sel[k]
	}
	return strings.Join(parts, ",")
}

// lastWarning is the message of the newest warning event about the object.
func lastWarning(events []corev1.Event, kind, name string) string {
	for i := len(events) - 1; i >= 0; i-- {
		e := &events[i]
		if e.Type == corev1.EventTypeWarning && e.InvolvedObject.Kind == kind && e.InvolvedObject.Name == name {
			return e.Reason + ": " + strings.TrimSpace(e.Message)
		}
	}
	return ""
}

// lastEvent is the message of the newest event with the reason.
func lastEvent(events []corev1.Event, kind, name, reason string) string {
	for i := len(events) - 1; i >= 0; i-- {
		e := &events[i]
		if e.Reason == reason && e.InvolvedObject.Kind == kind && e.InvolvedObject.Name == name {
			return strings.TrimSpace(e.Message)
		}
	}
	return ""
}

func orElse(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func joinNonEmpty(sep string, parts ...string) string {
	var keep []string
	for _, p := range parts {
		if p != "" {
			keep = append(keep, p)
		}
	}
	return strings.Join(keep, sep)
}
