package registry

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/devctl/devctl/internal/build/goimage"
)

// crictlPath finds crictl: DEVCTL_CRICTL, PATH, or the one e2e/images/build.sh
// (make e2e-images) builds into the e2e cache.
func crictlPath(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("DEVCTL_CRICTL"); p != "" {
		return p
	}
	if p, err := exec.LookPath("crictl"); err == nil {
		return p
	}
	cache := os.Getenv("DEVCTL_E2E_CACHE")
	if cache == "" {
		if dir, err := os.UserCacheDir(); err == nil {
			cache = filepath.Join(dir, "devctl-e2e")
		}
	}
	if ps, _ := filepath.Glob(filepath.Join(cache, "bin", "crictl-*", "crictl")); len(ps) > 0 {
		return ps[len(ps)-1]
	}
	t.Fatal("integration: crictl not found: run make e2e-images (it builds crictl into the e2e cache), " +
		"put crictl on PATH or set DEVCTL_CRICTL; -short skips this test")
	return ""
}

// TestIntegrationContainerdPullsThroughHosts runs containerd as the kind
// node image does (version 2 configuration, CRI plugin) with
// ContainerdConfigPatch pointing at the hosts files WriteHostsDir wrote from
// NodeHosts, and pulls through the CRI API, as the kubelet does, by both
// names the registry is known by. The node image ships Debian bookworm's
// containerd, the one Debian's docker.io runs on, so the host's binary is
// the node's.
func TestIntegrationContainerdPullsThroughHosts(t *testing.T) {
	if testing.Short() {
		t.Skip("integration: needs containerd and crictl")
	}
	if os.Geteuid() != 0 {
		t.Skip("integration: containerd needs root")
	}
	containerd, err := exec.LookPath("containerd")
	if err != nil {
		t.Fatalf("integration: containerd not found (apt-get install containerd; Docker's docker.io depends on it): %v", err)
	}
	crictl := crictlPath(t)
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()

	r := newRegistry(t, t.TempDir())
	lo, _ := r.loopback()
	res, err := goimage.New(goimage.WithCacheDir(t.TempDir())).Build(ctx, goimage.Spec{Dir: "testdata/fetch"})
	if err != nil {
		t.Fatal(err)
	}
	tag := "it-" + randomSuffix(t)
	pushed, err := r.Push(ctx, res.Image, "it/fetch:"+tag)
	if err != nil {
		t.Fatal(err)
	}

	// containerd's paths must be short: the socket path is limited to 108 bytes.
	dir, err := os.MkdirTemp("", "devctl-ctrd-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	hosts := filepath.Join(dir, "certs.d")
	// On a node the hosts point at the registry's address on the kind
	// network; here containerd runs on the host and reaches it on loopback.
	if err := WriteHostsDir(hosts, r.NodeHosts(lo)); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "containerd.sock")
	config := fmt.Sprintf(`version = 2
root = %q
state = %q
[grpc]
  address = %q
[plugins."io.containerd.grpc.v1.cri".containerd]
  snapshotter = "overlayfs"
  discard_unpacked_layers = true
`, filepath.Join(dir, "root"), filepath.Join(dir, "state"), sock) +
		strings.Replace(ContainerdConfigPatch, ContainerdHostsDir, hosts, 1)
	if err := os.WriteFile(filepath.Join(dir, "config.toml"), []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}

	logf, err := os.Create(filepath.Join(dir, "containerd.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(ctx, containerd, "--config", filepath.Join(dir, "config.toml"))
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.WaitDelay = 10 * time.Second
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		_ = cmd.Wait()
		_ = logf.Close()
		if t.Failed() {
			b, _ := os.ReadFile(logf.Name())
			t.Logf("containerd log:\n%s", b)
		}
	})

	run := func(args ...string) (string, error) {
		out, err := exec.CommandContext(ctx, crictl, append([]string{"--image-endpoint", "unix://" + sock, "--timeout", "30s"}, args...)...).CombinedOutput()
		return string(out), err
	}
	var out string
	for i := 0; ; i++ {
		if out, err = run("images"); err == nil {
			break
		}
		if i == 60 {
			t.Fatalf("containerd did not answer: %v\n%s", err, out)
		}
		time.Sleep(500 * time.Millisecond)
	}

	for _, n := range r.Names() {
		ref := n + "/it/fetch:" + tag
		if out, err := run("pull", ref); err != nil {
			t.Fatalf("crictl pull %s: %v\n%s", ref, err, out)
		}
		out, err := run("inspecti", ref)
		if err != nil {
			t.Fatalf("crictl inspecti %s: %v\n%s", ref, err, out)
		}
		if want := n + "/it/fetch@" + pushed.Digest.String(); !strings.Contains(out, want) {
			t.Errorf("crictl inspecti %s does not show %s:\n%s", ref, want, out)
		}
	}
}
