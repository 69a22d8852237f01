package config

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/distribution/reference"
)

// KustomizationFiles are the names Kustomize reads in a folder.
var KustomizationFiles = []string{"kustomization.yaml", "kustomization.yml", "Kustomization"}

// validateDeployer checks a service's escape hatch: at most one of chart,
// kustomize and manifests, each pointing at what it names, and the fields
// that only make sense with one of them.
func (v *validator) validateDeployer(field string, s *Service) {
	var set []string
	if s.Chart != "" {
		set = append(set, "chart")
	}
	if s.Kustomize != "" {
		set = append(set, "kustomize")
	}
	if len(s.Manifests) > 0 {
		set = append(set, "manifests")
	}
	if len(set) > 1 {
		v.add(field+"."+set[1], "%s are all set; a service is deployed one way: keep one of them (or none, for the golden-path chart)",
			strings.Join(set, " and "))
		return
	}
	if s.Chart != "" && v.path(field+".chart", s.Chart, true) && v.c.Dir != "" {
		if _, err := os.Stat(filepath.Join(v.c.Dir, s.Chart, "Chart.yaml")); err != nil {
			v.add(field+".chart", "%q has no Chart.yaml; give the folder of a Helm chart (the one holding Chart.yaml and templates/)", s.Chart)
		}
	}
	if s.Kustomize != "" && v.path(field+".kustomize", s.Kustomize, true) && v.c.Dir != "" {
		found := false
		for _, n := range KustomizationFiles {
			if _, err := os.Stat(filepath.Join(v.c.Dir, s.Kustomize, n)); err == nil {
				found = true
			}
		}
		if !found {
			v.add(field+".kustomize", "%q has no kustomization.yaml; give the folder of a Kustomize overlay or base (the one `kustomize build` takes)", s.Kustomize)
		}
	}
	for i, m := range s.Manifests {
		f := fmt.Sprintf("%s.manifests[%d]", field, i)
		if m == "" {
			v.add(f, "empty path; give a manifest file or folder")
			continue
		}
		v.path(f, m, true)
	}
	for i, f := range s.ValuesFiles {
		ff := fmt.Sprintf("%s.valuesFiles[%d]", field, i)
		if s.Chart == "" {
			v.add(ff, "values files are for a service's own chart; set %s.chart, or move the values to %s.values", field, field)
			break
		}
		if f == "" {
			v.add(ff, "empty path; give a values file such as %s/values-dev.yaml", s.Chart)
			continue
		}
		v.path(ff, f, true)
	}
	d := s.Deployer()
	if len(s.Values) > 0 && (d == DeployKustomize || d == DeployManifests) {
		v.add(field+".values", "values are chart values and %s has no chart: change the %s files instead, or remove values", d, d)
	}
	if s.Live != nil && d != DeployGoldenPath {
		v.add(field+".live", "live update runs the service under devctl's agent, which the golden-path chart installs; it is not available with %s: remove live", d)
	}
	if s.Image != "" {
		if d == DeployGoldenPath {
			v.add(field+".image", "image names the image a chart, Kustomize overlay or manifests use; the golden-path chart takes the built image itself: remove image")
		} else if named, err := reference.ParseNormalizedNamed(s.Image); err != nil {
			v.add(field+".image", "%q is not an image name: %v; give the name the manifests use, such as ghcr.io/acme/%s", s.Image, err, s.Name)
		} else if _, tagged := named.(reference.Tagged); tagged {
			v.add(field+".image", "%q has a tag; give the name alone (%s): devctl replaces every tag of it", s.Image, reference.TrimNamed(named).String())
		} else if _, dig := named.(reference.Digested); dig {
			v.add(field+".image", "%q has a digest; give the name alone (%s): devctl replaces it", s.Image, reference.TrimNamed(named).String())
		}
	}
}
