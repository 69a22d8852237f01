package k8stest

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// EnvAssets names the environment variable that points at the assets
// directory (the last line `make k8s-tools` prints).
const EnvAssets = "DEVCTL_K8S_ASSETS"

// versionsFile is where the repository pins tool versions, relative to the
// module root.
const versionsFile = "e2e/tools/versions.env"

// assetFiles must all be present in the assets directory.
var assetFiles = []string{"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok", "kwok-stages.yaml"}

// findAssets returns the assets directory: explicit, else $DEVCTL_K8S_ASSETS,
// else the directory e2e/tools/k8s-tools.sh fills in the cache, computed from
// versions.env found above the working directory.
func findAssets(explicit string) (string, error) {
	dir := explicit
	if dir == "" {
		dir = os.Getenv(EnvAssets)
	}
	if dir == "" {
		var err error
		if dir, err = defaultAssetsDir(); err != nil {
			return "", err
		}
	}
	for _, f := range assetFiles {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			return "", fmt.Errorf("%w (missing %s in %s)", ErrAssetsMissing, f, dir)
		}
	}
	return dir, nil
}

func defaultAssetsDir() (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrAssetsMissing, err)
	}
	var path string
	for d := wd; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, versionsFile)); err == nil {
			path = filepath.Join(d, versionsFile)
			break
		}
		if filepath.Dir(d) == d {
			return "", fmt.Errorf("%w (no %s above %s)", ErrAssetsMissing, versionsFile, wd)
		}
	}
	v, err := readVersions(path)
	if err != nil {
		return "", err
	}
	for _, k := range []string{"KUBERNETES_VERSION", "ETCD_VERSION", "KWOK_VERSION"} {
		if v[k] == "" {
			return "", fmt.Errorf("%s does not set %s", path, k)
		}
	}
	return filepath.Join(cacheDir(), fmt.Sprintf("k8stest-%s-etcd-%s-kwok-%s",
		v["KUBERNETES_VERSION"], v["ETCD_VERSION"], v["KWOK_VERSION"])), nil
}

// cacheDir mirrors the shell scripts:
// ${DEVCTL_E2E_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/devctl-e2e}.
func cacheDir() string {
	if d := os.Getenv("DEVCTL_E2E_CACHE"); d != "" {
		return d
	}
	base := os.Getenv("XDG_CACHE_HOME")
	if base == "" {
		home, _ := os.UserHomeDir()
		base = filepath.Join(home, ".cache")
	}
	return filepath.Join(base, "devctl-e2e")
}

// readVersions parses the KEY=VALUE lines of versions.env.
func readVersions(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read versions: %w", err)
	}
	defer func() { _ = f.Close() }()
	v := map[string]string{}
	s := bufio.NewScanner(f)
	for s.Scan() {
		line := strings.TrimSpace(s.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if k, val, ok := strings.Cut(line, "="); ok {
			v[k] = strings.Trim(val, `"'`)
		}
	}
	if err := s.Err(); err != nil {
		return nil, fmt.Errorf("read versions %s: %w", path, err)
	}
	return v, nil
}

// workRoot holds one directory per control plane, named <pid>-<random>.
func workRoot() string { return filepath.Join(os.TempDir(), "devctl-k8stest") }

// makeWorkDir creates a control plane's directory, first removing those
// left behind by test processes that no longer exist (killed before Stop).
func makeWorkDir() (string, error) {
	root := workRoot()
	if err := os.MkdirAll(root, 0o700); err != nil {
		return "", fmt.Errorf("%w: %w", ErrStart, err)
	}
	if entries, err := os.ReadDir(root); err == nil {
		for _, e := range entries {
			pidStr, _, _ := strings.Cut(e.Name(), "-")
			pid, err := strconv.Atoi(pidStr)
			if err != nil || pid == os.Getpid() || processAlive(pid) {
				continue
			}
			_ = os.RemoveAll(filepath.Join(root, e.Name()))
		}
	}
	dir, err := os.MkdirTemp(root, strconv.Itoa(os.Getpid())+"-")
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrStart, err)
	}
	return dir, nil
}

func processAlive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}
