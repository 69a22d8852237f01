package ready_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/devctl/devctl/internal/mocks/ready"
)

// postgresImage returns the image to test: $DEVCTL_POSTGRES_IMAGE, else the
// one e2e/images/postgres.sh builds (building it when missing).
func postgresImage(t *testing.T) string {
	t.Helper()
	if img := os.Getenv("DEVCTL_POSTGRES_IMAGE"); img != "" {
		return img
	}
	script, err := filepath.Abs("../../../e2e/images/postgres.sh")
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(script, "--print-image").Output()
	if err != nil {
		t.Fatalf("%s --print-image: %v", script, err)
	}
	img := strings.TrimSpace(string(out))
	if exec.Command("docker", "image", "inspect", img).Run() == nil {
		return img
	}
	t.Logf("building %s with %s (cold: a few minutes)", img, script)
	var stderr bytes.Buffer
	cmd := exec.Command(script)
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("build the PostgreSQL image: %v\n%s\nbuild it with %s, or set DEVCTL_POSTGRES_IMAGE to a postgres image", err, stderr.String(), script)
	}
	return img
}

// TestIntegrationPostgres runs the image as the platform-mocks chart does
// (non-root, read-only root filesystem, throw-away data, a seed script) and
// measures how long it takes until SELECT 1 answers.
func TestIntegrationPostgres(t *testing.T) {
	if testing.Short() {
		t.Skip("needs Docker")
	}
	img := postgresImage(t)
	seed := t.TempDir()
	if err := os.Chmod(seed, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(seed, "01-seed.sql"), []byte("CREATE TABLE greeting (text text);\nINSERT INTO greeting VALUES ('hello');\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	out, err := exec.Command("docker", "run", "-d", "--rm",
		"--user", "999:999", "--read-only", "--cap-drop", "ALL", "--security-opt", "no-new-privileges",
		"--tmpfs", "/tmp", "--tmpfs", "/var/run/postgresql:uid=999,gid=999", "--tmpfs", "/var/lib/postgresql/data:uid=999,gid=999",
		"-e", "POSTGRES_USER=app", "-e", "POSTGRES_DB=app", "-e", "POSTGRES_PASSWORD=s3cret",
		"-e", "PGDATA=/var/lib/postgresql/data/pgdata",
		"-v", seed+":/docker-entrypoint-initdb.d:ro",
		"-p", "127.0.0.1::5432",
		img, "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off").CombinedOutput()
	if err != nil {
		t.Fatalf("docker run %s: %v\n%s", img, err, out)
	}
	id := strings.TrimSpace(string(out))
	t.Cleanup(func() {
		if t.Failed() {
			logs, _ := exec.Command("docker", "logs", id).CombinedOutput()
			t.Logf("container logs:\n%s", logs)
		}
		_ = exec.Command("docker", "rm", "-f", id).Run()
	})
	port, err := exec.Command("docker", "port", id, "5432/tcp").Output()
	if err != nil {
		t.Fatalf("docker port: %v", err)
	}
	addr := strings.TrimSpace(strings.Split(string(port), "\n")[0])

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := ready.Postgres(ctx, addr, "app", "s3cret", "app"); err != nil {
		t.Fatal(err)
	}
	t.Logf("postgres (%s) answered SELECT 1 %v after docker run", img, time.Since(start).Round(time.Millisecond))

	conn, err := pgx.Connect(ctx, "postgres://app:s3cret@"+addr+"/app?sslmode=disable")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = conn.Close(ctx) }()
	var greeting string
	if err := conn.QueryRow(ctx, "SELECT text FROM greeting").Scan(&greeting); err != nil || greeting != "hello" {
		t.Fatalf("seeded table: %q, %v", greeting, err)
	}
	if err := ready.Postgres(ctx, addr, "app", "wrong", "app"); err == nil || !strings.Contains(err.Error(), "not accepted") {
		t.Fatalf("a wrong password: %v", err)
	}
}
