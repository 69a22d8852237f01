package kind

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os/exec"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/devctl/devctl/envs/internal/privfile"
	"github.com/devctl/devctl/internal/kube"
)

// earlyPoll is how often the early watch asks Docker and the API server.
const earlyPoll = 250 * time.Millisecond

// awaitAPI watches a cluster kind is creating and, as soon as its API
// server answers to the admin credentials kubeadm wrote in the node, writes
// a kubeconfig for them at o.KubeconfigPath, calls ready (when not nil) and
// has the kubelet register its node (nudgeKubelet). kind goes on for
// seconds after that point (kubeadm's last phases, the CNI, the storage
// class, its own kubeconfig export), time in which a caller can already
// push, install and schedule. It gives up quietly when stop closes first:
// Create then returns as it always did.
func awaitAPI(stop <-chan struct{}, name, kubeconfigPath string, ready func(), logger *slog.Logger) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	node := name + "-control-plane"
	wait := func() bool {
		select {
		case <-ctx.Done():
			return false
		case <-time.After(earlyPoll):
			return true
		}
	}
	// The API server's port on this machine: kind publishes it when it
	// makes the node's container.
	var port string
	for port == "" {
		if !wait() {
			return
		}
		port = publishedAPIPort(ctx, node)
	}
	server := "https://127.0.0.1:" + port
	// /readyz answers anyone once the API server is up and its RBAC
	// roles are in place; until then it refuses or is not there.
	probe := &http.Client{Timeout: time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // only asks whether the server is ready; credentials go over the verified client below
	}}
	for !readyz(ctx, probe, server) {
		if !wait() {
			return
		}
	}
	probe.CloseIdleConnections()
	// kubeadm wrote admin.conf before it started the API server: it is
	// read once, then its credentials are tried until they are bound.
	var kc []byte
	for kc == nil {
		admin, err := exec.CommandContext(ctx, "docker", "exec", node, "cat", "/etc/kubernetes/admin.conf").Output()
		if err == nil {
			kc, _ = kindKubeconfig(admin, name, server)
		}
		if kc == nil && !wait() {
			return
		}
	}
	for !answers(ctx, kc) {
		if !wait() {
			return
		}
	}
	if err := privfile.Write(kubeconfigPath, kc); err != nil {
		return
	}
	select {
	case <-stop:
		return
	default:
		if ready != nil {
			ready()
		}
	}
	nudgeKubelet(kc, node, logger)
}

// nudgeKubelet restarts the node's kubelet when the API server answers
// before the kubelet has registered its node, which is the usual case: the
// kubelet started with the control plane and retries registering with a
// back-off that grows to 7 s, so it registers up to 7 s after the API is
// up. Until the Node exists its CSI plugin cannot initialise, and that
// retries on a fixed schedule whose early tries end ~4 s after the API is
// reachable and whose next is ~20 s later; the node stays NotReady, and no
// pod is scheduled, until it succeeds (15 s of a cold up here, one time in
// two). A kubelet started now registers at once. kubeadm restarts the
// kubelet at the end of its init anyway (the kubelet-finalize phase, which
// Config skips); this is the same restart, sooner, and only when needed.
func nudgeKubelet(kc []byte, node string, logger *slog.Logger) {
	c, err := kube.NewClientFromBytes(kc)
	if err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err = c.Set.CoreV1().Nodes().Get(ctx, node, metav1.GetOptions{})
	if !apierrors.IsNotFound(err) {
		return // registered (or the API cannot say): nothing to do
	}
	start := time.Now()
	if out, err := exec.CommandContext(ctx, "docker", "exec", node, "systemctl", "restart", "kubelet").CombinedOutput(); err != nil {
		logger.Warn("restart the kubelet to register its node", "node", node, "err", err, "output", string(out))
		return
	}
	logger.Debug("restarted the kubelet to register its node", "node", node, "took", time.Since(start))
}

// publishedAPIPort is the host port Docker maps to the node's 6443, or "".
func publishedAPIPort(ctx context.Context, node string) string {
	out, err := exec.CommandContext(ctx, "docker", "inspect", "--format", "{{json .HostConfig.PortBindings}}", node).Output()
	if err != nil {
		return ""
	}
	return apiPort(out)
}

// apiPort reads the host port bound to 6443/tcp from a container's port
// bindings as `docker inspect` prints them in JSON.
func apiPort(portBindings []byte) string {
	var bindings map[string][]struct{ HostIP, HostPort string }
	if json.Unmarshal(portBindings, &bindings) != nil {
		return ""
	}
	for _, b := range bindings["6443/tcp"] {
		if b.HostPort != "" && b.HostPort != "0" {
			return b.HostPort
		}
	}
	return ""
}

func readyz(ctx context.Context, c *http.Client, server string) bool {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, server+"/readyz", nil)
	if err != nil {
		return false
	}
	resp, err := c.Do(req)
	if err != nil {
		return false
	}
	_ = resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// answers reports whether kc's credentials are authorised: kubeadm binds
// the admin's group to cluster-admin moments after the server is ready.
func answers(ctx context.Context, kc []byte) bool {
	c, err := kube.NewClientFromBytes(kc)
	if err != nil {
		return false
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	_, err = c.Set.CoreV1().Namespaces().Get(ctx, metav1.NamespaceDefault, metav1.GetOptions{})
	return err == nil
}

// kindKubeconfig turns kubeadm's admin.conf into what kind exports for the
// cluster: the server at the port published on this machine, and cluster,
// user and context named kind-NAME (kind's export then replaces the same
// entries).
func kindKubeconfig(admin []byte, name, server string) ([]byte, error) {
	cfg, err := clientcmd.Load(admin)
	if err != nil {
		return nil, fmt.Errorf("read admin.conf: %w", err)
	}
	cur, ok := cfg.Contexts[cfg.CurrentContext]
	if !ok {
		return nil, errors.New("admin.conf has no current context")
	}
	cluster, user := cfg.Clusters[cur.Cluster], cfg.AuthInfos[cur.AuthInfo]
	if cluster == nil || user == nil {
		return nil, errors.New("admin.conf's context names no cluster or user")
	}
	id := "kind-" + name
	c := *cluster
	c.Server = server
	out := clientcmdapi.NewConfig()
	out.Clusters[id] = &c
	out.AuthInfos[id] = user
	out.Contexts[id] = &clientcmdapi.Context{Cluster: id, AuthInfo: id}
	out.CurrentContext = id
	return clientcmd.Write(*out)
}
