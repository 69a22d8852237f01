//go:build linux

package agent

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/devctl/devctl/internal/agent/agentbin"
)

// TestIntegrationScratchImage runs the live-mode pod layout with Docker,
// under the chart's security context (read-only root filesystem, user
// 65532, no capabilities): the agent image copies the agent into the
// "devctl" volume, the FROM scratch app image seeds its /static through it,
// and the agent, as PID 1, runs examples/hello. A sync then replaces the
// binary and adds a static file, with neither a shell nor tar in the image.
func TestIntegrationScratchImage(t *testing.T) {
	if testing.Short() {
		t.Skip("integration: needs a Docker engine")
	}
	if _, err := exec.LookPath("docker"); err != nil {
		t.Fatalf("integration tests need Docker (-short skips them): %v", err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Minute)
	defer cancel()
	work := t.TempDir()
	suffix := randHex(t)

	// The agent image, as the daemon builds it.
	agentCtx := filepath.Join(work, "agent")
	must(t, os.Mkdir(agentCtx, 0o755))
	goBuild(ctx, t, filepath.Join("..", "..", "cmd", "devctl-agent"), filepath.Join(agentCtx, "agent.bin"), "")
	t.Setenv(agentbin.EnvBinary, filepath.Join(agentCtx, "agent.bin"))
	if _, err := agentbin.WriteContext(agentCtx, runtime.GOARCH); err != nil {
		t.Fatal(err)
	}
	must(t, os.Remove(filepath.Join(agentCtx, "agent.bin")))
	agentImage := "devctl-test/agent:" + suffix
	docker(ctx, t, "build", "-q", "-t", agentImage, agentCtx)
	t.Cleanup(func() { dockerQuiet("rmi", "-f", agentImage) })

	// The app: examples/hello v1 FROM scratch, with a /static directory.
	appCtx := filepath.Join(work, "app")
	must(t, os.MkdirAll(filepath.Join(appCtx, "static"), 0o755))
	must(t, os.WriteFile(filepath.Join(appCtx, "static", "index.html"), []byte("<h1>v1</h1>"), 0o644))
	hello := filepath.Join("..", "..", "examples", "hello")
	goBuild(ctx, t, hello, filepath.Join(appCtx, "hello"), "v1")
	must(t, os.WriteFile(filepath.Join(appCtx, "Dockerfile"), []byte(
		"FROM scratch\nCOPY hello /hello\nCOPY static /static\nUSER 65532:65532\nENTRYPOINT [\"/hello\"]\n"), 0o644))
	appImage := "devctl-test/hello:" + suffix
	docker(ctx, t, "build", "-q", "-t", appImage, appCtx)
	t.Cleanup(func() { dockerQuiet("rmi", "-f", appImage) })

	// The pod's emptyDirs.
	devctlVol, staticVol := filepath.Join(work, "devctl"), filepath.Join(work, "sync-0")
	for _, d := range []string{devctlVol, staticVol} {
		must(t, os.Mkdir(d, 0o777))
		must(t, os.Chmod(d, 0o777)) // as an emptyDir, whatever the umask
	}
	restricted := []string{"--read-only", "--user", "65532:65532", "--cap-drop", "ALL", "--security-opt", "no-new-privileges"}
	run := func(args ...string) string {
		return docker(ctx, t, append(append([]string{"run"}, restricted...), args...)...)
	}
	t.Log(run("--rm", "-v", devctlVol+":/devctl", agentImage, "seed", "/devctl-agent", "/devctl/bin/devctl-agent"))
	t.Log(run("--rm", "-v", devctlVol+":/devctl", "-v", staticVol+":/devctl/sync/0", "--entrypoint", "/devctl/bin/devctl-agent",
		appImage, "seed", "--marker=/devctl/seeded", "/static", "/devctl/sync/0"))
	if got := readFile(t, filepath.Join(staticVol, "index.html")); got != "<h1>v1</h1>" {
		t.Fatalf("seeded index.html = %q", got)
	}

	name := "devctl-test-live-" + suffix
	run("-d", "--name", name, "-v", devctlVol+":/devctl", "-v", staticVol+":/static",
		"-e", TokenEnv+"="+testToken, "-p", "127.0.0.1::8080", "-p", "127.0.0.1::7071",
		"--entrypoint", "/devctl/bin/devctl-agent", appImage, "--listen=:7071", "--port=8080", "--sync=/static", "--", "/hello")
	t.Cleanup(func() {
		if t.Failed() {
			out, _ := exec.Command("docker", "logs", name).CombinedOutput()
			t.Logf("container log:\n%s", out)
		}
		dockerQuiet("rm", "-f", name)
	})
	appURL := "http://" + strings.TrimSpace(docker(ctx, t, "port", name, "8080/tcp"))
	c := &Client{BaseURL: "http://" + strings.TrimSpace(docker(ctx, t, "port", name, "7071/tcp")), Token: testToken}
	eventually(t, "hello answers", func() bool {
		st, err := c.Status(ctx)
		return err == nil && st.App.Listening
	})
	if got := httpGet(t, appURL); !strings.Contains(got, "version v1") {
		t.Fatalf("hello answered %q", got)
	}

	// Save: a new binary and a new static file.
	v2 := filepath.Join(work, "hello-v2")
	goBuild(ctx, t, hello, v2, "v2")
	bin, err := LocalFile("/hello", v2)
	if err != nil {
		t.Fatal(err)
	}
	res, err := c.Sync(ctx, Batch{Files: []File{bin, DataFile("/static/new.txt", []byte("new"), 0)}, Action: Action{Restart: true}})
	if err != nil {
		t.Fatalf("sync: %v", err)
	}
	t.Logf("sync of %d bytes through docker's port proxy: %+v", res.Bytes, res.Timings)
	if got := httpGet(t, appURL); !strings.Contains(got, "version v2") {
		t.Errorf("after the sync hello answered %q, want v2", got)
	}
	if res.App.Executable != "/devctl/app/hello" {
		t.Errorf("executable = %q, want the synced /devctl/app/hello", res.App.Executable)
	}
	if got := readFile(t, filepath.Join(staticVol, "new.txt")); got != "new" {
		t.Errorf("static file = %q", got)
	}
	if _, err := c.Sync(ctx, Batch{Files: []File{DataFile("/etc/passwd", []byte("x"), 0)}}); err == nil {
		t.Error("a sync outside the synced paths succeeded")
	}

	// docker stop sends SIGTERM to PID 1, the agent; hello shuts down
	// cleanly and the agent exits with its code.
	logs, _ := exec.CommandContext(ctx, "docker", "logs", name).CombinedOutput()
	if !strings.Contains(string(logs), "pid1=true") {
		t.Errorf("the agent is not PID 1:\n%s", logs)
	}
	docker(ctx, t, "stop", "-t", "20", name)
	if code := strings.TrimSpace(docker(ctx, t, "inspect", "-f", "{{.State.ExitCode}}", name)); code != "0" {
		t.Errorf("container exit code %s, want hello's 0", code)
	}
}

func goBuild(ctx context.Context, t *testing.T, pkgDir, out, version string) {
	t.Helper()
	out, err := filepath.Abs(out)
	if err != nil {
		t.Fatal(err)
	}
	args := []string{"build", "-trimpath", "-o", out}
	if version != "" {
		args = append(args, "-ldflags", "-X main.version="+version)
	}
	cmd := exec.CommandContext(ctx, "go", append(args, ".")...)
	cmd.Dir = pkgDir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", pkgDir, err, b)
	}
}

func docker(ctx context.Context, t *testing.T, args ...string) string {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, "docker", args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("docker %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return stdout.String()
}

func dockerQuiet(args ...string) { _ = exec.Command("docker", args...).Run() }

func httpGet(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

func randHex(t *testing.T) string {
	t.Helper()
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b[:])
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
