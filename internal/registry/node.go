package registry

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/client"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"
)

// KindNetwork is the Docker network kind puts its nodes on (unless
// KIND_EXPERIMENTAL_DOCKER_NETWORK names another).
const KindNetwork = "kind"

// ContainerdHostsDir is where containerd on a node reads per-registry host
// configuration: <ContainerdHostsDir>/<registry name>/hosts.toml.
const ContainerdHostsDir = "/etc/containerd/certs.d"

// ContainerdConfigPatch is the kind Cluster containerdConfigPatches entry
// that makes containerd's CRI plugin read registry hosts from
// ContainerdHostsDir. It is in the version 2 configuration format that
// kind's node images use: containerd 1.6+ (the offline node image ships
// Debian bookworm's 1.6.20) reads it as is, containerd 2.x (kind's own node
// images) migrates it. Hosts files are read on every pull, so they can be
// written or rewritten after the node has started.
const ContainerdConfigPatch = `[plugins."io.containerd.grpc.v1.cri".registry]
  config_path = "` + ContainerdHostsDir + `"
`

// ErrNoGateway means the Docker network has no IPv4 gateway the registry
// could listen on.
var ErrNoGateway = errors.New("no IPv4 gateway")

// NetworkInspector is the part of the Docker Engine client NetworkGateway
// uses; *client.Client implements it.
type NetworkInspector interface {
	NetworkInspect(ctx context.Context, network string, options client.NetworkInspectOptions) (client.NetworkInspectResult, error)
}

// NetworkGateway returns the IPv4 gateway of a Docker network: the host's
// address on it, which the containers on it reach the host by. The kind
// network exists once kind has created a cluster.
func NetworkGateway(ctx context.Context, api NetworkInspector, network string) (netip.Addr, error) {
	res, err := api.NetworkInspect(ctx, network, client.NetworkInspectOptions{})
	if cerrdefs.IsNotFound(err) {
		return netip.Addr{}, fmt.Errorf("docker network %s: %w: it is created with the first kind cluster", network, err)
	}
	if err != nil {
		return netip.Addr{}, fmt.Errorf("docker network %s: %w", network, err)
	}
	for _, c := range res.Network.IPAM.Config {
		if c.Gateway.Is4() {
			return c.Gateway, nil
		}
	}
	return netip.Addr{}, fmt.Errorf("docker network %s: %w", network, ErrNoGateway)
}

// HostsTOML returns containerd's hosts.toml for a registry name served at
// endpoint over plain HTTP. The [host] table repeats server: some containerd
// versions ignore a server-only file.
func HostsTOML(endpoint netip.AddrPort) string {
	url := "http://" + endpoint.String()
	return fmt.Sprintf(`# Written by devctl: pulls go to the devctl registry, over plain HTTP.
server = %q

[host.%q]
  capabilities = ["pull", "resolve"]
`, url, url)
}

// NodeHosts returns, for each of the registry's Names, the hosts.toml a node
// needs to pull from the registry at endpoint (its listener on the kind
// network's gateway): name → file content. Write each to
// <ContainerdHostsDir>/<name>/hosts.toml on the node (see WriteHostsDir).
func (r *Registry) NodeHosts(endpoint netip.AddrPort) map[string]string {
	hosts := map[string]string{}
	for _, n := range r.Names() {
		hosts[n] = HostsTOML(endpoint)
	}
	return hosts
}

// WriteHostsDir writes hosts (name → hosts.toml, from NodeHosts) under dir
// as <dir>/<name>/hosts.toml, each atomically. A directory mounted into the
// nodes at ContainerdHostsDir (a kind extraMount) can so be rewritten while
// they run, when the registry's address changes.
func WriteHostsDir(dir string, hosts map[string]string) error {
	for n, content := range hosts {
		if n == "" || strings.ContainsAny(n, `/\`) || n == "." || n == ".." {
			return fmt.Errorf("write hosts: registry name %q: %w", n, ErrInvalidName)
		}
		d := filepath.Join(dir, n)
		if err := os.MkdirAll(d, 0o755); err != nil {
			return fmt.Errorf("write hosts: %w", err)
		}
		f, err := os.CreateTemp(d, ".hosts-*.toml")
		if err != nil {
			return fmt.Errorf("write hosts: %w", err)
		}
		_, err = f.WriteString(content)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err == nil {
			err = os.Chmod(f.Name(), 0o644)
		}
		if err == nil {
			err = os.Rename(f.Name(), filepath.Join(d, "hosts.toml"))
		}
		if err != nil {
			_ = os.Remove(f.Name())
			return fmt.Errorf("write hosts: %w", err)
		}
	}
	return nil
}

// LocalRegistryHosting is KEP-1755's description of a cluster's local
// registry, for tools that push to it (Tilt, Skaffold, ko).
type LocalRegistryHosting struct {
	// Host is where tools on the host push: localhost:5001.
	Host string `json:"host,omitempty"`
	// HostFromContainerRuntime is the name pods' images use for it.
	HostFromContainerRuntime string `json:"hostFromContainerRuntime,omitempty"`
	// HostFromClusterNetwork is its address from inside the cluster.
	HostFromClusterNetwork string `json:"hostFromClusterNetwork,omitempty"`
	// Help is a URL documenting it.
	Help string `json:"help,omitempty"`
}

// Names of the KEP-1755 ConfigMap.
const (
	LocalRegistryHostingNamespace = "kube-public"
	LocalRegistryHostingName      = "local-registry-hosting"
	LocalRegistryHostingKey       = "localRegistryHosting.v1"
)

// Hosting describes the registry for KEP-1755 given its endpoint on the kind
// network: host is Host (localhost:<port>), the container runtime pulls by
// the first of WithNames (devctl.local, whatever the port), and the cluster
// network reaches it at endpoint. Help is left for the caller to set.
func (r *Registry) Hosting(endpoint netip.AddrPort) LocalRegistryHosting {
	h := LocalRegistryHosting{
		Host:                     r.Host(),
		HostFromContainerRuntime: r.Host(),
		HostFromClusterNetwork:   endpoint.String(),
	}
	if len(r.names) > 0 {
		h.HostFromContainerRuntime = r.names[0]
	}
	return h
}

// ConfigMap returns the kube-public/local-registry-hosting ConfigMap that
// announces h to tools (KEP-1755).
func (h LocalRegistryHosting) ConfigMap() (*corev1.ConfigMap, error) {
	b, err := yaml.Marshal(h)
	if err != nil {
		return nil, fmt.Errorf("local registry hosting: %w", err)
	}
	return &corev1.ConfigMap{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"},
		ObjectMeta: metav1.ObjectMeta{
			Name:      LocalRegistryHostingName,
			Namespace: LocalRegistryHostingNamespace,
			Labels:    map[string]string{"app.kubernetes.io/managed-by": "devctl"},
		},
		Data: map[string]string{LocalRegistryHostingKey: string(b)},
	}, nil
}
