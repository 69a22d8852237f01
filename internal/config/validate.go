package config

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
)

var (
	dns1123Label = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)
	labelValue   = regexp.MustCompile(`^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$`)
)

// Validate checks c and returns every problem as an errors.Join of *Error.
// Paths are checked against the filesystem when Dir is set.
func (c *Config) Validate() error {
	v := &validator{c: c}
	v.fixed("apiVersion", c.APIVersion, APIVersion)
	v.fixed("kind", c.Kind, Kind)
	v.dnsLabel("name", c.Name)
	if c.Team == "" {
		v.add("team", "required: the owning team, used to label resources for cost reports")
	} else {
		v.labelValue("team", c.Team)
	}
	v.labelValue("costCenter", c.CostCenter)

	switch c.Cluster.Provider {
	case "", ProviderKind:
		if c.Cluster.HostContext != "" {
			v.add("cluster.hostContext", "only used with provider %q; remove it or set cluster.provider: %s", ProviderVCluster, ProviderVCluster)
		}
	case ProviderVCluster:
	default:
		v.add("cluster.provider", "%q is not a provider; use %q or %q", c.Cluster.Provider, ProviderKind, ProviderVCluster)
	}

	if f := c.Policy.FailOn; f != "" && !slices.Contains(Severities, f) {
		v.add("policy.failOn", "%q is not a severity; use one of %s", f, strings.Join(Severities, ", "))
	}
	for i, r := range c.Policy.AllowedRegistries {
		field := fmt.Sprintf("policy.allowedRegistries[%d]", i)
		switch {
		case r == "" || strings.ContainsAny(r, " \t\n"):
			v.add(field, "%q is not a registry; give a host such as ghcr.io or devctl.local", r)
		case strings.Contains(r, "://"):
			v.add(field, "%q: give the registry host without a scheme, such as ghcr.io", r)
		}
	}
	v.path("policy.rules", c.Policy.Rules, true)
	v.path("policy.waivers", c.Policy.Waivers, false)
	for i, m := range c.Manifests {
		field := fmt.Sprintf("manifests[%d]", i)
		if m == "" {
			v.add(field, "empty path; give a manifest file or folder")
			continue
		}
		v.path(field, m, true)
	}

	v.validateDependencies("dependencies", c.Dependencies)
	v.validateMocks()

	if len(c.Services) == 0 {
		v.add("services", "at least one service is required; run `devctl init` to detect one")
	}
	seen := map[string]int{}
	for i, s := range c.Services {
		field := fmt.Sprintf("services[%d]", i)
		v.dnsLabel(field+".name", s.Name)
		if j, dup := seen[s.Name]; dup && s.Name != "" {
			v.add(field+".name", "duplicate service name %q (also services[%d]); service names must be unique", s.Name, j)
		} else {
			seen[s.Name] = i
		}
		if s.Context == "" {
			v.add(field+".context", "required: the build context folder, relative to %s", FileName)
		} else if v.path(field+".context", s.Context, true) {
			if c.Dir != "" {
				if fi, err := os.Stat(filepath.Join(c.Dir, s.Context)); err == nil && !fi.IsDir() {
					v.add(field+".context", "%q is a file; the build context must be a folder", s.Context)
				}
			}
		}
		if s.Dockerfile == "" {
			v.add(field+".dockerfile", "required: the Dockerfile path, relative to the context")
		} else if filepath.IsAbs(s.Dockerfile) {
			v.add(field+".dockerfile", "%q is absolute; give a path relative to the context", s.Dockerfile)
		}
		if s.Go != nil {
			if s.Go.Package == "" {
				v.add(field+".go.package", "required: the Go main package, relative to the context, such as . or ./cmd/%s", s.Name)
			}
			if s.Go.Output == "" {
				v.add(field+".go.output", "required: where to write the binary, relative to the context, such as bin/%s", s.Name)
			} else if !filepath.IsLocal(s.Go.Output) {
				v.add(field+".go.output", "%q must be a path inside the build context, such as bin/%s", s.Go.Output, s.Name)
			}
		}
		if s.Port < 1 || s.Port > 65535 {
			v.add(field+".port", "%d is out of range (1-65535)", s.Port)
		}
		v.validateDeployer(field, &s)
		for _, key := range reservedValueKeys {
			if s.Deployer() != DeployGoldenPath {
				break // the service's own chart: its values are its own
			}
			if hasValue(s.Values, key) {
				v.add(field+".values."+key, "devctl sets this value itself: %s", ReservedValues[key])
			}
		}
		v.validateDependencies(field+".dependencies", s.Dependencies)
		for j, p := range s.Watch.Ignore {
			if strings.TrimSpace(p) == "" {
				v.add(fmt.Sprintf("%s.watch.ignore[%d]", field, j), "empty pattern")
			}
		}
		if s.Live != nil {
			for j, sy := range s.Live.Sync {
				f := fmt.Sprintf("%s.live.sync[%d]", field, j)
				if sy.Path == "" || !filepath.IsLocal(sy.Path) && sy.Path != "." {
					v.add(f+".path", "%q must be a folder inside the build context, such as static", sy.Path)
				}
				if !path.IsAbs(sy.Dest) || path.Clean(sy.Dest) == "/" {
					v.add(f+".dest", "%q must be an absolute folder in the container other than /, such as /static", sy.Dest)
				}
			}
		}
	}
	return errors.Join(v.errs...)
}

// ReservedValues are the golden-path chart values devctl sets itself, after
// a service's values, each with where to set it instead. A service's values
// may not set them: cost attribution relies on the labels, the port-forward
// and probes on the port, delivery on the image.
var ReservedValues = map[string]string{
	"image":        "it is the image devctl builds; remove it from values",
	"service.port": "set services[].port instead",
	"team":         "set team at the top of " + FileName + " instead",
	"owner":        "set owner at the top of " + FileName + " instead",
	"costCenter":   "set costCenter at the top of " + FileName + " instead",
	"branch":       "it is the git branch of the environment; remove it from values",
	"environment":  "it is the environment name; remove it from values",
}

var reservedValueKeys = slices.Sorted(maps.Keys(ReservedValues))

// hasValue reports whether the dotted key is set in values.
func hasValue(values map[string]any, key string) bool {
	head, rest, nested := strings.Cut(key, ".")
	v, ok := values[head]
	if !ok {
		return false
	}
	if !nested {
		return true
	}
	m, ok := v.(map[string]any)
	return ok && hasValue(m, rest)
}

type validator struct {
	c    *Config
	errs []error
}

// add records a problem at the position of field, or of its nearest
// decoded parent when the field itself is absent.
func (v *validator) add(field, format string, args ...any) {
	file := v.c.file
	if file == "" {
		file = v.c.Path
	}
	if file == "" {
		file = FileName
	}
	e := &Error{File: file, Field: field, Msg: fmt.Sprintf(format, args...)}
	for f := field; v.c.pos != nil; f = parent(f) {
		if p, ok := v.c.pos[f]; ok {
			e.Line, e.Col = p.line, p.col
			break
		}
		if f == "" {
			break
		}
	}
	v.errs = append(v.errs, e)
}

// parent strips the last element of a field path: "a.b[0]" → "a.b" → "a" → "".
func parent(field string) string {
	return field[:max(strings.LastIndexAny(field, ".["), 0)]
}

func (v *validator) fixed(field, got, want string) {
	switch got {
	case want:
	case "":
		v.add(field, "required: set it to %s", want)
	default:
		v.add(field, "%q is not supported; use %s", got, want)
	}
}

func (v *validator) dnsLabel(field, s string) {
	switch {
	case s == "":
		v.add(field, "required: a DNS-1123 label such as my-service")
	case len(s) > 63 || !dns1123Label.MatchString(s):
		v.add(field, "%q is not a DNS-1123 label: use at most 63 lowercase letters, digits and '-', starting and ending with a letter or digit", s)
	}
}

func (v *validator) labelValue(field, s string) {
	if len(s) > 63 || !labelValue.MatchString(s) {
		v.add(field, "%q is not a valid Kubernetes label value: use at most 63 letters, digits, '-', '_' and '.', starting and ending with a letter or digit", s)
	}
}

// path checks a path relative to Dir: it must be relative and, when mustExist
// and Dir is set, exist. It reports whether the path passed.
func (v *validator) path(field, p string, mustExist bool) bool {
	if p == "" {
		return true
	}
	if filepath.IsAbs(p) {
		v.add(field, "%q is absolute; give a path relative to the folder of %s", p, FileName)
		return false
	}
	if !mustExist || v.c.Dir == "" {
		return true
	}
	if _, err := os.Stat(filepath.Join(v.c.Dir, p)); err != nil {
		v.add(field, "%q does not exist; paths are relative to the folder of %s", p, FileName)
		return false
	}
	return true
}
