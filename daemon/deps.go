package daemon

import (
	"context"
	"io"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/devctl/devctl/envs"
	"github.com/devctl/devctl/internal/api"
	"github.com/devctl/devctl/internal/build"
	"github.com/devctl/devctl/internal/git"
	"github.com/devctl/devctl/internal/goldenpath"
	"github.com/devctl/devctl/internal/helm"
)

// The daemon's steps reach the outside world only through these small
// interfaces, so runs are tested with fakes; the real libraries (envs,
// internal/build, internal/helm, internal/kube) are bound in bind.go.
// Rendering and policy checks are pure and run for real in tests too.

// Environments makes, finds and removes clusters (the envs library).
type Environments interface {
	Up(ctx context.Context, name string, spec api.EnvSpec) (*envs.Env, error)
	Get(ctx context.Context, name, provider string) (*envs.Env, error)
	List(ctx context.Context) ([]envs.Env, error)
	Delete(ctx context.Context, name, provider string) (envs.Deleted, error)
	LoadImages(ctx context.Context, name, provider string, archive func() (io.ReadCloser, error)) error
	// PullsFromRegistry says whether the nodes pull from the daemon's registry.
	PullsFromRegistry(ctx context.Context, name, provider string) (bool, error)
	// Prepull has the nodes pull refs now (where the provider can).
	Prepull(ctx context.Context, name, provider string, refs []string) error
	CheckProvider(name string) error
}

// Images builds images and exports them for delivery (Docker Engine SDK).
type Images interface {
	Ping(ctx context.Context) error
	Build(ctx context.Context, s build.Spec) (*build.Result, error)
	Save(ctx context.Context, refs ...string) (io.ReadCloser, error)
}

// Releases installs rendered releases (Helm SDK).
type Releases interface {
	Deploy(ctx context.Context, kubeconfig string, r *goldenpath.Release) (*helm.Result, error)
}

// Cluster is what the daemon does inside an environment's cluster with
// client-go: readiness, port-forwards, logs, diagnostics, admission.
type Cluster interface {
	WaitReady(ctx context.Context, kubeconfig, namespace, release string) error
	Forward(ctx context.Context, kubeconfig, namespace, release string, remotePort, localPort int) (Forward, error)
	Logs(ctx context.Context, kubeconfig, namespace, release string, follow bool, tail int, w io.Writer) error
	Diagnose(ctx context.Context, kubeconfig, namespace string) string
	// Resources lists the Deployments, Pods and Services of the namespaces
	// with readiness and the reason for what is not ready.
	Resources(ctx context.Context, kubeconfig string, namespaces []string) ([]api.Resource, error)
	// InstallAdmission labels the namespace for Pod Security admission and
	// applies the admission policies (objs, from policy.Engine); it does
	// nothing when the same objects were applied before.
	InstallAdmission(ctx context.Context, kubeconfig, namespace string, objs []runtime.Object) error
	// AwaitAdmitted waits until the API server enforces what
	// InstallAdmission last applied: it admits objs, the objects the
	// waivers exempt.
	AwaitAdmitted(ctx context.Context, kubeconfig, namespace string, objs []*unstructured.Unstructured) error
	// Reachable says whether the API server answers.
	Reachable(ctx context.Context, kubeconfig string) error
	// ApplyConfigMap creates or replaces a ConfigMap.
	ApplyConfigMap(ctx context.Context, kubeconfig string, cm *corev1.ConfigMap) error
	// Forget drops what is cached for a kubeconfig (its cluster is gone).
	Forget(kubeconfig string)
}

// Forward is a held port-forward; it follows pod restarts until closed.
type Forward interface {
	LocalPort() int
	Close()
}

// Deps are the daemon's collaborators.
type Deps struct {
	Environments Environments
	Images       Images
	Releases     Releases
	Cluster      Cluster
	// Platform makes and checks the platform stand-ins (mocks.go); nil
	// when devctl cannot install them.
	Platform Platform
	// Checker checks rendered releases against policy.
	Checker *goldenpath.Checker
	// Git describes the repository of a folder (git.Describe).
	Git func(ctx context.Context, dir string) (git.Info, error)
	// NodeImage is the node image used when neither the request nor
	// devctl.yaml names one (what install.sh recorded).
	NodeImage func() string
	// GoImages builds Go services without Docker; nil builds them with
	// their Dockerfile.
	GoImages GoImages
	// Registry delivers Go-built images by push to clusters made to pull
	// from it; nil loads them.
	Registry Registry
	// Watch starts a source watcher (watch.New); nil watches nothing.
	Watch Watcher
}
