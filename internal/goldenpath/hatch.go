package goldenpath

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/distribution/reference"
	"go.yaml.in/yaml/v3"
	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"

	"github.com/devctl/devctl/internal/config"
	"github.com/devctl/devctl/internal/helm"
	"github.com/devctl/devctl/internal/policy"
)

// renderedFile is the file of a wrapper chart that holds what an escape
// hatch rendered; its one template prints it as it is.
const renderedFile = "rendered.yaml"

// hatchTemplate prints the rendered file without interpreting it: the
// output of a chart or an overlay may hold text that looks like a template.
const hatchTemplate = `{{ .Files.Get "` + renderedFile + `" }}`

// renderHatch renders a service's escape hatch (its own chart with its
// values, its Kustomize folder, or its manifests), points the images it
// declares at image, and wraps the result in a chart of one template, so
// that it is installed, upgraded (only when it changed) and listed as a
// Helm release like the golden path.
func renderHatch(ctx context.Context, p *Project, s *config.Service, image string) (*Release, error) {
	var (
		manifest string
		meta     = &chart.Metadata{APIVersion: chart.APIVersionV2, Name: s.Name, Version: "0.1.0", Type: "application"}
		src      *policy.ChartSource
		from     string
		err      error
	)
	switch s.Deployer() {
	case config.DeployChart:
		dir := filepath.Join(p.Dir, s.Chart)
		var ch *chart.Chart
		ch, manifest, err = renderOwnChart(ctx, p.Dir, dir, s, p.Namespace())
		if err != nil {
			return nil, err
		}
		meta.Name, meta.Version, meta.AppVersion = ch.Metadata.Name, ch.Metadata.Version, ch.Metadata.AppVersion
		src = &policy.ChartSource{FS: os.DirFS(dir), Dir: dir}
		from = "chart " + s.Chart
	case config.DeployKustomize:
		manifest, err = RenderKustomize(filepath.Join(p.Dir, s.Kustomize))
		if err != nil {
			return nil, err
		}
		from = "kustomize " + s.Kustomize
	case config.DeployManifests:
		manifest, err = readManifestTree(p.Dir, s.Manifests)
		if err != nil {
			return nil, err
		}
		from = "manifests " + strings.Join(s.Manifests, ", ")
	default:
		return nil, fmt.Errorf("service %s uses the golden-path chart", s.Name)
	}
	out, rw, err := RewriteImages(manifest, s.ImageName(), image, s.Name)
	if err != nil {
		return nil, fmt.Errorf("service %s (%s): %w", s.Name, from, err)
	}
	if rw.Count == 0 {
		hint := "no container image in it"
		if len(rw.Seen) > 0 {
			hint = "its containers use " + strings.Join(rw.Seen, ", ")
		}
		return nil, fmt.Errorf("service %s (%s): no container uses the image %q, so the image devctl builds would not run (%s): set services[].image to the name the containers use", s.Name, from, s.ImageName(), hint)
	}
	meta.Description = "rendered by devctl from " + from
	if meta.AppVersion == "" {
		_, meta.AppVersion = splitRef(image)
	}
	ch := &chart.Chart{
		Metadata:  meta,
		Templates: []*chart.File{{Name: "templates/" + s.Name + ".yaml", Data: []byte(hatchTemplate)}},
		Files:     []*chart.File{{Name: renderedFile, Data: []byte(out)}},
	}
	cd, err := helm.ChartDigest(ch)
	if err != nil {
		return nil, err
	}
	vd, err := helm.ValuesDigest(map[string]any{})
	if err != nil {
		return nil, err
	}
	return &Release{
		Service: s.Name, Name: s.Name, Namespace: p.Namespace(), Chart: ch, Values: map[string]any{},
		Manifest: out, ChartDigest: cd, ValuesDigest: vd, Source: src, Workload: rw.Workload,
	}, nil
}

// renderOwnChart renders a service's chart with its values files (paths
// relative to base, the folder of devctl.yaml), then its values, as `helm
// template -f a.yaml -f b.yaml` would.
func renderOwnChart(ctx context.Context, base, dir string, s *config.Service, namespace string) (*chart.Chart, string, error) {
	ch, err := loader.LoadDir(dir)
	if err != nil {
		return nil, "", fmt.Errorf("service %s: load the chart %s: %w", s.Name, s.Chart, err)
	}
	vals := map[string]any{}
	for _, f := range s.ValuesFiles {
		v, err := chartutil.ReadValuesFile(filepath.Join(base, f))
		if err != nil {
			return nil, "", fmt.Errorf("service %s: values file %s: %w", s.Name, f, err)
		}
		merge(vals, v)
	}
	merge(vals, s.Values)
	out, err := helm.Render(ctx, ch, s.Name, namespace, vals)
	if err != nil {
		return nil, "", fmt.Errorf("service %s: render the chart %s: %w", s.Name, s.Chart, err)
	}
	return ch, out, nil
}

// RenderKustomize builds a Kustomize folder in-process, as `kustomize
// build dir` does (no kubectl or kustomize binary needed).
func RenderKustomize(dir string) (string, error) {
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	m, err := k.Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		return "", fmt.Errorf("kustomize build %s: %w", dir, err)
	}
	b, err := m.AsYaml()
	if err != nil {
		return "", fmt.Errorf("kustomize build %s: %w", dir, err)
	}
	return string(b), nil
}

// readManifestTree joins the manifest files and folders (every .yaml,
// .yml and .json below them, hidden folders skipped, in a stable order),
// each headed by a Source comment naming it.
func readManifestTree(base string, paths []string) (string, error) {
	var b strings.Builder
	add := func(path string) error {
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(base, path)
		fmt.Fprintf(&b, "---\n# Source: %s\n%s\n", filepath.ToSlash(rel), bytes.TrimSpace(data))
		return nil
	}
	for _, p := range paths {
		root := filepath.Join(base, p)
		err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() {
				if path != root && strings.HasPrefix(d.Name(), ".") {
					return filepath.SkipDir
				}
				return nil
			}
			switch strings.ToLower(filepath.Ext(path)) {
			case ".yaml", ".yml", ".json":
				return add(path)
			}
			return nil
		})
		if err != nil {
			return "", fmt.Errorf("read manifests %s: %w", p, err)
		}
	}
	return b.String(), nil
}

// Rewrite says what RewriteImages did.
type Rewrite struct {
	// Count is the number of container images replaced.
	Count int
	// Seen are the other images the containers use.
	Seen []string
	// Workload is the name of the first Deployment running the image.
	Workload string
}

// RewriteImages replaces, in every container, init container and
// ephemeral container of every object (pod templates at any depth, so
// CronJobs and custom resources too), an image whose name is name (any
// tag or digest; docker.io/library/ spelled or not) with image, as
// Skaffold and Tilt do. Pod templates that run it get the
// app.kubernetes.io/instance label of the service when they have none,
// so that devctl finds its pods to forward the port.
func RewriteImages(manifest, name, image, service string) (string, Rewrite, error) {
	var rw Rewrite
	want, err := reference.ParseNormalizedNamed(name)
	if err != nil {
		return "", rw, fmt.Errorf("image name %q: %w", name, err)
	}
	dec := yaml.NewDecoder(strings.NewReader(manifest))
	var out bytes.Buffer
	enc := yaml.NewEncoder(&out)
	enc.SetIndent(2)
	for {
		var doc yaml.Node
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return "", rw, fmt.Errorf("read the rendered manifests: %w", err)
		}
		if len(doc.Content) == 0 || doc.Content[0].Kind != yaml.MappingNode {
			continue
		}
		root := doc.Content[0]
		n := rewriteNode(root, want.Name(), image, service, &rw)
		if n > 0 && scalar(root, "kind") == "Deployment" && rw.Workload == "" {
			rw.Workload = scalar(child(root, "metadata"), "name")
		}
		rw.Count += n
		if err := enc.Encode(&doc); err != nil {
			return "", rw, err
		}
	}
	if err := enc.Close(); err != nil {
		return "", rw, err
	}
	slices.Sort(rw.Seen)
	rw.Seen = slices.Compact(rw.Seen)
	return out.String(), rw, nil
}

// instanceLabel selects the pods of a service's release (internal/kube).
const instanceLabel = "app.kubernetes.io/instance"

var containerKeys = []string{"containers", "initContainers", "ephemeralContainers"}

// rewriteNode rewrites the containers below n and returns how many it
// replaced.
func rewriteNode(n *yaml.Node, want, image, service string, rw *Rewrite) int {
	count := 0
	switch n.Kind {
	case yaml.SequenceNode:
		for _, c := range n.Content {
			count += rewriteNode(c, want, image, service, rw)
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if slices.Contains(containerKeys, k.Value) && v.Kind == yaml.SequenceNode {
				for _, c := range v.Content {
					img := child(c, "image")
					if img == nil || img.Kind != yaml.ScalarNode {
						continue
					}
					if ref, err := reference.ParseNormalizedNamed(img.Value); err == nil && ref.Name() == want {
						img.Value, img.Style = image, 0
						count++
					} else {
						rw.Seen = append(rw.Seen, img.Value)
					}
				}
				continue
			}
			count += rewriteNode(v, want, image, service, rw)
		}
		// A pod template ({metadata, spec: {containers}}) that now runs
		// the service's image carries its instance label.
		if count > 0 {
			if spec := child(n, "spec"); spec != nil && child(spec, "containers") != nil {
				labelInstance(n, service)
			}
		}
	case yaml.DocumentNode, yaml.ScalarNode, yaml.AliasNode:
		// no containers below: RewriteImages passes each document's root,
		// and aliases point at nodes visited where they are defined
	}
	return count
}

func labelInstance(tmpl *yaml.Node, service string) {
	meta := child(tmpl, "metadata")
	if meta == nil {
		meta = &yaml.Node{Kind: yaml.MappingNode}
		tmpl.Content = append(tmpl.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: "metadata"}, meta)
	}
	labels := child(meta, "labels")
	if labels == nil || labels.Kind != yaml.MappingNode {
		labels = &yaml.Node{Kind: yaml.MappingNode}
		meta.Content = append(meta.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: "labels"}, labels)
	}
	if child(labels, instanceLabel) != nil {
		return
	}
	labels.Content = append(labels.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: instanceLabel},
		&yaml.Node{Kind: yaml.ScalarNode, Value: service})
}

func child(n *yaml.Node, key string) *yaml.Node {
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	return nil
}

func scalar(n *yaml.Node, key string) string {
	if c := child(n, key); c != nil && c.Kind == yaml.ScalarNode {
		return c.Value
	}
	return ""
}
