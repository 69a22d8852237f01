package ready_test

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/devctl/devctl/internal/mocks/ready"
	"github.com/devctl/devctl/internal/mocks/s3"
	"github.com/devctl/devctl/internal/mocks/vault"
)

func TestVault(t *testing.T) {
	t.Parallel()
	v, err := vault.New("tok")
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(v)
	t.Cleanup(srv.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	start := time.Now()
	if err := ready.Vault(ctx, srv.URL, "tok"); err != nil {
		t.Fatal(err)
	}
	t.Logf("vault ready in %v", time.Since(start))
	// a wrong token fails at once instead of waiting for ctx
	if err := ready.Vault(ctx, srv.URL, "wrong"); err == nil || !strings.Contains(err.Error(), "token is not accepted") {
		t.Fatalf("wrong token: %v", err)
	}
}

func TestS3(t *testing.T) {
	t.Parallel()
	creds := s3.Credentials{AccessKeyID: "AKID", SecretAccessKey: "secret"}
	h, err := s3.New(creds, s3.WithBuckets("bucket"))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := ready.S3(ctx, srv.URL, s3.DefaultRegion, creds.AccessKeyID, creds.SecretAccessKey); err != nil {
		t.Fatal(err)
	}
	short, cancel2 := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel2()
	if err := ready.S3(short, srv.URL, s3.DefaultRegion, creds.AccessKeyID, "wrong"); err == nil || !strings.Contains(err.Error(), "SignatureDoesNotMatch") {
		t.Fatalf("wrong secret: %v", err)
	}
}

func TestNotReadyUntilCtxEnds(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if err := ready.Postgres(ctx, "127.0.0.1:1", "u", "p", "d"); err == nil || !strings.Contains(err.Error(), "not ready") {
		t.Fatalf("nothing listening: %v", err)
	}
}
