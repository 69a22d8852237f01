package config

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

const withDeps = `apiVersion: devctl.dev/v1alpha1
kind: Project
name: shop
team: platform-dx
dependencies: [metrics, secrets]
mocks:
  secrets: {file: secrets/dev.yaml}
  postgres: {image: devctl.local/postgres:bookworm-1, seed: seed.sql}
  s3: {bucket: receipts}
services:
  - name: shop
    dependencies: [s3, postgres]
  - name: worker
`

func TestParseDependencies(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "seed.sql"), []byte("CREATE TABLE t (id int);\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := Parse(filepath.Join(dir, FileName), []byte(withDeps))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := c.AllDependencies(), []string{"secrets", "postgres", "s3", "metrics"}; !reflect.DeepEqual(got, want) {
		t.Errorf("AllDependencies = %v, want %v", got, want)
	}
	if got, want := c.ServiceDependencies(&c.Services[1]), []string{"secrets", "metrics"}; !reflect.DeepEqual(got, want) {
		t.Errorf("worker's dependencies = %v, want %v (the project's only)", got, want)
	}
	if got, want := c.SecretsFile(), filepath.Join(dir, "secrets/dev.yaml"); got != want {
		t.Errorf("SecretsFile = %s, want %s", got, want)
	}
	if got := c.Bucket(); got != "receipts" {
		t.Errorf("Bucket = %s", got)
	}
	seed, err := c.PostgresSeed()
	if err != nil || !strings.Contains(seed, "CREATE TABLE") {
		t.Errorf("PostgresSeed = %q, %v", seed, err)
	}
}

func TestMocksDefaults(t *testing.T) {
	c, err := Parse(FileName, []byte(minimal))
	if err != nil {
		t.Fatal(err)
	}
	if deps := c.AllDependencies(); deps != nil {
		t.Errorf("AllDependencies = %v, want none", deps)
	}
	if got := c.SecretsFile(); !strings.HasSuffix(got, DefaultSecretsFile) {
		t.Errorf("SecretsFile = %s, want .../%s", got, DefaultSecretsFile)
	}
	if got := c.Bucket(); got != DefaultBucket {
		t.Errorf("Bucket = %s", got)
	}
	t.Setenv(PostgresImageEnv, "")
	if got := c.PostgresImage(); got != DefaultPostgresImage {
		t.Errorf("PostgresImage = %s", got)
	}
	c.Mocks.Postgres.Image = "mine:1"
	if got := c.PostgresImage(); got != "mine:1" {
		t.Errorf("PostgresImage = %s, want the configured one", got)
	}
	t.Setenv(PostgresImageEnv, "ci:2")
	if got := c.PostgresImage(); got != "ci:2" {
		t.Errorf("PostgresImage = %s, want $%s", got, PostgresImageEnv)
	}
	if seed, err := c.PostgresSeed(); seed != "" || err != nil {
		t.Errorf("PostgresSeed = %q, %v; want none", seed, err)
	}
}

func TestDependencyErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		yaml string
		want []string
	}{{
		name: "typo suggests the nearest name",
		yaml: strings.Replace(minimal, "services:", "dependencies: [postgress]\nservices:", 1),
		want: []string{`devctl.yaml:5:16: dependencies[0]: "postgress" is not a dependency devctl can stand in for: did you mean "postgres"? (one of secrets, postgres, s3, metrics)`},
	}, {
		name: "a product's name suggests its stand-in",
		yaml: minimal + "    dependencies: [s3, vault]\n",
		want: []string{`devctl.yaml:7:24: services[0].dependencies[1]: "vault" is not a dependency devctl can stand in for: did you mean "secrets"? (one of secrets, postgres, s3, metrics)`},
	}, {
		name: "nothing close",
		yaml: minimal + "    dependencies: [kafka]\n",
		want: []string{`devctl.yaml:7:20: services[0].dependencies[0]: "kafka" is not a dependency devctl can stand in for; use one of secrets, postgres, s3, metrics`},
	}, {
		name: "listed twice",
		yaml: strings.Replace(minimal, "services:", "dependencies: [s3, s3]\nservices:", 1),
		want: []string{`devctl.yaml:5:20: dependencies[1]: "s3" is listed twice (also dependencies[0]); remove one`},
	}, {
		name: "not a list",
		yaml: strings.Replace(minimal, "services:", "dependencies: postgres\nservices:", 1),
		want: []string{`devctl.yaml:5:15: dependencies: expected a list, got string "postgres"`},
	}, {
		name: "unknown mocks field",
		yaml: strings.Replace(minimal, "services:", "mocks:\n  postgres: {imgae: x}\nservices:", 1),
		want: []string{`devctl.yaml:6:14: mocks.postgres: unknown field "imgae" (did you mean "image"?)`},
	}, {
		name: "bad mocks values",
		yaml: strings.Replace(minimal, "services:", "mocks:\n  secrets: {file: /etc/secrets.yaml}\n  postgres: {image: \"http://x/pg\", seed: missing.sql}\n  s3: {bucket: My_Bucket}\nservices:", 1),
		want: []string{
			`devctl.yaml:6:19: mocks.secrets.file: "/etc/secrets.yaml" is absolute; give a path relative to the folder of devctl.yaml`,
			`devctl.yaml:7:21: mocks.postgres.image: "http://x/pg" is not an image reference; give one such as postgres:17`,
			`devctl.yaml:7:42: mocks.postgres.seed: "missing.sql" does not exist; paths are relative to the folder of devctl.yaml`,
			`devctl.yaml:8:16: mocks.s3.bucket: "My_Bucket" is not a valid bucket name: use 3-63 lowercase letters, digits, '-' and '.', starting and ending with a letter or digit`,
		},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := Parse(FileName, []byte(tt.yaml))
			if err == nil {
				t.Fatal("Parse succeeded")
			}
			if got, want := err.Error(), strings.Join(tt.want, "\n"); got != want {
				t.Errorf("Parse error:\n got %s\nwant %s", got, want)
			}
		})
	}
}

func TestEnsureGitignore(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	p := filepath.Join(dir, ".gitignore")
	if err := os.WriteFile(p, []byte("bin/"), 0o644); err != nil {
		t.Fatal(err)
	}
	changed, err := EnsureGitignore(dir)
	if err != nil || !changed {
		t.Fatalf("EnsureGitignore = %t, %v; want a change", changed, err)
	}
	b, _ := os.ReadFile(p)
	if !strings.HasPrefix(string(b), "bin/\n") || !strings.Contains(string(b), "\n/.devctl/secrets.yaml\n") {
		t.Errorf(".gitignore:\n%s", b)
	}
	if changed, err := EnsureGitignore(dir); err != nil || changed {
		t.Errorf("second EnsureGitignore = %t, %v; want no change", changed, err)
	}
	b2, _ := os.ReadFile(p)
	if string(b2) != string(b) {
		t.Errorf(".gitignore changed again:\n%s", b2)
	}
	// A folder-wide rule already covers it.
	other := t.TempDir()
	if err := os.WriteFile(filepath.Join(other, ".gitignore"), []byte(".devctl/\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if changed, err := EnsureGitignore(other); err != nil || changed {
		t.Errorf("EnsureGitignore with .devctl/ ignored = %t, %v; want no change", changed, err)
	}
}
