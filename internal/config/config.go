// Package config loads, validates, detects and writes devctl.yaml, the file
// that tells devctl how to build, deploy and check a repository's services.
//
// Parse reports every problem it finds, each as an *Error carrying the
// file:line:col of the offending YAML node, joined with errors.Join.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"

	"go.yaml.in/yaml/v3"
)

// FileName is the name of the project file devctl looks for.
const FileName = "devctl.yaml"

// Values of the fixed header fields.
const (
	APIVersion = "devctl.dev/v1alpha1"
	Kind       = "Project"
)

// Defaults applied by Parse and used by Detect.
const (
	DefaultProvider   = ProviderKind
	DefaultDockerfile = "Dockerfile"
	DefaultPort       = 8080
	DefaultFailOn     = "high"
	DefaultContext    = "."
	DefaultGoPackage  = "."
	// DefaultTeam marks a project whose owning team has not been set yet.
	DefaultTeam = "unassigned"
)

// Cluster providers.
const (
	ProviderKind     = "kind"
	ProviderVCluster = "vcluster"
)

// Severities accepted by policy.failOn, lowest first.
var Severities = []string{"info", "low", "medium", "high", "critical"}

// ErrNotFound is returned by Find and Load when there is no devctl.yaml.
var ErrNotFound = errors.New(FileName + " not found; run `devctl init` to write one")

// Config is the content of devctl.yaml.
type Config struct {
	APIVersion string `yaml:"apiVersion"`
	Kind       string `yaml:"kind"`
	// Name is the project name, a DNS-1123 label.
	Name string `yaml:"name"`
	// Team owns the project; it labels everything devctl creates for cost reports.
	Team       string   `yaml:"team"`
	Owner      string   `yaml:"owner,omitempty"`
	CostCenter string   `yaml:"costCenter,omitempty"`
	Cluster    Cluster  `yaml:"cluster,omitempty"`
	Policy     Policy   `yaml:"policy,omitempty"`
	Manifests  []string `yaml:"manifests,omitempty"`
	// Dependencies are the platform dependencies every service uses
	// (secrets, postgres, s3, metrics); devctl up installs stand-ins.
	Dependencies []string `yaml:"dependencies,omitempty"`
	// Mocks configures the stand-ins.
	Mocks Mocks `yaml:"mocks,omitempty"`
	// Services holds at least one service.
	Services []Service `yaml:"services"`

	// Dir is the absolute directory of the file; relative paths start here.
	Dir string `yaml:"-"`
	// Path is the absolute path of the file.
	Path string `yaml:"-"`

	file string              // name used in error messages
	pos  map[string]position // positions of decoded nodes by field path
}

// Cluster selects where environments run.
type Cluster struct {
	// Provider is "kind" (default) or "vcluster".
	Provider string `yaml:"provider,omitempty"`
	// NodeImage overrides the kind node image; --node-image and
	// DEVCTL_NODE_IMAGE take precedence.
	NodeImage string `yaml:"nodeImage,omitempty"`
	// HostContext is the kube context of the host cluster (vcluster only).
	HostContext string `yaml:"hostContext,omitempty"`
}

// Policy configures the policy gate.
type Policy struct {
	// Rules is a folder of organisation rules (ValidatingAdmissionPolicy YAML, Rego).
	Rules             string   `yaml:"rules,omitempty"`
	Waivers           string   `yaml:"waivers,omitempty"`
	AllowedRegistries []string `yaml:"allowedRegistries,omitempty"`
	// FailOn is the lowest severity that fails a check, one of Severities.
	FailOn string `yaml:"failOn,omitempty"`
}

// Service is one image devctl builds and deploys: with the golden-path
// chart, or with one escape hatch (Chart, Kustomize or Manifests).
type Service struct {
	Name string `yaml:"name"`
	// Context is the build context, relative to Config.Dir.
	Context string `yaml:"context"`
	// Dockerfile is relative to Context.
	Dockerfile string `yaml:"dockerfile"`
	// Go, when set, compiles a static Go binary into the context before the image build.
	Go   *GoBuild `yaml:"go,omitempty"`
	Port int      `yaml:"port"`
	// Values overrides golden-path chart values, or the values of Chart.
	Values map[string]any `yaml:"values,omitempty"`
	// Chart is a local Helm chart folder, relative to devctl.yaml, deployed
	// instead of the golden-path chart (an escape hatch).
	Chart string `yaml:"chart,omitempty"`
	// ValuesFiles are values files of Chart, relative to devctl.yaml,
	// merged in order over the chart's values.yaml and under Values.
	ValuesFiles []string `yaml:"valuesFiles,omitempty"`
	// Kustomize is a Kustomize folder (an overlay), relative to
	// devctl.yaml, deployed instead of the golden-path chart.
	Kustomize string `yaml:"kustomize,omitempty"`
	// Manifests are manifest files or folders, relative to devctl.yaml,
	// deployed instead of the golden-path chart.
	Manifests []string `yaml:"manifests,omitempty"`
	// Image is the image name the escape hatch's containers use for this
	// service (any tag); devctl replaces it with the image it builds.
	// Default: the service name.
	Image string `yaml:"image,omitempty"`
	Watch Watch  `yaml:"watch,omitempty"`
	// Dependencies are platform dependencies of this service, beside the
	// project's.
	Dependencies []string `yaml:"dependencies,omitempty"`
	// Live, when set (`live: {}` at least), runs the service under
	// devctl's agent so saved changes reach the running container without
	// a new image: a Go service's freshly compiled binary, and the files
	// under Sync.
	Live *Live `yaml:"live,omitempty"`
}

// Deployers: how a service is deployed.
const (
	DeployGoldenPath = "golden-path"
	DeployChart      = "chart"
	DeployKustomize  = "kustomize"
	DeployManifests  = "manifests"
)

// Deployer says how the service is deployed: DeployGoldenPath unless one
// of Chart, Kustomize or Manifests is set.
func (s *Service) Deployer() string {
	switch {
	case s.Chart != "":
		return DeployChart
	case s.Kustomize != "":
		return DeployKustomize
	case len(s.Manifests) > 0:
		return DeployManifests
	}
	return DeployGoldenPath
}

// ImageName is the image name an escape hatch's manifests use for the
// service: Image, else the service name.
func (s *Service) ImageName() string {
	if s.Image != "" {
		return s.Image
	}
	return s.Name
}

// Live configures live update of a service.
type Live struct {
	// Sync maps folders of the context to folders in the container. The
	// image must hold the container folders (they are seeded from it).
	Sync []LiveSync `yaml:"sync,omitempty"`
	// Restart restarts the app after synced files changed; a new Go binary
	// always restarts it.
	Restart bool `yaml:"restart,omitempty"`
	// Run is a command the agent runs in the container after the files are
	// written (no shell: argv), before any restart.
	Run []string `yaml:"run,omitempty"`
	// Entrypoint is the command the agent supervises: the image's
	// ENTRYPOINT and CMD. Go services built by devctl need none.
	Entrypoint []string `yaml:"entrypoint,omitempty"`
}

// LiveSync is a folder synced into the container.
type LiveSync struct {
	// Path is relative to the service's context.
	Path string `yaml:"path"`
	// Dest is the absolute folder in the container.
	Dest string `yaml:"dest"`
}

// GoBuild compiles Package (relative to the service context) with
// CGO_ENABLED=0 to Output (relative to the service context).
type GoBuild struct {
	Package string `yaml:"package"`
	Output  string `yaml:"output"`
}

// Watch configures hot rebuilds.
type Watch struct {
	// Ignore holds .dockerignore-style patterns relative to the context.
	Ignore []string `yaml:"ignore,omitempty"`
}

// Load reads and parses the file at path. A missing file is ErrNotFound.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("load config %q: %w", path, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("load config %q: %w", path, err)
	}
	return Parse(path, data)
}

// Parse decodes data, applies defaults and validates the result. filename
// names the file in errors and sets Dir and Path. All problems are reported
// at once: the error is an errors.Join of *Error values.
func Parse(filename string, data []byte) (*Config, error) {
	c := &Config{file: filename, pos: map[string]position{}}
	if filename == "" {
		c.file = FileName
		filename = FileName
	}
	if abs, err := filepath.Abs(filename); err == nil {
		c.Path, c.Dir = abs, filepath.Dir(abs)
	}
	if err := c.decode(data); err != nil {
		return nil, err
	}
	c.setDefaults()
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return c, nil
}

func (c *Config) setDefaults() {
	if c.Cluster.Provider == "" {
		c.Cluster.Provider = DefaultProvider
	}
	if c.Policy.FailOn == "" {
		c.Policy.FailOn = DefaultFailOn
	}
	for i := range c.Services {
		s := &c.Services[i]
		if s.Context == "" {
			s.Context = DefaultContext
		}
		if s.Dockerfile == "" {
			s.Dockerfile = DefaultDockerfile
		}
		if s.Port == 0 {
			s.Port = DefaultPort
		}
		if s.Go != nil {
			if s.Go.Package == "" {
				s.Go.Package = DefaultGoPackage
			}
			if s.Go.Output == "" && s.Name != "" {
				s.Go.Output = path.Join("bin", s.Name)
			}
		}
	}
}

// Find returns the path of devctl.yaml in dir or the nearest parent, stopping
// at the git root (a directory holding .git) or the filesystem root.
func Find(dir string) (string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", fmt.Errorf("find %s: %w", FileName, err)
	}
	d := abs
	for {
		p := filepath.Join(d, FileName)
		fi, err := os.Stat(p)
		switch {
		case err == nil && fi.Mode().IsRegular():
			return p, nil
		case err != nil && !errors.Is(err, fs.ErrNotExist):
			return "", fmt.Errorf("find %s: %w", FileName, err)
		}
		if _, err := os.Stat(filepath.Join(d, ".git")); err == nil {
			break
		}
		parent := filepath.Dir(d)
		if parent == d {
			break
		}
		d = parent
	}
	return "", fmt.Errorf("searched %s up to %s: %w", abs, d, ErrNotFound)
}

const header = `# devctl.yaml: how devctl builds, deploys and checks this repository.
# devctl up builds each service, deploys it (with the golden-path chart, or the
# service's own chart, Kustomize overlay or manifests) into an environment for
# the current git branch, and checks it against policy.
`

// Marshal renders c as devctl.yaml with a header comment. The output
// round-trips through Parse.
func Marshal(c *Config) ([]byte, error) {
	var n yaml.Node
	if err := n.Encode(c); err != nil {
		return nil, fmt.Errorf("marshal config: %w", err)
	}
	if c.Team == DefaultTeam {
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == "team" {
				n.Content[i+1].LineComment = "set the owning team: it labels every resource for cost reports"
			}
		}
	}
	var b bytes.Buffer
	b.WriteString(header)
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(&n); err != nil {
		return nil, fmt.Errorf("marshal config: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("marshal config: %w", err)
	}
	return b.Bytes(), nil
}

// ScratchDockerfile is the Dockerfile `devctl init` writes for a Go service:
// the static binary (a path relative to the context) in an empty image,
// running as a non-root user.
func ScratchDockerfile(binary string, port int) []byte {
	binary = filepath.ToSlash(binary)
	entry := "/" + path.Base(binary)
	return fmt.Appendf(nil, `# Written by devctl init: the static Go binary devctl compiles (CGO_ENABLED=0)
# in an empty image. Add CA certificates or time zone data here if it needs them.
FROM scratch
COPY [%q, %q]
USER 65532:65532
EXPOSE %d
ENTRYPOINT [%q]
`, binary, entry, port, entry)
}
