// Package freezer recovers containers that cannot be removed on cgroup v1
// hosts. When a freezer cgroup inside a container (a pod's, in a kind node)
// is left FROZEN, its processes never exit and `docker rm -f` fails with
// "did not receive an exit event". Writing THAWED to every freezer.state
// under the container's cgroup lets the removal finish.
package freezer

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// DefaultRoot is where Docker puts its containers' freezer cgroups on a
// cgroup v1 host.
const DefaultRoot = "/sys/fs/cgroup/freezer/docker"

// stateFile is the freezer's control file in each cgroup directory.
const stateFile = "freezer.state"

// Stuck reports whether err is the removal failure a frozen cgroup causes.
func Stuck(err error) bool {
	return err != nil && strings.Contains(err.Error(), "did not receive an exit event")
}

// Thaw writes THAWED to every freezer.state under root/containerID that
// is not THAWED, and returns the files it wrote, relative to root. A
// container without a freezer cgroup (a cgroup v2 host) thaws nothing and
// is not an error.
func Thaw(root, containerID string) ([]string, error) {
	if containerID == "" || strings.ContainsAny(containerID, `/\`) || containerID == "." || containerID == ".." {
		return nil, fmt.Errorf("thaw: bad container ID %q", containerID)
	}
	dir := filepath.Join(root, containerID)
	var thawed []string
	var errs []error
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			errs = append(errs, err)
			return nil
		}
		if d.IsDir() || d.Name() != stateFile {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			errs = append(errs, err)
			return nil
		}
		if string(bytes.TrimSpace(b)) == "THAWED" {
			return nil
		}
		if err := writeState(path); err != nil {
			errs = append(errs, fmt.Errorf("thaw %s: %w", path, err))
			return nil
		}
		rel, _ := filepath.Rel(root, path)
		thawed = append(thawed, rel)
		return nil
	})
	if err != nil {
		errs = append(errs, err)
	}
	return thawed, errors.Join(errs...)
}

// writeState writes THAWED to an existing freezer.state, never creating one.
func writeState(path string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		return err
	}
	if _, err := f.WriteString("THAWED\n"); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}
