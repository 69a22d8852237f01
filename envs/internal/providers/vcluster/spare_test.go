package vcluster

import (
	"context"
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/devctl/devctl/envs/internal/providers"
	"github.com/devctl/devctl/internal/kube"
)

// spareObjects are a spare's namespace and, when ready is set, its ready
// vcluster pod.
func spareObjects(hex string, age time.Duration, ready bool) []any {
	loc := location{ns: sparePrefix + hex, release: "spare-" + hex}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: loc.ns, CreationTimestamp: metav1.NewTime(time.Now().Add(-age)),
		Labels: map[string]string{LabelManagedBy: ManagedBy, LabelSpare: "true", LabelRelease: loc.release, LabelSpareSpec: New(Options{}).spareSpec()}}}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: loc.pod(), Namespace: loc.ns, Labels: map[string]string{"app": "vcluster", "release": loc.release}},
		Status:     corev1.PodStatus{Phase: corev1.PodPending},
	}
	if ready {
		pod.Status.Phase = corev1.PodRunning
		pod.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}
	}
	// Helm's record of the deployed release.
	rel := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "sh.helm.release.v1." + loc.release + ".v1", Namespace: loc.ns,
		Labels: map[string]string{"owner": "helm", "name": loc.release, "status": "deployed", "version": "1"}}}
	return []any{ns, pod, rel}
}

func newFakeHost(t *testing.T, objs ...[]any) *kube.Client {
	t.Helper()
	set := fake.NewClientset()
	ctx := context.Background()
	for _, group := range objs {
		for _, o := range group {
			var err error
			switch o := o.(type) {
			case *corev1.Namespace:
				_, err = set.CoreV1().Namespaces().Create(ctx, o, metav1.CreateOptions{})
			case *corev1.Pod:
				_, err = set.CoreV1().Pods(o.Namespace).Create(ctx, o, metav1.CreateOptions{})
			case *corev1.Secret:
				_, err = set.CoreV1().Secrets(o.Namespace).Create(ctx, o, metav1.CreateOptions{})
			}
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	return &kube.Client{Set: set}
}

// TestClaimSpare: a new environment claims the ready spare before an older
// starting one; the claimed namespace carries the environment's labels and
// no spare label, is listed and found as the environment's, and the other
// spare is neither listed nor deletable as any environment's.
func TestClaimSpare(t *testing.T) {
	ctx := context.Background()
	c := newFakeHost(t, spareObjects("aaaaaa", time.Hour, false), spareObjects("bbbbbb", time.Minute, true),
		[]any{&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: Namespace("old-env"), Labels: NamespaceLabels("old-env", nil)}}})
	p := New(Options{})
	var steps []string
	o := &providers.CreateOptions{Progress: func(s providers.Step) {
		if s.State == providers.StepStarted {
			steps = append(steps, s.Message)
		}
	}}

	spares, err := p.listSpares(ctx, c)
	if err != nil || len(spares) != 2 || spares[0].Namespace != sparePrefix+"aaaaaa" || spares[0].Ready || !spares[1].Ready {
		t.Fatalf("listSpares = %+v, %v; want both, oldest first, the newer ready", spares, err)
	}
	labels := NamespaceLabels("hello-feature", map[string]string{"devctl.dev/owner": "dx", "team": "x"})
	loc, ok := p.claimSpare(ctx, c, "hello-feature", labels, o)
	if !ok || loc != (location{ns: sparePrefix + "bbbbbb", release: "spare-bbbbbb"}) {
		t.Fatalf("claimSpare = %+v, %v; want the ready spare", loc, ok)
	}
	if len(steps) != 1 || steps[0] != "claimed the running spare vcluster in namespace devctl-spare-bbbbbb" {
		t.Errorf("reported %q", steps)
	}
	ns, err := c.Set.CoreV1().Namespaces().Get(ctx, loc.ns, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{LabelEnv: "hello-feature", LabelManagedBy: ManagedBy, "devctl.dev/owner": "dx", LabelRelease: "spare-bbbbbb"}
	if len(ns.Labels) != len(want) {
		t.Errorf("claimed namespace labels %v, want %v", ns.Labels, want)
	}
	for k, v := range want {
		if ns.Labels[k] != v {
			t.Errorf("claimed namespace label %s = %q, want %q", k, ns.Labels[k], v)
		}
	}

	// Another process (a restarted daemon) finds it by label.
	fresh := New(Options{})
	if got, err := fresh.locate(ctx, c, "hello-feature"); err != nil || got != loc {
		t.Errorf("locate after a restart = %+v, %v; want %+v", got, err, loc)
	}
	if got, err := fresh.locate(ctx, c, "old-env"); err != nil || got != envLocation("old-env") {
		t.Errorf("locate of an environment made for it = %+v, %v", got, err)
	}
	names, err := fresh.listEnvs(ctx, c)
	if err != nil || !slices.Equal(names, []string{"hello-feature", "old-env"}) {
		t.Errorf("listEnvs = %v, %v; want the claimed spare's environment and old-env, not the unclaimed spare", names, err)
	}

	// A down of any name never deletes the unclaimed spare.
	for _, name := range []string{"spare-aaaaaa", "aaaaaa", "devctl-spare-aaaaaa", "hello-other"} {
		if err := DeleteNamespace(ctx, c, name); err != nil {
			t.Errorf("DeleteNamespace(%s): %v", name, err)
		}
	}
	if _, err := c.Set.CoreV1().Namespaces().Get(ctx, sparePrefix+"aaaaaa", metav1.GetOptions{}); err != nil {
		t.Errorf("the unclaimed spare is gone: %v", err)
	}
	if err := DeleteNamespace(ctx, c, "hello-feature"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Set.CoreV1().Namespaces().Get(ctx, loc.ns, metav1.GetOptions{}); err == nil {
		t.Error("the claimed spare's namespace is still there after its environment's delete")
	}

	// The starting spare is claimed when it is the only one.
	loc, ok = p.claimSpare(ctx, c, "hello-third", NamespaceLabels("hello-third", nil), o)
	if !ok || loc.ns != sparePrefix+"aaaaaa" || steps[len(steps)-1] != "claimed the starting spare vcluster in namespace devctl-spare-aaaaaa" {
		t.Errorf("claimSpare = %+v, %v (%q); want the starting spare", loc, ok, steps)
	}
	if _, ok := p.claimSpare(ctx, c, "hello-fourth", NamespaceLabels("hello-fourth", nil), o); ok {
		t.Error("a spare was claimed twice")
	}
}

// TestClaimSkipsOutdatedSpare: a spare made with other images (or another
// devctl's chart values) is not claimed.
func TestClaimSkipsOutdatedSpare(t *testing.T) {
	c := newFakeHost(t, spareObjects("dddddd", time.Minute, true))
	p := New(Options{Images: &Images{Syncer: "other/vcluster:1", Kubernetes: DefaultKubernetesImage}})
	if p.spareSpec() == New(Options{}).spareSpec() {
		t.Fatal("the spare spec does not depend on the images")
	}
	if loc, ok := p.claimSpare(context.Background(), c, "hello-main", NamespaceLabels("hello-main", nil), nil); ok {
		t.Errorf("claimed outdated spare %+v", loc)
	}
}

// TestClaimSkipsHalfInstalledSpare: a spare whose Helm install never
// finished (the daemon stopped during it) is not claimed.
func TestClaimSkipsHalfInstalledSpare(t *testing.T) {
	objs := spareObjects("eeeeee", time.Minute, false)
	c := newFakeHost(t, objs[:1])
	if loc, ok := New(Options{}).claimSpare(context.Background(), c, "hello-main", NamespaceLabels("hello-main", nil), nil); ok {
		t.Errorf("claimed half-installed spare %+v", loc)
	}
}

// TestClaimSkipsBrokenSpare: a spare whose pod cannot start is not claimed.
func TestClaimSkipsBrokenSpare(t *testing.T) {
	objs := spareObjects("cccccc", time.Minute, false)
	objs[1].(*corev1.Pod).Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "syncer", State: corev1.ContainerState{
		Waiting: &corev1.ContainerStateWaiting{Reason: "ErrImageNeverPull"}}}}
	c := newFakeHost(t, objs)
	if loc, ok := New(Options{}).claimSpare(context.Background(), c, "hello-main", NamespaceLabels("hello-main", nil), nil); ok {
		t.Errorf("claimed broken spare %+v", loc)
	}
}

func TestSparesSwitch(t *testing.T) {
	t.Setenv(EnvSpare, "")
	t.Setenv(EnvSyncerImage, "")
	t.Setenv(EnvKubernetesImage, "")
	if !New(Options{}).sparesEnabled() {
		t.Error("spares are off by default")
	}
	if New(Options{NoSpare: true}).sparesEnabled() {
		t.Error("NoSpare does not turn spares off")
	}
	t.Setenv(EnvSpare, "0")
	if New(Options{}).sparesEnabled() {
		t.Errorf("%s=0 does not turn spares off", EnvSpare)
	}
}

// TestReplenishReplacesOutdatedSpares: preparing the next spare deletes
// unclaimed spares of other images and ones whose install never finished
// (once stale), and keeps a current one instead of starting another.
func TestReplenishReplacesOutdatedSpares(t *testing.T) {
	ctx := context.Background()
	outdated := spareObjects("111111", time.Minute, true)
	outdated[0].(*corev1.Namespace).Labels[LabelSpareSpec] = "other"
	halfDone := spareObjects("222222", time.Hour, false)[:1]
	current := spareObjects("333333", time.Minute, true)
	after := envLocation("hello-main")
	workload := []any{&corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "hello-x-hello-x-hello-main", Namespace: after.ns, Labels: map[string]string{"vcluster.loft.sh/namespace": "hello"}},
		Status:     corev1.PodStatus{Phase: corev1.PodRunning},
	}}
	c := newFakeHost(t, outdated, halfDone, current, workload)
	p := New(Options{})
	if err := p.makeSpare(ctx, host{}, c, after); err != nil {
		t.Fatal(err)
	}
	for ns, want := range map[string]bool{sparePrefix + "111111": false, sparePrefix + "222222": false, sparePrefix + "333333": true} {
		_, err := c.Set.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
		if got := err == nil; got != want {
			t.Errorf("namespace %s there: %v, want %v (%v)", ns, got, want, err)
		}
	}
}
