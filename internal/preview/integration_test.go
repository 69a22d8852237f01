package preview

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"

	"github.com/devctl/devctl/internal/k8stest"
)

func TestMain(m *testing.M) { k8stest.Main(m) }

func integration(t *testing.T) (*Host, kubernetes.Interface) {
	t.Helper()
	if testing.Short() {
		t.Skip("integration: needs the control plane binaries from `make k8s-tools`")
	}
	cp := k8stest.Shared(t)
	return &Host{Client: cp.Client(), Name: "k8stest", Poll: 100 * time.Millisecond}, cp.Client()
}

// makeNamespace creates a namespace with labels and deletes it at the end
// of the test if it is still there.
func makeNamespace(t *testing.T, c kubernetes.Interface, name string, labels map[string]string) {
	t.Helper()
	_, err := c.CoreV1().Namespaces().Create(t.Context(), &corev1.Namespace{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		err := c.CoreV1().Namespaces().Delete(context.Background(), name, metav1.DeleteOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			t.Errorf("delete namespace %s: %v", name, err)
		}
	})
}

// vclusterLike puts what a vcluster leaves in its namespace: a StatefulSet,
// its PVC, a ConfigMap and a pod it synced.
func vclusterLike(t *testing.T, c kubernetes.Interface, ns string, ready bool) {
	t.Helper()
	ctx := t.Context()
	one := int32(1)
	labels := map[string]string{"app": "vcluster", "release": "vc"}
	podSpec := corev1.PodSpec{Containers: []corev1.Container{{Name: "syncer", Image: "vcluster:test"}}}
	if !ready {
		podSpec.NodeSelector = map[string]string{"no-such": "node"} // never scheduled
	}
	sts := &appsv1.StatefulSet{
		ObjectMeta: metav1.ObjectMeta{Name: "vc"},
		Spec: appsv1.StatefulSetSpec{
			Replicas: &one,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: podSpec},
		},
	}
	if _, err := c.AppsV1().StatefulSets(ns).Create(ctx, sts, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	pvc := &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: "data-vc-0"},
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}},
		},
	}
	if _, err := c.CoreV1().PersistentVolumeClaims(ns).Create(ctx, pvc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "vc-coredns"}, Data: map[string]string{"Corefile": "."}}
	if _, err := c.CoreV1().ConfigMaps(ns).Create(ctx, cm, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// The chart's cluster-scoped RBAC, named vc-<release>-v-<namespace>.
	crName := "vc-vc-v-" + ns
	cr := &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: crName, Labels: map[string]string{"app": "vcluster", "release": "vc"}}}
	if _, err := c.RbacV1().ClusterRoles().Create(ctx, cr, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	crb := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: crName, Labels: map[string]string{"app": "vcluster", "release": "vc"}},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: "vc-vc", Namespace: ns}},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: crName},
	}
	if _, err := c.RbacV1().ClusterRoleBindings().Create(ctx, crb, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = c.RbacV1().ClusterRoleBindings().Delete(context.Background(), crName, metav1.DeleteOptions{})
		_ = c.RbacV1().ClusterRoles().Delete(context.Background(), crName, metav1.DeleteOptions{})
	})
	synced := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "shop-x-default-x-vc", Labels: map[string]string{VClusterManagedBy: "vc"}},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "shop", Image: "shop:test"}}},
	}
	if _, err := c.CoreV1().Pods(ns).Create(ctx, synced, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

func uniqueRepo(t *testing.T) string {
	return "itest/" + strings.ToLower(strings.ReplaceAll(t.Name(), "/", "-")) + "-" + time.Now().Format("150405.000")
}

// gc's building blocks on a real API server: only labelled namespaces are
// listed and deleted; the expired one goes with its PVC and ConfigMap; an
// unlabelled namespace and another manager's stay.
func TestIntegrationListAndCollect(t *testing.T) {
	t.Parallel()
	h, c := integration(t)
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	repo := uniqueRepo(t)
	now := time.Now().UTC()
	expired := Request{Repo: repo, PR: 1, SHA: "aaaaaaa", TTL: time.Hour, Now: now.Add(-2 * time.Hour)}
	fresh := Request{Repo: repo, PR: 2, SHA: "bbbbbbb", TTL: time.Hour, Now: now}
	nsExpired, nsFresh := "pv-"+expired.Env(), "pv-"+fresh.Env()
	makeNamespace(t, c, nsExpired, expired.Labels())
	makeNamespace(t, c, nsFresh, fresh.Labels())
	vclusterLike(t, c, nsExpired, true)
	vclusterLike(t, c, nsFresh, true)
	// Unlabelled, and labelled like a preview by someone else: both look
	// expired to a careless selector, neither is devctl's.
	plain := "plain-" + shortHash(repo)
	makeNamespace(t, c, plain, nil)
	foreign := expired.Labels()
	foreign[LabelManagedBy] = "someone-else"
	foreignNS := "foreign-" + shortHash(repo)
	makeNamespace(t, c, foreignNS, foreign)

	list, err := h.List(ctx, repo)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || list[0].PR != 1 || list[1].PR != 2 {
		t.Fatalf("List = %+v, want PRs 1 and 2", list)
	}
	if list[0].State(now) != StateExpired || list[1].State(now) != StateRunning {
		t.Errorf("states = %s, %s, want Expired, Running", list[0].State(now), list[1].State(now))
	}
	got := Collectable(list, now, 0)
	if len(got) != 1 || got[0].Namespace != nsExpired {
		t.Fatalf("Collectable = %+v, want only %s", got, nsExpired)
	}
	if err := h.Delete(ctx, got[0], time.Minute); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CoreV1().Namespaces().Get(ctx, nsExpired, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("expired namespace still there: %v", err)
	}
	for _, kind := range []func() (int, error){
		func() (int, error) {
			l, err := c.CoreV1().PersistentVolumeClaims(nsExpired).List(ctx, metav1.ListOptions{})
			return len(l.Items), err
		},
		func() (int, error) {
			l, err := c.CoreV1().ConfigMaps(nsExpired).List(ctx, metav1.ListOptions{})
			return len(l.Items), err
		},
	} {
		if n, err := kind(); err != nil || n != 0 {
			t.Errorf("left behind in %s: %d objects (%v)", nsExpired, n, err)
		}
	}
	if _, err := c.RbacV1().ClusterRoleBindings().Get(ctx, "vc-vc-v-"+nsExpired, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("the expired vcluster's ClusterRoleBinding is left: %v", err)
	}
	if _, err := c.RbacV1().ClusterRoles().Get(ctx, "vc-vc-v-"+nsExpired, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("the expired vcluster's ClusterRole is left: %v", err)
	}
	if _, err := c.RbacV1().ClusterRoleBindings().Get(ctx, "vc-vc-v-"+nsFresh, metav1.GetOptions{}); err != nil {
		t.Errorf("the running vcluster's ClusterRoleBinding was touched: %v", err)
	}
	for _, ns := range []string{nsFresh, plain, foreignNS} {
		if _, err := c.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{}); err != nil {
			t.Errorf("namespace %s was touched: %v", ns, err)
		}
	}
	// Delete re-reads the labels: a namespace that lost them is left alone.
	if err := h.Delete(ctx, Preview{Namespace: plain}, time.Second); err == nil {
		t.Error("Delete of an unlabelled namespace succeeded")
	}
	// Deleting what is gone is no error.
	if err := h.Delete(ctx, got[0], time.Second); err != nil {
		t.Errorf("second Delete: %v", err)
	}
	if _, err := h.Find(ctx, repo, 1); !errors.Is(err, ErrNotFound) || ExitCode(err) != ExitNotFound {
		t.Errorf("Find of the deleted preview: %v", err)
	}
	p, err := h.Find(ctx, repo, 2)
	if err != nil || p.Namespace != nsFresh {
		t.Errorf("Find(2) = %+v, %v", p, err)
	}
	if ns, err := h.FindEnv(ctx, fresh.Env()); err != nil || ns != nsFresh {
		t.Errorf("FindEnv = %q, %v", ns, err)
	}
}

// Pause scales the vcluster to zero and deletes its synced pods; resume
// scales it back and waits until it is ready; both are idempotent.
func TestIntegrationPauseResume(t *testing.T) {
	t.Parallel()
	h, c := integration(t)
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	repo := uniqueRepo(t)
	r := Request{Repo: repo, PR: 5, TTL: time.Hour, Now: time.Now()}
	ns := "pv-" + r.Env()
	makeNamespace(t, c, ns, r.Labels())
	vclusterLike(t, c, ns, true)
	p, err := h.Find(ctx, repo, 5)
	if err != nil {
		t.Fatal(err)
	}

	scaled, err := h.Pause(ctx, *p, time.Minute)
	if err != nil || len(scaled) != 1 {
		t.Fatalf("Pause = %v, %v", scaled, err)
	}
	sts, err := c.AppsV1().StatefulSets(ns).Get(ctx, "vc", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if *sts.Spec.Replicas != 0 || sts.Annotations[AnnotationPausedReplicas] != "1" {
		t.Errorf("paused StatefulSet: replicas %d, annotations %v", *sts.Spec.Replicas, sts.Annotations)
	}
	pods, err := c.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: VClusterManagedBy})
	if err != nil || len(pods.Items) != 0 {
		t.Errorf("synced pods after pause: %d (%v)", len(pods.Items), err)
	}
	if p, _ = h.Find(ctx, repo, 5); !p.Paused || p.State(time.Now()) != StatePaused {
		t.Errorf("after pause: %+v", p)
	}
	// A second pause keeps the recorded replicas (not the 0 it now has).
	if scaled, err := h.Pause(ctx, *p, time.Minute); err != nil || len(scaled) != 0 {
		t.Errorf("second Pause = %v, %v", scaled, err)
	}
	sts, _ = c.AppsV1().StatefulSets(ns).Get(ctx, "vc", metav1.GetOptions{})
	if sts.Annotations[AnnotationPausedReplicas] != "1" {
		t.Errorf("second pause overwrote the replicas: %v", sts.Annotations)
	}

	resumed, err := h.Resume(ctx, *p, time.Minute)
	if err != nil || len(resumed) != 1 {
		t.Fatalf("Resume = %v, %v", resumed, err)
	}
	sts, _ = c.AppsV1().StatefulSets(ns).Get(ctx, "vc", metav1.GetOptions{})
	if *sts.Spec.Replicas != 1 || sts.Status.ReadyReplicas != 1 {
		t.Errorf("resumed StatefulSet: replicas %d, ready %d", *sts.Spec.Replicas, sts.Status.ReadyReplicas)
	}
	if _, ok := sts.Annotations[AnnotationPausedReplicas]; ok {
		t.Errorf("annotation left after resume: %v", sts.Annotations)
	}
	if p, _ = h.Find(ctx, repo, 5); p.Paused {
		t.Errorf("still marked paused: %+v", p)
	}
	if resumed, err := h.Resume(ctx, *p, time.Minute); err != nil || len(resumed) != 0 {
		t.Errorf("second Resume = %v, %v", resumed, err)
	}
}

// A resume whose vcluster never becomes ready times out with a message
// that names the StatefulSet it waited for.
func TestIntegrationResumeTimeoutNamesWhat(t *testing.T) {
	t.Parallel()
	h, c := integration(t)
	repo := uniqueRepo(t)
	r := Request{Repo: repo, PR: 6, TTL: time.Hour, Now: time.Now()}
	ns := "pv-" + r.Env()
	makeNamespace(t, c, ns, r.Labels())
	vclusterLike(t, c, ns, false)
	p, err := h.Find(t.Context(), repo, 6)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.Pause(t.Context(), *p, time.Minute); err != nil {
		t.Fatal(err)
	}
	_, err = h.Resume(t.Context(), *p, 2*time.Second)
	if !errors.Is(err, ErrTimeout) || ExitCode(err) != ExitTimeout {
		t.Fatalf("Resume of a vcluster that never starts: %v", err)
	}
	if want := "waiting for StatefulSet " + ns + "/vc to have 1 ready replica(s) (0 ready)"; !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not say %q", err, want)
	}
}

// An identity without the rights the docs list gets ErrHost and a pointer
// to them.
func TestIntegrationForbiddenIsHostError(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("integration: needs the control plane binaries from `make k8s-tools`")
	}
	cp := k8stest.Shared(t)
	cfg := cp.RESTConfig()
	cfg.Impersonate.UserName = "no-rights"
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	h := &Host{Client: cs, Name: "k8stest"}
	_, err = h.List(t.Context(), "")
	if !errors.Is(err, ErrHost) || ExitCode(err) != ExitHost || !strings.Contains(err.Error(), "docs/previews.md") {
		t.Errorf("List as a user without rights: %v", err)
	}
}

// documentedRBAC is the YAML block under "RBAC of the preview identity" in
// docs/previews.md.
func documentedRBAC(t *testing.T) []runtime.Object {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "docs", "previews.md"))
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	i := strings.Index(doc, "### RBAC of the preview identity")
	if i < 0 {
		t.Fatal("docs/previews.md has no RBAC section")
	}
	doc = doc[i:]
	start := strings.Index(doc, "```yaml\n")
	end := strings.Index(doc[start+8:], "```")
	if start < 0 || end < 0 {
		t.Fatal("the RBAC section has no yaml block")
	}
	var objs []runtime.Object
	for _, part := range strings.Split(doc[start+8:start+8+end], "\n---\n") {
		obj, _, err := scheme.Codecs.UniversalDeserializer().Decode([]byte(part), nil, nil)
		if err != nil {
			t.Fatalf("docs/previews.md RBAC: %v\n%s", err, part)
		}
		objs = append(objs, obj)
	}
	return objs
}

// vclusterRBAC is the RBAC the vcluster v0.30.0 chart makes with devctl's
// values: the syncer's Role in the namespace and its ClusterRole (the
// identity installing the chart must hold every rule it grants).
func vclusterRBAC(ns string) (*rbacv1.Role, *rbacv1.ClusterRole) {
	rw := []string{"create", "delete", "patch", "update", "get", "list", "watch"}
	role := &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: "vc-vc", Namespace: ns}, Rules: []rbacv1.PolicyRule{
		{APIGroups: []string{""}, Resources: []string{"configmaps", "secrets", "services", "pods", "pods/attach", "pods/portforward", "pods/exec", "persistentvolumeclaims"}, Verbs: rw},
		{APIGroups: []string{""}, Resources: []string{"pods/status", "pods/ephemeralcontainers"}, Verbs: []string{"patch", "update"}},
		{APIGroups: []string{"apps"}, Resources: []string{"statefulsets", "replicasets", "deployments"}, Verbs: []string{"get", "list", "watch"}},
		{APIGroups: []string{""}, Resources: []string{"endpoints", "pods/log"}, Verbs: []string{"get", "list", "watch"}},
		{APIGroups: []string{""}, Resources: []string{"events"}, Verbs: []string{"create", "get", "list", "watch"}},
		{APIGroups: []string{""}, Resources: []string{"endpoints"}, Verbs: []string{"create", "delete", "patch", "update"}},
		{APIGroups: []string{"discovery.k8s.io"}, Resources: []string{"endpointslices"}, Verbs: rw},
		{APIGroups: []string{"snapshot.storage.k8s.io"}, Resources: []string{"volumesnapshots"}, Verbs: []string{"create", "delete", "patch", "update", "get", "list"}},
	}}
	cr := &rbacv1.ClusterRole{
		ObjectMeta: metav1.ObjectMeta{Name: "vc-rules-v-" + ns, Labels: map[string]string{"app": "vcluster", "release": "rules"}},
		Rules: []rbacv1.PolicyRule{
			{APIGroups: []string{"storage.k8s.io"}, Resources: []string{"storageclasses", "csinodes", "csidrivers", "csistoragecapacities"}, Verbs: []string{"get", "watch", "list"}},
			{APIGroups: []string{""}, Resources: []string{"persistentvolumes"}, Verbs: []string{"get", "list"}},
			{APIGroups: []string{"snapshot.storage.k8s.io"}, Resources: []string{"volumesnapshotclasses"}, Verbs: []string{"get", "list"}},
			{APIGroups: []string{"snapshot.storage.k8s.io"}, Resources: []string{"volumesnapshotcontents"}, Verbs: []string{"create", "delete", "patch", "update", "get", "list"}},
		},
	}
	return role, cr
}

// The RBAC docs/previews.md lists is enough for what devctl does on the
// host: applied as written, a ServiceAccount bound to it makes a preview
// namespace with vcluster's Role and ClusterRole, lists, labels, pauses,
// resumes and deletes it.
func TestIntegrationDocumentedRBAC(t *testing.T) {
	_, admin := integration(t)
	cp := k8stest.Shared(t)
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	for _, obj := range documentedRBAC(t) {
		var err error
		switch o := obj.(type) {
		case *corev1.Namespace:
			_, err = admin.CoreV1().Namespaces().Create(ctx, o, metav1.CreateOptions{})
			t.Cleanup(func() { _ = admin.CoreV1().Namespaces().Delete(context.Background(), o.Name, metav1.DeleteOptions{}) })
		case *corev1.ServiceAccount:
			_, err = admin.CoreV1().ServiceAccounts(o.Namespace).Create(ctx, o, metav1.CreateOptions{})
		case *rbacv1.ClusterRole:
			_, err = admin.RbacV1().ClusterRoles().Create(ctx, o, metav1.CreateOptions{})
			t.Cleanup(func() { _ = admin.RbacV1().ClusterRoles().Delete(context.Background(), o.Name, metav1.DeleteOptions{}) })
		case *rbacv1.ClusterRoleBinding:
			_, err = admin.RbacV1().ClusterRoleBindings().Create(ctx, o, metav1.CreateOptions{})
			t.Cleanup(func() {
				_ = admin.RbacV1().ClusterRoleBindings().Delete(context.Background(), o.Name, metav1.DeleteOptions{})
			})
		default:
			t.Fatalf("unexpected object in the documented RBAC: %T", obj)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	cfg := cp.RESTConfig()
	cfg.Impersonate.UserName = "system:serviceaccount:devctl-system:devctl-preview"
	cfg.Impersonate.Groups = []string{"system:serviceaccounts", "system:serviceaccounts:devctl-system", "system:authenticated"}
	sa, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	// RBAC is eventually consistent with its informers: wait for the binding.
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := sa.CoreV1().Namespaces().List(ctx, metav1.ListOptions{Limit: 1})
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the ServiceAccount cannot list namespaces: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}

	repo := uniqueRepo(t)
	r := Request{Repo: repo, PR: 9, TTL: time.Hour, Now: time.Now()}
	ns := "pv-" + r.Env()
	if _, err := sa.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns, Labels: r.Labels()}}, metav1.CreateOptions{}); err != nil {
		t.Fatalf("as the preview identity: %v", err)
	}
	t.Cleanup(func() { _ = admin.CoreV1().Namespaces().Delete(context.Background(), ns, metav1.DeleteOptions{}) })
	role, cr := vclusterRBAC(ns)
	if _, err := sa.RbacV1().Roles(ns).Create(ctx, role, metav1.CreateOptions{}); err != nil {
		t.Fatalf("as the preview identity, vcluster's Role: %v", err)
	}
	if _, err := sa.RbacV1().ClusterRoles().Create(ctx, cr, metav1.CreateOptions{}); err != nil {
		t.Fatalf("as the preview identity, vcluster's ClusterRole: %v", err)
	}
	crb := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: cr.Name, Labels: cr.Labels},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: "vc-vc", Namespace: ns}},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: cr.Name},
	}
	if _, err := sa.RbacV1().ClusterRoleBindings().Create(ctx, crb, metav1.CreateOptions{}); err != nil {
		t.Fatalf("as the preview identity, vcluster's ClusterRoleBinding: %v", err)
	}
	vclusterLike(t, sa, ns, true)
	for _, check := range []authorizationv1.ResourceAttributes{
		{Namespace: ns, Verb: "create", Resource: "pods", Subresource: "portforward"},
		{Namespace: ns, Verb: "get", Resource: "pods", Subresource: "log"},
		{Namespace: ns, Verb: "list", Resource: "events"},
		{Namespace: ns, Verb: "get", Resource: "secrets"},
		{Namespace: ns, Verb: "create", Group: "rbac.authorization.k8s.io", Resource: "rolebindings"},
	} {
		res, err := sa.AuthorizationV1().SelfSubjectAccessReviews().Create(ctx, &authorizationv1.SelfSubjectAccessReview{
			Spec: authorizationv1.SelfSubjectAccessReviewSpec{ResourceAttributes: &check},
		}, metav1.CreateOptions{})
		if err != nil || !res.Status.Allowed {
			t.Errorf("the preview identity may not %s %s/%s: %v %s", check.Verb, check.Resource, check.Subresource, err, res.Status.Reason)
		}
	}

	h := &Host{Client: sa, Name: "k8stest", Poll: 100 * time.Millisecond}
	p, err := h.Find(ctx, repo, 9)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Label(ctx, ns, r.Labels(), map[string]string{AnnotationURL: "http://x"}); err != nil {
		t.Fatal(err)
	}
	if _, err := h.Pause(ctx, *p, time.Minute); err != nil {
		t.Fatal(err)
	}
	if _, err := h.Resume(ctx, *p, time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := h.Delete(ctx, *p, time.Minute); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.RbacV1().ClusterRoles().Get(ctx, cr.Name, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("vcluster's ClusterRole left after delete: %v", err)
	}
}
