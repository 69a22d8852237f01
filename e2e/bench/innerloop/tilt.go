package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/yaml"

	"github.com/devctl/devctl/internal/registry"
)

// The Tilt side: the same app (examples/hello) and the same edits, on the
// same cluster, the way Tilt's Go example does it (tilt.build
// docs/example_go.md): the host compiles the binary in a local_resource,
// docker_build's live_update syncs it into the running container and a run
// step kills the process, which the container's restart loop starts again
// (what ext://restart_process does, without fetching the extension). Tilt
// syncs with `tar` through `kubectl exec`, so its image is Debian (the node
// image's root filesystem), not scratch. Images reach the cluster through
// the registry devctl announces in kube-public/local-registry-hosting.

const tiltfile = `# Written by e2e/bench/innerloop.
allow_k8s_contexts(k8s_context())
update_settings(suppress_unused_image_warnings=["hello-tilt"])
default_registry(%q, host_from_cluster=%q)
local_resource("hello-compile", "CGO_ENABLED=0 GOOS=linux go build -o bin/hello .", deps=["main.go"])
live = os.getenv("BENCH_LIVE", "1") == "1"
docker_build("hello-tilt", ".", dockerfile="Dockerfile.tilt", only=["bin/hello", "static", "restart.sh"],
    live_update=[
        sync("bin/hello", "/app/hello"),
        sync("static", "/static"),
        run("kill $(cat /tmp/app.pid) 2>/dev/null || true", trigger=["bin/hello"]),
    ] if live else [])
k8s_yaml("k8s.yaml")
k8s_resource("hello-tilt", port_forwards=["%d:8080"], resource_deps=["hello-compile"])
`

const tiltDockerfile = `FROM %s
COPY bin/hello /app/hello
COPY static /static
COPY restart.sh /restart.sh
ENTRYPOINT ["/bin/sh", "/restart.sh"]
`

// restartLoop is the container's entrypoint: it runs the app again whenever
// it exits, and keeps its pid where the run step finds it.
const restartLoop = `#!/bin/sh
while true; do
  /app/hello &
  echo $! >/tmp/app.pid
  wait $!
done
`

const tiltManifests = `apiVersion: v1
kind: Namespace
metadata:
  name: tilt-bench
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: hello-tilt
  namespace: tilt-bench
spec:
  replicas: 1
  selector:
    matchLabels: {app: hello-tilt}
  template:
    metadata:
      labels: {app: hello-tilt}
    spec:
      containers:
        - name: app
          image: hello-tilt
          ports: [{containerPort: 8080}]
          readinessProbe:
            httpGet: {path: /readyz, port: 8080}
            periodSeconds: 1
`

// stand-in yarn: a Tilt built from source starts its web UI's dev server
// with yarn and stops when yarn is missing. This one serves nothing.
const fakeYarn = `#!/bin/sh
case "$1" in
run) exec sleep 2147483647 ;;
esac
exit 0
`

type tiltResult struct {
	live, full []time.Duration
	rssKB      int64 // Tilt's largest resident set seen
}

// benchTilt measures Tilt's live update and full rebuild of the same edits
// on the cluster of kubeconfig.
func benchTilt(ctx context.Context, tiltBin, kubeconfig, src, work string, n int) (*tiltResult, error) {
	base, err := debianImage()
	if err != nil {
		return nil, err
	}
	host, fromCluster, err := clusterRegistry(ctx, kubeconfig)
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(work, "hello-tilt")
	if err := sh(work, "cp", "-r", src, dir); err != nil {
		return nil, err
	}
	_ = os.RemoveAll(filepath.Join(dir, "bin"))
	_ = os.Remove(filepath.Join(dir, "devctl.yaml"))
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	fakeBin := filepath.Join(work, "fakebin")
	cwd, err := tiltWebDir(tiltBin, work)
	if err != nil {
		return nil, err
	}
	files := map[string]string{
		filepath.Join(dir, "Tiltfile"):        fmt.Sprintf(tiltfile, host, fromCluster, port),
		filepath.Join(dir, "Dockerfile.tilt"): fmt.Sprintf(tiltDockerfile, base),
		filepath.Join(dir, "restart.sh"):      restartLoop,
		filepath.Join(dir, "k8s.yaml"):        tiltManifests,
		filepath.Join(dir, ".dockerignore"):   "",
		filepath.Join(fakeBin, "yarn"):        fakeYarn,
	}
	for p, content := range files {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return nil, err
		}
		if err := os.WriteFile(p, []byte(content), 0o755); err != nil {
			return nil, err
		}
	}
	mainGo := filepath.Join(dir, "main.go")
	orig, err := os.ReadFile(mainGo)
	if err != nil {
		return nil, err
	}
	url := fmt.Sprintf("http://127.0.0.1:%d", port)
	res := &tiltResult{}
	for _, mode := range []string{"live", "full"} {
		ds, rss, err := tiltRound(ctx, tiltBin, kubeconfig, dir, cwd, fakeBin, mode, url, mainGo, orig, n)
		if err != nil {
			return nil, fmt.Errorf("tilt (%s): %w", mode, err)
		}
		res.rssKB = max(res.rssKB, rss)
		if mode == "live" {
			res.live = ds
		} else {
			res.full = ds
		}
	}
	return res, nil
}

// tiltRound starts `tilt up` with live update on or off, waits until the app
// answers, times n edits and stops Tilt.
func tiltRound(ctx context.Context, tiltBin, kubeconfig, dir, cwd, fakeBin, mode, url, mainGo string, orig []byte, n int) ([]time.Duration, int64, error) {
	if err := os.WriteFile(mainGo, orig, 0o644); err != nil {
		return nil, 0, err
	}
	apiPort, err := freePort()
	if err != nil {
		return nil, 0, err
	}
	webdevPort, err := freePort()
	if err != nil {
		return nil, 0, err
	}
	live := "1"
	if mode == "full" {
		live = "0"
	}
	logPath := filepath.Join(dir, "tilt-"+mode+".log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, 0, err
	}
	defer func() { _ = logFile.Close() }()
	env := append(os.Environ(), "KUBECONFIG="+kubeconfig, "TILT_DISABLE_ANALYTICS=1", "BENCH_LIVE="+live,
		"PATH="+fakeBin+string(os.PathListSeparator)+os.Getenv("PATH"))
	cmd := exec.Command(tiltBin, "up", "--stream", "--file", filepath.Join(dir, "Tiltfile"),
		"--port", fmt.Sprint(apiPort), "--webdev-port", fmt.Sprint(webdevPort))
	cmd.Dir, cmd.Env = cwd, env
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, 0, err
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait() // stopped by the benchmark: its exit status says nothing
		close(exited)
	}()
	stop := func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGINT)
		select {
		case <-exited:
		case <-time.After(15 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-exited
		}
		// The next round starts from no pod: a pod a live update changed
		// would otherwise be adopted with the synced binary in it.
		down := exec.Command(tiltBin, "down", "--file", filepath.Join(dir, "Tiltfile"))
		down.Dir, down.Env = cwd, env
		if out, err := down.CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "tilt down: %v\n%s", err, out)
		}
	}
	defer stop()
	fail := func(err error) ([]time.Duration, int64, error) {
		b, _ := os.ReadFile(logPath)
		return nil, 0, fmt.Errorf("%w\ntilt's log (last lines):\n%s", err, lastLines(string(b), 30))
	}
	// The first deploy pushes the Debian base to the registry once.
	if err := waitBody(ctx, url, "hello", 10*time.Minute); err != nil {
		return fail(err)
	}
	var ds []time.Duration
	var rss int64
	for i := range n {
		word := fmt.Sprintf("tilt-%s-%d", mode, i)
		time.Sleep(500 * time.Millisecond) // Tilt settles between edits
		start := time.Now()
		if err := os.WriteFile(mainGo, bytes.Replace(orig, []byte(greeting), []byte(`c.Greeting = "`+word+`"`), 1), 0o644); err != nil {
			return nil, 0, err
		}
		if err := waitBody(ctx, url, word, 5*time.Minute); err != nil {
			return fail(err)
		}
		d := time.Since(start)
		fmt.Printf("tilt %s edit %2d: %5dms\n", mode, i+1, d.Milliseconds())
		ds = append(ds, d)
		rss = max(rss, rssKB(cmd.Process.Pid))
	}
	return ds, rss, nil
}

// tiltWebDir makes a folder to run Tilt in where it finds its web UI's
// sources: a Tilt built from source with -trimpath looks for them at the
// module-relative path of its web package, relative to its working folder.
// They are linked from the module cache; the stand-in yarn serves nothing.
func tiltWebDir(tiltBin, work string) (string, error) {
	out, err := exec.Command("go", "version", "-m", tiltBin).Output()
	if err != nil {
		return "", fmt.Errorf("go version -m %s: %w", tiltBin, err)
	}
	version := ""
	for _, l := range strings.Split(string(out), "\n") {
		f := strings.Fields(l)
		if len(f) >= 3 && (f[0] == "mod" || f[0] == "dep") && f[1] == "github.com/tilt-dev/tilt" {
			version = f[2]
		}
	}
	if version == "" {
		return "", fmt.Errorf("%s: no github.com/tilt-dev/tilt module in its build info", tiltBin)
	}
	modCache, err := exec.Command("go", "env", "GOMODCACHE").Output()
	if err != nil {
		return "", err
	}
	mod := "github.com/tilt-dev/tilt@" + version
	src := filepath.Join(strings.TrimSpace(string(modCache)), mod, "web")
	if _, err := os.Stat(filepath.Join(src, "package.json")); err != nil {
		return "", fmt.Errorf("the web sources of Tilt: %w (e2e/tools/tilt.sh downloads them)", err)
	}
	cwd := filepath.Join(work, "tilt-cwd")
	link := filepath.Join(cwd, filepath.FromSlash(mod), "web")
	if err := os.MkdirAll(filepath.Dir(link), 0o755); err != nil {
		return "", err
	}
	if err := os.Symlink(src, link); err != nil && !os.IsExist(err) {
		return "", err
	}
	return cwd, nil
}

// debianImage is the Debian root filesystem image the node image builder
// made (e2e/images/build.sh): it has sh and tar, which Tilt's sync needs.
func debianImage() (string, error) {
	out, err := exec.Command("docker", "image", "ls", "--format", "{{.Repository}}:{{.Tag}}", "devctl.local/kind-base").Output()
	if err != nil {
		return "", fmt.Errorf("docker image ls: %w", err)
	}
	for _, l := range strings.Fields(string(out)) {
		if !strings.HasSuffix(l, ":<none>") {
			return l, nil
		}
	}
	return "", fmt.Errorf("no devctl.local/kind-base image: run `make e2e-images` (e2e/images/build.sh makes it)")
}

// clusterRegistry reads the cluster's KEP-1755 ConfigMap: where the host
// pushes and what name the nodes pull by.
func clusterRegistry(ctx context.Context, kubeconfig string) (host, fromCluster string, err error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return "", "", err
	}
	set, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return "", "", err
	}
	cm, err := set.CoreV1().ConfigMaps(registry.LocalRegistryHostingNamespace).Get(ctx, registry.LocalRegistryHostingName, metav1.GetOptions{})
	if err != nil {
		return "", "", fmt.Errorf("the cluster announces no registry: %w", err)
	}
	var h registry.LocalRegistryHosting
	if err := yaml.Unmarshal([]byte(cm.Data[registry.LocalRegistryHostingKey]), &h); err != nil {
		return "", "", err
	}
	if h.Host == "" || h.HostFromContainerRuntime == "" {
		return "", "", fmt.Errorf("local-registry-hosting lacks host or hostFromContainerRuntime: %+v", h)
	}
	return h.Host, h.HostFromContainerRuntime, nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer func() { _ = l.Close() }()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// rssKB is the resident set of pid and its children, from /proc.
func rssKB(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			var kb int64
			_, _ = fmt.Sscanf(strings.TrimSpace(v), "%d", &kb)
			return kb
		}
	}
	return 0
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
