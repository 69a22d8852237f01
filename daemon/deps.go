package daemon

import (
	"context"
	"io"
	"time"

	"github.com/devctl/devctl/internal/api"
	"github.com/devctl/devctl/internal/config"
)

// The daemon's controllers reach the outside world only through these small
// interfaces, so the pipeline is tested with fakes and the real libraries
// (envs, internal/build, internal/helm, internal/policy, internal/config)
// are bound in one place (bind.go).

// Project is a service repository resolved from devctl.yaml (or defaults).
type Project struct {
	Name, Team, Owner, CostCenter string
	Dir                           string
	NodeImage                     string
	Services                      []ProjectService
	// Notes are the choices made for a project without devctl.yaml.
	Notes []string
	// Config is the parsed devctl.yaml (or detected defaults).
	Config *config.Config
}

// ProjectService is one service to build and deploy.
type ProjectService struct {
	Name       string
	Context    string // absolute
	Dockerfile string // relative to Context
	GoPackage  string // optional static Go binary compiled into the context first
	GoOutput   string
	Port       int
	Values     map[string]any
}

// Projects loads the project an up request names.
type Projects interface {
	Load(ctx context.Context, req api.UpRequest) (*Project, error)
}

// EnvSpec says which environment to make.
type EnvSpec struct {
	Name, Project, Repo, Branch, NodeImage string
	Labels                                 map[string]string
}

// EnvRecord is an environment as a provider knows it.
type EnvRecord struct {
	Name, Provider, Project, Repo, Branch, Kubeconfig string
	Created                                           time.Time
	// New is true when this call created the cluster.
	New bool
}

// Environments makes and finds environments (the envs library).
type Environments interface {
	Up(ctx context.Context, s EnvSpec, progress func(string)) (*EnvRecord, error)
	List(ctx context.Context) ([]EnvRecord, error)
	Delete(ctx context.Context, name string) error
	LoadImages(ctx context.Context, name string, archive func() (io.ReadCloser, error)) error
}

// ImageSpec says what to build.
type ImageSpec struct {
	Repository string
	Service    ProjectService
	Labels     map[string]string
	Output     io.Writer
}

// ImageResult is a built (or already present) image.
type ImageResult struct {
	Ref    string
	Cached bool
}

// Images builds images and exports them for delivery (Docker Engine SDK).
type Images interface {
	Build(ctx context.Context, s ImageSpec) (*ImageResult, error)
	Save(ctx context.Context, refs ...string) (io.ReadCloser, error)
}

// Release is one service's golden-path release.
type Release struct {
	Name, Namespace string
	Values          map[string]any
}

// DeployResult says what a deploy did.
type DeployResult struct {
	Revision int
	Changed  bool
}

// Charts renders and installs the golden-path chart (Helm SDK).
type Charts interface {
	Render(ctx context.Context, r Release) (string, error)
	Deploy(ctx context.Context, kubeconfig string, r Release) (*DeployResult, error)
}

// Policies checks rendered manifests and installs admission policies.
type Policies interface {
	Check(ctx context.Context, p *Project, manifest string) ([]api.Finding, error)
	InstallAdmission(ctx context.Context, kubeconfig, namespace string) error
}

// Cluster is what the daemon does inside an environment's cluster with
// client-go: readiness, port-forwards, logs, diagnostics.
type Cluster interface {
	WaitReady(ctx context.Context, kubeconfig, namespace, release string) error
	Forward(ctx context.Context, kubeconfig, namespace, release string, remotePort, localPort int) (Forward, error)
	Logs(ctx context.Context, kubeconfig, namespace, release string, follow bool, tail int, w io.Writer) error
	Diagnose(ctx context.Context, kubeconfig, namespace string) string
}

// Forward is a held port-forward; it follows pod restarts until closed.
type Forward interface {
	LocalPort() int
	Close()
}

// Deps are the daemon's collaborators.
type Deps struct {
	Projects     Projects
	Environments Environments
	Images       Images
	Charts       Charts
	Policies     Policies
	Cluster      Cluster
}
