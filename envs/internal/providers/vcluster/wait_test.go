package vcluster

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/devctl/devctl/envs/internal/providers"
	"github.com/devctl/devctl/internal/kube"
)

func vcPod(mut func(*corev1.Pod)) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "hello-main-0", Namespace: Namespace("hello-main"),
			Labels: map[string]string{"app": "vcluster", "release": "hello-main"}},
		Status: corev1.PodStatus{Phase: corev1.PodPending},
	}
	mut(p)
	return p
}

func TestPodState(t *testing.T) {
	ctx := context.Background()
	p := New(Options{})
	for _, tc := range []struct {
		name          string
		pod           *corev1.Pod
		reason, fatal string
		ready         bool
	}{
		{name: "no pod", reason: "waiting for the StatefulSet to create pod hello-main-0"},
		{name: "image cannot be pulled", pod: vcPod(func(p *corev1.Pod) {
			p.Status.InitContainerStatuses = []corev1.ContainerStatus{{Name: "kubernetes", State: corev1.ContainerState{
				Waiting: &corev1.ContainerStateWaiting{Reason: "ErrImagePull", Message: `failed to pull "devctl.local/vcluster-kubernetes:v1.35.4"`}}}}
		}), reason: "container kubernetes: ErrImagePull", fatal: "e2e/images/vcluster.sh"},
		{name: "creating", pod: vcPod(func(p *corev1.Pod) {
			p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "syncer", State: corev1.ContainerState{
				Waiting: &corev1.ContainerStateWaiting{Reason: "ContainerCreating"}}}}
		}), reason: "pod hello-main-0: container syncer: ContainerCreating"},
		{name: "unschedulable", pod: vcPod(func(p *corev1.Pod) {
			p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodScheduled, Status: corev1.ConditionFalse, Reason: "Unschedulable"}}
		}), reason: "pod hello-main-0: PodScheduled: Unschedulable"},
		{name: "starting", pod: vcPod(func(p *corev1.Pod) {
			p.Status.Phase = corev1.PodRunning
			p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionFalse}}
		}), reason: "pod hello-main-0: starting: fake logs"}, // the fake clientset's log
		{name: "ready", pod: vcPod(func(p *corev1.Pod) {
			p.Status.Phase = corev1.PodRunning
			p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}
		}), ready: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			set := fake.NewClientset()
			if tc.pod != nil {
				if _, err := set.CoreV1().Pods(tc.pod.Namespace).Create(ctx, tc.pod, metav1.CreateOptions{}); err != nil {
					t.Fatal(err)
				}
			}
			reason, ready, fatal := p.podState(ctx, &kube.Client{Set: set}, envLocation("hello-main"))
			if ready != tc.ready || !strings.Contains(reason, tc.reason) || (tc.fatal == "") != (fatal == "") || !strings.Contains(fatal, tc.fatal) {
				t.Errorf("podState = %q, %v, %q; want %q, %v, %q", reason, ready, fatal, tc.reason, tc.ready, tc.fatal)
			}
		})
	}
}

// TestWaitReadyReportsEachReason: every new reason is a step of its own, the
// wait ends once the pod is ready and the kubeconfig Secret exists, and a
// timeout says what it waited for.
func TestWaitReadyReportsEachReason(t *testing.T) {
	ctx := context.Background()
	p := New(Options{})
	set := fake.NewClientset()
	c := &kube.Client{Set: set}
	var steps []string
	o := &providers.CreateOptions{Progress: func(s providers.Step) {
		if s.State == providers.StepStarted {
			steps = append(steps, s.Message)
		}
	}}

	tctx, cancel := context.WithTimeout(ctx, 1200*time.Millisecond)
	err := p.waitReady(tctx, c, envLocation("hello-main"), o)
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "StatefulSet to create pod hello-main-0") {
		t.Errorf("timeout err = %v, want the reason and the deadline", err)
	}

	pod := vcPod(func(p *corev1.Pod) {
		p.Status.Phase = corev1.PodRunning
		p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}
	})
	if _, err := set.CoreV1().Pods(pod.Namespace).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	go func() {
		time.Sleep(700 * time.Millisecond)
		sec := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "vc-hello-main", Namespace: pod.Namespace}}
		_, _ = set.CoreV1().Secrets(pod.Namespace).Create(ctx, sec, metav1.CreateOptions{})
	}()
	tctx, cancel = context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := p.waitReady(tctx, c, envLocation("hello-main"), o); err != nil {
		t.Fatal(err)
	}
	want := []string{"vcluster: waiting for the StatefulSet to create pod hello-main-0",
		"vcluster: waiting for the vcluster to write its kubeconfig Secret vc-hello-main"}
	if strings.Join(steps, "\n") != strings.Join(want, "\n") {
		t.Errorf("steps:\n%s\nwant:\n%s", strings.Join(steps, "\n"), strings.Join(want, "\n"))
	}
}

func TestDeleteNamespaceOnlyOurs(t *testing.T) {
	ctx := context.Background()
	set := fake.NewClientset(
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: Namespace("ours"), Labels: NamespaceLabels("ours", nil)}},
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: Namespace("theirs")}},
	)
	c := &kube.Client{Set: set}
	if err := DeleteNamespace(ctx, c, "theirs"); err == nil || !strings.Contains(err.Error(), "leaves it alone") {
		t.Errorf("delete of an unlabelled namespace: err = %v", err)
	}
	if _, err := set.CoreV1().Namespaces().Get(ctx, Namespace("theirs"), metav1.GetOptions{}); err != nil {
		t.Errorf("unlabelled namespace deleted: %v", err)
	}
	if err := DeleteNamespace(ctx, c, "ours"); err != nil {
		t.Fatal(err)
	}
	if _, err := set.CoreV1().Namespaces().Get(ctx, Namespace("ours"), metav1.GetOptions{}); err == nil {
		t.Error("our namespace is still there")
	}
	if err := DeleteNamespace(ctx, c, "gone"); err != nil {
		t.Errorf("delete of an absent namespace: %v", err)
	}
}

// TestMissingImagesSayHowToBuild: a local create without the images fails
// before any host cluster is made, naming the images and the build command.
func TestMissingImagesSayHowToBuild(t *testing.T) {
	kindCalls := 0
	p := New(Options{
		StateDir:     t.TempDir(),
		ImagePresent: func(_ context.Context, ref string) bool { return ref == DefaultKubernetesImage },
		Images:       &Images{Syncer: DefaultSyncerImage, Kubernetes: DefaultKubernetesImage},
		Kind:         countingKind{calls: &kindCalls},
	})
	err := p.Create(context.Background(), "hello-main", providers.CreateOptions{})
	if err == nil || !strings.Contains(err.Error(), DefaultSyncerImage) || strings.Contains(err.Error(), DefaultKubernetesImage) ||
		!strings.Contains(err.Error(), "e2e/images/vcluster.sh") {
		t.Errorf("err = %v, want the missing image and how to build it", err)
	}
	if kindCalls != 0 {
		t.Errorf("the kind backend was called %d times before the images were checked", kindCalls)
	}
}

type countingKind struct {
	KindHost
	calls *int
	names []string
}

func (k countingKind) List(context.Context) ([]string, error) { *k.calls++; return k.names, nil }

func (k countingKind) Kubeconfig(context.Context, string) ([]byte, error) {
	return []byte("apiVersion: v1\nkind: Config\n"), nil
}

// TestLocalHostLookupIsReused: kind is asked once for the host, not on every
// operation.
func TestLocalHostLookupIsReused(t *testing.T) {
	calls := 0
	p := New(Options{StateDir: t.TempDir(), HostName: "h", Kind: countingKind{calls: &calls, names: []string{"h"}}})
	for range 3 {
		h, ok, err := p.hostOf(context.Background(), "env")
		if err != nil || !ok || h.kind != "h" {
			t.Fatalf("hostOf = %+v, %v, %v", h, ok, err)
		}
	}
	if calls != 1 {
		t.Errorf("kind was listed %d times, want 1", calls)
	}
}

func TestLogLine(t *testing.T) {
	for raw, want := range map[string]string{
		"\x1b[0;1;37m03:11:32 \x1b[0m\x1b[0;1;36minfo \x1b[0mvCluster version: 0.30.0\n":                                                                        "vCluster version: 0.30.0",
		"2026-12-07 03:13:35\t\x1b[34mINFO\x1b[0m\tcommandwriter/commandwriter.go:128\tKine available at unix:///data/kine.sock\t{\"component\": \"vcluster\"}": "Kine available at unix:///data/kine.sock",
		"[certs] Generating \"etcd/healthcheck-client\" certificate and key":                                                                                    "[certs] Generating \"etcd/healthcheck-client\" certificate and key",
		"\x1b[34mINFO\x1b[0m commandwriter/commandwriter.go:128 {\"level\":\"warn\",\"ts\":\"2026-12-07T03:11:41Z\"}":                                           "",
		"": "",
	} {
		if got := logLine(raw); got != want {
			t.Errorf("logLine(%q) = %q, want %q", raw, got, want)
		}
	}
	if got := logLine(strings.Repeat("x", 200)); len(got) != 120 {
		t.Errorf("a long line is %d characters", len(got))
	}
}

// TestLocalHostThatAnswersIsNotLookedUpAgain: after the cache's 30 seconds,
// a host whose API server answers on the kubeconfig read before is trusted
// without asking kind; one that does not answer is looked up again.
func TestLocalHostThatAnswersIsNotLookedUpAgain(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/readyz" {
			_, _ = w.Write([]byte("ok"))
			return
		}
		http.NotFound(w, r)
	}))
	defer srv.Close()
	kubeconfig := []byte("apiVersion: v1\nkind: Config\nclusters:\n- name: h\n  cluster:\n    server: " + srv.URL +
		"\ncontexts:\n- name: h\n  context:\n    cluster: h\ncurrent-context: h\n")
	calls := 0
	p := New(Options{StateDir: t.TempDir(), HostName: "h", Kind: kubeconfigKind{countingKind{calls: &calls, names: []string{"h"}}, kubeconfig}})
	ctx := context.Background()
	if _, ok, err := p.localHost(ctx, nil, false); !ok || err != nil {
		t.Fatalf("localHost = %v, %v", ok, err)
	}
	p.hostSeenAt = time.Now().Add(-time.Hour)
	if _, ok, err := p.localHost(ctx, nil, false); !ok || err != nil || calls != 1 {
		t.Errorf("localHost = %v, %v after %d kind lookups; want the answering host trusted", ok, err, calls)
	}
	srv.Close()
	p.hostSeenAt = time.Now().Add(-time.Hour)
	if _, _, err := p.localHost(ctx, nil, false); err != nil || calls != 2 {
		t.Errorf("kind was asked %d times (%v); want a host that does not answer looked up again", calls, err)
	}
}

type kubeconfigKind struct {
	countingKind
	kubeconfig []byte
}

func (k kubeconfigKind) Kubeconfig(context.Context, string) ([]byte, error) { return k.kubeconfig, nil }

// creatingKind records the options of the host cluster's create.
type creatingKind struct {
	countingKind
	got *providers.CreateOptions
}

func (k creatingKind) Create(_ context.Context, _ string, o providers.CreateOptions) error {
	*k.got = o
	return nil
}

// The local host answering is not the environment answering: the host's
// create is not given the environment's APIReady (the daemon would deploy
// to a kubeconfig the vcluster has not written yet).
func TestHostCreateDoesNotSayTheEnvironmentAnswers(t *testing.T) {
	calls := 0
	var got providers.CreateOptions
	p := New(Options{StateDir: t.TempDir(), HostName: "h", Kind: creatingKind{countingKind{calls: &calls}, &got}})
	called := false
	o := &providers.CreateOptions{KubeconfigPath: "/env/kubeconfig", APIReady: func() { called = true }}
	_, _, _ = p.localHost(context.Background(), o, true)
	if got.KubeconfigPath == "" {
		t.Fatal("the host cluster was not created")
	}
	if got.APIReady != nil || called {
		t.Error("the host's create was given the environment's APIReady")
	}
	if got.KubeconfigPath == o.KubeconfigPath {
		t.Errorf("the host's create writes the environment's kubeconfig %s", got.KubeconfigPath)
	}
}
