// Package harness holds what the e2e tests share: where the offline kind node
// image and the probe test image are, the PATH that puts the docker wrapper
// (e2e/tools/docker-wrapper) in front of the real docker, log export of a
// kind cluster into e2e/artifacts/<test> when a test fails, and the check that
// a deleted cluster left no container behind.
package harness

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// Environment variables that point the tests at prebuilt images.
const (
	// EnvNodeImage names the kind node image (default: what
	// `e2e/images/build.sh --print-image` prints).
	EnvNodeImage = "DEVCTL_NODE_IMAGE"
	// EnvProbeImage names the probe test image (default: what
	// `e2e/images/build.sh --print-probe-image` prints).
	EnvProbeImage = "DEVCTL_PROBE_IMAGE"
)

// KindClusterLabel is the label kind puts on every container of a cluster;
// its value is the cluster name.
const KindClusterLabel = "io.x-k8s.kind.cluster"

var (
	// ErrRepoRootNotFound means no parent of the working directory holds the
	// devctl go.mod.
	ErrRepoRootNotFound = errors.New("devctl repository root not found (run the tests from inside the repository)")
	// ErrImageMissing means a test image is not in the local Docker engine.
	ErrImageMissing = errors.New("test image missing")
	// ErrContainersLeft means containers of a deleted kind cluster remain.
	ErrContainersLeft = errors.New("kind cluster containers left behind")
)

const modulePath = "github.com/devctl/devctl"

// RepoRoot returns the directory of the devctl go.mod, searching upwards
// from the working directory.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("find repository root: %w", err)
	}
	for {
		b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && modulePathOf(b) == modulePath {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", ErrRepoRootNotFound
		}
		dir = parent
	}
}

// modulePathOf returns the module path a go.mod declares.
func modulePathOf(gomod []byte) string {
	sc := bufio.NewScanner(bytes.NewReader(gomod))
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), "module "); ok {
			return strings.Trim(strings.TrimSpace(rest), `"`)
		}
	}
	return ""
}

// NodeImage returns the kind node image the tests use and checks that it is
// present in Docker.
func NodeImage(ctx context.Context) (string, error) {
	return image(ctx, EnvNodeImage, "--print-image")
}

// ProbeImage returns the probe test image (a static HTTP client/server FROM
// scratch) and checks that it is present in Docker.
func ProbeImage(ctx context.Context) (string, error) {
	return image(ctx, EnvProbeImage, "--print-probe-image")
}

func image(ctx context.Context, env, flag string) (string, error) {
	name := os.Getenv(env)
	if name == "" {
		root, err := RepoRoot()
		if err != nil {
			return "", err
		}
		out, err := exec.CommandContext(ctx, filepath.Join(root, "e2e", "images", "build.sh"), flag).Output()
		if err != nil {
			return "", fmt.Errorf("e2e/images/build.sh %s: %w", flag, err)
		}
		name = strings.TrimSpace(string(out))
	}
	if err := exec.CommandContext(ctx, "docker", "image", "inspect", name).Run(); err != nil {
		return "", fmt.Errorf("%w: %s is not in the local Docker engine: run `make e2e-images` "+
			"(about 45 minutes cold, seconds when cached) or set %s", ErrImageMissing, name, env)
	}
	return name, nil
}

// DockerWrapperDir returns the directory holding the docker wrapper.
func DockerWrapperDir() (string, error) {
	root, err := RepoRoot()
	if err != nil {
		return "", err
	}
	return filepath.Join(root, "e2e", "tools", "docker-wrapper"), nil
}

// DockerPATH returns $PATH with the docker wrapper directory first.
func DockerPATH() (string, error) {
	dir, err := DockerWrapperDir()
	if err != nil {
		return "", err
	}
	return prependPath(dir, os.Getenv("PATH")), nil
}

// Env returns environ (for example os.Environ()) with PATH replaced by
// DockerPATH, for subprocesses such as the devctl binary.
func Env(environ []string) ([]string, error) {
	path, err := DockerPATH()
	if err != nil {
		return nil, err
	}
	return withEnv(environ, "PATH", path), nil
}

// UseDockerWrapper puts the docker wrapper first on this process' PATH for
// the rest of the test, so in-process users of the kind library (which run
// `docker`) go through it. Like t.Setenv it cannot be used in parallel tests.
func UseDockerWrapper(t testing.TB) {
	t.Helper()
	path, err := DockerPATH()
	if err != nil {
		t.Fatalf("docker wrapper: %v", err)
	}
	t.Setenv("PATH", path)
}

func prependPath(dir, path string) string {
	if path == "" {
		return dir
	}
	return dir + string(os.PathListSeparator) + path
}

// withEnv returns a copy of environ where key is set to value exactly once.
func withEnv(environ []string, key, value string) []string {
	out := make([]string, 0, len(environ)+1)
	for _, kv := range environ {
		if k, _, _ := strings.Cut(kv, "="); k != key {
			out = append(out, kv)
		}
	}
	return append(out, key+"="+value)
}

var unsafeChars = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

// ArtifactsDir returns e2e/artifacts/<test name> (not created).
func ArtifactsDir(t testing.TB) (string, error) {
	root, err := RepoRoot()
	if err != nil {
		return "", err
	}
	return filepath.Join(root, "e2e", "artifacts", artifactName(t.Name())), nil
}

// artifactName turns a test name (with subtests) into one path element.
func artifactName(testName string) string {
	return strings.Trim(unsafeChars.ReplaceAllString(testName, "_"), "_")
}

// LogCollector exports the logs of a cluster; *cluster.Provider of the kind
// library is one.
type LogCollector interface {
	CollectLogs(name, dir string) error
}

// ExportLogsOnFailure registers a cleanup that, if the test failed, exports
// the logs of cluster into ArtifactsDir(t). Register it after the cleanup that
// deletes the cluster: cleanups run last-registered first.
func ExportLogsOnFailure(t testing.TB, c LogCollector, cluster string) {
	t.Helper()
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		dir, err := ArtifactsDir(t)
		if err != nil {
			t.Logf("export logs of cluster %q: %v", cluster, err)
			return
		}
		if err := c.CollectLogs(cluster, dir); err != nil {
			t.Logf("export logs of cluster %q to %s: %v", cluster, dir, err)
			return
		}
		t.Logf("logs of cluster %q exported to %s", cluster, dir)
	})
}

// ClusterContainers returns the IDs of all containers, running or not, that
// carry the kind label of cluster.
func ClusterContainers(ctx context.Context, cluster string) ([]string, error) {
	cmd := exec.CommandContext(ctx, "docker", "ps", "--all", "--quiet", "--no-trunc",
		"--filter", "label="+KindClusterLabel+"="+cluster)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("list containers of cluster %q: %w: %s", cluster, err, strings.TrimSpace(stderr.String()))
	}
	return strings.Fields(string(out)), nil
}

// AssertNoClusterContainers fails the test if any container of cluster
// remains, waiting up to 30 seconds for Docker to finish removing them.
func AssertNoClusterContainers(ctx context.Context, t testing.TB, cluster string) {
	t.Helper()
	if err := waitNoClusterContainers(ctx, cluster, 30*time.Second); err != nil {
		t.Errorf("after deleting cluster %q: %v (remove them with `docker rm -f $(docker ps -aq --filter label=%s=%s)`)",
			cluster, err, KindClusterLabel, cluster)
	}
}

func waitNoClusterContainers(ctx context.Context, cluster string, wait time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	for {
		ids, err := ClusterContainers(context.WithoutCancel(ctx), cluster)
		if err != nil {
			return err
		}
		if len(ids) == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w: %s", ErrContainersLeft, strings.Join(ids, ", "))
		case <-time.After(time.Second):
		}
	}
}
