package agentbin

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// Not parallel: the tests set the environment and replace executable.

func TestBinary(t *testing.T) {
	dir := t.TempDir()
	exe := filepath.Join(dir, "devctl")
	executable = func() (string, error) { return exe, nil }
	t.Cleanup(func() { executable = os.Executable })
	t.Setenv(EnvBinary, "")

	if _, ok := embedded("amd64"); ok {
		t.Skip("built with the agentembed tag: the embedded agent always wins")
	}
	if _, _, err := Binary("amd64"); !errors.Is(err, ErrNotAvailable) {
		t.Fatalf("nothing anywhere: err = %v, want ErrNotAvailable", err)
	}

	beside := filepath.Join(dir, FileName("arm64"))
	if err := os.WriteFile(beside, []byte("beside"), 0o755); err != nil {
		t.Fatal(err)
	}
	b, from, err := Binary("arm64")
	if err != nil || string(b) != "beside" || from != beside {
		t.Errorf("next to devctl: %q from %q, %v", b, from, err)
	}
	if _, _, err := Binary("amd64"); !errors.Is(err, ErrNotAvailable) {
		t.Errorf("another arch next to devctl: err = %v, want ErrNotAvailable", err)
	}

	env := filepath.Join(dir, "agent")
	if err := os.WriteFile(env, []byte("from env"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv(EnvBinary, env)
	if b, from, err := Binary("arm64"); err != nil || string(b) != "from env" || from != env {
		t.Errorf("%s: %q from %q, %v", EnvBinary, b, from, err)
	}
	t.Setenv(EnvBinary, filepath.Join(dir, "missing"))
	if _, _, err := Binary("arm64"); err == nil || errors.Is(err, ErrNotAvailable) {
		t.Errorf("%s naming a missing file: err = %v, want the read error", EnvBinary, err)
	}
}

func TestWriteContext(t *testing.T) {
	src := filepath.Join(t.TempDir(), "agent")
	if err := os.WriteFile(src, []byte("\x7fELF"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv(EnvBinary, src)
	dir := t.TempDir()
	if _, err := WriteContext(dir, "amd64"); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(dir, "devctl-agent"))
	if err != nil || fi.Mode().Perm() != 0o755 || fi.Size() != 4 {
		t.Errorf("devctl-agent: %v %v", fi, err)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "Dockerfile")); err != nil || string(b) != Dockerfile {
		t.Errorf("Dockerfile: %q %v", b, err)
	}
}
