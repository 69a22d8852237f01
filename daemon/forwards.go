package daemon

import (
	"context"
	"fmt"
	"strings"
	"sync"
)

// forwards holds the port-forwards of every environment's services. A
// forward outlives the run that made it: it ends with `devctl down`, when
// its cluster is made again, or at shutdown.
type forwards struct {
	cluster Cluster
	mu      sync.Mutex
	m       map[string]heldForward // env/service
}

type heldForward struct {
	f          Forward
	kubeconfig string
	remote     int
}

func newForwards(c Cluster) *forwards {
	return &forwards{cluster: c, m: map[string]heldForward{}}
}

// ensure returns the URL of a forward to service's port remote, starting
// one (on local port prefer when it is free) unless one to that port is
// held. A forward to another port (services[].port changed) is replaced.
func (fs *forwards) ensure(ctx context.Context, env, kubeconfig, ns, service string, remote, prefer int) (string, error) {
	return fs.ensureKey(ctx, env+"/"+service, kubeconfig, ns, service, remote, prefer)
}

// ensureKey is ensure for a forward held under key, which starts with
// "<env>/" (closeEnv closes it).
func (fs *forwards) ensureKey(ctx context.Context, key, kubeconfig, ns, service string, remote, prefer int) (string, error) {
	fs.mu.Lock()
	h, ok := fs.m[key]
	fs.mu.Unlock()
	if ok && h.remote == remote && h.kubeconfig == kubeconfig {
		return localURL(h.f.LocalPort()), nil
	}
	if ok {
		h.f.Close()
		prefer = h.f.LocalPort() // keep the URL the user has
	}
	// The forward outlives this request: it is closed by down or shutdown.
	fctx := context.WithoutCancel(ctx)
	f, err := fs.cluster.Forward(fctx, kubeconfig, ns, service, remote, prefer)
	if err != nil && prefer != 0 {
		// The old port may be taken now; any free one will do.
		f, err = fs.cluster.Forward(fctx, kubeconfig, ns, service, remote, 0)
	}
	if err != nil {
		return "", fmt.Errorf("port-forward to %s: %w", service, err)
	}
	fs.mu.Lock()
	fs.m[key] = heldForward{f: f, kubeconfig: kubeconfig, remote: remote}
	fs.mu.Unlock()
	return localURL(f.LocalPort()), nil
}

func (fs *forwards) closeEnv(env string) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	for k, h := range fs.m {
		if strings.HasPrefix(k, env+"/") {
			h.f.Close()
			delete(fs.m, k)
		}
	}
}

func (fs *forwards) closeAll() {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	for k, h := range fs.m {
		h.f.Close()
		delete(fs.m, k)
	}
}

func localURL(port int) string { return fmt.Sprintf("http://127.0.0.1:%d", port) }
