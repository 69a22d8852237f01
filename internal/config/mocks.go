package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
)

// Platform dependencies a service may declare; devctl up installs a
// stand-in for each one declared (see internal/mocks).
const (
	DepSecrets  = "secrets"  // Vault KV v2 + External Secrets
	DepPostgres = "postgres" // a PostgreSQL database and its connection Secret
	DepS3       = "s3"       // an S3 bucket and its connection Secret
	DepMetrics  = "metrics"  // ServiceMonitor and PrometheusRule CRDs; devctl scrapes /metrics
)

// Dependencies lists the dependency names in the order devctl installs them.
var Dependencies = []string{DepSecrets, DepPostgres, DepS3, DepMetrics}

// dependencyAliases maps names people reach for to the dependency devctl
// has, for the "did you mean" of an unknown name.
var dependencyAliases = map[string]string{
	"vault": DepSecrets, "secret": DepSecrets, "external-secrets": DepSecrets, "eso": DepSecrets, "openbao": DepSecrets,
	"postgresql": DepPostgres, "pg": DepPostgres, "database": DepPostgres, "db": DepPostgres, "sql": DepPostgres,
	"minio": DepS3, "bucket": DepS3, "object-store": DepS3, "objectstore": DepS3, "localstack": DepS3,
	"prometheus": DepMetrics, "servicemonitor": DepMetrics, "monitoring": DepMetrics, "metric": DepMetrics,
}

// Defaults of the mocks block.
const (
	// DefaultSecretsFile seeds the secrets store; `devctl init` adds it to
	// .gitignore, as it holds secret values.
	DefaultSecretsFile = ".devctl/secrets.yaml"
	// DefaultPostgresImage follows the official image's contract; machines
	// without a registry build one with e2e/images/postgres.sh.
	DefaultPostgresImage = "postgres:17"
	// DefaultBucket is the bucket the S3 stand-in creates.
	DefaultBucket = "app"
)

// PostgresImageEnv overrides mocks.postgres.image (as DEVCTL_NODE_IMAGE
// does the node image): CI points it at the image it built.
const PostgresImageEnv = "DEVCTL_POSTGRES_IMAGE"

// Mocks configures the stand-ins for the declared dependencies.
type Mocks struct {
	Secrets  MockSecrets  `yaml:"secrets,omitempty"`
	Postgres MockPostgres `yaml:"postgres,omitempty"`
	S3       MockS3       `yaml:"s3,omitempty"`
}

// MockSecrets configures the secrets store.
type MockSecrets struct {
	// File is a YAML file of secrets (path -> keys) written into the store at
	// start, relative to devctl.yaml; default DefaultSecretsFile. A missing
	// file seeds nothing.
	File string `yaml:"file,omitempty"`
}

// MockPostgres configures the database.
type MockPostgres struct {
	// Image is the PostgreSQL image, default DefaultPostgresImage;
	// $DEVCTL_POSTGRES_IMAGE takes precedence.
	Image string `yaml:"image,omitempty"`
	// Seed is an SQL file, relative to devctl.yaml, run once on the empty database.
	Seed string `yaml:"seed,omitempty"`
}

// MockS3 configures the object store.
type MockS3 struct {
	// Bucket is created at start; default DefaultBucket.
	Bucket string `yaml:"bucket,omitempty"`
}

// SecretsFile is the absolute path of the secrets seed file.
func (c *Config) SecretsFile() string {
	f := c.Mocks.Secrets.File
	if f == "" {
		f = DefaultSecretsFile
	}
	return filepath.Join(c.Dir, f)
}

// PostgresImage is the image the database runs: $DEVCTL_POSTGRES_IMAGE,
// else mocks.postgres.image, else DefaultPostgresImage.
func (c *Config) PostgresImage() string {
	if img := os.Getenv(PostgresImageEnv); img != "" {
		return img
	}
	if c.Mocks.Postgres.Image != "" {
		return c.Mocks.Postgres.Image
	}
	return DefaultPostgresImage
}

// Bucket is the bucket the S3 stand-in creates.
func (c *Config) Bucket() string {
	if c.Mocks.S3.Bucket != "" {
		return c.Mocks.S3.Bucket
	}
	return DefaultBucket
}

// PostgresSeed reads the seed SQL file, "" when there is none.
func (c *Config) PostgresSeed() (string, error) {
	if c.Mocks.Postgres.Seed == "" {
		return "", nil
	}
	b, err := os.ReadFile(filepath.Join(c.Dir, c.Mocks.Postgres.Seed))
	if err != nil {
		return "", fmt.Errorf("mocks.postgres.seed: %w", err)
	}
	return string(b), nil
}

// ServiceDependencies are the dependencies of s: the project's and its own,
// in the order of Dependencies.
func (c *Config) ServiceDependencies(s *Service) []string {
	return canonical(c.Dependencies, s.Dependencies)
}

// AllDependencies are the dependencies any service declares, in the order
// of Dependencies: what devctl up installs.
func (c *Config) AllDependencies() []string {
	lists := [][]string{c.Dependencies}
	for i := range c.Services {
		lists = append(lists, c.Services[i].Dependencies)
	}
	return canonical(lists...)
}

func canonical(lists ...[]string) []string {
	var out []string
	for _, d := range Dependencies {
		for _, l := range lists {
			if slices.Contains(l, d) {
				out = append(out, d)
				break
			}
		}
	}
	return out
}

// validateDependencies checks a dependencies list at field.
func (v *validator) validateDependencies(field string, deps []string) {
	seen := map[string]int{}
	for i, d := range deps {
		f := fmt.Sprintf("%s[%d]", field, i)
		if !slices.Contains(Dependencies, d) {
			msg := fmt.Sprintf("%q is not a dependency devctl can stand in for; use one of %s", d, strings.Join(Dependencies, ", "))
			if s := suggestDependency(d); s != "" {
				msg = fmt.Sprintf("%q is not a dependency devctl can stand in for: did you mean %q? (one of %s)", d, s, strings.Join(Dependencies, ", "))
			}
			v.add(f, "%s", msg)
			continue
		}
		if j, dup := seen[d]; dup {
			v.add(f, "%q is listed twice (also %s[%d]); remove one", d, field, j)
			continue
		}
		seen[d] = i
	}
}

func suggestDependency(d string) string {
	low := strings.ToLower(strings.TrimSpace(d))
	if slices.Contains(Dependencies, low) {
		return low
	}
	if a, ok := dependencyAliases[low]; ok {
		return a
	}
	return suggest(low, Dependencies)
}

// bucketName is an S3 bucket name as AWS accepts it (general purpose buckets).
var bucketName = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$`)

func (v *validator) validateMocks() {
	m := v.c.Mocks
	if f := m.Secrets.File; f != "" {
		if v.path("mocks.secrets.file", f, false) && v.c.Dir != "" {
			if fi, err := os.Stat(filepath.Join(v.c.Dir, f)); err == nil && fi.IsDir() {
				v.add("mocks.secrets.file", "%q is a folder; give a YAML file of secrets (path: {key: value})", f)
			}
		}
	}
	if img := m.Postgres.Image; img != "" && (strings.ContainsAny(img, " \t\n") || strings.Contains(img, "://")) {
		v.add("mocks.postgres.image", "%q is not an image reference; give one such as postgres:17", img)
	}
	if s := m.Postgres.Seed; s != "" {
		v.path("mocks.postgres.seed", s, true)
	}
	if b := m.S3.Bucket; b != "" && (!bucketName.MatchString(b) || strings.Contains(b, "..")) {
		v.add("mocks.s3.bucket", "%q is not a valid bucket name: use 3-63 lowercase letters, digits, '-' and '.', starting and ending with a letter or digit", b)
	}
}

// gitignoreEntry is what `devctl init` adds to .gitignore.
const gitignoreEntry = "/" + DefaultSecretsFile

// EnsureGitignore adds the secrets seed file to dir/.gitignore unless a
// line already ignores it; it reports whether it changed the file.
func EnsureGitignore(dir string) (bool, error) {
	p := filepath.Join(dir, ".gitignore")
	b, err := os.ReadFile(p)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return false, fmt.Errorf("read %s: %w", p, err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		switch strings.TrimSpace(l) {
		case gitignoreEntry, DefaultSecretsFile, ".devctl/", ".devctl", "/.devctl/", "/.devctl":
			return false, nil
		}
	}
	var add strings.Builder
	if len(b) > 0 && !strings.HasSuffix(string(b), "\n") {
		add.WriteString("\n")
	}
	add.WriteString("# secret values for devctl's local secrets store (never commit them)\n")
	add.WriteString(gitignoreEntry + "\n")
	f, err := os.OpenFile(p, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return false, fmt.Errorf("update %s: %w", p, err)
	}
	if _, err := f.WriteString(add.String()); err != nil {
		_ = f.Close()
		return false, fmt.Errorf("update %s: %w", p, err)
	}
	return true, f.Close()
}
