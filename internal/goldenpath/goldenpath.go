// Package goldenpath is the one place that turns a project (devctl.yaml, or
// defaults detected in a folder) into what runs: the golden-path chart's
// values for each service, the rendered releases, and the policy check of
// everything rendered. `devctl check` and the daemon's `up` both call it, so
// they cannot disagree.
//
//	p, err := goldenpath.Load(dir, "")
//	rels, err := goldenpath.Render(ctx, p, goldenpath.Target{Env: "hello-main", Branch: "main"}, images)
//	rep, err := checker.Check(ctx, p, rels)
package goldenpath

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"

	"helm.sh/helm/v3/pkg/chart"

	"github.com/devctl/devctl/charts"
	"github.com/devctl/devctl/internal/config"
	"github.com/devctl/devctl/internal/helm"
	"github.com/devctl/devctl/internal/policy"
)

// Registry is the registry host devctl tags the images it builds with.
const Registry = "devctl.local"

// Project is a service repository: its devctl.yaml, or the defaults
// detected in a folder without one.
type Project struct {
	*config.Config
	// Detected is true when there is no devctl.yaml and the configuration
	// was detected; Notes then say what was chosen and why.
	Detected bool
	Notes    []string
}

// Load finds and parses the project of dir: file when given, else the
// devctl.yaml in dir or its parents (up to the git root), else defaults
// detected in dir (a Dockerfile or a Go main package).
func Load(dir, file string) (*Project, error) {
	if file != "" {
		cfg, err := config.Load(file)
		if err != nil {
			return nil, err
		}
		return &Project{Config: cfg}, nil
	}
	path, err := config.Find(dir)
	switch {
	case err == nil:
		cfg, err := config.Load(path)
		if err != nil {
			return nil, err
		}
		return &Project{Config: cfg}, nil
	case errors.Is(err, config.ErrNotFound):
		cfg, notes, derr := config.Detect(dir)
		if derr != nil {
			return nil, fmt.Errorf("no %s in %s and nothing to detect: %w", config.FileName, dir, derr)
		}
		return &Project{Config: cfg, Detected: true, Notes: notes}, nil
	default:
		return nil, err
	}
}

// ConfigPath is the path of the project's devctl.yaml, or "" when the
// configuration was detected.
func (p *Project) ConfigPath() string {
	if p.Detected {
		return ""
	}
	return p.Path
}

// Namespace is where the project's services run.
func (p *Project) Namespace() string { return p.Name }

// Service returns the named service, or nil.
func (p *Project) Service(name string) *config.Service {
	for i := range p.Services {
		if p.Services[i].Name == name {
			return &p.Services[i]
		}
	}
	return nil
}

// ServiceNames lists the services in devctl.yaml order.
func (p *Project) ServiceNames() []string {
	out := make([]string, len(p.Services))
	for i, s := range p.Services {
		out[i] = s.Name
	}
	return out
}

// ContextDir is the absolute build context of s.
func (p *Project) ContextDir(s *config.Service) string {
	return filepath.Join(p.Dir, s.Context)
}

// Labels are the ownership facts recorded with an environment.
func (p *Project) Labels() map[string]string {
	l := map[string]string{"team": p.Team}
	if p.Owner != "" {
		l["owner"] = p.Owner
	}
	if p.CostCenter != "" {
		l["costCenter"] = p.CostCenter
	}
	return l
}

// ImageRepository is the repository a service's image is tagged with.
func ImageRepository(project, service string) string {
	return Registry + "/" + project + "/" + service
}

// Target says where a project is deployed: the environment and branch.
type Target struct {
	Env    string
	Branch string
}

// Values are the golden-path chart values of service s with image: devctl's
// defaults, then the service's values from devctl.yaml, then the facts
// devctl owns — the image, services[].port (also as $PORT), the ownership
// labels, the branch and the environment — so that user values cannot
// change what cost attribution and the port-forward rely on
// (config.Validate rejects them in values with their line and column).
func Values(p *Project, s *config.Service, image string, t Target) map[string]any {
	repo, tag := splitRef(image)
	v := map[string]any{
		"env": map[string]any{"DEVCTL_BRANCH": t.Branch, "DEVCTL_ENV": t.Env},
		// An environment is for a person waiting on it: a new pod counts as
		// ready within a second of answering, not at the chart's next 5 s
		// probe (a value devctl.yaml can still change).
		"probes": map[string]any{"readiness": map[string]any{"periodSeconds": 1}},
	}
	merge(v, s.Values)
	// The golden path's contract: the app listens on $PORT. A list of
	// EnvVars (the chart's other form of env) is the user's to complete.
	if env, ok := v["env"].(map[string]any); ok {
		env["PORT"] = strconv.Itoa(s.Port)
	}
	// Which dependencies' env vars, ExternalSecret and ServiceMonitor the
	// chart renders is devctl.yaml's dependencies, not a value to override.
	if deps := p.ServiceDependencies(s); len(deps) > 0 {
		m := map[string]any{}
		for _, d := range config.Dependencies {
			m[d] = map[string]any{"enabled": slices.Contains(deps, d)}
		}
		merge(v, map[string]any{"dependencies": m})
	}
	merge(v, map[string]any{
		"image":       map[string]any{"repository": repo, "tag": tag},
		"service":     map[string]any{"port": s.Port},
		"team":        p.Team,
		"owner":       p.Owner,
		"costCenter":  p.CostCenter,
		"branch":      t.Branch,
		"environment": t.Env,
	})
	return v
}

// Release is one service rendered: with the golden-path chart, or its
// escape hatch wrapped in a chart of one template.
type Release struct {
	Service   string
	Name      string
	Namespace string
	Chart     *chart.Chart
	Values    map[string]any
	// Manifest is the rendered release, as `helm template` prints it.
	Manifest string
	// ChartDigest and ValuesDigest identify what was rendered.
	ChartDigest, ValuesDigest string
	// Source is the service's own chart, which findings point into; nil
	// for the golden path (ChartSource) and for Kustomize and manifests.
	Source *policy.ChartSource
	// Workload is the Deployment whose rollout says the service is ready:
	// the release name for the golden path.
	Workload string
}

// chart is the embedded golden-path chart, loaded once; rendering and
// deploying do not modify it.
var goldenPath = sync.OnceValues(charts.GoldenPath)

// Chart returns the golden-path chart.
func Chart() (*chart.Chart, error) { return goldenPath() }

// CheckValues validates every service's values against the chart's schema
// without rendering, so a mistake is reported before any slow work starts.
func CheckValues(p *Project, t Target) error {
	ch, err := Chart()
	if err != nil {
		return err
	}
	var errs []error
	for i := range p.Services {
		s := &p.Services[i]
		if s.Deployer() != config.DeployGoldenPath {
			continue // its own chart's schema is checked when it renders
		}
		vals := Values(p, s, ImageRepository(p.Name, s.Name)+":check", t)
		if err := helm.ValidateValues(ch, vals); err != nil {
			errs = append(errs, fmt.Errorf("services[%d] (%s) values: %w", i, s.Name, err))
		}
	}
	return errors.Join(errs...)
}

// Render renders the golden-path chart for the named services (all when
// services is empty) with images[service] as each one's image.
func Render(ctx context.Context, p *Project, t Target, images map[string]string, services ...string) ([]*Release, error) {
	ch, err := Chart()
	if err != nil {
		return nil, err
	}
	chartDigest, err := helm.ChartDigest(ch)
	if err != nil {
		return nil, err
	}
	var out []*Release
	for i := range p.Services {
		s := &p.Services[i]
		if len(services) > 0 && !slices.Contains(services, s.Name) {
			continue
		}
		image := images[s.Name]
		if image == "" {
			return nil, fmt.Errorf("render %s: no image built for it", s.Name)
		}
		if s.Deployer() != config.DeployGoldenPath {
			rel, err := renderHatch(ctx, p, s, image)
			if err != nil {
				return nil, err
			}
			out = append(out, rel)
			continue
		}
		vals := Values(p, s, image, t)
		m, err := helm.Render(ctx, ch, s.Name, p.Namespace(), vals)
		if err != nil {
			return nil, fmt.Errorf("render %s: %w", s.Name, err)
		}
		vd, err := helm.ValuesDigest(vals)
		if err != nil {
			return nil, err
		}
		out = append(out, &Release{
			Service: s.Name, Name: s.Name, Namespace: p.Namespace(), Chart: ch, Values: vals,
			Manifest: m, ChartDigest: chartDigest, ValuesDigest: vd, Workload: s.Name,
		})
	}
	return out, nil
}

// CheckImages are placeholder images for rendering without a build, as
// `devctl check` does.
func CheckImages(p *Project) map[string]string {
	m := make(map[string]string, len(p.Services))
	for _, s := range p.Services {
		m[s.Name] = ImageRepository(p.Name, s.Name) + ":check"
	}
	return m
}

// merge deep-merges src into dst; maps merge, anything else replaces.
func merge(dst, src map[string]any) {
	for k, sv := range src {
		if sm, ok := sv.(map[string]any); ok {
			if dm, ok := dst[k].(map[string]any); ok {
				merge(dm, sm)
				continue
			}
			c := map[string]any{}
			merge(c, sm)
			dst[k] = c
			continue
		}
		dst[k] = sv
	}
}

func splitRef(ref string) (repo, tag string) {
	i := strings.LastIndexByte(ref, ':')
	if i < 0 || strings.Contains(ref[i:], "/") {
		return ref, "latest"
	}
	return ref[:i], ref[i+1:]
}
