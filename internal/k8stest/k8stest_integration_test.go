package k8stest

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/release"
	admissionv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/utils/ptr"
)

func TestMain(m *testing.M) { Main(m) }

func skipIfShort(t testing.TB) {
	t.Helper()
	if testing.Short() {
		t.Skip("integration: needs the control plane binaries from `make k8s-tools`")
	}
}

// deployment returns a Deployment whose containers set resource limits
// exactly when withLimits is true.
func deployment(name string, replicas int32, withLimits bool) *appsv1.Deployment {
	labels := map[string]string{"app": name}
	ctr := corev1.Container{Name: "app", Image: "registry.invalid/app:1"}
	if withLimits {
		ctr.Resources.Limits = corev1.ResourceList{
			corev1.ResourceCPU:    resource.MustParse("100m"),
			corev1.ResourceMemory: resource.MustParse("64Mi"),
		}
	}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To(replicas),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{ctr}},
			},
		},
	}
}

func TestIntegrationDeploymentBecomesAvailable(t *testing.T) {
	skipIfShort(t)
	t.Parallel()
	c := Shared(t)
	ns := c.NewNamespace(t, nil)
	ctx := t.Context()

	start := time.Now()
	d, err := c.Client().AppsV1().Deployments(ns).Create(ctx, deployment("web", 2, true), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	err = wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		d, err = c.Client().AppsV1().Deployments(ns).Get(ctx, "web", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		for _, cond := range d.Status.Conditions {
			if cond.Type == appsv1.DeploymentAvailable && cond.Status == corev1.ConditionTrue {
				return d.Status.AvailableReplicas == 2, nil
			}
		}
		return false, nil
	})
	if err != nil {
		t.Fatalf("deployment not Available: %v; status %+v", err, d.Status)
	}
	t.Logf("deployment Available after %v", time.Since(start))

	pods, err := c.Client().CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=web"})
	if err != nil {
		t.Fatal(err)
	}
	if len(pods.Items) != 2 {
		t.Fatalf("got %d pods, want 2", len(pods.Items))
	}
	for _, p := range pods.Items {
		if p.Spec.NodeName != NodeName || p.Status.Phase != corev1.PodRunning || p.Status.PodIP == "" {
			t.Errorf("pod %s: node %q phase %s IP %q; want scheduled on %s, Running, with an IP",
				p.Name, p.Spec.NodeName, p.Status.Phase, p.Status.PodIP, NodeName)
		}
	}
}

// tinyChart is a chart with a Deployment and a Service whose replica count
// comes from values.
func tinyChart() *chart.Chart {
	const deploy = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ .Release.Name }}
spec:
  replicas: {{ .Values.replicas }}
  selector:
    matchLabels: {app: {{ .Release.Name }}}
  template:
    metadata:
      labels: {app: {{ .Release.Name }}}
    spec:
      containers:
      - name: app
        image: registry.invalid/app:1
        ports: [{containerPort: 8080}]
        readinessProbe: {httpGet: {path: /healthz, port: 8080}}
`
	const svc = `apiVersion: v1
kind: Service
metadata:
  name: {{ .Release.Name }}
spec:
  selector: {app: {{ .Release.Name }}}
  ports: [{port: 80, targetPort: 8080}]
`
	return &chart.Chart{
		Metadata: &chart.Metadata{APIVersion: chart.APIVersionV2, Name: "tiny", Version: "0.1.0", Type: "application"},
		Values:   map[string]any{"replicas": 2},
		Templates: []*chart.File{
			{Name: "templates/deployment.yaml", Data: []byte(deploy)},
			{Name: "templates/service.yaml", Data: []byte(svc)},
		},
	}
}

func TestIntegrationHelmInstallWait(t *testing.T) {
	skipIfShort(t)
	t.Parallel()
	c := Shared(t)
	ns := c.NewNamespace(t, nil)

	flags := genericclioptions.NewConfigFlags(false)
	flags.KubeConfig = &c.Kubeconfig
	flags.Namespace = &ns
	cfg := new(action.Configuration)
	if err := cfg.Init(flags, ns, "secret", t.Logf); err != nil {
		t.Fatal(err)
	}

	install := action.NewInstall(cfg)
	install.ReleaseName = "tiny"
	install.Namespace = ns
	install.Wait = true
	install.Timeout = time.Minute
	start := time.Now()
	rel, err := install.RunWithContext(t.Context(), tinyChart(), nil)
	if err != nil {
		t.Fatalf("helm install --wait: %v", err)
	}
	t.Logf("helm install --wait took %v", time.Since(start))
	if rel.Info.Status != release.StatusDeployed {
		t.Errorf("release status %s, want %s", rel.Info.Status, release.StatusDeployed)
	}

	d, err := c.Client().AppsV1().Deployments(ns).Get(t.Context(), "tiny", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if d.Status.ReadyReplicas != 2 {
		t.Errorf("after --wait the deployment has %d ready replicas, want 2", d.Status.ReadyReplicas)
	}

	list := action.NewList(cfg)
	list.All = true
	rels, err := list.Run()
	if err != nil {
		t.Fatal(err)
	}
	if len(rels) != 1 || rels[0].Name != "tiny" || rels[0].Info.Status != release.StatusDeployed {
		var got []string
		for _, r := range rels {
			got = append(got, r.Name+"="+r.Info.Status.String())
		}
		t.Errorf("helm list = %v, want [tiny=deployed]", got)
	}
}

func TestIntegrationValidatingAdmissionPolicyDenies(t *testing.T) {
	skipIfShort(t)
	t.Parallel()
	c := Shared(t)
	ctx := t.Context()
	const message = "every container must set resource limits: add resources.limits.cpu and resources.limits.memory"

	policies := c.Client().AdmissionregistrationV1().ValidatingAdmissionPolicies()
	policy, err := policies.Create(ctx, &admissionv1.ValidatingAdmissionPolicy{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "require-limits-"},
		Spec: admissionv1.ValidatingAdmissionPolicySpec{
			FailurePolicy: ptr.To(admissionv1.Fail),
			MatchConstraints: &admissionv1.MatchResources{ResourceRules: []admissionv1.NamedRuleWithOperations{{
				RuleWithOperations: admissionv1.RuleWithOperations{
					Operations: []admissionv1.OperationType{admissionv1.Create, admissionv1.Update},
					Rule: admissionv1.Rule{
						APIGroups: []string{"apps"}, APIVersions: []string{"v1"}, Resources: []string{"deployments"},
					},
				},
			}}},
			Validations: []admissionv1.Validation{{
				Expression: "object.spec.template.spec.containers.all(c, has(c.resources) && has(c.resources.limits) && 'cpu' in c.resources.limits && 'memory' in c.resources.limits)",
				Message:    message,
			}},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = policies.Delete(context.Background(), policy.Name, metav1.DeleteOptions{}) })

	// The binding only selects this test's namespace, so tests sharing the
	// control plane are not affected.
	bindings := c.Client().AdmissionregistrationV1().ValidatingAdmissionPolicyBindings()
	binding, err := bindings.Create(ctx, &admissionv1.ValidatingAdmissionPolicyBinding{
		ObjectMeta: metav1.ObjectMeta{Name: policy.Name},
		Spec: admissionv1.ValidatingAdmissionPolicyBindingSpec{
			PolicyName:        policy.Name,
			ValidationActions: []admissionv1.ValidationAction{admissionv1.Deny},
			MatchResources: &admissionv1.MatchResources{NamespaceSelector: &metav1.LabelSelector{
				MatchLabels: map[string]string{"k8stest.devctl.dev/policy": policy.Name},
			}},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = bindings.Delete(context.Background(), binding.Name, metav1.DeleteOptions{}) })
	ns := c.NewNamespace(t, map[string]string{"k8stest.devctl.dev/policy": policy.Name})
	deployments := c.Client().AppsV1().Deployments(ns)

	// The API server loads new policies asynchronously: retry until denied.
	var denied error
	err = wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		_, err := deployments.Create(ctx, deployment("no-limits", 1, false), metav1.CreateOptions{})
		if err == nil {
			return false, deployments.Delete(ctx, "no-limits", metav1.DeleteOptions{})
		}
		denied = err
		return true, nil
	})
	if err != nil {
		t.Fatalf("violating deployment was never denied: %v", err)
	}
	if !apierrors.IsInvalid(denied) && !apierrors.IsForbidden(denied) {
		t.Errorf("denial is %T %v, want a Forbidden or Invalid API error", denied, denied)
	}
	if !strings.Contains(denied.Error(), message) || !strings.Contains(denied.Error(), policy.Name) {
		t.Errorf("denial %q does not carry the policy name %q and message %q", denied, policy.Name, message)
	}

	if _, err := deployments.Create(ctx, deployment("with-limits", 1, true), metav1.CreateOptions{}); err != nil {
		t.Errorf("compliant deployment denied: %v", err)
	}
}

func TestIntegrationPodSecurityRestricted(t *testing.T) {
	skipIfShort(t)
	t.Parallel()
	c := Shared(t)
	ctx := t.Context()
	restricted := c.NewNamespace(t, map[string]string{"pod-security.kubernetes.io/enforce": "restricted"})
	open := c.NewNamespace(t, nil)

	privileged := func() *corev1.Pod {
		return &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: "privileged"},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{
				Name: "app", Image: "registry.invalid/app:1",
				SecurityContext: &corev1.SecurityContext{Privileged: ptr.To(true)},
			}}},
		}
	}
	_, err := c.Client().CoreV1().Pods(restricted).Create(ctx, privileged(), metav1.CreateOptions{})
	if !apierrors.IsForbidden(err) {
		t.Fatalf("privileged pod in a restricted namespace: got %v, want Forbidden", err)
	}
	for _, want := range []string{`violates PodSecurity "restricted:latest"`, "privileged"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("denial %q does not mention %q", err, want)
		}
	}

	if _, err := c.Client().CoreV1().Pods(open).Create(ctx, privileged(), metav1.CreateOptions{}); err != nil {
		t.Errorf("privileged pod in an unlabelled namespace: %v, want admitted", err)
	}

	compliant := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "compliant"},
		Spec: corev1.PodSpec{
			SecurityContext: &corev1.PodSecurityContext{
				RunAsNonRoot:   ptr.To(true),
				SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
			},
			Containers: []corev1.Container{{
				Name: "app", Image: "registry.invalid/app:1",
				SecurityContext: &corev1.SecurityContext{
					AllowPrivilegeEscalation: ptr.To(false),
					Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
				},
			}},
		},
	}
	if _, err := c.Client().CoreV1().Pods(restricted).Create(ctx, compliant, metav1.CreateOptions{}); err != nil {
		t.Errorf("restricted-compliant pod: %v, want admitted", err)
	}
}

func TestIntegrationStopLeavesNothing(t *testing.T) {
	skipIfShort(t)
	t.Parallel()
	c := Start(t) // its cleanup calls Stop again: Stop is idempotent
	var pids []int
	for _, p := range c.procs {
		pids = append(pids, p.cmd.Process.Pid)
	}
	if len(pids) != 5 {
		t.Errorf("got %d component processes, want 5", len(pids))
	}
	if err := c.Stop(); err != nil {
		t.Errorf("Stop: %v", err)
	}
	for _, pid := range pids {
		if err := syscall.Kill(pid, 0); err == nil {
			t.Errorf("process %d still running after Stop", pid)
		}
	}
	if _, err := os.Stat(c.Dir); !os.IsNotExist(err) {
		t.Errorf("%s still exists after Stop (stat: %v)", c.Dir, err)
	}
	if err := c.Stop(); err != nil {
		t.Errorf("second Stop: %v", err)
	}
}

// BenchmarkControlPlaneStart measures New until the control plane is ready
// (ns/op), the resident memory of all its processes once ready (rss-MiB)
// and how long Stop takes (stop-ms/op).
func BenchmarkControlPlaneStart(b *testing.B) {
	skipIfShort(b)
	var rss float64
	var stop time.Duration
	for b.Loop() {
		c, err := New(b.Context())
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		if rss, err = c.rssMiB(); err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		if err := c.Stop(); err != nil {
			b.Fatal(err)
		}
		stop += time.Since(start)
		b.StartTimer()
	}
	b.ReportMetric(rss, "rss-MiB")
	b.ReportMetric(float64(stop.Milliseconds())/float64(b.N), "stop-ms/op")
}

// rssMiB sums VmRSS of every component (Linux /proc).
func (c *ControlPlane) rssMiB() (float64, error) {
	var kib int
	for _, p := range c.procs {
		f, err := os.Open(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
		if err != nil {
			return 0, err
		}
		s := bufio.NewScanner(f)
		for s.Scan() {
			if v, ok := strings.CutPrefix(s.Text(), "VmRSS:"); ok {
				n, err := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
				if err != nil {
					_ = f.Close()
					return 0, fmt.Errorf("%s VmRSS %q: %w", p.name, v, err)
				}
				kib += n
			}
		}
		_ = f.Close()
	}
	return float64(kib) / 1024, nil
}
