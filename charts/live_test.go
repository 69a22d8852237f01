package charts_test

import (
	"errors"
	"maps"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/devctl/devctl/charts"
	"github.com/devctl/devctl/internal/helm"
	"github.com/devctl/devctl/internal/policy"
)

// live returns liveValues with keys of the live block replaced.
func live(over map[string]any) map[string]any {
	v := liveValues()
	l := maps.Clone(v["live"].(map[string]any))
	maps.Copy(l, over)
	v["live"] = l
	return v
}

func TestGoldenPathLiveObjects(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		values     map[string]any
		wantSecret string // "" for none
	}{
		{"token: the chart keeps it in a Secret", liveValues(), "shop-devctl-agent"},
		{"tokenSecret: an existing Secret", live(map[string]any{"token": "", "tokenSecret": "agent-token"}), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			objs := objects(t, tt.values)
			s, ok := objs["Secret"].(*corev1.Secret)
			if (tt.wantSecret != "") != ok {
				t.Fatalf("Secret rendered: %v, want %v", ok, tt.wantSecret != "")
			}
			if ok && (s.Name != tt.wantSecret || string(s.Data["token"]) != "s3cret") {
				t.Errorf("Secret %s holds %q", s.Name, s.Data["token"])
			}
			c := objs["Deployment"].(*appsv1.Deployment).Spec.Template.Spec.Containers[0]
			want := tt.wantSecret
			if want == "" {
				want = "agent-token"
			}
			if len(c.Env) != 1 || c.Env[0].Name != "DEVCTL_AGENT_TOKEN" || c.Env[0].ValueFrom == nil ||
				c.Env[0].ValueFrom.SecretKeyRef.Name != want || c.Env[0].ValueFrom.SecretKeyRef.Key != "token" {
				t.Errorf("env = %+v, want the token from Secret %s", c.Env, want)
			}
		})
	}
}

func TestGoldenPathLiveDeployment(t *testing.T) {
	t.Parallel()
	v := live(map[string]any{"port": 7999})
	v["env"] = map[string]any{"LOG": "debug"}
	pod := objects(t, v)["Deployment"].(*appsv1.Deployment).Spec.Template.Spec
	c := pod.Containers[0]

	wantCmd := []string{"/devctl/bin/devctl-agent", "--listen=:7999", "--port=8080", "--sync=/static", "--sync=/app/templates", "--", "/hello", "--addr=:8080"}
	if !slices.Equal(c.Command, wantCmd) || len(c.Args) != 0 {
		t.Errorf("command %q args %q, want %q", c.Command, c.Args, wantCmd)
	}
	if len(c.Env) != 2 || c.Env[0].Name != "LOG" || c.Env[1].Name != "DEVCTL_AGENT_TOKEN" {
		t.Errorf("env = %+v, want the service's and the token", c.Env)
	}
	if len(c.Ports) != 2 || c.Ports[1].Name != "devctl-agent" || c.Ports[1].ContainerPort != 7999 {
		t.Errorf("ports = %+v", c.Ports)
	}
	if p := c.LivenessProbe.HTTPGet; p.Path != "/healthz" || p.Port != intstr.FromString("devctl-agent") {
		t.Errorf("liveness probe = %+v, want the agent's /healthz", p)
	}
	if p := c.ReadinessProbe.HTTPGet; p.Path != "/readyz" || p.Port != intstr.FromString("http") {
		t.Errorf("readiness probe = %+v, want the app's", p)
	}

	mounts := func(ms []corev1.VolumeMount) map[string]string {
		out := map[string]string{}
		for _, m := range ms {
			out[m.MountPath] = m.Name
		}
		return out
	}
	emptyDirs := map[string]bool{}
	for _, vol := range pod.Volumes {
		emptyDirs[vol.Name] = vol.EmptyDir != nil
	}
	wantApp := map[string]string{"/tmp": "tmp", "/devctl": "devctl", "/static": "devctl-sync-0", "/app/templates": "devctl-sync-1"}
	if got := mounts(c.VolumeMounts); !maps.Equal(got, wantApp) {
		t.Errorf("app mounts = %v, want %v", got, wantApp)
	}
	for _, name := range wantApp {
		if !emptyDirs[name] {
			t.Errorf("volume %s is not an emptyDir", name)
		}
	}

	if len(pod.InitContainers) != 2 {
		t.Fatalf("init containers = %d, want 2", len(pod.InitContainers))
	}
	install, seed := pod.InitContainers[0], pod.InitContainers[1]
	if install.Image != "devctl.local/devctl-agent:0123456789abcdef" ||
		!slices.Equal(install.Command, []string{"/devctl-agent", "seed", "/devctl-agent", "/devctl/bin/devctl-agent"}) ||
		!maps.Equal(mounts(install.VolumeMounts), map[string]string{"/devctl": "devctl"}) {
		t.Errorf("install init container = %+v", install)
	}
	if seed.Image != c.Image ||
		!slices.Equal(seed.Command, []string{"/devctl/bin/devctl-agent", "seed", "--marker=/devctl/seeded", "/static", "/devctl/sync/0", "/app/templates", "/devctl/sync/1"}) ||
		!maps.Equal(mounts(seed.VolumeMounts), map[string]string{"/devctl": "devctl", "/devctl/sync/0": "devctl-sync-0", "/devctl/sync/1": "devctl-sync-1"}) {
		t.Errorf("seed init container = %+v", seed)
	}
	for _, ic := range pod.InitContainers {
		if !slices.Equal(ic.Command[:1], []string{"/devctl-agent"}) && !strings.HasPrefix(ic.Command[0], "/devctl/") {
			t.Errorf("%s runs %q: init containers run the static agent, nothing from the image", ic.Name, ic.Command[0])
		}
		if !deref(ic.SecurityContext.ReadOnlyRootFilesystem) || ic.Resources.Limits.Memory().IsZero() {
			t.Errorf("%s: securityContext %+v resources %+v", ic.Name, ic.SecurityContext, ic.Resources)
		}
	}

	// Without syncs there is nothing to seed.
	pod = objects(t, live(map[string]any{"syncs": []any{}}))["Deployment"].(*appsv1.Deployment).Spec.Template.Spec
	if len(pod.InitContainers) != 1 || len(pod.Volumes) != 2 {
		t.Errorf("no syncs: %d init containers, %d volumes; want the install only, and tmp and devctl", len(pod.InitContainers), len(pod.Volumes))
	}
}

// TestGoldenPathLivePolicy holds the live-mode pod to devctl's own policy:
// restricted pod security, read-only root filesystems, resources on the
// init containers too, probes.
func TestGoldenPathLivePolicy(t *testing.T) {
	t.Parallel()
	e, err := policy.New(t.Context(), policy.Options{AllowedRegistries: []string{"localhost:5001", "devctl.local"}, Namespace: namespace})
	if err != nil {
		t.Fatal(err)
	}
	check := func(t *testing.T, values map[string]any) []policy.Finding {
		t.Helper()
		docs, err := policy.ParseManifests("rendered.yaml", []byte(render(t, values)))
		if err != nil {
			t.Fatal(err)
		}
		r, err := e.Check(t.Context(), docs, nil)
		if err != nil {
			t.Fatal(err)
		}
		return r.Findings
	}
	for _, v := range []map[string]any{liveValues(), live(map[string]any{"syncs": []any{}})} {
		for _, f := range check(t, v) {
			t.Errorf("finding: %s %s %s: %s", f.Rule, f.Container, f.Path, f.Message)
		}
	}
	// The engine does look at the init containers.
	findings := check(t, live(map[string]any{"initResources": nil}))
	var rules []string
	for _, f := range findings {
		if f.Container == "devctl-agent-install" || f.Container == "devctl-seed" {
			rules = append(rules, f.Rule+"/"+f.Container)
		}
	}
	slices.Sort(rules)
	want := []string{"resource-limits/devctl-agent-install", "resource-limits/devctl-seed", "resource-requests/devctl-agent-install", "resource-requests/devctl-seed"}
	if !slices.Equal(rules, want) {
		t.Errorf("init containers without resources: findings %q, want %q", rules, want)
	}
}

func TestGoldenPathLiveErrors(t *testing.T) {
	t.Parallel()
	ch, err := charts.GoldenPath()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		values map[string]any
		want   string
	}{
		{"no agent image", live(map[string]any{"agentImage": ""}), "/live/agentImage"},
		{"no entrypoint", live(map[string]any{"entrypoint": []any{}}), "/live/entrypoint"},
		{"no token", live(map[string]any{"token": ""}), "live.token"},
		{"agent on the app's port", live(map[string]any{"port": 8080}), "live.port 8080 is the app's port"},
		{"relative sync", live(map[string]any{"syncs": []any{map[string]any{"dest": "static"}}}), "/live/syncs/0/dest"},
		{"sync with a trailing slash", live(map[string]any{"syncs": []any{map[string]any{"dest": "/static/"}}}), "/live/syncs/0/dest"},
		{"sync over /tmp", live(map[string]any{"syncs": []any{map[string]any{"dest": "/tmp"}}}), "/tmp cannot be synced"},
		{"sync under /devctl", live(map[string]any{"syncs": []any{map[string]any{"dest": "/devctl/x"}}}), "/devctl/x cannot be synced"},
		{"sync listed twice", live(map[string]any{"syncs": []any{map[string]any{"dest": "/a"}, map[string]any{"dest": "/a"}}}), "/a cannot be synced"},
		{"unknown key", live(map[string]any{"sync": []any{}}), "'sync' not allowed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := helm.Render(t.Context(), ch, release, namespace, tt.values)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want one mentioning %q", err, tt.want)
			}
			if strings.HasPrefix(tt.want, "/") && !errors.Is(err, helm.ErrInvalidValues) {
				t.Errorf("err = %v, want ErrInvalidValues", err)
			}
		})
	}
	// Disabled, the live block is not checked beyond its types.
	if _, err := helm.Render(t.Context(), ch, release, namespace, with(map[string]any{"live": map[string]any{"enabled": false, "port": 8080}})); err != nil {
		t.Errorf("live disabled: %v", err)
	}
}
