package harness

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestModulePathOf(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, gomod, want string
	}{
		{name: "plain", gomod: "module github.com/devctl/devctl\n\ngo 1.26\n", want: "github.com/devctl/devctl"},
		{name: "quoted", gomod: "// c\nmodule \"example.com/x\"\n", want: "example.com/x"},
		{name: "tool module", gomod: "module github.com/devctl/devctl/e2e/tools/crictl\n", want: "github.com/devctl/devctl/e2e/tools/crictl"},
		{name: "none", gomod: "go 1.26\n", want: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := modulePathOf([]byte(tt.gomod)); got != tt.want {
				t.Errorf("modulePathOf(%q) = %q, want %q", tt.gomod, got, tt.want)
			}
		})
	}
}

func TestWithEnv(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		environ []string
		want    []string
	}{
		{name: "replaces", environ: []string{"A=1", "PATH=/bin", "B=2"}, want: []string{"A=1", "B=2", "PATH=/w:/bin"}},
		{name: "adds", environ: []string{"A=1"}, want: []string{"A=1", "PATH=/w:/bin"}},
		{name: "dedups", environ: []string{"PATH=/x", "PATH=/y"}, want: []string{"PATH=/w:/bin"}},
		{name: "prefix is not the key", environ: []string{"PATHEXT=.exe"}, want: []string{"PATHEXT=.exe", "PATH=/w:/bin"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := withEnv(tt.environ, "PATH", "/w:/bin"); !slices.Equal(got, tt.want) {
				t.Errorf("withEnv(%q) = %q, want %q", tt.environ, got, tt.want)
			}
		})
	}
}

func TestPrependPath(t *testing.T) {
	t.Parallel()
	tests := []struct{ dir, path, want string }{
		{dir: "/w", path: "/usr/bin:/bin", want: "/w:/usr/bin:/bin"},
		{dir: "/w", path: "", want: "/w"},
	}
	for _, tt := range tests {
		if got := prependPath(tt.dir, tt.path); got != tt.want {
			t.Errorf("prependPath(%q, %q) = %q, want %q", tt.dir, tt.path, got, tt.want)
		}
	}
}

func TestArtifactName(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{in: "TestCluster", want: "TestCluster"},
		{in: "TestCluster/create and load", want: "TestCluster_create_and_load"},
		{in: "TestX/../../etc", want: "TestX_.._.._etc"},
	}
	for _, tt := range tests {
		if got := artifactName(tt.in); got != tt.want {
			t.Errorf("artifactName(%q) = %q, want %q", tt.in, got, tt.want)
		}
		if strings.ContainsRune(artifactName(tt.in), filepath.Separator) {
			t.Errorf("artifactName(%q) contains a path separator", tt.in)
		}
	}
}

func TestRepoRootAndWrapper(t *testing.T) {
	t.Parallel()
	root, err := RepoRoot()
	if err != nil {
		t.Fatalf("RepoRoot: %v", err)
	}
	if _, err := os.Stat(filepath.Join(root, "e2e", "harness", "harness.go")); err != nil {
		t.Fatalf("RepoRoot = %s, which does not hold this package: %v", root, err)
	}
	dir, err := DockerWrapperDir()
	if err != nil {
		t.Fatalf("DockerWrapperDir: %v", err)
	}
	fi, err := os.Stat(filepath.Join(dir, "docker"))
	if err != nil || fi.Mode()&0o111 == 0 {
		t.Fatalf("docker wrapper in %s missing or not executable: %v", dir, err)
	}
	env, err := Env([]string{"HOME=/h", "PATH=/usr/bin"})
	if err != nil {
		t.Fatalf("Env: %v", err)
	}
	if want := []string{"HOME=/h", "PATH=" + dir + ":" + os.Getenv("PATH")}; !slices.Equal(env, want) {
		t.Errorf("Env = %q, want %q", env, want)
	}
}

type fakeCollector struct {
	calls []string
	err   error
}

func (f *fakeCollector) CollectLogs(name, dir string) error {
	f.calls = append(f.calls, name+" "+dir)
	return f.err
}

// recorder is a testing.TB whose failure state and cleanups the test controls.
type recorder struct {
	testing.TB
	name     string
	failed   bool
	cleanups []func()
	logs     []string
}

func (r *recorder) Name() string            { return r.name }
func (r *recorder) Failed() bool            { return r.failed }
func (r *recorder) Helper()                 {}
func (r *recorder) Cleanup(f func())        { r.cleanups = append(r.cleanups, f) }
func (r *recorder) Logf(f string, a ...any) { r.logs = append(r.logs, fmt.Sprintf(f, a...)) }
func (r *recorder) Log(a ...any)            { r.logs = append(r.logs, fmt.Sprint(a...)) }
func (r *recorder) runCleanups() {
	for i := len(r.cleanups) - 1; i >= 0; i-- {
		r.cleanups[i]()
	}
}

func TestExportLogsOnFailure(t *testing.T) {
	t.Parallel()
	root, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		failed    bool
		err       error
		wantCalls []string
		wantLog   string
	}{
		{name: "passed", failed: false},
		{name: "failed", failed: true, wantCalls: []string{"c1 " + filepath.Join(root, "e2e", "artifacts", "TestX_sub")}, wantLog: "exported"},
		{name: "export error", failed: true, err: errors.New("boom"), wantCalls: []string{"c1 " + filepath.Join(root, "e2e", "artifacts", "TestX_sub")}, wantLog: "boom"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rec := &recorder{TB: t, name: "TestX/sub", failed: tt.failed}
			fc := &fakeCollector{err: tt.err}
			ExportLogsOnFailure(rec, fc, "c1")
			rec.runCleanups()
			if !slices.Equal(fc.calls, tt.wantCalls) {
				t.Errorf("CollectLogs calls = %q, want %q", fc.calls, tt.wantCalls)
			}
			if tt.wantLog != "" && !strings.Contains(strings.Join(rec.logs, "\n"), tt.wantLog) {
				t.Errorf("logs %q do not mention %q", rec.logs, tt.wantLog)
			}
		})
	}
}

// TestIntegrationClusterContainers creates a labelled (never started)
// container and checks that it is found, then that removal is noticed.
func TestIntegrationClusterContainers(t *testing.T) {
	if testing.Short() {
		t.Skip("integration: needs a Docker engine")
	}
	ctx := context.Background()
	if err := exec.CommandContext(ctx, "docker", "info").Run(); err != nil {
		t.Fatalf("integration test needs a reachable Docker engine (start dockerd or set DOCKER_HOST): %v", err)
	}
	img := emptyImage(ctx, t)
	cluster := fmt.Sprintf("harness-test-%d", time.Now().UnixNano())
	out, err := exec.CommandContext(ctx, "docker", "create", "--label", KindClusterLabel+"="+cluster, img, "/none").Output()
	if err != nil {
		t.Fatalf("docker create: %v", err)
	}
	id := strings.TrimSpace(string(out))
	t.Cleanup(func() { _ = exec.Command("docker", "rm", "-f", id).Run() })

	ids, err := ClusterContainers(ctx, cluster)
	if err != nil {
		t.Fatalf("ClusterContainers: %v", err)
	}
	if !slices.Equal(ids, []string{id}) {
		t.Fatalf("ClusterContainers = %q, want [%s]", ids, id)
	}
	if err := waitNoClusterContainers(ctx, cluster, 2*time.Second); !errors.Is(err, ErrContainersLeft) {
		t.Fatalf("waitNoClusterContainers with a container left = %v, want ErrContainersLeft", err)
	}
	if err := exec.CommandContext(ctx, "docker", "rm", "-f", id).Run(); err != nil {
		t.Fatalf("docker rm: %v", err)
	}
	AssertNoClusterContainers(ctx, t, cluster)
}

// emptyImage imports an image with no files (nothing is pulled).
func emptyImage(ctx context.Context, t *testing.T) string {
	t.Helper()
	var buf bytes.Buffer
	if err := tar.NewWriter(&buf).Close(); err != nil {
		t.Fatal(err)
	}
	name := "devctl.local/harness-empty:test"
	cmd := exec.CommandContext(ctx, "docker", "import", "-", name)
	cmd.Stdin = &buf
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("docker import: %v: %s", err, out)
	}
	return name
}

func TestKindLogger(t *testing.T) {
	t.Parallel()
	rec := &recorder{TB: t, name: "TestKind"}
	l := KindLogger(rec, 1)
	l.Warnf("w%d", 1)
	l.Error("e")
	l.V(0).Info("v0")
	l.V(1).Infof("v%d", 1)
	l.V(2).Info("v2 dropped")
	if l.V(2).Enabled() || !l.V(1).Enabled() {
		t.Errorf("Enabled: V(1)=%v V(2)=%v, want true false", l.V(1).Enabled(), l.V(2).Enabled())
	}
	want := []string{"kind: w1", "kind: e", "kind: v0", "kind: v1"}
	if !slices.Equal(rec.logs, want) {
		t.Errorf("logged %q, want %q", rec.logs, want)
	}
}

// TestDockerWrapper runs the wrapper in front of a fake docker that prints
// its arguments, one per line.
func TestDockerWrapper(t *testing.T) {
	t.Parallel()
	wrapperDir, err := DockerWrapperDir()
	if err != nil {
		t.Fatal(err)
	}
	fakeDir := t.TempDir()
	fake := "#!/bin/sh\nfor a in \"$@\"; do printf '%s\\n' \"$a\"; done\n"
	if err := os.WriteFile(filepath.Join(fakeDir, "docker"), []byte(fake), 0o755); err != nil {
		t.Fatal(err)
	}
	rewritten := []string{"--cap-add=ALL", "--cap-drop=SYS_RESOURCE",
		"--security-opt=seccomp=unconfined", "--security-opt=apparmor=unconfined", "--security-opt=systempaths=unconfined",
		"--device-cgroup-rule=a *:* rwm", "--device=/dev/kmsg"}
	join := func(parts ...[]string) []string { return slices.Concat(parts...) }
	tests := []struct {
		name, mode string
		args, want []string
	}{
		{name: "run rewritten", mode: "always",
			args: []string{"run", "-d", "--privileged", "--name", "n", "img"},
			want: join([]string{"run", "-d"}, rewritten, []string{"--name", "n", "img"})},
		{name: "create after global flags", mode: "always",
			args: []string{"--host", "unix:///x.sock", "container", "create", "--privileged=true", "img"},
			want: join([]string{"--host", "unix:///x.sock", "container", "create"}, rewritten, []string{"img"})},
		{name: "exec drops", mode: "always",
			args: []string{"exec", "--privileged", "-i", "n", "ctr", "version"},
			want: []string{"exec", "-i", "n", "ctr", "version"}},
		{name: "other subcommands untouched", mode: "always",
			args: []string{"inspect", "--privileged"}, want: []string{"inspect", "--privileged"}},
		{name: "never", mode: "never",
			args: []string{"run", "--privileged", "img"}, want: []string{"run", "--privileged", "img"}},
	}
	// auto: rewrite exactly when this machine lacks CAP_SYS_RESOURCE.
	auto := []string{"run", "--privileged", "img"}
	if !hasCapSysResource(t) {
		auto = join([]string{"run"}, rewritten, []string{"img"})
	}
	tests = append(tests, struct {
		name, mode string
		args, want []string
	}{name: "auto", mode: "auto", args: []string{"run", "--privileged", "img"}, want: auto})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cmd := exec.Command(filepath.Join(wrapperDir, "docker"), tt.args...)
			cmd.Env = withEnv(withEnv(os.Environ(), "PATH", wrapperDir+":"+fakeDir+":/usr/bin:/bin"), "DEVCTL_DOCKER_WRAPPER", tt.mode)
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("wrapper %q: %v", tt.args, err)
			}
			if got := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n"); !slices.Equal(got, tt.want) {
				t.Errorf("wrapper %q ran docker with\n%q\nwant\n%q", tt.args, got, tt.want)
			}
		})
	}
}

func hasCapSysResource(t *testing.T) bool {
	t.Helper()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(b)) {
		if hex, ok := strings.CutPrefix(line, "CapBnd:"); ok {
			caps, err := strconv.ParseUint(strings.TrimSpace(hex), 16, 64)
			if err != nil {
				t.Fatal(err)
			}
			return caps&(1<<24) != 0
		}
	}
	t.Fatal("no CapBnd in /proc/self/status")
	return false
}

// Two copies of the wrapper on PATH (the harness's, and the one install.sh
// puts in /usr/local/sbin) must not exec each other: each skips the other
// and runs the real docker.
func TestDockerWrapperSkipsOtherCopies(t *testing.T) {
	t.Parallel()
	wrapperDir, err := DockerWrapperDir()
	if err != nil {
		t.Fatal(err)
	}
	src, err := os.ReadFile(filepath.Join(wrapperDir, "docker"))
	if err != nil {
		t.Fatal(err)
	}
	copyDir, fakeDir := t.TempDir(), t.TempDir()
	if err := os.WriteFile(filepath.Join(copyDir, "docker"), src, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(fakeDir, "docker"), []byte("#!/bin/sh\necho real \"$@\"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, first := range []string{wrapperDir, copyDir} {
		cmd := exec.Command(filepath.Join(first, "docker"), "version")
		cmd.Env = withEnv(withEnv(os.Environ(), "PATH", wrapperDir+":"+copyDir+":"+fakeDir+":/usr/bin:/bin"), "DEVCTL_DOCKER_WRAPPER", "always")
		done := make(chan struct{})
		var out []byte
		go func() { out, err = cmd.Output(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			t.Fatalf("wrapper in %s did not finish: the two copies exec each other", first)
		}
		if err != nil || strings.TrimSpace(string(out)) != "real version" {
			t.Errorf("wrapper in %s: %q, %v; want the real docker to run", first, out, err)
		}
	}
}
