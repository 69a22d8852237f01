package daemon

import (
	"os"
	"path/filepath"
)

func writeFile(path, s string) error { return os.WriteFile(path, []byte(s), 0o600) }

func globFiles(dir, pattern string) ([]string, error) {
	return filepath.Glob(filepath.Join(dir, pattern))
}
