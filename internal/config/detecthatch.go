package config

import (
	"bufio"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/distribution/reference"
	"go.yaml.in/yaml/v3"
)

// Hatch is a way a repository deploys itself that Detect found: its own
// chart, a Kustomize folder or a folder of manifests.
type Hatch struct {
	// Deployer is DeployChart, DeployKustomize or DeployManifests.
	Deployer string
	// Path is relative to the repository, slash-separated.
	Path string
	// Image is the image name its containers use that looks like the
	// service's (empty when none was found).
	Image string
	// Port is the container port its chart's values give (0: none).
	Port int
	// Why says how it was recognised.
	Why string
}

// skipDirs are folders that hold no deployment of the repository itself.
var skipDirs = map[string]bool{"vendor": true, "node_modules": true, "testdata": true, "third_party": true, "bin": true, "dist": true}

// manifestDirs are folder names that conventionally hold plain manifests.
var manifestDirs = []string{"deploy", "deployment", "k8s", "kubernetes", "manifests", "kube"}

// DetectHatches lists the charts, Kustomize folders and manifest folders
// of a repository (at most four levels deep), the one devctl would pick
// first: a chart named like the project, else any chart, else a
// Kustomize overlay for development (overlays/dev, local), else any
// Kustomize folder that is not a base, else a manifests folder.
func DetectHatches(dir, name string) []Hatch {
	var charts, kusts []Hatch
	_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return nil
		}
		rel, _ := filepath.Rel(dir, p)
		rel = filepath.ToSlash(rel)
		if p != dir && (strings.HasPrefix(d.Name(), ".") || skipDirs[d.Name()]) || strings.Count(rel, "/") >= 4 {
			return filepath.SkipDir
		}
		if isFile(filepath.Join(p, "Chart.yaml")) {
			h := Hatch{Deployer: DeployChart, Path: rel, Why: "Helm chart " + rel + " (Chart.yaml)"}
			h.Image, h.Port = chartImage(p)
			charts = append(charts, h)
			return filepath.SkipDir // its templates are not manifests
		}
		for _, k := range KustomizationFiles {
			if isFile(filepath.Join(p, k)) {
				kusts = append(kusts, Hatch{Deployer: DeployKustomize, Path: rel, Why: "Kustomize folder " + rel + " (" + k + ")"})
				break
			}
		}
		return nil
	})
	slices.SortStableFunc(charts, func(a, b Hatch) int { return rank(a, name) - rank(b, name) })
	slices.SortStableFunc(kusts, func(a, b Hatch) int { return rank(a, name) - rank(b, name) })
	out := append(charts, kusts...)
	for i := range out {
		if out[i].Deployer == DeployKustomize {
			out[i].Image = manifestImage(filepath.Join(dir, topDir(out[i].Path)), name)
		}
	}
	if len(kusts) == 0 {
		for _, m := range manifestDirs {
			p := filepath.Join(dir, m)
			if hasManifests(p) {
				out = append(out, Hatch{Deployer: DeployManifests, Path: m, Image: manifestImage(p, name),
					Why: "manifests folder " + m + "/ (Kubernetes YAML)"})
			}
		}
	}
	return out
}

// rank orders candidates: lower is preferred.
func rank(h Hatch, name string) int {
	base := path.Base(h.Path)
	switch h.Deployer {
	case DeployChart:
		if base == name {
			return 0
		}
		return 1
	default:
		switch {
		case slices.Contains([]string{"dev", "development", "local"}, base):
			return 0
		case strings.Contains(h.Path, "overlays/"):
			return 1
		case base == "base":
			return 3
		}
		return 2
	}
}

func topDir(rel string) string {
	first, _, _ := strings.Cut(rel, "/")
	return first
}

func isFile(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular()
}

// chartImage reads image.repository and a port (service.targetPort,
// service.port, containerPort, port) from a chart's values.yaml.
func chartImage(dir string) (string, int) {
	data, err := os.ReadFile(filepath.Join(dir, "values.yaml"))
	if err != nil {
		return "", 0
	}
	var v map[string]any
	if yaml.Unmarshal(data, &v) != nil {
		return "", 0
	}
	img := ""
	if m, ok := v["image"].(map[string]any); ok {
		if r, ok := m["repository"].(string); ok {
			img = r
		}
	} else if s, ok := v["image"].(string); ok {
		img = s
	}
	if named, err := reference.ParseNormalizedNamed(img); err == nil {
		img = reference.FamiliarName(named)
	} else {
		img = ""
	}
	port := 0
	svc, _ := v["service"].(map[string]any)
	for _, c := range []any{svc["targetPort"], v["containerPort"], v["port"], svc["port"]} {
		if n, ok := c.(int); ok && n > 0 && n < 65536 {
			port = n
			break
		}
	}
	return img, port
}

var imageLine = regexp.MustCompile(`(?m)^\s*-?\s*image:\s*["']?([^\s"'#]+)`)

// manifestImage is the image the YAML files below dir use whose last
// path element is name, else the first one (empty when none).
func manifestImage(dir, name string) string {
	var first, match string
	_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || match != "" {
			return nil
		}
		if d.IsDir() {
			if p != dir && strings.HasPrefix(d.Name(), ".") {
				return filepath.SkipDir
			}
			return nil
		}
		if ext := strings.ToLower(filepath.Ext(p)); ext != ".yaml" && ext != ".yml" {
			return nil
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return nil
		}
		for _, m := range imageLine.FindAllStringSubmatch(string(data), -1) {
			named, err := reference.ParseNormalizedNamed(m[1])
			if err != nil {
				continue
			}
			n := reference.FamiliarName(named)
			if first == "" {
				first = n
			}
			if path.Base(n) == name {
				match = n
			}
		}
		return nil
	})
	if match != "" {
		return match
	}
	return first
}

func hasManifests(dir string) bool {
	found := false
	_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || found || d.IsDir() {
			return nil
		}
		if ext := strings.ToLower(filepath.Ext(p)); ext == ".yaml" || ext == ".yml" {
			if data, err := os.ReadFile(p); err == nil && strings.Contains(string(data), "apiVersion:") && strings.Contains(string(data), "kind:") {
				found = true
			}
		}
		return nil
	})
	return found
}

// flagPort matches a Go flag whose default is a port or listen address:
// flag.Int("port", 9090, ...), flag.String("addr", ":9090", ...).
var flagPort = regexp.MustCompile(`flag\.(?:Int|String|IntVar|StringVar)\((?:&[\w.]+,\s*)?"(?:port|addr|address|listen|listen-addr|http|http-addr|http-port)",\s*"?(?:[\w.]*:)?(\d{2,5})"?`)

// goFlagPort finds the default port of a listen flag in the Go files of
// pkgDir (the main package).
func goFlagPort(pkgDir string) (int, string) {
	entries, err := os.ReadDir(pkgDir)
	if err != nil {
		return 0, ""
	}
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".go") || strings.HasSuffix(e.Name(), "_test.go") {
			continue
		}
		f, err := os.Open(filepath.Join(pkgDir, e.Name()))
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(f)
		line := 0
		for sc.Scan() {
			line++
			if m := flagPort.FindStringSubmatch(sc.Text()); m != nil {
				if n, err := strconv.Atoi(m[1]); err == nil && n > 0 && n < 65536 {
					_ = f.Close()
					return n, fmt.Sprintf("%s:%d", e.Name(), line)
				}
			}
		}
		_ = f.Close()
	}
	return 0, ""
}
