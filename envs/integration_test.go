package envs

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/discovery"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/devctl/devctl/internal/api"
)

// TestIntegrationKindLifecycle drives a real kind cluster through the
// Manager. It needs Docker and a kind node image that is present locally
// (nothing is pulled): DEVCTL_NODE_IMAGE=devctl.local/kind-node:<tag>.
// DEVCTL_KEEP_CLUSTER=1 keeps the cluster for debugging.
func TestIntegrationKindLifecycle(t *testing.T) {
	if testing.Short() {
		t.Skip("integration: needs Docker and DEVCTL_NODE_IMAGE")
	}
	image := os.Getenv("DEVCTL_NODE_IMAGE")
	if image == "" {
		t.Fatal("integration: set DEVCTL_NODE_IMAGE to a kind node image present in the local Docker engine " +
			"(see `docker images devctl.local/kind-node`), or run with -short to skip")
	}
	useDockerWrapper(t)
	if out, err := exec.Command("docker", "image", "inspect", image).CombinedOutput(); err != nil {
		t.Fatalf("integration: node image %s is not in the local Docker engine (build it first): %v\n%s", image, err, out)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	name := "devctl-it-" + randomHex(t, 3)
	m := New(
		WithStateDir(t.TempDir()),
		WithLogger(slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))),
		WithProgress(func(p Progress) { t.Logf("progress: %s %s %s (%v)", p.Env, p.State, p.Message, p.Elapsed) }),
	)
	t.Cleanup(func() {
		if os.Getenv("DEVCTL_KEEP_CLUSTER") == "1" {
			t.Logf("keeping cluster %s (kind delete cluster --name %s)", name, name)
			return
		}
		if _, err := m.Delete(context.Background(), name, ""); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})

	spec := api.EnvSpec{
		Provider: api.ProviderKind, Project: "it", Repo: "github.com/devctl/it", Branch: "main",
		Dir: t.TempDir(), NodeImage: image, Labels: map[string]string{"suite": "integration"},
	}
	start := time.Now()
	env, err := m.Up(ctx, name, spec)
	if err != nil {
		t.Fatalf("Up: %v", err)
	}
	t.Logf("Up created %s in %v", name, time.Since(start).Round(time.Millisecond))

	start = time.Now()
	again, err := m.Up(ctx, name, spec)
	if err != nil || again.New || !again.Created.Equal(env.Created) {
		t.Fatalf("second Up = %+v, %v; want the recorded env", again, err)
	}
	t.Logf("idempotent Up took %v", time.Since(start).Round(time.Millisecond))

	got, err := m.Get(ctx, name, api.ProviderKind)
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	if !reflect.DeepEqual(got.Spec, spec) {
		t.Errorf("Get spec = %+v\nwant       %+v", got.Spec, spec)
	}

	start = time.Now()
	list, err := m.List(ctx)
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	t.Logf("List of %d env(s) took %v", len(list), time.Since(start).Round(time.Millisecond))
	found := false
	for _, e := range list {
		if e.Name == name {
			found = reflect.DeepEqual(e.Spec, spec)
		}
	}
	if !found {
		t.Errorf("List = %+v, want %s with its metadata", list, name)
	}

	fi, err := os.Stat(env.Kubeconfig)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("kubeconfig %s: %v, %v", env.Kubeconfig, fi, err)
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", env.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	v, err := dc.ServerVersion()
	if err != nil {
		t.Fatalf("ServerVersion through %s: %v", env.Kubeconfig, err)
	}
	t.Logf("server version %s", v.GitVersion)

	tag := "devctl.local/it-tiny:" + name
	buildTinyImage(t, tag)
	start = time.Now()
	if err := m.LoadImages(ctx, name, api.ProviderKind, func() (io.ReadCloser, error) { return dockerSave(ctx, tag) }); err != nil {
		t.Fatalf("LoadImages: %v", err)
	}
	t.Logf("LoadImages took %v", time.Since(start).Round(time.Millisecond))
	out, err := exec.Command("docker", "exec", name+"-control-plane", "ctr", "--namespace=k8s.io", "images", "ls", "-q").CombinedOutput()
	if err != nil || !strings.Contains(string(out), tag) {
		t.Errorf("image %s not in the node: %v\n%s", tag, err, out)
	}

	start = time.Now()
	d, err := m.Delete(ctx, name, api.ProviderKind)
	if err != nil || d != (Deleted{Cluster: true, Files: true}) {
		t.Fatalf("Delete = %+v, %v; want cluster and files deleted", d, err)
	}
	t.Logf("Delete took %v", time.Since(start).Round(time.Millisecond))
	out, err = exec.Command("docker", "ps", "-a", "-q", "--filter", "label=io.x-k8s.kind.cluster="+name).CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) != 0 {
		t.Errorf("containers left after Delete: %q, %v", out, err)
	}
	if _, err := os.Stat(filepath.Dir(env.Kubeconfig)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("state dir left after Delete: %v", err)
	}
	if _, err := m.Get(ctx, name, api.ProviderKind); !errors.Is(err, ErrEnvNotFound) {
		t.Errorf("Get after Delete err = %v, want ErrEnvNotFound", err)
	}
	if d, err := m.Delete(ctx, name, api.ProviderKind); err != nil || d != (Deleted{}) {
		t.Errorf("second Delete = %+v, %v; want nothing deleted", d, err)
	}
}

// useDockerWrapper puts e2e/tools/docker-wrapper first on PATH when it exists
// and DEVCTL_DOCKER_WRAPPER is not "off": on hosts that cannot run
// --privileged containers it adds the flags kind's nodes need.
func useDockerWrapper(t *testing.T) {
	t.Helper()
	if os.Getenv("DEVCTL_DOCKER_WRAPPER") == "off" {
		return
	}
	dir, err := filepath.Abs(filepath.Join("..", "e2e", "tools", "docker-wrapper"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "docker")); err != nil {
		return
	}
	t.Logf("using the docker wrapper in %s", dir)
	t.Setenv("PATH", dir+string(os.PathListSeparator)+os.Getenv("PATH"))
}

func buildTinyImage(t *testing.T, tag string) {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte("FROM scratch\nCOPY hello.txt /hello.txt\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "hello.txt"), []byte(tag+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("docker", "build", "-q", "-t", tag, dir).CombinedOutput(); err != nil {
		t.Fatalf("docker build %s: %v\n%s", tag, err, out)
	}
	t.Cleanup(func() { _ = exec.Command("docker", "rmi", tag).Run() })
}

// dockerSave streams `docker save tag`; Close waits for the command.
func dockerSave(ctx context.Context, tag string) (io.ReadCloser, error) {
	cmd := exec.CommandContext(ctx, "docker", "save", tag)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	return &cmdStream{ReadCloser: out, cmd: cmd, stderr: &stderr}, nil
}

type cmdStream struct {
	io.ReadCloser
	cmd    *exec.Cmd
	stderr *bytes.Buffer
}

func (c *cmdStream) Close() error {
	_, _ = io.Copy(io.Discard, c.ReadCloser)
	if err := c.cmd.Wait(); err != nil {
		return errors.Join(err, errors.New(strings.TrimSpace(c.stderr.String())))
	}
	return nil
}

func randomHex(t *testing.T, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// testWriter sends log lines to t.Log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
