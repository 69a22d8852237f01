package harness

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// The node image estimate install.sh prints comes from what is cached: the
// image in Docker, else the Kubernetes binaries, else nothing (a fixed
// "45–60 minutes" was 15 minutes on a machine whose Go cache was warm).
func TestNodeImageEstimateFollowsTheCache(t *testing.T) {
	t.Parallel()
	_, file, _, _ := runtime.Caller(0)
	root := filepath.Join(filepath.Dir(file), "..", "..")
	script := filepath.Join(root, "e2e", "images", "estimate.sh")
	versions, err := os.ReadFile(filepath.Join(root, "e2e", "tools", "versions.env"))
	if err != nil {
		t.Fatal(err)
	}
	k8s := ""
	for _, l := range strings.Split(string(versions), "\n") {
		if v, ok := strings.CutPrefix(l, "KUBERNETES_VERSION="); ok {
			k8s = v
		}
	}
	if k8s == "" {
		t.Fatal("no KUBERNETES_VERSION in versions.env")
	}

	estimate := func(cache string, imageBuilt bool) string {
		t.Helper()
		bin := t.TempDir()
		code := "1"
		if imageBuilt {
			code = "0"
		}
		// A docker that answers image inspect as told.
		fake := "#!/bin/sh\n[ \"$1 $2\" = \"image inspect\" ] && exit " + code + "\nexit 1\n"
		if err := os.WriteFile(filepath.Join(bin, "docker"), []byte(fake), 0o755); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command("bash", script)
		cmd.Env = append(os.Environ(), "PATH="+bin+":/usr/bin:/bin", "DEVCTL_E2E_CACHE="+cache)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("estimate.sh: %v\n%s", err, out)
		}
		return strings.TrimSpace(string(out))
	}

	empty := t.TempDir()
	if got := estimate(empty, false); !strings.Contains(got, "nothing cached yet") {
		t.Errorf("empty cache: %q", got)
	}
	warm := t.TempDir()
	if err := os.MkdirAll(filepath.Join(warm, "kubernetes-"+k8s, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	if got := estimate(warm, false); !strings.Contains(got, "Kubernetes binaries are cached") {
		t.Errorf("binaries cached: %q", got)
	}
	if got := estimate(empty, true); !strings.Contains(got, "already built") {
		t.Errorf("image built: %q", got)
	}
}
