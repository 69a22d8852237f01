package vcluster

import (
	"context"
	"encoding/base64"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	"sigs.k8s.io/yaml"

	"github.com/devctl/devctl/internal/helm"
)

// TestChartRendersOffline renders the chart with Values and checks what
// makes a vcluster start without the internet: the images given, telemetry
// off, no init container that pulls alpine, a quota and a limit range, and
// the label the port-forward finds the pod by.
func TestChartRendersOffline(t *testing.T) {
	ch, err := Chart()
	if err != nil {
		t.Fatal(err)
	}
	if ch.Metadata.Version != "0.30.0" {
		t.Errorf("chart version %q, want 0.30.0", ch.Metadata.Version)
	}
	im := Images{Syncer: "devctl.local/vcluster:0.30.0", Kubernetes: "registry:5000/k8s:v1.35.4", CoreDNS: "registry.k8s.io/coredns/coredns:v1.13.1"}
	out, err := helm.Render(context.Background(), ch, "hello-main", Namespace("hello-main"), Values(im))
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[string]bool{}
	var sts *appsv1.StatefulSet
	var cfg map[string]any
	for _, doc := range strings.Split(out, "\n---\n") {
		var meta struct {
			Kind     string `json:"kind"`
			Metadata struct{ Name string }
			Data     map[string]string `json:"data"`
		}
		if err := yaml.Unmarshal([]byte(doc), &meta); err != nil || meta.Kind == "" {
			continue
		}
		kinds[meta.Kind] = true
		switch {
		case meta.Kind == "StatefulSet":
			sts = &appsv1.StatefulSet{}
			if err := yaml.Unmarshal([]byte(doc), sts); err != nil {
				t.Fatal(err)
			}
		case meta.Kind == "Secret" && meta.Metadata.Name == "vc-config-hello-main":
			b, err := base64.StdEncoding.DecodeString(meta.Data["config.yaml"])
			if err != nil {
				t.Fatal(err)
			}
			if err := yaml.Unmarshal(b, &cfg); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, k := range []string{"ResourceQuota", "LimitRange", "StatefulSet", "Service", "Role", "RoleBinding"} {
		if !kinds[k] {
			t.Errorf("no %s rendered (kinds: %v)", k, kinds)
		}
	}
	if sts == nil {
		t.Fatal("no StatefulSet")
	}
	var images []string
	for _, c := range append(sts.Spec.Template.Spec.InitContainers, sts.Spec.Template.Spec.Containers...) {
		images = append(images, c.Image)
	}
	want := []string{"registry:5000/k8s:v1.35.4", "devctl.local/vcluster:0.30.0"}
	if strings.Join(images, " ") != strings.Join(want, " ") {
		t.Errorf("pod images %q, want %q", images, want)
	}
	if got := sts.Spec.Template.Labels["app.kubernetes.io/instance"]; got != ControlPlaneInstance {
		t.Errorf("pod instance label %q, want %q", got, ControlPlaneInstance)
	}
	// The pod turns Ready within a second of the virtual API answering.
	syncer := false
	for _, c := range sts.Spec.Template.Spec.Containers {
		if c.Name != "syncer" {
			continue
		}
		syncer = true
		if c.StartupProbe == nil || c.StartupProbe.PeriodSeconds != 1 || c.StartupProbe.FailureThreshold != 1800 {
			t.Errorf("syncer startup probe %+v, want every second for up to 30 minutes", c.StartupProbe)
		}
		if c.ReadinessProbe == nil || c.ReadinessProbe.PeriodSeconds != 1 {
			t.Errorf("syncer readiness probe %+v, want every second", c.ReadinessProbe)
		}
		if c.LivenessProbe == nil || c.LivenessProbe.InitialDelaySeconds != 60 {
			t.Errorf("syncer liveness probe %+v, want the chart's", c.LivenessProbe)
		}
	}
	if !syncer {
		t.Error("no syncer container in the StatefulSet")
	}
	if strings.Contains(out, "alpine") {
		t.Error("the rendered chart still names an alpine image")
	}
	// The vcluster configuration travels as a Secret; telemetry must be off
	// and the CoreDNS image ours.
	for path, want := range map[string]any{
		"telemetry.enabled":                            false,
		"networking.advanced.proxyKubelets.byHostname": false,
		"sync.toHost.pods.rewriteHosts.enabled":        false,
		"controlPlane.coredns.deployment.image":        im.CoreDNS,
		"policies.resourceQuota.enabled":               true,
		"controlPlane.distro.k8s.enabled":              true,
		"controlPlane.statefulSet.image.repository":    "devctl.local/vcluster",
		"controlPlane.distro.k8s.image.tag":            "v1.35.4",
	} {
		if got := lookup(cfg, path); got != want {
			t.Errorf("vcluster config %s = %v, want %v", path, got, want)
		}
	}
	if c := lookup(cfg, "controlPlane.coredns.overwriteConfig"); c == nil || strings.Contains(c.(string), "hosts ") {
		t.Errorf("CoreDNS config %v: want one without the hosts plugin", c)
	}
}

func lookup(m map[string]any, path string) any {
	var cur any = m
	for _, k := range strings.Split(path, ".") {
		mm, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = mm[k]
	}
	return cur
}

func TestNamespaceAndLabels(t *testing.T) {
	if got := Namespace("hello-main"); got != "devctl-vc-hello-main" {
		t.Errorf("Namespace = %q", got)
	}
	if n := Namespace(strings.Repeat("a", 40)); len(n) > 63 {
		t.Errorf("Namespace of a 40-character name is %d characters", len(n))
	}
	l := NamespaceLabels("pr-12", map[string]string{"devctl.dev/pr": "12", "team": "shop", "devctl.dev/env": "spoofed"})
	want := map[string]string{"devctl.dev/pr": "12", LabelEnv: "pr-12", LabelManagedBy: ManagedBy}
	if len(l) != len(want) {
		t.Errorf("labels %v, want %v", l, want)
	}
	for k, v := range want {
		if l[k] != v {
			t.Errorf("label %s = %q, want %q", k, l[k], v)
		}
	}
}

func TestPointAt(t *testing.T) {
	raw := []byte(`apiVersion: v1
kind: Config
clusters:
- name: my-vcluster
  cluster: {server: "https://localhost:8443", certificate-authority-data: Y2E=}
contexts:
- name: my-vcluster
  context: {cluster: my-vcluster, user: my-vcluster}
current-context: my-vcluster
users:
- name: my-vcluster
  user: {client-certificate-data: Y2VydA==, client-key-data: a2V5}
`)
	out, err := pointAt(raw, "hello-main", "https://127.0.0.1:4321")
	if err != nil {
		t.Fatal(err)
	}
	s := string(out)
	for _, w := range []string{"server: https://127.0.0.1:4321", "current-context: vcluster-hello-main", "certificate-authority-data: Y2E="} {
		if !strings.Contains(s, w) {
			t.Errorf("kubeconfig lacks %q:\n%s", w, s)
		}
	}
	if _, err := pointAt([]byte("{not yaml"), "x", "https://127.0.0.1:1"); err == nil || !strings.Contains(err.Error(), "Secret vc-x") {
		t.Errorf("bad kubeconfig err = %v", err)
	}
}

func TestSplitImage(t *testing.T) {
	for in, want := range map[string][2]string{
		"devctl.local/vcluster:0.30.0": {"devctl.local/vcluster", "0.30.0"},
		"localhost:5000/x":             {"localhost:5000/x", "latest"},
		"localhost:5000/x:v1":          {"localhost:5000/x", "v1"},
	} {
		if r, tag := splitImage(in); r != want[0] || tag != want[1] {
			t.Errorf("splitImage(%q) = %q, %q", in, r, tag)
		}
	}
}
