package goldenpath

import (
	"fmt"
	"slices"
	"strings"

	"helm.sh/helm/v3/pkg/releaseutil"
	"sigs.k8s.io/yaml"

	"github.com/devctl/devctl/internal/api"
)

// podOwner is the part of a workload that says which Secrets its
// containers read; values are never decoded.
type podOwner struct {
	Kind string `json:"kind"`
	Spec struct {
		Template struct {
			Spec struct {
				InitContainers []secretReader `json:"initContainers"`
				Containers     []secretReader `json:"containers"`
			} `json:"spec"`
		} `json:"template"`
	} `json:"spec"`
}

type secretReader struct {
	Env []struct {
		Name      string `json:"name"`
		ValueFrom *struct {
			SecretKeyRef *struct {
				Name string `json:"name"`
			} `json:"secretKeyRef"`
		} `json:"valueFrom"`
	} `json:"env"`
	EnvFrom []struct {
		SecretRef *struct {
			Name string `json:"name"`
		} `json:"secretRef"`
	} `json:"envFrom"`
}

// SecretRefs lists the Secrets the workloads of a rendered manifest inject
// into their containers (the dependencies' connection Secrets, the
// ExternalSecret's target, the live agent's token), by name, with the env
// vars each sets. It reads references only: a manifest holds no value of
// them.
func SecretRefs(manifest string) ([]api.SecretRef, error) {
	byName := map[string]*api.SecretRef{}
	for name, doc := range releaseutil.SplitManifests(manifest) {
		var o podOwner
		if err := yaml.Unmarshal([]byte(doc), &o); err != nil {
			return nil, fmt.Errorf("read %s of the rendered release: %w", name, err)
		}
		switch o.Kind {
		case "Deployment", "StatefulSet", "DaemonSet", "Job", "ReplicaSet":
		default:
			continue
		}
		ref := func(n string) *api.SecretRef {
			if byName[n] == nil {
				byName[n] = &api.SecretRef{Name: n}
			}
			return byName[n]
		}
		ps := o.Spec.Template.Spec
		for _, c := range slices.Concat(ps.InitContainers, ps.Containers) {
			for _, e := range c.Env {
				if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil && e.ValueFrom.SecretKeyRef.Name != "" {
					r := ref(e.ValueFrom.SecretKeyRef.Name)
					if !slices.Contains(r.Env, e.Name) {
						r.Env = append(r.Env, e.Name)
					}
				}
			}
			for _, f := range c.EnvFrom {
				if f.SecretRef != nil && f.SecretRef.Name != "" {
					ref(f.SecretRef.Name).AllKeys = true
				}
			}
		}
	}
	out := make([]api.SecretRef, 0, len(byName))
	for _, r := range byName {
		slices.Sort(r.Env)
		out = append(out, *r)
	}
	slices.SortFunc(out, func(a, b api.SecretRef) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}
