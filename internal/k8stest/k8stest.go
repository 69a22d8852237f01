// Package k8stest runs a real, fast Kubernetes control plane for integration
// tests: etcd, kube-apiserver, kube-controller-manager and kube-scheduler as
// local processes, plus kwok simulating one Ready node, so Deployments become
// Available, Helm --wait succeeds and admission (PodSecurity,
// ValidatingAdmissionPolicy, RBAC) behaves as in a real cluster. Containers
// never run; use kind for that.
//
// The binaries come from `make k8s-tools` (e2e/tools/k8s-tools.sh), found
// through $DEVCTL_K8S_ASSETS or the default cache directory. Everything
// listens on free loopback ports and lives in a temporary directory, so many
// control planes can run side by side. Every component runs in its own
// process group and, on Linux, dies with the process that started it.
package k8stest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// NodeName is the name of the fake node kwok keeps Ready.
const NodeName = "k8stest-node"

// ErrAssetsMissing reports that the control-plane binaries are not built.
var ErrAssetsMissing = errors.New("control plane binaries not found: run `make k8s-tools` or set DEVCTL_K8S_ASSETS to a directory holding them")

// ErrStart reports that a component did not start or did not become ready;
// the wrapping error names the component and carries the tail of its log.
var ErrStart = errors.New("start control plane")

// ControlPlane is a running control plane. Stop it when done.
type ControlPlane struct {
	// Kubeconfig is the path of a kubeconfig file with cluster-admin
	// credentials (a client certificate in group system:masters).
	Kubeconfig string
	// Dir is the working directory: certificates, etcd data and one log
	// file per component (<component>.log). Stop removes it.
	Dir string

	log    *slog.Logger
	rest   *rest.Config
	client kubernetes.Interface
	procs  []*process

	stopOnce sync.Once
	stopErr  error
}

type options struct {
	assets       string
	logger       *slog.Logger
	startTimeout time.Duration
}

// Option configures New.
type Option func(*options)

// WithAssets sets the directory holding the binaries and kwok-stages.yaml,
// overriding $DEVCTL_K8S_ASSETS and the default cache directory.
func WithAssets(dir string) Option { return func(o *options) { o.assets = dir } }

// WithLogger receives progress and timing records; discarded by default.
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.logger = l } }

// WithStartTimeout bounds how long New waits for the control plane to become
// ready when ctx has no earlier deadline (default 2 minutes).
func WithStartTimeout(d time.Duration) Option { return func(o *options) { o.startTimeout = d } }

// New starts etcd, kube-apiserver, kube-controller-manager, kube-scheduler
// and kwok, registers one fake node and returns once the API server is
// ready, the node is Ready and schedulable and the controller manager has
// created the default ServiceAccount. ctx bounds the start only; the
// processes run until Stop.
func New(ctx context.Context, opts ...Option) (_ *ControlPlane, retErr error) {
	o := options{
		logger:       slog.New(slog.DiscardHandler),
		startTimeout: 2 * time.Minute,
	}
	for _, opt := range opts {
		opt(&o)
	}
	assets, err := findAssets(o.assets)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, o.startTimeout)
	defer cancel()

	dir, err := makeWorkDir()
	if err != nil {
		return nil, err
	}
	c := &ControlPlane{Dir: dir, Kubeconfig: filepath.Join(dir, "kubeconfig"), log: o.logger}
	defer func() {
		if retErr != nil {
			// The start error already carries what went wrong.
			if err := c.Stop(); err != nil {
				c.log.Debug("stop after failed start", "error", err)
			}
		}
	}()

	start := time.Now()
	ports, err := freePorts(3)
	if err != nil {
		return nil, err
	}
	etcdURL := "http://127.0.0.1:" + strconv.Itoa(ports[0])
	peerURL := "http://127.0.0.1:" + strconv.Itoa(ports[1])
	apiURL := "https://127.0.0.1:" + strconv.Itoa(ports[2])

	pki, err := writePKI(dir)
	if err != nil {
		return nil, err
	}
	if c.rest, err = writeKubeconfig(c.Kubeconfig, apiURL, pki); err != nil {
		return nil, err
	}
	if c.client, err = kubernetes.NewForConfig(c.rest); err != nil {
		return nil, fmt.Errorf("%w: client for %s: %w", ErrStart, apiURL, err)
	}

	etcd := c.spawn(assets, "etcd",
		"--name=k8stest",
		"--data-dir="+filepath.Join(dir, "etcd"),
		"--listen-client-urls="+etcdURL,
		"--advertise-client-urls="+etcdURL,
		"--listen-peer-urls="+peerURL,
		"--initial-advertise-peer-urls="+peerURL,
		"--initial-cluster=k8stest="+peerURL,
		"--unsafe-no-fsync",
		"--log-level=warn",
	)
	apiserver := c.spawn(assets, "kube-apiserver",
		"--etcd-servers="+etcdURL,
		"--bind-address=127.0.0.1",
		"--advertise-address=127.0.0.1",
		"--secure-port="+strconv.Itoa(ports[2]),
		"--cert-dir="+dir,
		"--tls-cert-file="+pki.serverCert,
		"--tls-private-key-file="+pki.serverKey,
		"--client-ca-file="+pki.caCert,
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file="+pki.saKey,
		"--service-account-signing-key-file="+pki.saKey,
		"--service-cluster-ip-range=10.96.0.0/16",
		"--authorization-mode=RBAC",
		// Privileged pods are allowed by the cluster, so PodSecurity is what
		// rejects them, as in kind and most real clusters.
		"--allow-privileged=true",
		"--enable-priority-and-fairness=false",
		"--profiling=false",
	)
	for _, p := range []*process{etcd, apiserver} {
		if err := p.start(); err != nil {
			return nil, err
		}
	}
	if err := c.waitFor(ctx, apiserver, "API server /readyz", c.apiReady); err != nil {
		return nil, err
	}
	c.log.Debug("api server ready", "elapsed", time.Since(start))

	kubeconfig := "--kubeconfig=" + c.Kubeconfig
	cm := c.spawn(assets, "kube-controller-manager", kubeconfig,
		"--leader-elect=false",
		"--secure-port=0",
		"--service-account-private-key-file="+pki.saKey,
		"--root-ca-file="+pki.caCert,
		"--cluster-name=k8stest",
		"--profiling=false",
	)
	scheduler := c.spawn(assets, "kube-scheduler", kubeconfig,
		"--leader-elect=false",
		"--secure-port=0",
		"--profiling=false",
	)
	kwok := c.spawn(assets, "kwok", kubeconfig,
		"--config="+filepath.Join(assets, "kwok-stages.yaml"),
		"--manage-all-nodes=true",
		"--node-ip=127.0.0.1",
	)
	for _, p := range []*process{cm, scheduler, kwok} {
		if err := p.start(); err != nil {
			return nil, err
		}
	}
	if err := c.createNode(ctx); err != nil {
		return nil, err
	}
	if err := c.waitFor(ctx, kwok, "node "+NodeName+" Ready and untainted", c.nodeReady); err != nil {
		return nil, err
	}
	if err := c.waitFor(ctx, cm, "ServiceAccount default/default", saReady(c.client, metav1.NamespaceDefault)); err != nil {
		return nil, err
	}
	c.log.Info("control plane ready", "kubeconfig", c.Kubeconfig, "elapsed", time.Since(start))
	return c, nil
}

// RESTConfig returns a copy of the cluster-admin client configuration.
func (c *ControlPlane) RESTConfig() *rest.Config { return rest.CopyConfig(c.rest) }

// Client returns a cluster-admin clientset.
func (c *ControlPlane) Client() kubernetes.Interface { return c.client }

// Stop kills every component's process group and removes Dir. It is safe to
// call more than once. It reports components that had exited on their own
// before Stop.
func (c *ControlPlane) Stop() error {
	c.stopOnce.Do(func() {
		var errs []error
		var wg sync.WaitGroup
		errCh := make(chan error, len(c.procs))
		for _, p := range c.procs {
			wg.Go(func() { errCh <- p.stop() })
		}
		wg.Wait()
		close(errCh)
		for err := range errCh {
			errs = append(errs, err)
		}
		if err := os.RemoveAll(c.Dir); err != nil {
			errs = append(errs, fmt.Errorf("remove control plane dir: %w", err))
		}
		c.stopErr = errors.Join(errs...)
	})
	return c.stopErr
}

func (c *ControlPlane) spawn(assets, name string, args ...string) *process {
	p := newProcess(name, filepath.Join(assets, name), filepath.Join(c.Dir, name+".log"), args)
	p.cmd.Env = componentEnv(c.Dir)
	c.procs = append(c.procs, p)
	return p
}

// componentEnv is the test's environment without the variables the
// components would read instead of their flags (ETCD_*, KUBECONFIG), and
// with HOME in dir so no per-user configuration (~/.kwok) applies.
func componentEnv(dir string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "ETCD_") || strings.HasPrefix(kv, "KUBECONFIG=") || strings.HasPrefix(kv, "HOME=") {
			continue
		}
		env = append(env, kv)
	}
	return append(env, "HOME="+dir)
}

// waitFor polls cond every 100ms until it holds. It fails early with the
// log tail of any component that exits, and on timeout with the log tail of
// p, the component responsible for cond.
func (c *ControlPlane) waitFor(ctx context.Context, p *process, what string, cond func(context.Context) (bool, error)) error {
	var last error
	err := wait.PollUntilContextCancel(ctx, 100*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		for _, p := range c.procs {
			if err := p.exited(); err != nil {
				return false, err
			}
		}
		ok, err := cond(ctx)
		if err != nil {
			last = err
		}
		return ok, nil
	})
	if err == nil {
		return nil
	}
	var exitErr *exitError
	if errors.As(err, &exitErr) {
		return fmt.Errorf("%w: waiting for %s: %w", ErrStart, what, err)
	}
	if last != nil {
		err = fmt.Errorf("%w (last error: %w)", err, last)
	}
	return fmt.Errorf("%w: waiting for %s: %w\n%s", ErrStart, what, err, p.logTail())
}

func (c *ControlPlane) apiReady(ctx context.Context) (bool, error) {
	_, err := c.client.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
	return err == nil, err
}

func (c *ControlPlane) createNode(ctx context.Context) error {
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{
		Name: NodeName,
		Labels: map[string]string{
			"kubernetes.io/hostname": NodeName,
			"kubernetes.io/os":       "linux",
			"kubernetes.io/arch":     "amd64",
			"type":                   "kwok",
		},
		Annotations: map[string]string{"kwok.x-k8s.io/node": "fake"},
	}}
	if _, err := c.client.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("%w: create node %s: %w", ErrStart, NodeName, err)
	}
	return nil
}

// nodeReady holds once kwok reports the node Ready and the node lifecycle
// controller has lifted its not-ready taints, so pods schedule at once.
func (c *ControlPlane) nodeReady(ctx context.Context) (bool, error) {
	node, err := c.client.CoreV1().Nodes().Get(ctx, NodeName, metav1.GetOptions{})
	if err != nil {
		return false, err
	}
	for _, t := range node.Spec.Taints {
		if t.Effect == corev1.TaintEffectNoSchedule || t.Effect == corev1.TaintEffectNoExecute {
			return false, nil
		}
	}
	for _, cond := range node.Status.Conditions {
		if cond.Type == corev1.NodeReady {
			return cond.Status == corev1.ConditionTrue, nil
		}
	}
	return false, nil
}

func saReady(client kubernetes.Interface, ns string) func(context.Context) (bool, error) {
	return func(ctx context.Context) (bool, error) {
		_, err := client.CoreV1().ServiceAccounts(ns).Get(ctx, "default", metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return false, nil
		}
		return err == nil, err
	}
}

// freePorts reserves n distinct free loopback ports. They are released
// before the components bind them, so another process could take one in
// between; the kernel hands out ephemeral ports in a way that makes this
// rare.
func freePorts(n int) ([]int, error) {
	ports := make([]int, 0, n)
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("%w: find a free loopback port: %w", ErrStart, err)
		}
		defer func() { _ = l.Close() }()
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}
