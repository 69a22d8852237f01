package vault_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/vault/api"

	"github.com/devctl/devctl/internal/mocks/vault"
)

const token = "s.test-token-0123456789"

// start serves a vault.Server and returns a real Vault client for it.
func start(t *testing.T, opts ...vault.Option) *api.Client {
	t.Helper()
	s, err := vault.New(token, opts...)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	return client(t, srv.URL, token)
}

func client(t *testing.T, addr, tok string) *api.Client {
	t.Helper()
	cfg := api.DefaultConfig()
	cfg.Address = addr
	cfg.MaxRetries = 0
	c, err := api.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	c.SetToken(tok)
	return c
}

func TestKVv2RoundTrip(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c := start(t)
	kv := c.KVv2("secret")

	if _, err := kv.Get(ctx, "app/db"); !errors.Is(err, api.ErrSecretNotFound) {
		t.Fatalf("Get of a missing secret: %v, want ErrSecretNotFound", err)
	}
	v1, err := kv.Put(ctx, "app/db", map[string]any{"username": "app", "password": "one"})
	if err != nil {
		t.Fatal(err)
	}
	if v1.VersionMetadata.Version != 1 {
		t.Fatalf("first version = %d, want 1", v1.VersionMetadata.Version)
	}
	if _, err := kv.Put(ctx, "app/db", map[string]any{"username": "app", "password": "two"}); err != nil {
		t.Fatal(err)
	}
	got, err := kv.Get(ctx, "app/db")
	if err != nil {
		t.Fatal(err)
	}
	if got.Data["password"] != "two" || got.VersionMetadata.Version != 2 {
		t.Fatalf("latest = %v (version %d), want password two at version 2", got.Data, got.VersionMetadata.Version)
	}
	old, err := kv.GetVersion(ctx, "app/db", 1)
	if err != nil {
		t.Fatal(err)
	}
	if old.Data["password"] != "one" {
		t.Fatalf("version 1 = %v, want password one", old.Data)
	}

	// check-and-set
	if _, err := kv.Put(ctx, "app/db", map[string]any{"x": "y"}, api.WithCheckAndSet(1)); err == nil ||
		!strings.Contains(err.Error(), "check-and-set parameter did not match the current version") {
		t.Fatalf("Put with a stale cas: %v, want a check-and-set error", err)
	}

	// merge patch
	if _, err := kv.Patch(ctx, "app/db", map[string]any{"password": "three", "username": nil}); err != nil {
		t.Fatal(err)
	}
	got, err = kv.Get(ctx, "app/db")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := got.Data["username"]; ok || got.Data["password"] != "three" || got.VersionMetadata.Version != 3 {
		t.Fatalf("after patch = %v (version %d), want only password three at version 3", got.Data, got.VersionMetadata.Version)
	}

	// soft delete, undelete, destroy
	if err := kv.Delete(ctx, "app/db"); err != nil {
		t.Fatal(err)
	}
	// As with Vault, a deleted version reads as no data plus its deletion time.
	deleted, err := kv.Get(ctx, "app/db")
	if err != nil {
		t.Fatal(err)
	}
	if deleted.Data != nil || deleted.VersionMetadata.DeletionTime.IsZero() {
		t.Fatalf("Get after delete = %v, %+v; want no data and a deletion time", deleted.Data, deleted.VersionMetadata)
	}
	if err := kv.Undelete(ctx, "app/db", []int{3}); err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Get(ctx, "app/db"); err != nil {
		t.Fatalf("Get after undelete: %v", err)
	}
	if err := kv.Destroy(ctx, "app/db", []int{1}); err != nil {
		t.Fatal(err)
	}
	if destroyed, err := kv.GetVersion(ctx, "app/db", 1); err != nil || destroyed.Data != nil || !destroyed.VersionMetadata.Destroyed {
		t.Fatalf("GetVersion of a destroyed version = %+v, %v; want no data, destroyed", destroyed, err)
	}
	if _, err := kv.GetVersion(ctx, "app/db", 9); !errors.Is(err, api.ErrSecretNotFound) {
		t.Fatalf("GetVersion of a missing version: %v, want ErrSecretNotFound", err)
	}

	// metadata
	if err := kv.PutMetadata(ctx, "app/db", api.KVMetadataPutInput{MaxVersions: 5, CustomMetadata: map[string]any{"owner": "team"}}); err != nil {
		t.Fatal(err)
	}
	meta, err := kv.GetMetadata(ctx, "app/db")
	if err != nil {
		t.Fatal(err)
	}
	if meta.CurrentVersion != 3 || meta.OldestVersion != 1 || meta.MaxVersions != 5 || len(meta.Versions) != 3 ||
		meta.CustomMetadata["owner"] != "team" || !meta.Versions["1"].Destroyed {
		t.Fatalf("metadata = %+v", meta)
	}
	if err := kv.DeleteMetadata(ctx, "app/db"); err != nil {
		t.Fatal(err)
	}
	if _, err := kv.GetMetadata(ctx, "app/db"); err == nil {
		t.Fatal("GetMetadata after DeleteMetadata succeeded")
	}
}

func TestMaxVersionsPrunesOldest(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c := start(t)
	kv := c.KVv2("secret")
	if err := kv.PutMetadata(ctx, "p", api.KVMetadataPutInput{MaxVersions: 2}); err != nil {
		t.Fatal(err)
	}
	for i := range 4 {
		if _, err := kv.Put(ctx, "p", map[string]any{"i": i}); err != nil {
			t.Fatal(err)
		}
	}
	meta, err := kv.GetMetadata(ctx, "p")
	if err != nil {
		t.Fatal(err)
	}
	if meta.OldestVersion != 3 || meta.CurrentVersion != 4 || len(meta.Versions) != 2 {
		t.Fatalf("oldest %d current %d versions %d, want 3, 4, 2", meta.OldestVersion, meta.CurrentVersion, len(meta.Versions))
	}
}

func TestList(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c := start(t)
	kv := c.KVv2("secret")
	for _, p := range []string{"app/db", "app/api", "app/nested/x", "other"} {
		if _, err := kv.Put(ctx, p, map[string]any{"k": "v"}); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		path string
		want []string
	}{
		{"secret/metadata", []string{"app/", "other"}},
		{"secret/metadata/app", []string{"api", "db", "nested/"}},
		{"secret/metadata/app/", []string{"api", "db", "nested/"}},
		{"secret/metadata/app/nested", []string{"x"}},
	}
	for _, tt := range tests {
		s, err := c.Logical().ListWithContext(ctx, tt.path)
		if err != nil {
			t.Fatalf("LIST %s: %v", tt.path, err)
		}
		if s == nil {
			t.Fatalf("LIST %s: nothing", tt.path)
		}
		keys, _ := s.Data["keys"].([]any)
		var got []string
		for _, k := range keys {
			got = append(got, k.(string))
		}
		if strings.Join(got, ",") != strings.Join(tt.want, ",") {
			t.Errorf("LIST %s = %v, want %v", tt.path, got, tt.want)
		}
	}
	if s, err := c.Logical().ListWithContext(ctx, "secret/metadata/none"); err != nil || s != nil {
		t.Errorf("LIST of an empty folder = %v, %v; want nothing", s, err)
	}
}

func TestSystemEndpoints(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c := start(t, vault.WithMounts("secret", "kv"))

	h, err := c.Sys().HealthWithContext(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !h.Initialized || h.Sealed || h.Version != vault.Version {
		t.Fatalf("health = %+v", h)
	}
	mounts, err := c.Sys().ListMountsWithContext(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []string{"secret/", "kv/"} {
		if mounts[m] == nil || mounts[m].Type != "kv" || mounts[m].Options["version"] != "2" {
			t.Errorf("mount %s = %+v, want kv version 2", m, mounts[m])
		}
	}
	self, err := c.Auth().Token().LookupSelfWithContext(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if id, _ := self.TokenID(); id != token {
		t.Errorf("lookup-self id = %q", id)
	}
	if _, err := c.KVv2("kv").Put(ctx, "x", map[string]any{"a": "b"}); err != nil {
		t.Errorf("second mount: %v", err)
	}
	if _, err := c.KVv2("nomount").Get(ctx, "x"); err == nil {
		t.Error("read from an unknown mount succeeded")
	}
}

func TestWrongToken(t *testing.T) {
	t.Parallel()
	s, err := vault.New(token)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	for _, tok := range []string{"wrong", ""} {
		c := client(t, srv.URL, tok)
		c.ClearToken()
		if tok != "" {
			c.SetToken(tok)
		}
		_, err := c.KVv2("secret").Get(context.Background(), "x")
		var re *api.ResponseError
		if !errors.As(err, &re) || re.StatusCode != http.StatusForbidden || len(re.Errors) != 1 || re.Errors[0] != "permission denied" {
			t.Errorf("token %q: %v, want 403 permission denied", tok, err)
		}
		// health needs no token, as in Vault
		if _, err := c.Sys().Health(); err != nil {
			t.Errorf("token %q: health: %v", tok, err)
		}
	}
}

func TestStatePersistsAcrossRestarts(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	file := filepath.Join(t.TempDir(), "state", "vault.json")
	c := start(t, vault.WithStateFile(file))
	if _, err := c.KVv2("secret").Put(ctx, "app/db", map[string]any{"password": "kept"}); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(file)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("state file mode %v, want 0600", fi.Mode().Perm())
	}
	c2 := start(t, vault.WithStateFile(file))
	got, err := c2.KVv2("secret").Get(ctx, "app/db")
	if err != nil {
		t.Fatal(err)
	}
	if got.Data["password"] != "kept" {
		t.Fatalf("after restart = %v", got.Data)
	}
	entries, _ := os.ReadDir(filepath.Dir(file))
	if len(entries) != 1 {
		t.Errorf("state dir holds %d files, want only the state file (temporary files left behind?)", len(entries))
	}
}

func TestCorruptStateFileFails(t *testing.T) {
	t.Parallel()
	file := filepath.Join(t.TempDir(), "vault.json")
	if err := os.WriteFile(file, []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := vault.New(token, vault.WithStateFile(file)); err == nil || !strings.Contains(err.Error(), "delete it") {
		t.Fatalf("New with a corrupt state file: %v", err)
	}
}

func TestSeed(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	seedFile := filepath.Join(dir, "seed.yaml")
	state := filepath.Join(dir, "vault.json")
	write := func(s string) vault.Seed {
		t.Helper()
		if err := os.WriteFile(seedFile, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
		seed, err := vault.LoadSeed(seedFile)
		if err != nil {
			t.Fatal(err)
		}
		return seed
	}
	seed := write("secret/app/db: {username: app, password: pw, port: 5432}\napp/api: {token: abc}\n")
	start(t, vault.WithStateFile(state), vault.WithSeed(seed))
	// the same seed again: no new versions
	c := start(t, vault.WithStateFile(state), vault.WithSeed(seed))
	kv := c.KVv2("secret")
	db, err := kv.Get(ctx, "app/db")
	if err != nil {
		t.Fatal(err)
	}
	if db.VersionMetadata.Version != 1 || db.Data["password"] != "pw" || fmt.Sprint(db.Data["port"]) != "5432" {
		t.Fatalf("seeded app/db = %v (version %d)", db.Data, db.VersionMetadata.Version)
	}
	if api, err := kv.Get(ctx, "app/api"); err != nil || api.Data["token"] != "abc" {
		t.Fatalf("seeded app/api (default mount) = %v, %v", api, err)
	}
	// a changed seed writes a new version
	c = start(t, vault.WithStateFile(state), vault.WithSeed(write("secret/app/db: {username: app, password: new}\n")))
	db, err = c.KVv2("secret").Get(ctx, "app/db")
	if err != nil {
		t.Fatal(err)
	}
	if db.VersionMetadata.Version != 2 || db.Data["password"] != "new" {
		t.Fatalf("reseeded app/db = %v (version %d)", db.Data, db.VersionMetadata.Version)
	}
}

func TestLoadSeedErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("- a list\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{bad, filepath.Join(dir, "missing.yaml")} {
		if _, err := vault.LoadSeed(p); err == nil {
			t.Errorf("LoadSeed(%s) succeeded", p)
		}
	}
	if _, err := vault.New(token, vault.WithSeed(vault.Seed{"secret/": {"a": "b"}})); err == nil {
		t.Error("a seed path naming only a mount was accepted")
	}
	if _, err := vault.New(""); !errors.Is(err, vault.ErrNoToken) {
		t.Errorf("New without a token: %v", err)
	}
}

func TestNeverLogsSecrets(t *testing.T) {
	t.Parallel()
	var logs bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	c := start(t, vault.WithLogger(logger), vault.WithSeed(vault.Seed{"seeded": {"k": "seed-value-xyz"}}))
	ctx := context.Background()
	if _, err := c.KVv2("secret").Put(ctx, "p", map[string]any{"k": "written-value-xyz"}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.KVv2("secret").Get(ctx, "p"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Auth().Token().LookupSelf(); err != nil {
		t.Fatal(err)
	}
	out := logs.String()
	if !strings.Contains(out, "secret/data/p") {
		t.Fatalf("requests not logged: %q", out)
	}
	for _, secret := range []string{"seed-value-xyz", "written-value-xyz", token} {
		if strings.Contains(out, secret) {
			t.Errorf("log contains %q:\n%s", secret, out)
		}
	}
}

func TestErrorShape(t *testing.T) {
	t.Parallel()
	s, err := vault.New(token)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		method, path, body string
		status             int
		want               string
	}{
		{"GET", "/v1/secret/data/missing", "", 404, `{"errors":[]}`},
		{"GET", "/v1/nomount/data/x", "", 404, `route entry not found`},
		{"POST", "/v1/secret/data/x", `{"data":`, 400, `failed to parse JSON input`},
		{"POST", "/v1/secret/data/x", `{}`, 400, `no data provided`},
		{"PUT", "/v1/sys/health", "", 405, `unsupported operation`},
		{"GET", "/v1/secret/data/x?version=abc", "", 400, `invalid version`},
		{"GET", "/nothing", "", 404, `{"errors":[]}`},
	}
	for _, tt := range tests {
		req := httptest.NewRequest(tt.method, tt.path, strings.NewReader(tt.body))
		req.Header.Set("X-Vault-Token", token)
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, req)
		if rec.Code != tt.status || !strings.Contains(rec.Body.String(), tt.want) {
			t.Errorf("%s %s = %d %s, want %d containing %s", tt.method, tt.path, rec.Code, rec.Body, tt.status, tt.want)
		}
		if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
			t.Errorf("%s %s: Content-Type %q", tt.method, tt.path, ct)
		}
	}
}
