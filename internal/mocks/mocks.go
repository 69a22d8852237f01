// Package mocks holds what the daemon needs to install the platform
// stand-ins into an environment: which dependencies to install, the
// platform-mocks chart's values, the names of the objects the chart creates,
// and the image of the devctl-mocks binary.
//
// The stand-ins themselves live in the subpackages vault, s3 and
// externalsecrets (run by cmd/devctl-mocks); ready checks them at the
// protocol level.
package mocks

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
)

// Dependency is one platform dependency the chart can stand in for.
type Dependency string

// The dependencies, as devctl.yaml names them.
const (
	Secrets  Dependency = "secrets"  // Vault KV v2 + External Secrets + ClusterSecretStore "vault"
	Postgres Dependency = "postgres" // PostgreSQL + connection Secret
	S3       Dependency = "s3"       // S3-compatible store + connection Secret
	Metrics  Dependency = "metrics"  // ServiceMonitor and PrometheusRule CRDs
)

// All lists every dependency.
var All = []Dependency{Secrets, Postgres, S3, Metrics}

// ErrUnknownDependency reports a dependency name devctl has no stand-in for.
var ErrUnknownDependency = errors.New("unknown dependency: want secrets, postgres, s3 or metrics")

// Release is the Helm release name devctl installs the chart as (in the
// project's namespace, so the connection Secrets sit beside the services).
const Release = "platform-mocks"

// Component names: each component's pods carry
// app.kubernetes.io/instance=<release>-<component>, so
// kube.Client.StartForward(ctx, ns, Instance(Release, c), port, 0, log)
// reaches it.
const (
	ComponentVault           = "vault"
	ComponentExternalSecrets = "external-secrets"
	ComponentPostgres        = "postgres"
	ComponentS3              = "s3"
)

// Ports the components listen on.
const (
	VaultPort    = 8200
	PostgresPort = 5432
	S3Port       = 9000
)

// Instance is the app.kubernetes.io/instance label (and the Deployment and
// Service name) of component in release.
func Instance(release, component string) string { return release + "-" + component }

// VaultTokenSecret is the Secret holding the Vault token (key "token").
func VaultTokenSecret(release string) string { return Instance(release, ComponentVault) + "-token" }

// The connection Secrets the chart writes (its postgres.connectionSecret
// and s3.connectionSecret defaults), shaped like the production claims';
// the golden-path chart's dependencies.*.connectionSecret name the same.
const (
	PostgresSecret = "postgres"
	S3Secret       = "s3"
)

// ImageRepository is the repository of the stand-ins' image.
const ImageRepository = "devctl.local/platform-mocks"

// BinaryName is the stand-ins' binary, shipped beside devctl.
const BinaryName = "devctl-mocks"

// Dockerfile is the stand-ins' image: the static binary alone.
const Dockerfile = `FROM scratch
COPY devctl-mocks /devctl-mocks
USER 65532:65532
ENTRYPOINT ["/devctl-mocks"]
`

// ParseDependencies parses names such as ["secrets", "postgres"],
// removing duplicates and keeping All's order.
func ParseDependencies(names []string) ([]Dependency, error) {
	var out []Dependency
	for _, n := range names {
		d := Dependency(strings.ToLower(strings.TrimSpace(n)))
		if !slices.Contains(All, d) {
			return nil, fmt.Errorf("%w: %q", ErrUnknownDependency, n)
		}
		if !slices.Contains(out, d) {
			out = append(out, d)
		}
	}
	slices.SortFunc(out, func(a, b Dependency) int { return slices.Index(All, a) - slices.Index(All, b) })
	return out, nil
}

// Config is what the chart needs to know.
type Config struct {
	Deps []Dependency
	// ImageTag is the tag of ImageRepository holding devctl-mocks.
	ImageTag string
	// PostgresImage follows the official postgres image's contract
	// (default "postgres:17").
	PostgresImage string
	// PostgresSeedSQL runs once on the empty database.
	PostgresSeedSQL string
	// VaultSeed holds secrets written at start: path -> keys.
	VaultSeed map[string]map[string]any
	// Bucket is the S3 bucket created at start (default "app").
	Bucket string
	// Team, Owner and CostCenter label every object, as on the golden path.
	Team, Owner, CostCenter string
}

// Values returns the platform-mocks chart values for c. They hold no
// credentials: the chart generates those in the cluster.
func Values(c Config) map[string]any {
	on := func(d Dependency) bool { return slices.Contains(c.Deps, d) }
	v := map[string]any{
		"image":      map[string]any{"repository": ImageRepository, "tag": c.ImageTag},
		"team":       c.Team,
		"owner":      c.Owner,
		"costCenter": c.CostCenter,
		"secrets":    map[string]any{"enabled": on(Secrets)},
		"postgres":   map[string]any{"enabled": on(Postgres)},
		"s3":         map[string]any{"enabled": on(S3)},
		"metrics":    map[string]any{"enabled": on(Metrics)},
	}
	if len(c.VaultSeed) > 0 {
		seed := map[string]any{}
		for k, m := range c.VaultSeed {
			seed[k] = m
		}
		v["secrets"].(map[string]any)["seed"] = seed
	}
	pg := v["postgres"].(map[string]any)
	if c.PostgresImage != "" {
		pg["image"] = c.PostgresImage
	}
	if c.PostgresSeedSQL != "" {
		pg["seedSQL"] = c.PostgresSeedSQL
	}
	if c.Bucket != "" {
		v["s3"].(map[string]any)["bucket"] = c.Bucket
	}
	return v
}

// ErrBinaryNotFound reports that devctl-mocks is not installed.
var ErrBinaryNotFound = errors.New("devctl-mocks not found: install it beside devctl (make build; ./install.sh) or set DEVCTL_MOCKS_BIN")

// FindBinary locates the static devctl-mocks binary: $DEVCTL_MOCKS_BIN,
// else next to the running executable, else on PATH.
func FindBinary() (string, error) {
	if p := os.Getenv("DEVCTL_MOCKS_BIN"); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("DEVCTL_MOCKS_BIN: %w", err)
		}
		return p, nil
	}
	if exe, err := os.Executable(); err == nil {
		p := filepath.Join(filepath.Dir(exe), BinaryName)
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	if p, err := exec.LookPath(BinaryName); err == nil {
		return p, nil
	}
	return "", ErrBinaryNotFound
}

// WriteImageContext writes a Docker build context for the stand-ins' image
// into dir: Dockerfile and a copy of binary. Build it with internal/build
// (build.Spec{Image: ImageRepository, Context: dir}); the tag is a content
// hash, so an unchanged binary is not rebuilt.
func WriteImageContext(dir, binary string) error {
	if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte(Dockerfile), 0o644); err != nil {
		return err
	}
	src, err := os.Open(binary)
	if err != nil {
		return err
	}
	defer func() { _ = src.Close() }()
	dst, err := os.OpenFile(filepath.Join(dir, BinaryName), os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o755)
	if err != nil {
		return err
	}
	if _, err := io.Copy(dst, src); err != nil {
		_ = dst.Close()
		return err
	}
	return dst.Close()
}
