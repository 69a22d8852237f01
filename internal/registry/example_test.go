package registry_test

import (
	"context"
	"fmt"
	"net/netip"
	"path/filepath"

	"github.com/moby/moby/client"
	"sigs.k8s.io/kind/pkg/apis/config/v1alpha4"

	"github.com/devctl/devctl/internal/build/goimage"
	"github.com/devctl/devctl/internal/registry"
)

// Example shows how the daemon and the kind provider use the registry:
// serve it on loopback at start, give kind clusters the containerd patch and
// a mount of the hosts directory, listen on the kind network's gateway once
// it exists, build and push, and deploy by digest.
func Example() {
	ctx := context.Background()
	state := "/home/me/.local/state/devctl"

	// Daemon start: the registry and its loopback listener (localhost:5001).
	reg, err := registry.New(filepath.Join(state, "registry"))
	if err != nil {
		panic(err)
	}
	defer func() { _ = reg.Shutdown(context.Background()) }()
	if _, err := reg.Listen(ctx, netip.MustParseAddr("127.0.0.1")); err != nil {
		panic(err)
	}

	// kind cluster config: containerd reads hosts from a directory the
	// daemon keeps up to date.
	hostsDir := filepath.Join(state, "registry-hosts")
	cluster := &v1alpha4.Cluster{Nodes: []v1alpha4.Node{{Role: v1alpha4.ControlPlaneRole}}}
	cluster.ContainerdConfigPatches = append(cluster.ContainerdConfigPatches, registry.ContainerdConfigPatch)
	cluster.Nodes[0].ExtraMounts = append(cluster.Nodes[0].ExtraMounts, v1alpha4.Mount{
		HostPath: hostsDir, ContainerPath: registry.ContainerdHostsDir, Readonly: true,
	})

	// Once the kind network exists (after the first cluster, and at every
	// daemon start): listen on its gateway and point the nodes at it.
	api, err := client.New(client.FromEnv)
	if err != nil {
		panic(err)
	}
	gw, err := registry.NetworkGateway(ctx, api, registry.KindNetwork)
	if err != nil {
		panic(err)
	}
	endpoint, err := reg.Listen(ctx, gw)
	if err != nil {
		panic(err)
	}
	if err := registry.WriteHostsDir(hostsDir, reg.NodeHosts(endpoint)); err != nil {
		panic(err)
	}
	// Applied in each cluster (KEP-1755), for Tilt, Skaffold and friends.
	cm, err := reg.Hosting(endpoint).ConfigMap()
	if err != nil {
		panic(err)
	}
	_ = cm

	// Inner loop: build without Docker, push what changed, deploy by digest.
	res, err := goimage.New().Build(ctx, goimage.Spec{Dir: "examples/hello", Ports: []int{8080}})
	if err != nil {
		panic(err) // a *goimage.CompileError lists file:line diagnostics
	}
	pushed, err := reg.Push(ctx, res.Image, "main-main/hello:dev")
	if err != nil {
		panic(err)
	}
	fmt.Println(pushed.Ref(registry.DefaultName)) // devctl.local/main-main/hello@sha256:…

	// devctl down: forget the environment's images; GC frees their blobs.
	if _, err := reg.DeleteRepositories(ctx, "main-main"); err != nil {
		panic(err)
	}
	if _, err := reg.GC(ctx); err != nil {
		panic(err)
	}
}
