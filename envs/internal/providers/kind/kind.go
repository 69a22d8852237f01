// Package kind is the environment backend that runs each environment as a
// kind (Kubernetes in Docker) cluster.
package kind

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"

	"sigs.k8s.io/kind/pkg/apis/config/defaults"
	"sigs.k8s.io/kind/pkg/apis/config/v1alpha4"
	"sigs.k8s.io/kind/pkg/cluster"
	"sigs.k8s.io/kind/pkg/cluster/nodeutils"
	kindexec "sigs.k8s.io/kind/pkg/exec"

	"github.com/devctl/devctl/envs/internal/providers"
	"github.com/devctl/devctl/internal/registry"
)

// DefaultNodeImage is the node image used when the spec names none.
const DefaultNodeImage = defaults.Image

// AllowCgroupV1Patch lets kubelets from Kubernetes 1.35 on start on hosts that
// still use cgroup v1; it is harmless on cgroup v2 hosts.
const AllowCgroupV1Patch = `kind: KubeletConfiguration
failCgroupV1: false
`

// kubeadm's kubelet-finalize phase is skipped: it points kubelet.conf at
// the certificate file the kubelet rotates and restarts the kubelet, at the
// very end of the init, right when the service's pod is scheduled: on a
// busy machine 2 s in which no pod started. The early watch restarts the
// kubelet instead as soon as the API answers, and only when the kubelet has
// not registered its node yet (nudgeKubelet), which overlaps the restart
// with kubeadm's last phases and the caller's install. The kubelet still
// rotates its client certificate while it runs; only a restarted kubelet
// falls back to the one kubeadm wrote, valid for a year, and an environment
// lives for days. kind always skips "preflight" (kubeadm's --skip-phases, or
// skipPhases in the config for 1.23 on); a merge patch replaces the whole
// list, the v1beta4 one appends.
const skipKubeletFinalizeV1Beta3 = `apiVersion: kubeadm.k8s.io/v1beta3
kind: InitConfiguration
skipPhases:
- preflight
- kubelet-finalize
`

var skipKubeletFinalizeV1Beta4 = v1alpha4.PatchJSON6902{
	Group: "kubeadm.k8s.io", Version: "v1beta4", Kind: "InitConfiguration",
	Patch: `- {op: add, path: /skipPhases/-, value: kubelet-finalize}
`,
}

// One control plane on one machine needs no leader election: without it the
// controller manager and the scheduler start their controllers as soon as
// they run, instead of after taking a lease (kube-controller-manager retries
// every 2 s while RBAC is still being bootstrapped, which kept new pods from
// being created and the node's not-ready taint from being lifted for 3-5 s
// after kind returned). Its client may also ask the API server more often
// while it starts its controllers (the defaults, 20 per second with bursts of
// 30, spread their start over seconds). kind uses kubeadm's v1beta3 API up
// to Kubernetes 1.35 (extra arguments as a map, merged) and v1beta4 after it
// (a list, appended to; only the controller manager's, which kind always
// writes: the scheduler's may be empty, and it was never the one waited
// for).
const fastControlPlaneV1Beta3 = `apiVersion: kubeadm.k8s.io/v1beta3
kind: ClusterConfiguration
controllerManager:
  extraArgs:
    leader-elect: "false"
    kube-api-qps: "200"
    kube-api-burst: "400"
scheduler:
  extraArgs:
    leader-elect: "false"
`

var fastControlPlaneV1Beta4 = v1alpha4.PatchJSON6902{
	Group: "kubeadm.k8s.io", Version: "v1beta4", Kind: "ClusterConfiguration",
	Patch: `- {op: add, path: /controllerManager/extraArgs/-, value: {name: leader-elect, value: "false"}}
- {op: add, path: /controllerManager/extraArgs/-, value: {name: kube-api-qps, value: "200"}}
- {op: add, path: /controllerManager/extraArgs/-, value: {name: kube-api-burst, value: "400"}}
`,
}

// Provider runs environments as kind clusters on the local Docker engine.
type Provider struct {
	logger *slog.Logger
}

var (
	_ providers.Provider      = (*Provider)(nil)
	_ providers.Prepuller     = (*Provider)(nil)
	_ providers.ImageLoader   = (*Provider)(nil)
	_ providers.Starter       = (*Provider)(nil)
	_ providers.Containerized = (*Provider)(nil)
)

// New returns a kind backend that logs to logger (nil discards).
func New(logger *slog.Logger) *Provider {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Provider{logger: logger}
}

// Name implements providers.Provider.
func (p *Provider) Name() string { return "kind" }

// kind's Go API takes no context; every call gets a fresh kind provider whose
// logger is bound to the caller's context and progress callback.
func (p *Provider) kind(ctx context.Context, progress func(providers.Step)) *cluster.Provider {
	return cluster.NewProvider(
		cluster.ProviderWithDocker(),
		cluster.ProviderWithLogger(newLogger(ctx, p.logger, progress)),
	)
}

// Config returns the kind cluster config Create uses for o: one
// control-plane node and AllowCgroupV1Patch.
func Config(name string, o providers.CreateOptions) *v1alpha4.Cluster {
	c := &v1alpha4.Cluster{
		TypeMeta: v1alpha4.TypeMeta{Kind: "Cluster", APIVersion: "kind.x-k8s.io/v1alpha4"},
		Name:     name,
		Nodes:    []v1alpha4.Node{{Role: v1alpha4.ControlPlaneRole}},
	}
	c.KubeadmConfigPatches = []string{AllowCgroupV1Patch, fastControlPlaneV1Beta3, skipKubeletFinalizeV1Beta3}
	c.KubeadmConfigPatchesJSON6902 = []v1alpha4.PatchJSON6902{fastControlPlaneV1Beta4, skipKubeletFinalizeV1Beta4}
	if o.RegistryHostsDir != "" {
		// containerd reads registry hosts from a folder the daemon keeps
		// up to date: images are pulled from its registry, not loaded.
		c.ContainerdConfigPatches = append(c.ContainerdConfigPatches, registry.ContainerdConfigPatch)
		for i := range c.Nodes {
			c.Nodes[i].ExtraMounts = append(c.Nodes[i].ExtraMounts, v1alpha4.Mount{
				HostPath: o.RegistryHostsDir, ContainerPath: registry.ContainerdHostsDir, Readonly: true,
			})
		}
	}
	return c
}

// nodeEntrypoint is the entrypoint of the node images e2e/images/build.sh
// builds (air-gapped machines, the tests): their pod network is a static
// bridge CNI configuration in the image, so kind has no CNI to install.
const nodeEntrypoint = "/usr/local/bin/devctl-entrypoint"

// staticCNI says whether image is such a node image. kind's own images
// (kindnetd) and any image it cannot inspect get kind's default CNI.
func staticCNI(ctx context.Context, image string) bool {
	out, err := exec.CommandContext(ctx, "docker", "image", "inspect", "--format", "{{json .Config.Entrypoint}}", image).Output()
	return err == nil && hasStaticCNI(out)
}

func hasStaticCNI(entrypointJSON []byte) bool {
	var entrypoint []string
	return json.Unmarshal(entrypointJSON, &entrypoint) == nil && len(entrypoint) > 0 && entrypoint[0] == nodeEntrypoint
}

// PullsFromRegistry implements providers.RegistryPuller: the control-plane
// node has the registry hosts folder mounted.
func (p *Provider) PullsFromRegistry(ctx context.Context, name string) (bool, error) {
	out, err := exec.CommandContext(ctx, "docker", "inspect", "--format", "{{range .Mounts}}{{.Destination}}\n{{end}}", name+"-control-plane").Output()
	if err != nil {
		return false, fmt.Errorf("inspect kind node %s-control-plane: %w", name, err)
	}
	return slices.Contains(strings.Split(string(out), "\n"), registry.ContainerdHostsDir), nil
}

// Create implements providers.Provider. kind cannot be interrupted once it
// has started, so ctx is only checked before the cluster is created; the
// wait is bounded by o.WaitForReady.
func (p *Provider) Create(ctx context.Context, name string, o providers.CreateOptions) error {
	if o.KubeconfigPath == "" {
		// kind would otherwise merge into the user's default kubeconfig.
		return fmt.Errorf("create kind cluster %q: no kubeconfig path given", name)
	}
	existing, err := p.List(ctx)
	if err != nil {
		return err
	}
	if slices.Contains(existing, name) {
		return fmt.Errorf("create kind cluster %q: %w", name, providers.ErrExists)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("create kind cluster %q: %w", name, err)
	}
	image := o.Spec.NodeImage
	if image == "" {
		image = DefaultNodeImage
	}
	// kind writes its kubeconfig beside the environment's and it is then
	// moved into place: the file at KubeconfigPath, which the early watch
	// may already have written and a caller be reading, is only ever
	// replaced whole.
	kindKC := o.KubeconfigPath + ".kind"
	cfg := Config(name, o)
	if staticCNI(ctx, image) {
		// Nothing for kind to install: its "Installing CNI" phase (a
		// kubectl apply in the node, 2-5 s of the create) is skipped.
		cfg.Networking.DisableDefaultCNI = true
	}
	opts := []cluster.CreateOption{
		cluster.CreateWithV1Alpha4Config(cfg),
		cluster.CreateWithNodeImage(image),
		cluster.CreateWithKubeconfigPath(kindKC),
		cluster.CreateWithDisplayUsage(false),
		cluster.CreateWithDisplaySalutation(false),
	}
	if o.WaitForReady > 0 {
		opts = append(opts, cluster.CreateWithWaitForReady(o.WaitForReady))
	}
	stop, watched := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(watched)
		awaitAPI(stop, name, o.KubeconfigPath, o.APIReady, p.logger)
	}()
	err = p.kind(ctx, o.Progress).Create(name, opts...)
	close(stop)
	<-watched
	if err == nil {
		err = os.Rename(kindKC, o.KubeconfigPath)
	}
	if err != nil {
		_ = os.Remove(kindKC)
		return fmt.Errorf("create kind cluster %q with node image %s: %w", name, image, commandError(err))
	}
	return nil
}

// Delete implements providers.Provider.
func (p *Provider) Delete(ctx context.Context, name string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("delete kind cluster %q: %w", name, err)
	}
	// kind removes the cluster's entry from a kubeconfig file while deleting.
	// Point it at an empty scratch file so the user's kubeconfig is never
	// touched; the environment's own file is removed by the caller.
	scratch, err := os.MkdirTemp("", "devctl-kind-delete-")
	if err != nil {
		return fmt.Errorf("delete kind cluster %q: %w", name, err)
	}
	defer func() { _ = os.RemoveAll(scratch) }()
	if err := p.kind(ctx, nil).Delete(name, filepath.Join(scratch, "kubeconfig")); err != nil {
		return fmt.Errorf("delete kind cluster %q: %w", name, commandError(err))
	}
	return nil
}

// List implements providers.Provider.
func (p *Provider) List(ctx context.Context) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("list kind clusters: %w", err)
	}
	names, err := p.kind(ctx, nil).List()
	if err != nil {
		return nil, fmt.Errorf("list kind clusters (is Docker running? try `docker ps`): %w", err)
	}
	return names, nil
}

// Kubeconfig implements providers.Provider.
func (p *Provider) Kubeconfig(ctx context.Context, name string) ([]byte, error) {
	if err := p.ensure(ctx, name); err != nil {
		return nil, err
	}
	cfg, err := p.kind(ctx, nil).KubeConfig(name, false)
	if err != nil {
		return nil, fmt.Errorf("kubeconfig of kind cluster %q: %w", name, err)
	}
	return []byte(cfg), nil
}

// Prepull implements providers.Prepuller: every node pulls refs through
// the CRI (`crictl pull`, as the kubelet would), all at once.
func (p *Provider) Prepull(ctx context.Context, name string, refs []string) error {
	nodes, err := p.kind(ctx, nil).ListInternalNodes(name)
	if err != nil {
		return fmt.Errorf("pull images into %q: list nodes: %w", name, err)
	}
	errs := make(chan error, len(nodes)*len(refs))
	for _, n := range nodes {
		for _, ref := range refs {
			go func() {
				if err := n.CommandContext(ctx, "crictl", "pull", ref).Run(); err != nil {
					errs <- fmt.Errorf("pull %s into node %s: %w", ref, n.String(), commandError(err))
					return
				}
				errs <- nil
			}()
		}
	}
	var all []error
	for range len(nodes) * len(refs) {
		all = append(all, <-errs)
	}
	return errors.Join(all...)
}

// LoadImages implements providers.ImageLoader the way `kind load
// docker-image` does: the archive is imported into containerd on every node.
// Cancelling ctx aborts the stream being imported.
func (p *Provider) LoadImages(ctx context.Context, name string, archive func() (io.ReadCloser, error)) error {
	if err := p.ensure(ctx, name); err != nil {
		return err
	}
	nodes, err := p.kind(ctx, nil).ListInternalNodes(name)
	if err != nil {
		return fmt.Errorf("load images into %q: list nodes: %w", name, err)
	}
	if len(nodes) == 0 {
		return fmt.Errorf("load images into %q: the cluster has no nodes: %w", name, providers.ErrNotFound)
	}
	for _, n := range nodes {
		if err := loadNode(ctx, n.String(), archive, func(r io.Reader) error { return nodeutils.LoadImageArchive(n, r) }); err != nil {
			return fmt.Errorf("load images into %q: %w", name, commandError(err))
		}
	}
	return nil
}

func loadNode(ctx context.Context, node string, archive func() (io.ReadCloser, error), load func(io.Reader) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	rc, err := archive()
	if err != nil {
		return fmt.Errorf("open image archive for node %s: %w", node, err)
	}
	defer func() { _ = rc.Close() }()
	if err := load(ctxReader{ctx: ctx, r: rc}); err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("node %s: %w", node, ctx.Err())
		}
		return fmt.Errorf("node %s: %w", node, err)
	}
	return nil
}

// ctxReader fails reads once ctx is done, which ends the import command's
// input and so the command.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(b []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(b)
}

// StartCommand implements providers.Starter: the cluster's node containers
// are started with docker.
func (p *Provider) StartCommand(ctx context.Context, name string) string {
	nodes, err := p.kind(ctx, nil).ListNodes(name)
	var names []string
	if err == nil {
		for _, n := range nodes {
			names = append(names, n.String())
		}
	}
	if len(names) == 0 {
		names = []string{name + "-control-plane"}
	}
	slices.Sort(names)
	return "docker start " + strings.Join(names, " ")
}

// Start implements providers.Starter: it starts the cluster's node
// containers (docker start); kind's nodes bring their control plane back.
func (p *Provider) Start(ctx context.Context, name string) error {
	nodes, err := p.kind(ctx, nil).ListNodes(name)
	if err != nil {
		return fmt.Errorf("list nodes of kind cluster %q: %w", name, err)
	}
	if len(nodes) == 0 {
		return fmt.Errorf("kind cluster %q has no node containers", name)
	}
	args := []string{"start"}
	for _, n := range nodes {
		args = append(args, n.String())
	}
	if _, err := kindexec.Output(kindexec.CommandContext(ctx, "docker", args...)); err != nil {
		return fmt.Errorf("start the nodes of kind cluster %q: %w", name, err)
	}
	return nil
}

// Containers implements providers.Containerized: the full IDs of the
// cluster's node containers.
func (p *Provider) Containers(ctx context.Context, name string) ([]string, error) {
	nodes, err := p.kind(ctx, nil).ListNodes(name)
	if err != nil {
		return nil, fmt.Errorf("list nodes of kind cluster %q: %w", name, err)
	}
	if len(nodes) == 0 {
		return nil, nil
	}
	args := []string{"inspect", "--format", "{{.Id}}"}
	for _, n := range nodes {
		args = append(args, n.String())
	}
	ids, err := kindexec.OutputLines(kindexec.CommandContext(ctx, "docker", args...))
	if err != nil {
		return nil, fmt.Errorf("node containers of kind cluster %q: %w", name, commandError(err))
	}
	return ids, nil
}

func (p *Provider) ensure(ctx context.Context, name string) error {
	names, err := p.List(ctx)
	if err != nil {
		return err
	}
	if !slices.Contains(names, name) {
		return fmt.Errorf("kind cluster %q: %w", name, providers.ErrNotFound)
	}
	return nil
}

// commandError keeps the output of a failed node or docker command that kind
// wraps in its own error type.
func commandError(err error) error {
	var re *kindexec.RunError
	if errors.As(err, &re) {
		return &providers.CommandError{Command: re.PrettyCommand(), Output: re.Output, Err: err}
	}
	return err
}

// statusLine turns one of kind's status lines (" • step  ...", " ✓ step",
// " ✗ step") into a Step.
func statusLine(line string) (providers.Step, bool) {
	line = strings.TrimRight(line, "\n")
	switch {
	case strings.HasPrefix(line, " • ") && strings.HasSuffix(line, "  ..."):
		msg := strings.TrimSuffix(strings.TrimPrefix(line, " • "), "  ...")
		return providers.Step{Message: strings.TrimSpace(msg), State: providers.StepStarted}, true
	case strings.HasPrefix(line, " ✓ "):
		return providers.Step{Message: strings.TrimSpace(strings.TrimPrefix(line, " ✓ ")), State: providers.StepDone}, true
	case strings.HasPrefix(line, " ✗ "):
		return providers.Step{Message: strings.TrimSpace(strings.TrimPrefix(line, " ✗ ")), State: providers.StepFailed}, true
	}
	return providers.Step{}, false
}
