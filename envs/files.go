package envs

import "github.com/devctl/devctl/envs/internal/privfile"

// writeFileAtomic writes data to path with mode 0600 so that readers never
// see a partial kubeconfig (privfile.Write).
func writeFileAtomic(path string, data []byte) error { return privfile.Write(path, data) }
