//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/kind/pkg/cluster"

	"github.com/devctl/devctl/e2e/harness"
	"github.com/devctl/devctl/internal/api"
	"github.com/devctl/devctl/internal/kube"
)

// shopSecret is the value the secrets store is seeded with; it must never
// appear in anything devctl prints or records.
const shopSecret = "e2e-Sup3r-s3cret-value-7f3a9c"

// postgresImage is the offline PostgreSQL image (e2e/images/postgres.sh),
// which must be in the local engine.
func postgresImage(ctx context.Context, t *testing.T) string {
	t.Helper()
	img := os.Getenv("DEVCTL_POSTGRES_IMAGE")
	if img == "" {
		root, err := harness.RepoRoot()
		if err != nil {
			t.Fatal(err)
		}
		out, err := exec.CommandContext(ctx, filepath.Join(root, "e2e", "images", "postgres.sh"), "--print-image").Output()
		if err != nil {
			t.Fatalf("e2e/images/postgres.sh --print-image: %v", err)
		}
		img = strings.TrimSpace(string(out))
	}
	if err := exec.CommandContext(ctx, "docker", "image", "inspect", img).Run(); err != nil {
		t.Fatalf("%s is not in the local Docker engine: run `make e2e-images` (or e2e/images/postgres.sh)", img)
	}
	return img
}

// buildMocks compiles the static devctl-mocks binary, which devctl finds
// through $DEVCTL_MOCKS_BIN (an installed devctl finds it beside itself).
func buildMocks(ctx context.Context, t *testing.T) string {
	t.Helper()
	if bin := os.Getenv("DEVCTL_BIN"); bin != "" {
		if p := filepath.Join(filepath.Dir(bin), "devctl-mocks"); fileExists(p) {
			return p
		}
	}
	return buildLinuxTool(ctx, t, "devctl-mocks")
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

// copyShop copies examples/shop into a fresh git repository with a secrets
// seed file.
func copyShop(t *testing.T) string {
	t.Helper()
	root, err := harness.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(t.TempDir(), "shop")
	if out, err := exec.Command("cp", "-r", filepath.Join(root, "examples", "shop"), dst).CombinedOutput(); err != nil {
		t.Fatalf("copy example: %v %s", err, out)
	}
	_ = os.RemoveAll(filepath.Join(dst, "bin"))
	seed := fmt.Sprintf("shop:\n  API_KEY: %s\n", shopSecret)
	if err := os.WriteFile(filepath.Join(dst, ".devctl", "secrets.yaml"), []byte(seed), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"init", "-q", "-b", "e2e/mocks"},
		{"-c", "user.email=e2e@example.com", "-c", "user.name=e2e", "commit", "-q", "--allow-empty", "-m", "init"},
	} {
		cmd := exec.Command("git", args...)
		cmd.Dir = dst
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v %s", args, err, out)
		}
	}
	return dst
}

func call(ctx context.Context, method, url, body string) (int, string, error) {
	req, err := http.NewRequestWithContext(ctx, method, url, strings.NewReader(body))
	if err != nil {
		return 0, "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

var shopURL = regexp.MustCompile(`(?m)^\s+shop\s+(http://127\.0\.0\.1:\d+)\s*$`)

// TestMocksOnKind: `devctl up --ci` on examples/shop installs the four
// platform stand-ins on a real kind cluster before the service, and the
// service reads its secret, writes PostgreSQL and S3 and is scraped, all
// proven through its HTTP endpoints; no credential shows up in what devctl
// prints or records; `devctl down` leaves nothing behind.
func TestMocksOnKind(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	pg := postgresImage(ctx, t)
	mocksBin := buildMocks(ctx, t)
	dir := copyShop(t)
	e := newDevctlEnv(t, ctx, dir)
	e.environ = append(e.environ, "DEVCTL_POSTGRES_IMAGE="+pg, "DEVCTL_MOCKS_BIN="+mocksBin)
	const prefix = "shop-e2e-mocks-"
	kindProvider := cluster.NewProvider(cluster.ProviderWithLogger(harness.KindLogger(t, 0)))
	// Registered first, so it runs last: a failed test leaves no cluster.
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		clusters, _ := kindProvider.List()
		for _, c := range clusters {
			if strings.HasPrefix(c, prefix) {
				_ = kindProvider.Delete(c, "")
			}
		}
	})
	e.cleanupAtEnd(t, false)

	start := time.Now()
	upOut, upErr, code := e.run(ctx, "up", "--ci")
	if code != 0 {
		t.Fatalf("devctl up --ci: exit %d\n%s\n%s", code, upOut, upErr)
	}
	t.Logf("cold devctl up --ci with secrets, postgres, s3, metrics: %.1fs", time.Since(start).Seconds())
	m := shopURL.FindStringSubmatch(upOut)
	if m == nil {
		t.Fatalf("no URL for shop in:\n%s", upOut)
	}
	url := m[1]

	// ls also lists other kind clusters on the machine: find ours.
	var list []api.Environment
	if err := json.Unmarshal([]byte(e.mustRun(ctx, "ls", "-o", "json")), &list); err != nil {
		t.Fatal(err)
	}
	name := ""
	for _, env := range list {
		if strings.HasPrefix(env.Name, prefix) && env.Spec.Project == "shop" {
			name = env.Name
		}
	}
	if name == "" {
		t.Fatalf("no %s* environment in ls: %+v", prefix, list)
	}
	harness.ExportLogsOnFailure(t, kindProvider, name)

	// The time each dependency took to answer, after the install.
	st := e.status(ctx, name)
	var stepNames []string
	for _, s := range st.Status.Run.Steps {
		stepNames = append(stepNames, s.Name)
		t.Logf("step %-15s %6.2fs %s %s", s.Name, s.Duration.Seconds(), s.Status, s.Detail)
		if s.Status != api.StepDone {
			t.Errorf("step %s: %s %s", s.Name, s.Status, s.Detail)
		}
	}
	for _, dep := range []string{"secrets", "postgres", "s3", "metrics"} {
		i := slices.Index(stepNames, "check-"+dep)
		if i < 0 || i > slices.Index(stepNames, "deploy") || i < slices.Index(stepNames, "mocks") {
			t.Errorf("check-%s at %d in %v: want between mocks and deploy", dep, i, stepNames)
		}
	}

	// Every interaction through the service's endpoints.
	code, body, err := call(ctx, "GET", url+"/secret", "")
	sum := sha256.Sum256([]byte(shopSecret))
	if err != nil || code != 200 || !strings.Contains(body, hex.EncodeToString(sum[:])) {
		t.Errorf("GET /secret = %d %q %v; want the SHA-256 of the seeded secret", code, body, err)
	}
	code, body, err = call(ctx, "POST", url+"/orders", `{"item":"book","quantity":2}`)
	if err != nil || code != 201 || !strings.Contains(body, `"item":"book"`) {
		t.Errorf("POST /orders = %d %q %v", code, body, err)
	}
	code, body, err = call(ctx, "GET", url+"/orders", "")
	if err != nil || code != 200 || !strings.Contains(body, `"quantity":2`) {
		t.Errorf("GET /orders = %d %q %v", code, body, err)
	}
	receipt := strings.Repeat("receipt line\n", 20000) // 260 KB: a chunked, checksummed upload
	code, body, err = call(ctx, "PUT", url+"/receipts/2026/order-1.txt", receipt)
	if err != nil || code != 201 {
		t.Errorf("PUT /receipts = %d %q %v", code, body, err)
	}
	code, body, err = call(ctx, "GET", url+"/receipts/2026/order-1.txt", "")
	if err != nil || code != 200 || body != receipt {
		t.Errorf("GET /receipts = %d (%d bytes, want %d) %v", code, len(body), len(receipt), err)
	}
	code, body, err = call(ctx, "GET", url+"/metrics", "")
	if err != nil || code != 200 || !strings.Contains(body, `http_requests_total{code="201",handler="orders",method="post"} 1`) {
		t.Errorf("GET /metrics = %d %v:\n%.2000s", code, err, body)
	}

	// RED in status, from the daemon's scrapes of /metrics (every 5 s, so
	// the traffic goes on while waiting).
	deadline := time.Now().Add(90 * time.Second)
	for {
		for range 10 {
			_, _, _ = call(ctx, "GET", url+"/orders", "")
		}
		st = e.status(ctx, name)
		svc := st.Status.Service("shop")
		if svc != nil && svc.RED != nil && svc.RED.Requests > 0 {
			t.Logf("RED: %+v", *svc.RED)
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("no RED figures in status after 90s: %+v", svc)
			break
		}
		time.Sleep(2 * time.Second)
	}
	// The Secrets injected into shop are in status by name, never a value.
	if svc := st.Status.Service("shop"); svc != nil {
		names := map[string]bool{}
		for _, r := range svc.Secrets {
			names[r.Name] = true
		}
		if !names["postgres"] || !names["s3"] || !names["shop-secrets"] {
			t.Errorf("shop's injected Secrets = %+v, want postgres, s3 and shop-secrets", svc.Secrets)
		}
	}
	statusText := e.mustRun(ctx, "status", name)
	if !strings.Contains(statusText, "req/s") {
		t.Errorf("devctl status shows no RED:\n%s", statusText)
	}

	// No credential anywhere devctl prints or records.
	kc, err := kube.NewClient(st.Status.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	secrets := []string{shopSecret}
	for name, keys := range map[string][]string{
		"postgres": {"password"}, "s3": {"secretAccessKey", "accessKeyId"}, "platform-mocks-vault-token": {"token"},
	} {
		s, err := kc.Set.CoreV1().Secrets(st.Status.Namespace).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatalf("Secret %s: %v", name, err)
		}
		for _, k := range keys {
			if v := string(s.Data[k]); len(v) >= 8 {
				secrets = append(secrets, v)
			} else {
				t.Errorf("Secret %s key %s = %d bytes, want a generated credential", name, k, len(v))
			}
		}
	}
	jsonStatus := e.mustRun(ctx, "status", name, "-o", "json")
	stateJSON, _ := os.ReadFile(filepath.Join(e.state, "state.json"))
	daemonLog, _ := os.ReadFile(filepath.Join(e.state, "daemon.log"))
	if len(stateJSON) == 0 || len(daemonLog) == 0 {
		t.Errorf("state.json (%d bytes) or daemon.log (%d bytes) missing under %s", len(stateJSON), len(daemonLog), e.state)
	}
	for where, text := range map[string]string{
		"up output": upOut + upErr, "devctl status": statusText, "devctl status -o json": jsonStatus,
		"state.json": string(stateJSON), "daemon.log": string(daemonLog),
	} {
		for i, s := range secrets {
			if strings.Contains(text, s) {
				t.Errorf("credential %d is in %s", i, where)
			}
		}
	}

	// A second up changes nothing and reloads no image.
	start = time.Now()
	e.mustRun(ctx, "up", "--ci")
	t.Logf("warm devctl up --ci: %.2fs", time.Since(start).Seconds())
	st = e.status(ctx, name)
	for _, s := range st.Status.Run.Steps {
		t.Logf("warm step %-15s %6.2fs %s %s", s.Name, s.Duration.Seconds(), s.Status, s.Detail)
		if s.Name == "mocks" && (!strings.Contains(s.Detail, "unchanged") || strings.Contains(s.Detail, "loaded")) {
			t.Errorf("warm up: mocks %s", s.Detail)
		}
	}
	if code, body, err := call(ctx, "GET", url+"/orders", ""); err != nil || code != 200 || !strings.Contains(body, `"item":"book"`) {
		t.Errorf("after the warm up GET /orders = %d %q %v; the row must survive", code, body, err)
	}

	// down leaves no cluster, container or environment file.
	out := e.mustRun(ctx, "down")
	if !strings.Contains(out, "deleted kind cluster "+name) {
		t.Errorf("down says:\n%s", out)
	}
	harness.AssertNoClusterContainers(ctx, t, name)
	if clusters, _ := kindProvider.List(); slices.Contains(clusters, name) {
		t.Errorf("kind still lists %s after down", name)
	}
	if _, err := os.Stat(filepath.Join(e.state, "envs", name)); !os.IsNotExist(err) {
		t.Errorf("environment files left: %v", err)
	}
	// The daemon saves its state just after it answers: within moments.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		b, _ := os.ReadFile(filepath.Join(e.state, "state.json"))
		if !bytes.Contains(b, []byte(`"`+name+`"`)) {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("state.json still records %s 10s after down", name)
			break
		}
	}
}
