package envs

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// writeFileAtomic writes data to path with mode 0600 through a temporary file
// in the same directory, so readers never see a partial kubeconfig. The
// directory is created 0700 when missing.
func writeFileAtomic(path string, data []byte) error {
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

// mergeKubeconfig merges the clusters, users and contexts of src into the
// kubeconfig file at path (created when missing) and makes src's current
// context the file's current context, as `kind export kubeconfig` does.
func mergeKubeconfig(path string, src []byte) error {
	in, err := clientcmd.Load(src)
	if err != nil {
		return fmt.Errorf("parse environment kubeconfig: %w", err)
	}
	dst, err := clientcmd.LoadFromFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		dst = clientcmdapi.NewConfig()
	case err != nil:
		return fmt.Errorf("read %s: %w", path, err)
	}
	for k, v := range in.Clusters {
		dst.Clusters[k] = v
	}
	for k, v := range in.AuthInfos {
		dst.AuthInfos[k] = v
	}
	for k, v := range in.Contexts {
		dst.Contexts[k] = v
	}
	if in.CurrentContext != "" {
		dst.CurrentContext = in.CurrentContext
	}
	out, err := clientcmd.Write(*dst)
	if err != nil {
		return fmt.Errorf("encode %s: %w", path, err)
	}
	if err := writeFileAtomic(path, out); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
