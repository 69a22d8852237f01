package preview

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

// Host is the host cluster previews live in. Every method reads or changes
// only namespaces FromNamespace accepts, and objects inside them.
type Host struct {
	Client kubernetes.Interface
	// Name is how messages and summaries call the host (its context).
	Name string
	// Poll is the interval of waits; 0 is one second.
	Poll time.Duration
}

// Connect returns the host of a kubeconfig file and context; empty values
// are the default loading rules' ($KUBECONFIG, ~/.kube/config) and their
// current context.
func Connect(kubeconfig, kubeContext string) (*Host, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = kubeconfig
	cc := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{CurrentContext: kubeContext})
	raw, err := cc.RawConfig()
	if err != nil {
		return nil, fmt.Errorf("%w: read kubeconfig: %w", ErrHost, err)
	}
	name := kubeContext
	if name == "" {
		name = raw.CurrentContext
	}
	cfg, err := cc.ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("%w: kubeconfig %s, context %q: %w (pass --kubeconfig and --context of the host cluster)", ErrHost, orDefault(kubeconfig), name, err)
	}
	cfg.Timeout = 30 * time.Second
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrHost, err)
	}
	return &Host{Client: cs, Name: name}, nil
}

func orDefault(kubeconfig string) string {
	if kubeconfig == "" {
		return "($KUBECONFIG or ~/.kube/config)"
	}
	return kubeconfig
}

// List returns the previews on the host, of one repository when repo is
// set, sorted by repository and PR.
func (h *Host) List(ctx context.Context, repo string) ([]Preview, error) {
	list, err := h.Client.CoreV1().Namespaces().List(ctx, metav1.ListOptions{LabelSelector: Selector(repo)})
	if err != nil {
		return nil, h.apiError("list namespaces", err)
	}
	var out []Preview
	for _, ns := range list.Items {
		if p, ok := FromNamespace(ns.ObjectMeta); ok {
			out = append(out, p)
		}
	}
	Sort(out)
	return out, nil
}

// Find returns the preview of a repository's PR, or an error wrapping
// ErrNotFound.
func (h *Host) Find(ctx context.Context, repo string, pr int) (*Preview, error) {
	list, err := h.Client.CoreV1().Namespaces().List(ctx, metav1.ListOptions{LabelSelector: prSelector(repo, pr)})
	if err != nil {
		return nil, h.apiError("list namespaces", err)
	}
	for _, ns := range list.Items {
		if p, ok := FromNamespace(ns.ObjectMeta); ok {
			return &p, nil
		}
	}
	return nil, fmt.Errorf("%w: %s has no preview of PR #%d on %s (`devctl preview ls` lists them)", ErrNotFound, NormalizeRepo(repo), pr, h.name())
}

func prSelector(repo string, pr int) string {
	return LabelManagedBy + "=" + ManagedBy + "," + LabelPR + "=" + strconv.Itoa(pr) + "," + LabelRepo + "=" + RepoLabel(repo)
}

// FindEnv returns the namespace the provider made for env (labelled
// devctl.dev/env), or "" when there is none yet.
func (h *Host) FindEnv(ctx context.Context, env string) (string, error) {
	list, err := h.Client.CoreV1().Namespaces().List(ctx, metav1.ListOptions{
		LabelSelector: LabelManagedBy + "=" + ManagedBy + "," + LabelEnv + "=" + env,
	})
	if err != nil {
		return "", h.apiError("list namespaces", err)
	}
	if len(list.Items) == 0 {
		return "", nil
	}
	return list.Items[0].Name, nil
}

// Label merges labels and annotations into a preview namespace's. Only a
// namespace devctl manages is changed.
func (h *Host) Label(ctx context.Context, namespace string, labels, annotations map[string]string) error {
	ns, err := h.Client.CoreV1().Namespaces().Get(ctx, namespace, metav1.GetOptions{})
	if err != nil {
		return h.apiError("get namespace "+namespace, err)
	}
	if ns.Labels[LabelManagedBy] != ManagedBy {
		return fmt.Errorf("namespace %s is not labelled %s=%s: devctl did not make it and leaves it alone", namespace, LabelManagedBy, ManagedBy)
	}
	patch, err := json.Marshal(map[string]any{"metadata": map[string]any{"labels": labels, "annotations": annotations}})
	if err != nil {
		return err
	}
	if _, err := h.Client.CoreV1().Namespaces().Patch(ctx, namespace, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		return h.apiError("label namespace "+namespace, err)
	}
	return nil
}

// Pause scales every StatefulSet of the preview (its vcluster) to zero,
// recording the replicas in an annotation, and deletes the pods vcluster
// synced into the namespace, as `vcluster pause` does; when timeout > 0 it
// waits until their pods are gone. Pausing a paused preview changes
// nothing. It returns the StatefulSets scaled down.
func (h *Host) Pause(ctx context.Context, p Preview, timeout time.Duration) ([]string, error) {
	sts, err := h.Client.AppsV1().StatefulSets(p.Namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, h.apiError("list StatefulSets in "+p.Namespace, err)
	}
	var scaled []string
	for _, s := range sts.Items {
		if _, paused := PausedReplicas(s.Annotations); paused {
			continue
		}
		replicas := int32(1)
		if s.Spec.Replicas != nil {
			replicas = *s.Spec.Replicas
		}
		patch := fmt.Sprintf(`{"metadata":{"annotations":{%q:%q}},"spec":{"replicas":0}}`, AnnotationPausedReplicas, strconv.Itoa(int(replicas)))
		if _, err := h.Client.AppsV1().StatefulSets(p.Namespace).Patch(ctx, s.Name, types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
			return scaled, h.apiError("scale StatefulSet "+p.Namespace+"/"+s.Name+" to 0", err)
		}
		scaled = append(scaled, s.Name)
	}
	err = h.Client.CoreV1().Pods(p.Namespace).DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{LabelSelector: VClusterManagedBy})
	if err != nil {
		return scaled, h.apiError("delete the synced pods in "+p.Namespace, err)
	}
	if err := h.Label(ctx, p.Namespace, map[string]string{LabelPaused: "true"}, nil); err != nil {
		return scaled, err
	}
	if timeout <= 0 {
		return scaled, nil
	}
	for _, name := range scaled {
		err := h.waitFor(ctx, timeout, fmt.Sprintf("StatefulSet %s/%s to scale to 0", p.Namespace, name), func(ctx context.Context) (bool, string, error) {
			s, err := h.Client.AppsV1().StatefulSets(p.Namespace).Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return false, "", h.apiError("get StatefulSet "+p.Namespace+"/"+name, err)
			}
			return s.Status.ObservedGeneration >= s.Generation && s.Status.Replicas == 0, fmt.Sprintf("%d pod(s) left", s.Status.Replicas), nil
		})
		if err != nil {
			return scaled, err
		}
	}
	return scaled, nil
}

// Resume scales the StatefulSets pause scaled down back to their replicas
// and, when wait > 0, waits until they are ready. Resuming a running
// preview changes nothing.
func (h *Host) Resume(ctx context.Context, p Preview, timeout time.Duration) ([]string, error) {
	sts, err := h.Client.AppsV1().StatefulSets(p.Namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, h.apiError("list StatefulSets in "+p.Namespace, err)
	}
	want := map[string]int32{}
	for _, s := range sts.Items {
		n, paused := PausedReplicas(s.Annotations)
		if !paused {
			continue
		}
		patch := fmt.Sprintf(`{"metadata":{"annotations":{%q:null}},"spec":{"replicas":%d}}`, AnnotationPausedReplicas, n)
		if _, err := h.Client.AppsV1().StatefulSets(p.Namespace).Patch(ctx, s.Name, types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
			return nil, h.apiError("scale StatefulSet "+p.Namespace+"/"+s.Name+" back to "+strconv.Itoa(int(n)), err)
		}
		want[s.Name] = n
	}
	if err := h.removeLabel(ctx, p.Namespace, LabelPaused); err != nil {
		return nil, err
	}
	var names []string
	for name := range want {
		names = append(names, name)
	}
	if timeout <= 0 {
		return names, nil
	}
	for name, n := range want {
		err := h.waitFor(ctx, timeout, fmt.Sprintf("StatefulSet %s/%s to have %d ready replica(s)", p.Namespace, name, n), func(ctx context.Context) (bool, string, error) {
			s, err := h.Client.AppsV1().StatefulSets(p.Namespace).Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return false, "", h.apiError("get StatefulSet "+p.Namespace+"/"+name, err)
			}
			// The controller must have seen the new replicas: until then the
			// status may still count a pod of before the pause.
			done := s.Status.ObservedGeneration >= s.Generation && s.Status.ReadyReplicas >= n && s.Status.AvailableReplicas >= n
			return done, fmt.Sprintf("%d ready", s.Status.ReadyReplicas), nil
		})
		if err != nil {
			return names, err
		}
	}
	return names, nil
}

func (h *Host) removeLabel(ctx context.Context, namespace, key string) error {
	patch := fmt.Sprintf(`{"metadata":{"labels":{%q:null}}}`, key)
	if _, err := h.Client.CoreV1().Namespaces().Patch(ctx, namespace, types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
		return h.apiError("label namespace "+namespace, err)
	}
	return nil
}

// Delete deletes a preview's namespace (its vcluster, the vcluster's PVCs
// and ConfigMaps, its Helm release) and, when timeout > 0, waits until the
// namespace is gone. A preview already gone is no error.
func (h *Host) Delete(ctx context.Context, p Preview, timeout time.Duration) error {
	// Read it again: only a namespace that still carries the preview's
	// labels is deleted.
	ns, err := h.Client.CoreV1().Namespaces().Get(ctx, p.Namespace, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		// Gone (a daemon's down deleted it): what vcluster made outside it
		// may not be.
		return h.deleteClusterScoped(ctx, p.Namespace)
	}
	if err != nil {
		return h.apiError("get namespace "+p.Namespace, err)
	}
	if _, ok := FromNamespace(ns.ObjectMeta); !ok {
		return fmt.Errorf("namespace %s is not labelled as a devctl preview: left alone", p.Namespace)
	}
	if ns.DeletionTimestamp == nil {
		policy := metav1.DeletePropagationBackground
		err := h.Client.CoreV1().Namespaces().Delete(ctx, p.Namespace, metav1.DeleteOptions{
			PropagationPolicy: &policy,
			Preconditions:     &metav1.Preconditions{UID: &ns.UID},
		})
		if err != nil && !apierrors.IsNotFound(err) {
			return h.apiError("delete namespace "+p.Namespace, err)
		}
	}
	if err := h.deleteClusterScoped(ctx, p.Namespace); err != nil {
		return err
	}
	if timeout <= 0 {
		return nil
	}
	return h.waitFor(ctx, timeout, "namespace "+p.Namespace+" to be deleted", func(ctx context.Context) (bool, string, error) {
		_, err := h.Client.CoreV1().Namespaces().Get(ctx, p.Namespace, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return true, "", nil
		}
		if err != nil {
			return false, "", h.apiError("get namespace "+p.Namespace, err)
		}
		return false, h.remains(ctx, p.Namespace), nil
	})
}

// deleteClusterScoped deletes what the vcluster chart made outside the
// preview's namespace, which deleting the namespace leaves behind: the
// ClusterRoleBindings (labelled app=vcluster) whose subject is a
// ServiceAccount of that namespace, and the ClusterRoles they bind when
// those are labelled app=vcluster with the same release.
func (h *Host) deleteClusterScoped(ctx context.Context, namespace string) error {
	rbac := h.Client.RbacV1()
	bindings, err := rbac.ClusterRoleBindings().List(ctx, metav1.ListOptions{LabelSelector: "app=vcluster"})
	if err != nil {
		return h.apiError("list ClusterRoleBindings", err)
	}
	for _, b := range bindings.Items {
		if !bindsNamespace(b.Subjects, namespace) {
			continue
		}
		if err := rbac.ClusterRoleBindings().Delete(ctx, b.Name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			return h.apiError("delete ClusterRoleBinding "+b.Name, err)
		}
		if b.RoleRef.Kind != "ClusterRole" {
			continue
		}
		role, err := rbac.ClusterRoles().Get(ctx, b.RoleRef.Name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			continue
		}
		if err != nil {
			return h.apiError("get ClusterRole "+b.RoleRef.Name, err)
		}
		if role.Labels["app"] != "vcluster" || role.Labels["release"] != b.Labels["release"] {
			continue
		}
		if err := rbac.ClusterRoles().Delete(ctx, role.Name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			return h.apiError("delete ClusterRole "+role.Name, err)
		}
	}
	return nil
}

func bindsNamespace(subjects []rbacv1.Subject, namespace string) bool {
	if len(subjects) == 0 {
		return false
	}
	for _, s := range subjects {
		if s.Kind != rbacv1.ServiceAccountKind || s.Namespace != namespace {
			return false
		}
	}
	return true
}

// remains says what keeps a namespace from going away.
func (h *Host) remains(ctx context.Context, namespace string) string {
	var parts []string
	if l, err := h.Client.CoreV1().PersistentVolumeClaims(namespace).List(ctx, metav1.ListOptions{}); err == nil && len(l.Items) > 0 {
		parts = append(parts, fmt.Sprintf("%d PersistentVolumeClaim(s)", len(l.Items)))
	}
	if l, err := h.Client.CoreV1().Pods(namespace).List(ctx, metav1.ListOptions{}); err == nil && len(l.Items) > 0 {
		parts = append(parts, fmt.Sprintf("%d pod(s)", len(l.Items)))
	}
	if l, err := h.Client.CoreV1().ConfigMaps(namespace).List(ctx, metav1.ListOptions{}); err == nil && len(l.Items) > 0 {
		parts = append(parts, fmt.Sprintf("%d ConfigMap(s)", len(l.Items)))
	}
	if ns, err := h.Client.CoreV1().Namespaces().Get(ctx, namespace, metav1.GetOptions{}); err == nil {
		for _, c := range ns.Status.Conditions {
			if c.Status == "True" && c.Message != "" {
				parts = append(parts, c.Message)
			}
		}
	}
	if len(parts) == 0 {
		return "terminating"
	}
	return "still has " + strings.Join(parts, ", ")
}

// waitFor polls cond until it holds, failing with ErrTimeout after timeout;
// the error names what it waited for and the last state seen.
func (h *Host) waitFor(ctx context.Context, timeout time.Duration, what string, cond func(context.Context) (bool, string, error)) error {
	poll := h.Poll
	if poll <= 0 {
		poll = time.Second
	}
	wctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	last := ""
	err := wait.PollUntilContextCancel(wctx, poll, true, func(ctx context.Context) (bool, error) {
		ok, state, err := cond(ctx)
		if state != "" {
			last = state
		}
		if err != nil && (ctx.Err() != nil || nearDeadline(ctx, poll) && !apierrors.IsForbidden(err) && !apierrors.IsUnauthorized(err)) {
			return false, nil // the wait's own deadline, reported below
		}
		return ok, err
	})
	if err == nil {
		return nil
	}
	if ctx.Err() == nil && wctx.Err() != nil {
		msg := fmt.Sprintf("%s after %s waiting for %s", ErrTimeout, timeout, what)
		if last != "" {
			msg += " (" + last + ")"
		}
		return &timeoutError{msg: msg}
	}
	return err
}

// nearDeadline says whether ctx ends within one poll: an error then (client-go's
// rate limiter refuses to wait past the deadline, a request cut short) is
// the wait running out, not the host failing.
func nearDeadline(ctx context.Context, poll time.Duration) bool {
	d, ok := ctx.Deadline()
	return ok && time.Until(d) < poll
}

type timeoutError struct{ msg string }

func (e *timeoutError) Error() string { return e.msg }
func (e *timeoutError) Unwrap() error { return ErrTimeout }

// apiError wraps an API error with what was asked, marking errors that are
// the host's (unreachable, refused, forbidden) with ErrHost and saying how
// to fix them.
func (h *Host) apiError(what string, err error) error {
	switch {
	case apierrors.IsForbidden(err):
		return fmt.Errorf("%w %s: %s: %w (the preview identity lacks a permission: docs/previews.md lists the ClusterRole it needs)", ErrHost, h.name(), what, err)
	case apierrors.IsUnauthorized(err):
		return fmt.Errorf("%w %s: %s: %w (the credentials of the kubeconfig were refused: renew them)", ErrHost, h.name(), what, err)
	case isConnError(err):
		return fmt.Errorf("%w %s: %s: %w (is the API server reachable from here? check --kubeconfig and --context)", ErrHost, h.name(), what, err)
	}
	return fmt.Errorf("%s: %w", what, err)
}

func (h *Host) name() string {
	if h.Name == "" {
		return "the host cluster"
	}
	return h.Name
}

func isConnError(err error) bool {
	var ne net.Error
	var ue *url.Error
	return errors.As(err, &ne) || errors.As(err, &ue) || apierrors.IsServiceUnavailable(err)
}
