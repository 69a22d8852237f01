package daemon

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/devctl/devctl/envs"
	"github.com/devctl/devctl/internal/api"
	"github.com/devctl/devctl/internal/build"
	"github.com/devctl/devctl/internal/build/goimage"
	"github.com/devctl/devctl/internal/git"
	"github.com/devctl/devctl/internal/goldenpath"
	"github.com/devctl/devctl/internal/helm"
	"github.com/devctl/devctl/internal/kube"
	"github.com/devctl/devctl/internal/paths"
	"github.com/devctl/devctl/internal/policy"
	"github.com/devctl/devctl/internal/watch"
)

// RealDeps binds the daemon to the real libraries: envs, the Docker Engine
// SDK builder, the Helm SDK, the policy engine and client-go. The Docker
// engine is connected lazily, so a daemon starts (and lists environments)
// even while Docker is down. The returned func releases what they hold.
func RealDeps(log *slog.Logger) (Deps, func()) {
	img := &imagesAdapter{log: log}
	clients := &kube.Clients{}
	// kind does not wait for the node to be Ready: the image push, the
	// chart's install and the policy check need only the API server, and
	// the ready step waits for the pods, which wait for the node. A cold up
	// overlaps the CNI's start with its own work instead of waiting first.
	envOpts := []envs.Option{envs.WithLogger(log), envs.WithStateDir(paths.StateDir()), envs.WithReadyTimeout(0)}
	closeAll := img.close
	var reg Registry
	if lr, err := newLocalRegistry(context.Background(), paths.StateDir(), log); err != nil {
		log.Warn("no image registry: images are loaded into clusters", "err", err)
	} else {
		reg = lr
		envOpts = append(envOpts, envs.WithRegistryHostsDir(lr.hostsDir))
		closeAll = func() { img.close(); lr.close() }
	}
	deps := Deps{
		Registry:     reg,
		Environments: envs.New(envOpts...),
		Images:       img,
		Releases:     releasesAdapter{log: log},
		Cluster:      &clusterAdapter{log: log, clients: clients},
		Platform:     &platformAdapter{log: log, clients: clients, images: img},
		Checker:      goldenpath.NewChecker(log),
		Git:          git.Describe,
		NodeImage:    InstalledNodeImage,
		GoImages:     goimage.New(goimage.WithLogger(log)),
		Watch:        watch.New,
	}
	return deps, closeAll
}

// InstalledNodeImage is the node image install.sh recorded (pulled, or built
// locally on an air-gapped machine), or "" for the provider's default.
func InstalledNodeImage() string {
	dir := os.Getenv("XDG_CONFIG_HOME")
	if dir == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return ""
		}
		dir = filepath.Join(home, ".config")
	}
	b, err := os.ReadFile(filepath.Join(dir, "devctl", "node-image"))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// imagesAdapter connects to the Docker engine on first use and again after
// a failure, so a daemon outlives a Docker restart.
type imagesAdapter struct {
	log *slog.Logger
	mu  sync.Mutex
	b   *build.Builder
}

func (a *imagesAdapter) builder(ctx context.Context) (*build.Builder, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.b != nil {
		return a.b, nil
	}
	b, err := build.New(ctx, build.WithLogger(a.log))
	if err != nil {
		return nil, err
	}
	a.b = b
	return b, nil
}

// reset drops the connection after the engine stopped answering.
func (a *imagesAdapter) reset(err error) {
	if !errors.Is(err, build.ErrDockerUnavailable) {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.b != nil {
		_ = a.b.Close()
		a.b = nil
	}
}

func (a *imagesAdapter) close() {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.b != nil {
		_ = a.b.Close()
	}
}

func (a *imagesAdapter) Ping(ctx context.Context) error {
	b, err := a.builder(ctx)
	if err != nil {
		return err
	}
	err = b.Ping(ctx)
	a.reset(err)
	return err
}

func (a *imagesAdapter) Build(ctx context.Context, s build.Spec) (*build.Result, error) {
	b, err := a.builder(ctx)
	if err != nil {
		return nil, err
	}
	res, err := b.Build(ctx, s)
	a.reset(err)
	return res, err
}

func (a *imagesAdapter) Save(ctx context.Context, refs ...string) (io.ReadCloser, error) {
	b, err := a.builder(ctx)
	if err != nil {
		return nil, err
	}
	rc, err := b.SaveImages(ctx, refs...)
	a.reset(err)
	return rc, err
}

type releasesAdapter struct{ log *slog.Logger }

func (a releasesAdapter) Deploy(ctx context.Context, kubeconfig string, r *goldenpath.Release) (*helm.Result, error) {
	cfg, err := helm.NewConfig(kubeconfig, r.Namespace, helm.WithLogger(a.log))
	if err != nil {
		return nil, err
	}
	d := helm.NewDeploy(cfg)
	d.ReleaseName = r.Name
	d.Labels = map[string]string{"devctl.dev/managed": "true"}
	return d.Run(ctx, r.Chart, r.Values)
}

type clusterAdapter struct {
	log     *slog.Logger
	clients *kube.Clients

	mu sync.Mutex
	// admitted records the digest of the admission policies this daemon
	// installed in each namespace, per client (a client is one kubeconfig
	// content: a cluster).
	admitted digests
	// settled records the digest whose bindings the API server was seen
	// to enforce (AwaitAdmitted).
	settled digests
}

func (a *clusterAdapter) Reachable(ctx context.Context, kubeconfig string) error {
	c, err := a.clients.For(kubeconfig)
	if err != nil {
		return err
	}
	return c.Ready(ctx)
}

func (a *clusterAdapter) WaitReady(ctx context.Context, kubeconfig, ns, release string) error {
	c, err := a.clients.For(kubeconfig)
	if err != nil {
		return err
	}
	return c.WaitRollout(ctx, ns, release)
}

func (a *clusterAdapter) Forward(ctx context.Context, kubeconfig, ns, release string, remote, local int) (Forward, error) {
	c, err := a.clients.For(kubeconfig)
	if err != nil {
		return nil, err
	}
	return c.StartForward(ctx, ns, release, remote, local, a.log)
}

func (a *clusterAdapter) Logs(ctx context.Context, kubeconfig, ns, release string, follow bool, tail int, w io.Writer) error {
	c, err := a.clients.For(kubeconfig)
	if err != nil {
		return err
	}
	return c.Logs(ctx, ns, release, follow, tail, w)
}

func (a *clusterAdapter) Resources(ctx context.Context, kubeconfig string, namespaces []string) ([]api.Resource, error) {
	c, err := a.clients.For(kubeconfig)
	if err != nil {
		return nil, err
	}
	return c.Resources(ctx, namespaces...)
}

func (a *clusterAdapter) Diagnose(ctx context.Context, kubeconfig, ns string) string {
	c, err := a.clients.For(kubeconfig)
	if err != nil {
		return err.Error()
	}
	return c.Diagnose(ctx, ns)
}

// InstallAdmission applies the built-in rules that ValidatingAdmissionPolicy
// can express, bound to the service's namespace, and labels the namespace
// for Pod Security admission, so objects applied by hand are held to the
// same rules as `devctl check`.
func (a *clusterAdapter) InstallAdmission(ctx context.Context, kubeconfig, ns string, objs []runtime.Object) error {
	c, err := a.clients.For(kubeconfig)
	if err != nil {
		return err
	}
	// The policies change with the waivers in force: apply again when
	// they differ from what this daemon applied.
	js, err := json.Marshal(objs)
	if err != nil {
		return err
	}
	sum := sha256.Sum256(js)
	digest := hex.EncodeToString(sum[:])
	a.mu.Lock()
	done := a.admitted[c][ns] == digest
	a.mu.Unlock()
	if done {
		return nil
	}
	if err := c.EnsureNamespace(ctx, ns, policy.PodSecurityLabels()); err != nil {
		return fmt.Errorf("label namespace %s for Pod Security admission: %w", ns, err)
	}
	if err := c.ApplyAdmission(ctx, objs); err != nil {
		return err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.admitted.set(c, ns, digest)
	return nil
}

// admissionSettle bounds how long AwaitAdmitted waits for the API server to
// enforce bindings just written; it does so through its informers, within
// moments.
var admissionSettle = 15 * time.Second

// AwaitAdmitted waits, once per change InstallAdmission made, until the API
// server admits objs (the objects a waiver exempts): before that, a deploy
// could be denied by the binding the waiver replaced.
func (a *clusterAdapter) AwaitAdmitted(ctx context.Context, kubeconfig, ns string, objs []*unstructured.Unstructured) error {
	if len(objs) == 0 {
		return nil
	}
	c, err := a.clients.For(kubeconfig)
	if err != nil {
		return err
	}
	a.mu.Lock()
	digest := a.admitted[c][ns]
	settled := a.settled[c][ns] == digest
	a.mu.Unlock()
	if settled {
		return nil
	}
	start := time.Now()
	probes, err := c.AwaitAdmitted(ctx, ns, objs, admissionSettle)
	if err != nil {
		return err
	}
	a.log.Debug("admission settled", "namespace", ns, "objects", len(objs), "probes", probes, "took", time.Since(start))
	a.mu.Lock()
	defer a.mu.Unlock()
	a.settled.set(c, ns, digest)
	return nil
}

// digests holds a digest per namespace per client (one kubeconfig content:
// one cluster).
type digests map[*kube.Client]map[string]string

func (d *digests) set(c *kube.Client, ns, digest string) {
	if *d == nil {
		*d = digests{}
	}
	if (*d)[c] == nil {
		(*d)[c] = map[string]string{}
	}
	(*d)[c][ns] = digest
}

func (a *clusterAdapter) Forget(kubeconfig string) { a.clients.Forget(kubeconfig) }

func (a *clusterAdapter) ApplyConfigMap(ctx context.Context, kubeconfig string, cm *corev1.ConfigMap) error {
	c, err := a.clients.For(kubeconfig)
	if err != nil {
		return err
	}
	cms := c.Set.CoreV1().ConfigMaps(cm.Namespace)
	cur, err := cms.Get(ctx, cm.Name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		_, err = cms.Create(ctx, cm, metav1.CreateOptions{})
	case err == nil:
		cm.ResourceVersion = cur.ResourceVersion
		_, err = cms.Update(ctx, cm, metav1.UpdateOptions{})
	}
	return err
}
