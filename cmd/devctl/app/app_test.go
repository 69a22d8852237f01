package app

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/devctl/devctl/daemon"
	"github.com/devctl/devctl/internal/api"
	"github.com/devctl/devctl/internal/check"
)

// run runs devctl in dir with env overrides and returns stdout, the error
// banner exactly as Main prints it, and the exit code.
func run(t *testing.T, dir string, args ...string) (string, string, int) {
	t.Helper()
	return runStdin(t, dir, "", args...)
}

// runStdin is run with stdin. A check the lean front would run itself
// (check.Plan) is run that way too, and both must print the same and
// exit alike: every check test here also tests the front.
func runStdin(t *testing.T, dir, stdin string, args ...string) (string, string, int) {
	t.Helper()
	t.Chdir(dir)
	var out, errOut bytes.Buffer
	err := Run(context.Background(), Streams{In: strings.NewReader(stdin), Out: &out, ErrOut: &errOut}, args)
	code := exitCode(&errOut, err)
	if inv, ok := check.Plan(args); ok {
		var leanOut, leanErr bytes.Buffer
		leanCode := inv.Run(context.Background(), check.Streams{In: strings.NewReader(stdin), Out: &leanOut, ErrOut: &leanErr})
		if leanCode != code || leanOut.String() != out.String() || leanErr.String() != errOut.String() {
			t.Errorf("devctl %s: the lean front and devctl-core differ:\nfront (exit %d):\n%s\n%s\ncore (exit %d):\n%s\n%s",
				strings.Join(args, " "), leanCode, leanOut.String(), leanErr.String(), code, out.String(), errOut.String())
		}
	}
	return out.String(), errOut.String(), code
}

func gitRepo(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command("git", "init", "-q", "-b", "main")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("git init: %v: %s", err, out)
	}
	return dir
}

const validConfig = `apiVersion: devctl.dev/v1alpha1
kind: Project
name: hello
team: dx
services:
  - name: hello
    port: 8080
`

// startDaemon runs a daemon with the real dependencies in this process on
// a socket of its own, as `devctl up` would start one.
func startDaemon(t *testing.T) string {
	t.Helper()
	sockDir, err := os.MkdirTemp("", "dctl")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(sockDir) })
	sock := filepath.Join(sockDir, "d.sock")
	deps, closeDeps := daemon.RealDeps(slog.New(slog.DiscardHandler))
	d := daemon.New(daemon.Options{Socket: sock, StateDir: t.TempDir(), Version: buildID(), Deps: deps})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("daemon: %v", err)
		}
		closeDeps()
	})
	c := api.NewClient(sock)
	for range 500 {
		if _, err := c.Health(ctx); err == nil {
			return sock
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("daemon did not answer")
	return ""
}

// These run Main's error path end to end against a daemon: the daemon
// loads devctl.yaml and checks what it can before any slow work, and the
// user sees one clear ERROR and a non-zero exit, with no environment made.
func TestUpErrorsAreOneClearLine(t *testing.T) {
	noSocket := filepath.Join(t.TempDir(), "none.sock")
	tests := []struct {
		name  string
		files map[string]string
		env   map[string]string
		want  []string
	}{
		{
			name:  "malformed devctl.yaml",
			files: map[string]string{"devctl.yaml": "apiVersion: devctl.dev/v1alpha1\nkind: Project\nnmae: hello\nteam: dx\nservices:\n  - name: hello\n    port: 70000\n", "Dockerfile": "FROM scratch\n"},
			want:  []string{"devctl.yaml:3:1: unknown field \"nmae\" (did you mean \"name\"?)"},
		},
		{
			name:  "a value devctl sets itself",
			files: map[string]string{"devctl.yaml": validConfig + "    values:\n      service:\n        port: 9090\n", "Dockerfile": "FROM scratch\n"},
			want:  []string{"devctl.yaml:10:9: services[0].values.service.port: devctl sets this value itself: set services[].port instead"},
		},
		{
			name:  "a value the chart rejects",
			files: map[string]string{"devctl.yaml": validConfig + "    values:\n      replicas: many\n", "Dockerfile": "FROM scratch\n"},
			want:  []string{"services[0] (hello) values", "replicas"},
		},
		{
			name:  "missing Dockerfile",
			files: map[string]string{"devctl.yaml": validConfig},
			want:  []string{"ERROR: service hello: dockerfile not found", "Dockerfile)"},
		},
		{
			name:  "stopped Docker engine",
			files: map[string]string{"devctl.yaml": validConfig, "Dockerfile": "FROM scratch\n"},
			env:   map[string]string{"DOCKER_HOST": "unix://" + noSocket},
			want:  []string{"ERROR: ", "docker engine is not reachable: start Docker"},
		},
		{
			name:  "nothing to build",
			files: map[string]string{"README.md": "hi"},
			want:  []string{"ERROR: no devctl.yaml in", "add a Dockerfile"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := gitRepo(t, tt.files)
			env := map[string]string{"DEVCTL_STATE_DIR": t.TempDir()}
			for k, v := range tt.env {
				env[k] = v
			}
			for k, v := range env {
				t.Setenv(k, v)
			}
			sock := startDaemon(t)
			out, errOut, code := run(t, dir, "--socket", sock, "up", "--ci")
			if code == 0 {
				t.Fatalf("exit 0; stdout %q", out)
			}
			for _, w := range tt.want {
				if !strings.Contains(errOut, w) {
					t.Errorf("stderr %q does not contain %q", errOut, w)
				}
			}
			if n := strings.Count(errOut, "ERROR"); n != 1 {
				t.Errorf("want one ERROR banner, got %d in %q", n, errOut)
			}
			// Only this project's: the daemon also rediscovers other devctl
			// clusters on the Docker engine.
			list, err := api.NewClient(sock).List(context.Background())
			for _, e := range list {
				if e.Spec.Dir == dir {
					t.Errorf("a rejected up made an environment: %+v", e)
				}
			}
			if err != nil {
				t.Error(err)
			}
		})
	}
}

func TestLsRejectsUnknownOutput(t *testing.T) {
	_, errOut, code := run(t, t.TempDir(), "ls", "-o", "yaml")
	if code == 0 || !strings.Contains(errOut, `unknown output format "yaml"`) {
		t.Fatalf("code %d stderr %q", code, errOut)
	}
}

func TestVersionJSON(t *testing.T) {
	out, _, code := run(t, t.TempDir(), "version", "-o", "json")
	if code != 0 || !strings.Contains(out, `"version"`) || !strings.Contains(out, `"go"`) {
		t.Fatalf("code %d out %q", code, out)
	}
}

func TestInitWritesConfigAndScratchDockerfile(t *testing.T) {
	dir := gitRepo(t, map[string]string{
		"go.mod":  "module example.com/svc\n\ngo 1.22\n",
		"main.go": "package main\n\nfunc main() {}\n",
	})
	out, errOut, code := run(t, dir, "init")
	if code != 0 {
		t.Fatalf("init: %d %s", code, errOut)
	}
	for _, f := range []string{"devctl.yaml", "Dockerfile"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("%s not written: %v (out %q)", f, err, out)
		}
	}
	df, _ := os.ReadFile(filepath.Join(dir, "Dockerfile"))
	if !strings.Contains(string(df), "FROM scratch") {
		t.Errorf("Dockerfile = %q", df)
	}
	gi, _ := os.ReadFile(filepath.Join(dir, ".gitignore"))
	if !strings.Contains(string(gi), "/.devctl/secrets.yaml\n") {
		t.Errorf(".gitignore does not ignore the secrets seed file: %q", gi)
	}
	_, errOut, code = run(t, dir, "init")
	if code == 0 || !strings.Contains(errOut, "already exists") {
		t.Errorf("second init must refuse: %d %q", code, errOut)
	}
}

// A delete that fails (here: no Docker engine to list clusters with) ends
// `devctl down` with the failure at once; it waited for the event stream
// to close, which the daemon keeps open.
func TestDownEndsWhenTheDeleteFails(t *testing.T) {
	t.Setenv("DEVCTL_STATE_DIR", t.TempDir())
	t.Setenv("DOCKER_HOST", "unix://"+filepath.Join(t.TempDir(), "none.sock"))
	sock := startDaemon(t)
	dir := gitRepo(t, map[string]string{"devctl.yaml": validConfig})
	done := make(chan struct{})
	var errOut string
	var code int
	go func() {
		defer close(done)
		_, errOut, code = run(t, dir, "--socket", sock, "down", "nosuch-env")
	}()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("down did not return after its delete failed")
	}
	if code == 0 || !strings.Contains(errOut, "is Docker running?") {
		t.Errorf("exit %d, stderr %q; want the delete's failure", code, errOut)
	}
}
