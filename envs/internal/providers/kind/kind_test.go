package kind

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"

	jsonpatch "github.com/evanphx/json-patch/v5"
	sigsyaml "sigs.k8s.io/yaml"

	"sigs.k8s.io/kind/pkg/apis/config/v1alpha4"
	kindexec "sigs.k8s.io/kind/pkg/exec"

	"github.com/devctl/devctl/envs/internal/providers"
	"github.com/devctl/devctl/internal/api"
	"github.com/devctl/devctl/internal/registry"
)

func TestStatusLine(t *testing.T) {
	t.Parallel()
	tests := []struct {
		line   string
		want   providers.Step
		wantOK bool
	}{
		{" • Preparing nodes 📦  ...\n", providers.Step{Message: "Preparing nodes 📦", State: providers.StepStarted}, true},
		{" ✓ Preparing nodes 📦\n", providers.Step{Message: "Preparing nodes 📦", State: providers.StepDone}, true},
		{" ✗ Starting control-plane 🕹️\n", providers.Step{Message: "Starting control-plane 🕹️", State: providers.StepFailed}, true},
		{"Creating cluster \"x\" ...\n", providers.Step{}, false},
		{" • no suffix", providers.Step{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.line, func(t *testing.T) {
			t.Parallel()
			got, ok := statusLine(tt.line)
			if ok != tt.wantOK || got != tt.want {
				t.Errorf("statusLine(%q) = %+v, %v; want %+v, %v", tt.line, got, ok, tt.want, tt.wantOK)
			}
		})
	}
}

func TestLoggerRoutesStatusAndLevels(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	l := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo}))
	var steps []providers.Step
	g := newLogger(context.Background(), l, func(s providers.Step) { steps = append(steps, s) })

	g.V(0).Infof(" • %s  ...\n", "Writing configuration")
	g.V(0).Infof(" ✓ %s\n", "Writing configuration")
	g.V(1).Info("debug detail")
	g.Warnf("cgroup %s", "v1")

	want := []providers.Step{
		{Message: "Writing configuration", State: providers.StepStarted},
		{Message: "Writing configuration", State: providers.StepDone},
	}
	if len(steps) != len(want) || steps[0] != want[0] || steps[1] != want[1] {
		t.Errorf("steps = %+v, want %+v", steps, want)
	}
	out := buf.String()
	if !strings.Contains(out, "level=WARN msg=\"cgroup v1\"") {
		t.Errorf("warning not logged at WARN:\n%s", out)
	}
	if strings.Contains(out, "debug detail") {
		t.Errorf("V(1) logged although the handler is at INFO:\n%s", out)
	}
	if g.V(1).Enabled() {
		t.Error("V(1).Enabled() = true with an INFO handler")
	}
	if !newLogger(context.Background(), slog.New(slog.DiscardHandler), func(providers.Step) {}).V(0).Enabled() {
		t.Error("V(0) must stay enabled for progress when the logger discards")
	}
}

func TestConfig(t *testing.T) {
	t.Parallel()
	c := Config("hello-main", providers.CreateOptions{Spec: api.EnvSpec{NodeImage: "img:1"}})
	if c.Name != "hello-main" || c.APIVersion != "kind.x-k8s.io/v1alpha4" || c.Kind != "Cluster" {
		t.Errorf("config header = %q %q %q", c.Name, c.APIVersion, c.Kind)
	}
	if len(c.Nodes) != 1 || c.Nodes[0].Role != v1alpha4.ControlPlaneRole {
		t.Errorf("nodes = %+v, want one control plane", c.Nodes)
	}
	want := []string{AllowCgroupV1Patch, fastControlPlaneV1Beta3, skipKubeletFinalizeV1Beta3}
	if strings.Join(c.KubeadmConfigPatches, "|") != strings.Join(want, "|") {
		t.Errorf("patches = %q, want %q", c.KubeadmConfigPatches, want)
	}
	if len(c.KubeadmConfigPatchesJSON6902) != 2 || c.KubeadmConfigPatchesJSON6902[0].Version != "v1beta4" || c.KubeadmConfigPatchesJSON6902[1].Version != "v1beta4" {
		t.Errorf("JSON 6902 patches = %+v, want the two v1beta4 ones", c.KubeadmConfigPatchesJSON6902)
	}
}

// The v1beta4 patch appends to the argument list kind's template writes
// (it keeps kind's own arguments).
func TestFastControlPlaneV1Beta4(t *testing.T) {
	t.Parallel()
	// What kind's v1beta4 template makes of controllerManager.
	out := applyJSON6902(t, fastControlPlaneV1Beta4, `{"controllerManager":{"extraArgs":[{"name":"enable-hostpath-provisioner","value":"true"}]}}`)
	want := `{"controllerManager":{"extraArgs":[{"name":"enable-hostpath-provisioner","value":"true"},` +
		`{"name":"leader-elect","value":"false"},{"name":"kube-api-qps","value":"200"},{"name":"kube-api-burst","value":"400"}]}}`
	if string(out) != want {
		t.Errorf("patched:\n%s\nwant:\n%s", out, want)
	}
}

// Both patches skip kubelet-finalize and keep the phase kind skips itself,
// applied as kind applies them to what its templates make of skipPhases.
func TestSkipKubeletFinalize(t *testing.T) {
	t.Parallel()
	want := `["preflight","kubelet-finalize"]`

	merge, err := sigsyaml.YAMLToJSON([]byte(skipKubeletFinalizeV1Beta3))
	if err != nil {
		t.Fatal(err)
	}
	var m struct{ APIVersion, Kind string }
	if err := json.Unmarshal(merge, &m); err != nil {
		t.Fatal(err)
	}
	if m.APIVersion != "kubeadm.k8s.io/v1beta3" || m.Kind != "InitConfiguration" {
		t.Errorf("the merge patch matches %s %s, want only v1beta3's InitConfiguration", m.APIVersion, m.Kind)
	}
	v3 := []byte(`{"apiVersion":"kubeadm.k8s.io/v1beta3","kind":"InitConfiguration","skipPhases":["preflight"]}`)
	out, err := jsonpatch.MergePatch(v3, merge)
	if err != nil {
		t.Fatal(err)
	}
	if got := skipPhasesOf(t, out); got != want {
		t.Errorf("v1beta3 skipPhases = %s, want %s", got, want)
	}

	out = applyJSON6902(t, skipKubeletFinalizeV1Beta4, `{"skipPhases":["preflight"]}`)
	if got := skipPhasesOf(t, out); got != want {
		t.Errorf("v1beta4 skipPhases = %s, want %s", got, want)
	}
}

// applyJSON6902 applies p to doc as kind does.
func applyJSON6902(t *testing.T, p v1alpha4.PatchJSON6902, doc string) []byte {
	t.Helper()
	ops, err := sigsyaml.YAMLToJSON([]byte(p.Patch))
	if err != nil {
		t.Fatal(err)
	}
	patch, err := jsonpatch.DecodePatch(ops)
	if err != nil {
		t.Fatal(err)
	}
	out, err := patch.Apply([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func skipPhasesOf(t *testing.T, doc []byte) string {
	t.Helper()
	var d struct {
		SkipPhases json.RawMessage `json:"skipPhases"`
	}
	if err := json.Unmarshal(doc, &d); err != nil {
		t.Fatal(err)
	}
	return string(d.SkipPhases)
}

func TestCreateRequiresKubeconfigPath(t *testing.T) {
	t.Parallel()
	err := New(nil).Create(context.Background(), "x", providers.CreateOptions{})
	if err == nil || !strings.Contains(err.Error(), "no kubeconfig path") {
		t.Fatalf("Create without kubeconfig path: err = %v", err)
	}
}

func TestLoadNode(t *testing.T) {
	t.Parallel()
	loadErr := errors.New("ctr failed")
	tests := []struct {
		name     string
		cancel   bool
		openErr  error
		loadErr  error
		wantErr  error
		wantRead string
	}{
		{name: "ok", wantRead: "archive"},
		{name: "open fails", openErr: io.ErrUnexpectedEOF, wantErr: io.ErrUnexpectedEOF},
		{name: "load fails", loadErr: loadErr, wantErr: loadErr, wantRead: "archive"},
		{name: "cancelled", cancel: true, wantErr: context.Canceled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if tt.cancel {
				cancel()
			}
			closed := false
			archive := func() (io.ReadCloser, error) {
				if tt.openErr != nil {
					return nil, tt.openErr
				}
				return closer{Reader: strings.NewReader("archive"), closed: &closed}, nil
			}
			var read string
			err := loadNode(ctx, "n1", archive, func(r io.Reader) error {
				b, err := io.ReadAll(r)
				read = string(b)
				if err != nil {
					return err
				}
				return tt.loadErr
			})
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil && err != nil) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if read != tt.wantRead {
				t.Errorf("read %q, want %q", read, tt.wantRead)
			}
			if tt.openErr == nil && !tt.cancel && !closed {
				t.Error("archive stream not closed")
			}
		})
	}
}

type closer struct {
	io.Reader
	closed *bool
}

func (c closer) Close() error { *c.closed = true; return nil }

func TestCommandError(t *testing.T) {
	t.Parallel()
	run := &kindexec.RunError{Command: []string{"docker", "run", "x"}, Output: []byte("pulling\nno space left\n"), Inner: errors.New("exit status 125")}
	err := commandError(fmt.Errorf("wrapped: %w", run))
	var ce *providers.CommandError
	if !errors.As(err, &ce) || string(ce.Output) != "pulling\nno space left\n" || ce.Command != "docker run x" {
		t.Fatalf("commandError = %#v", err)
	}
	if msg := err.Error(); !strings.HasSuffix(msg, "\n  pulling\n  no space left") || !strings.Contains(msg, "exit status 125") {
		t.Errorf("message = %q, want the reason and the output's last lines", msg)
	}
	if !errors.Is(err, run) {
		t.Error("CommandError hides the original error")
	}
	plain := errors.New("plain")
	if commandError(plain) != plain { //nolint:errorlint // the very same error must come back, not a wrapper
		t.Error("commandError changed an error without command output")
	}
}

func TestConfigPullsFromRegistry(t *testing.T) {
	t.Parallel()
	c := Config("hello-main", providers.CreateOptions{RegistryHostsDir: "/state/registry-hosts"})
	if len(c.ContainerdConfigPatches) != 1 || c.ContainerdConfigPatches[0] != registry.ContainerdConfigPatch {
		t.Errorf("containerd patches = %q", c.ContainerdConfigPatches)
	}
	m := c.Nodes[0].ExtraMounts
	if len(m) != 1 || m[0].HostPath != "/state/registry-hosts" || m[0].ContainerPath != registry.ContainerdHostsDir || !m[0].Readonly {
		t.Errorf("mounts = %+v", m)
	}
	if plain := Config("hello-main", providers.CreateOptions{}); len(plain.ContainerdConfigPatches) != 0 || len(plain.Nodes[0].ExtraMounts) != 0 {
		t.Errorf("without a hosts folder: %+v", plain)
	}
}

func TestHasStaticCNI(t *testing.T) {
	for in, want := range map[string]bool{
		`["/usr/local/bin/devctl-entrypoint","/usr/local/bin/entrypoint","/sbin/init"]`: true,
		`["/usr/local/bin/entrypoint","/sbin/init"]`:                                    false, // kindest/node: kindnetd
		`null`: false,
		``:     false,
	} {
		if got := hasStaticCNI([]byte(in)); got != want {
			t.Errorf("hasStaticCNI(%s) = %v, want %v", in, got, want)
		}
	}
}
