package charts_test

import (
	"context"
	"errors"
	"maps"
	"os"
	"slices"
	"strings"
	"testing"

	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/lint"
	"helm.sh/helm/v3/pkg/lint/support"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes/scheme"

	"github.com/devctl/devctl/charts"
	"github.com/devctl/devctl/internal/helm"
)

const (
	release   = "shop"
	namespace = "shop-main"
)

// baseValues are what devctl passes for a typical service.
func baseValues() map[string]any {
	return map[string]any{
		"image":       map[string]any{"repository": "localhost:5001/shop", "tag": "c0ffee12"},
		"team":        "payments",
		"owner":       "alice",
		"costCenter":  "cc-42",
		"branch":      "feature/Checkout_v2",
		"environment": "dev",
	}
}

// with returns baseValues with top-level keys replaced.
func with(over map[string]any) map[string]any {
	v := baseValues()
	maps.Copy(v, over)
	return v
}

// objects renders the golden-path chart and decodes every document into its
// typed object, keyed by kind.
func objects(t *testing.T, values map[string]any) map[string]runtime.Object {
	t.Helper()
	ch, err := charts.GoldenPath()
	if err != nil {
		t.Fatal(err)
	}
	out, err := helm.Render(t.Context(), ch, release, namespace, values)
	if err != nil {
		t.Fatalf("render: %v", err)
	}
	objs := map[string]runtime.Object{}
	for _, doc := range strings.Split(out, "\n---\n") {
		doc = strings.TrimPrefix(strings.TrimSpace(doc), "---")
		if strings.TrimSpace(doc) == "" {
			continue
		}
		if !strings.Contains(doc, "# Source: golden-path/templates/") {
			t.Errorf("document without a # Source comment:\n%s", doc)
		}
		obj, gvk, err := scheme.Codecs.UniversalDeserializer().Decode([]byte(doc), nil, nil)
		if err != nil {
			t.Fatalf("decode:\n%s\n%v", doc, err)
		}
		if _, dup := objs[gvk.Kind]; dup {
			t.Fatalf("two objects of kind %s", gvk.Kind)
		}
		objs[gvk.Kind] = obj
	}
	return objs
}

func TestGoldenPathObjects(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		values map[string]any
		want   []string
	}{
		{"one replica: no PDB", baseValues(), []string{"Deployment", "NetworkPolicy", "Service", "ServiceAccount"}},
		{"replicas > 1: PDB", with(map[string]any{"replicas": 3}), []string{"Deployment", "NetworkPolicy", "PodDisruptionBudget", "Service", "ServiceAccount"}},
		{"hpa: HPA and PDB", with(map[string]any{"hpa": map[string]any{"enabled": true}}), []string{"Deployment", "HorizontalPodAutoscaler", "NetworkPolicy", "PodDisruptionBudget", "Service", "ServiceAccount"}},
		{"pdb disabled", with(map[string]any{"replicas": 3, "pdb": map[string]any{"enabled": false}}), []string{"Deployment", "NetworkPolicy", "Service", "ServiceAccount"}},
		{"network policy disabled", with(map[string]any{"networkPolicy": map[string]any{"enabled": false}}), []string{"Deployment", "Service", "ServiceAccount"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := slices.Sorted(maps.Keys(objects(t, tt.values)))
			if !slices.Equal(got, tt.want) {
				t.Errorf("kinds = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestGoldenPathDeployment(t *testing.T) {
	t.Parallel()
	objs := objects(t, with(map[string]any{
		"service": map[string]any{"port": 9090},
		"probes": map[string]any{
			"readiness": map[string]any{"path": "/ready", "periodSeconds": 3},
			"liveness":  map[string]any{"path": "/live", "initialDelaySeconds": 7},
		},
		"resources": map[string]any{
			"requests": map[string]any{"cpu": "100m", "memory": "128Mi"},
			"limits":   map[string]any{"cpu": 1, "memory": "512Mi"},
		},
		"env":            map[string]any{"B_NUM": 3, "A_STR": "x"},
		"podAnnotations": map[string]any{"example.com/scrape": "true"},
	}))
	d := objs["Deployment"].(*appsv1.Deployment)
	pod := d.Spec.Template.Spec
	if len(pod.Containers) != 1 {
		t.Fatalf("containers = %d, want 1", len(pod.Containers))
	}
	c := pod.Containers[0]

	if got, want := c.Image, "localhost:5001/shop:c0ffee12"; got != want {
		t.Errorf("image = %q, want %q", got, want)
	}
	if c.ImagePullPolicy != corev1.PullIfNotPresent {
		t.Errorf("pullPolicy = %q, want IfNotPresent", c.ImagePullPolicy)
	}
	if len(c.Ports) != 1 || c.Ports[0].ContainerPort != 9090 || c.Ports[0].Name != "http" {
		t.Errorf("ports = %+v, want http:9090", c.Ports)
	}
	if *d.Spec.Replicas != 1 {
		t.Errorf("replicas = %d, want 1", *d.Spec.Replicas)
	}
	probes := []struct {
		name        string
		p           *corev1.Probe
		path        string
		delay, each int32
	}{
		{"readiness", c.ReadinessProbe, "/ready", 0, 3},
		{"liveness", c.LivenessProbe, "/live", 7, 10},
	}
	for _, p := range probes {
		if p.p == nil || p.p.HTTPGet == nil {
			t.Errorf("%s probe: missing httpGet", p.name)
			continue
		}
		if p.p.HTTPGet.Path != p.path || p.p.HTTPGet.Port != intstr.FromString("http") {
			t.Errorf("%s probe: httpGet %s %s, want %s http", p.name, p.p.HTTPGet.Path, p.p.HTTPGet.Port.String(), p.path)
		}
		if p.p.InitialDelaySeconds != p.delay || p.p.PeriodSeconds != p.each {
			t.Errorf("%s probe: delay %d period %d, want %d %d", p.name, p.p.InitialDelaySeconds, p.p.PeriodSeconds, p.delay, p.each)
		}
	}
	wantRes := corev1.ResourceRequirements{
		Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m"), corev1.ResourceMemory: resource.MustParse("128Mi")},
		Limits:   corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1"), corev1.ResourceMemory: resource.MustParse("512Mi")},
	}
	for name, want := range map[string]corev1.ResourceList{"requests": wantRes.Requests, "limits": wantRes.Limits} {
		got := c.Resources.Requests
		if name == "limits" {
			got = c.Resources.Limits
		}
		for k, q := range want {
			if g := got[k]; g.Cmp(q) != 0 {
				t.Errorf("resources.%s.%s = %s, want %s", name, k, g.String(), q.String())
			}
		}
	}
	wantEnv := []corev1.EnvVar{{Name: "A_STR", Value: "x"}, {Name: "B_NUM", Value: "3"}}
	if !slices.Equal(c.Env, wantEnv) {
		t.Errorf("env = %+v, want %+v", c.Env, wantEnv)
	}
	if got := d.Spec.Template.Annotations["example.com/scrape"]; got != "true" {
		t.Errorf("pod annotation = %q, want \"true\"", got)
	}

	// Restricted pod security.
	psc := pod.SecurityContext
	if psc == nil || !deref(psc.RunAsNonRoot) || deref(psc.RunAsUser) != 65532 ||
		psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("pod securityContext = %+v", psc)
	}
	csc := c.SecurityContext
	if csc == nil || !deref(csc.RunAsNonRoot) || deref(csc.RunAsUser) != 65532 ||
		!deref(csc.ReadOnlyRootFilesystem) || csc.AllowPrivilegeEscalation == nil || *csc.AllowPrivilegeEscalation ||
		csc.Capabilities == nil || !slices.Equal(csc.Capabilities.Drop, []corev1.Capability{"ALL"}) || len(csc.Capabilities.Add) != 0 ||
		csc.SeccompProfile == nil || csc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("container securityContext = %+v", csc)
	}
	if pod.AutomountServiceAccountToken == nil || *pod.AutomountServiceAccountToken {
		t.Errorf("pod automountServiceAccountToken = %v, want false", pod.AutomountServiceAccountToken)
	}
	if sa := objs["ServiceAccount"].(*corev1.ServiceAccount); sa.AutomountServiceAccountToken == nil || *sa.AutomountServiceAccountToken {
		t.Errorf("ServiceAccount automountServiceAccountToken = %v, want false", sa.AutomountServiceAccountToken)
	}
	if pod.ServiceAccountName != release {
		t.Errorf("serviceAccountName = %q, want %q", pod.ServiceAccountName, release)
	}
	if len(pod.Volumes) != 1 || pod.Volumes[0].EmptyDir == nil || len(c.VolumeMounts) != 1 ||
		c.VolumeMounts[0].MountPath != "/tmp" || c.VolumeMounts[0].Name != pod.Volumes[0].Name {
		t.Errorf("want an emptyDir on /tmp, got volumes %+v mounts %+v", pod.Volumes, c.VolumeMounts)
	}

	svc := objs["Service"].(*corev1.Service)
	if len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].Port != 9090 || svc.Spec.Ports[0].TargetPort != intstr.FromString("http") {
		t.Errorf("service ports = %+v, want 9090 -> http", svc.Spec.Ports)
	}
	sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
	if err != nil {
		t.Fatal(err)
	}
	if !sel.Matches(labels.Set(d.Spec.Template.Labels)) {
		t.Errorf("deployment selector %s does not match its pod template", sel)
	}
	for k, v := range svc.Spec.Selector {
		if d.Spec.Template.Labels[k] != v {
			t.Errorf("service selector %s=%s does not match the pod template", k, v)
		}
	}

	np := objs["NetworkPolicy"].(*networkingv1.NetworkPolicy)
	if len(np.Spec.Ingress) != 1 || len(np.Spec.Ingress[0].Ports) != 1 || *np.Spec.Ingress[0].Ports[0].Port != intstr.FromString("http") {
		t.Errorf("network policy ingress = %+v, want the http port only", np.Spec.Ingress)
	}
	if !slices.Equal(np.Spec.PolicyTypes, []networkingv1.PolicyType{networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress}) {
		t.Errorf("network policy types = %v", np.Spec.PolicyTypes)
	}
}

func TestGoldenPathImageAndEnvForms(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		values    map[string]any
		wantImage string
		wantEnv   []corev1.EnvVar
	}{
		{
			name:      "tag",
			values:    baseValues(),
			wantImage: "localhost:5001/shop:c0ffee12",
		},
		{
			name:      "digest",
			values:    with(map[string]any{"image": map[string]any{"repository": "r/shop", "tag": "sha256:" + strings.Repeat("a", 64)}}),
			wantImage: "r/shop@sha256:" + strings.Repeat("a", 64),
		},
		{
			name:      "no tag: appVersion",
			values:    with(map[string]any{"image": map[string]any{"repository": "r/shop"}}),
			wantImage: "r/shop:0.1.0",
		},
		{
			name:      "env list",
			values:    with(map[string]any{"env": []any{map[string]any{"name": "Z", "value": "1"}, map[string]any{"name": "A", "valueFrom": map[string]any{"fieldRef": map[string]any{"fieldPath": "metadata.name"}}}}}),
			wantImage: "localhost:5001/shop:c0ffee12",
			wantEnv: []corev1.EnvVar{
				{Name: "Z", Value: "1"},
				{Name: "A", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := objects(t, tt.values)["Deployment"].(*appsv1.Deployment).Spec.Template.Spec.Containers[0]
			if c.Image != tt.wantImage {
				t.Errorf("image = %q, want %q", c.Image, tt.wantImage)
			}
			if len(c.Env) != len(tt.wantEnv) {
				t.Fatalf("env = %+v, want %+v", c.Env, tt.wantEnv)
			}
			for i := range c.Env {
				got, want := c.Env[i], tt.wantEnv[i]
				if got.Name != want.Name || got.Value != want.Value || (want.ValueFrom == nil) != (got.ValueFrom == nil) ||
					(want.ValueFrom != nil && got.ValueFrom.FieldRef.FieldPath != want.ValueFrom.FieldRef.FieldPath) {
					t.Errorf("env[%d] = %+v, want %+v", i, got, want)
				}
			}
		})
	}
}

func TestGoldenPathScaling(t *testing.T) {
	t.Parallel()
	objs := objects(t, with(map[string]any{
		"hpa": map[string]any{"enabled": true, "minReplicas": 2, "maxReplicas": 7, "targetCPUUtilizationPercentage": 60},
		"pdb": map[string]any{"minAvailable": "50%"},
	}))
	if r := objs["Deployment"].(*appsv1.Deployment).Spec.Replicas; r != nil {
		t.Errorf("deployment replicas = %d, want unset under an HPA", *r)
	}
	hpa := objs["HorizontalPodAutoscaler"].(*autoscalingv2.HorizontalPodAutoscaler)
	if deref(hpa.Spec.MinReplicas) != 2 || hpa.Spec.MaxReplicas != 7 {
		t.Errorf("hpa min/max = %v/%d, want 2/7", hpa.Spec.MinReplicas, hpa.Spec.MaxReplicas)
	}
	if ref := hpa.Spec.ScaleTargetRef; ref.Kind != "Deployment" || ref.Name != release || ref.APIVersion != "apps/v1" {
		t.Errorf("hpa target = %+v", ref)
	}
	if m := hpa.Spec.Metrics; len(m) != 1 || m[0].Resource == nil || m[0].Resource.Name != corev1.ResourceCPU || deref(m[0].Resource.Target.AverageUtilization) != 60 {
		t.Errorf("hpa metrics = %+v, want cpu at 60%%", m)
	}
	pdb := objs["PodDisruptionBudget"].(*policyv1.PodDisruptionBudget)
	if pdb.Spec.MinAvailable == nil || *pdb.Spec.MinAvailable != intstr.FromString("50%") {
		t.Errorf("pdb minAvailable = %v, want 50%%", pdb.Spec.MinAvailable)
	}

	ch, err := charts.GoldenPath()
	if err != nil {
		t.Fatal(err)
	}
	_, err = helm.Render(t.Context(), ch, release, namespace, with(map[string]any{"hpa": map[string]any{"enabled": true, "minReplicas": 5, "maxReplicas": 2}}))
	if !errors.Is(err, helm.ErrInvalidValues) || !strings.Contains(err.Error(), "hpa.minReplicas") {
		t.Errorf("minReplicas > maxReplicas: err = %v, want ErrInvalidValues naming hpa.minReplicas", err)
	}
}

func TestGoldenPathLabels(t *testing.T) {
	t.Parallel()
	objs := objects(t, with(map[string]any{
		"replicas":    2,
		"hpa":         map[string]any{"enabled": true},
		"extraLabels": map[string]any{"example.com/tier": "web"},
	}))
	want := map[string]string{
		"app.kubernetes.io/name":       release,
		"app.kubernetes.io/instance":   release,
		"app.kubernetes.io/version":    "c0ffee12",
		"app.kubernetes.io/managed-by": "Helm",
		"app.kubernetes.io/part-of":    release,
		"devctl.dev/team":              "payments",
		"devctl.dev/owner":             "alice",
		"devctl.dev/cost-center":       "cc-42",
		"devctl.dev/branch":            "feature-Checkout_v2", // "/" is not allowed in label values
		"devctl.dev/env":               "dev",
		"example.com/tier":             "web",
	}
	if len(objs) != 6 {
		t.Fatalf("rendered %d objects, want all 6 kinds", len(objs))
	}
	check := func(where string, got map[string]string) {
		for k, v := range want {
			if got[k] != v {
				t.Errorf("%s: label %s = %q, want %q", where, k, got[k], v)
			}
		}
	}
	for kind, obj := range objs {
		m, err := meta(obj)
		if err != nil {
			t.Fatal(err)
		}
		check(kind, m.GetLabels())
		if m.GetNamespace() != namespace {
			t.Errorf("%s: namespace = %q, want %q", kind, m.GetNamespace(), namespace)
		}
	}
	check("pod template", objs["Deployment"].(*appsv1.Deployment).Spec.Template.Labels)
}

func TestGoldenPathSchemaErrors(t *testing.T) {
	t.Parallel()
	ch, err := charts.GoldenPath()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		values map[string]any
		want   []string // substrings of the error
	}{
		{"unknown top-level key", with(map[string]any{"replica": 2}), []string{"'replica' not allowed"}},
		{"unknown nested key", with(map[string]any{"probes": map[string]any{"readiness": map[string]any{"paht": "/x"}}}), []string{"/probes/readiness", "'paht' not allowed"}},
		{"wrong type", with(map[string]any{"replicas": "two"}), []string{"/replicas", "want integer"}},
		{"port out of range", with(map[string]any{"service": map[string]any{"port": 70000}}), []string{"/service/port", "maximum"}},
		{"port zero", with(map[string]any{"service": map[string]any{"port": 0}}), []string{"/service/port", "minimum"}},
		{"bad pull policy", with(map[string]any{"image": map[string]any{"repository": "r", "pullPolicy": "Sometimes"}}), []string{"/image/pullPolicy"}},
		{"missing image", map[string]any{}, []string{"/image/repository"}},
		{"scalar for an object", with(map[string]any{"image": "localhost:5001/shop:v1"}), []string{"image: got string, want an object"}},
		{"object for a scalar", with(map[string]any{"service": map[string]any{"port": map[string]any{"number": 80}}}), []string{"service.port: got an object"}},
		{"probe path without slash", with(map[string]any{"probes": map[string]any{"liveness": map[string]any{"path": "healthz"}}}), []string{"/probes/liveness/path"}},
		{"bad env name", with(map[string]any{"env": map[string]any{"1BAD NAME": "x"}}), []string{"/env"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := helm.Render(context.Background(), ch, release, namespace, tt.values)
			if !errors.Is(err, helm.ErrInvalidValues) {
				t.Fatalf("err = %v, want ErrInvalidValues", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not mention %q:\n%v", w, err)
				}
			}
		})
	}
}

func TestGoldenPathLint(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if err := os.CopyFS(dir, charts.FS); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		values map[string]any
	}{
		{"typical", baseValues()},
		{"scaled", with(map[string]any{"replicas": 3, "hpa": map[string]any{"enabled": true}, "env": []any{map[string]any{"name": "A", "value": "b"}}})},
		{"live", liveValues()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			kv := &chartutil.KubeVersion{Version: "v1.35.0", Major: "1", Minor: "35"}
			l := lint.AllWithKubeVersion(dir+"/"+charts.GoldenPathName, tt.values, namespace, kv)
			for _, m := range l.Messages {
				if m.Severity >= support.WarningSev {
					t.Errorf("lint: %s", m)
				} else {
					t.Logf("lint: %s", m)
				}
			}
		})
	}
}

func TestLoadUnknownChart(t *testing.T) {
	t.Parallel()
	if _, err := charts.Load("no-such-chart"); err == nil {
		t.Fatal("Load of a missing chart succeeded")
	}
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}

func meta(obj runtime.Object) (metav1.Object, error) {
	return apimeta.Accessor(obj)
}
