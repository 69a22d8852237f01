// Package privfile writes the environment files only their owner may read
// (kubeconfigs, metadata) so that a reader never sees half of one.
package privfile

import (
	"os"
	"path/filepath"
)

// Write writes data to path with mode 0600 through a temporary file in the
// same directory, renamed into place. The directory is created 0700 when
// missing.
func Write(path string, data []byte) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-")
	if err != nil {
		return err
	}
	defer func() { _ = os.Remove(f.Name()) }() // no-op after the rename
	if err := f.Chmod(0o600); err != nil {
		_ = f.Close()
		return err
	}
	if _, err := f.Write(data); err != nil {
		_ = f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}
