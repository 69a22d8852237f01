// Package ready checks, at the protocol level, that a stand-in answers as
// its clients will use it: PostgreSQL runs `SELECT 1`, Vault answers
// sys/health and accepts the token, S3 lists buckets with the credentials.
// Each check retries until it succeeds or ctx ends, and returns the last
// error; the daemon runs each as a timed step, through a port-forward.
package ready

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	vault "github.com/hashicorp/vault/api"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// interval is the pause between attempts.
const interval = 100 * time.Millisecond

// Postgres connects to addr (host:port) as user and runs SELECT 1.
func Postgres(ctx context.Context, addr, user, password, database string) error {
	cfg, err := pgx.ParseConfig("postgres://" + addr + "/?sslmode=disable&connect_timeout=2")
	if err != nil {
		return fmt.Errorf("postgres %s: %w", addr, err)
	}
	cfg.User, cfg.Password, cfg.Database = user, password, database
	return poll(ctx, "postgres "+addr, func(ctx context.Context) error {
		conn, err := pgx.ConnectConfig(ctx, cfg)
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && (pgErr.Code == "28P01" || pgErr.Code == "28000") {
			return backoffStop{fmt.Errorf("the credentials are not accepted: %w", err)} // invalid_password, invalid_authorization_specification
		}
		if err != nil {
			return err
		}
		defer func() { _ = conn.Close(context.WithoutCancel(ctx)) }()
		var one int
		if err := conn.QueryRow(ctx, "SELECT 1").Scan(&one); err != nil {
			return err
		}
		if one != 1 {
			return fmt.Errorf("SELECT 1 returned %d", one)
		}
		return nil
	})
}

// Vault checks sys/health at addr (http://host:port) and that token is
// accepted (auth/token/lookup-self).
func Vault(ctx context.Context, addr, token string) error {
	cfg := vault.DefaultConfig()
	cfg.Address = addr
	cfg.MaxRetries = 0
	cfg.Timeout = 2 * time.Second
	c, err := vault.NewClient(cfg)
	if err != nil {
		return fmt.Errorf("vault %s: %w", addr, err)
	}
	c.SetToken(token)
	return poll(ctx, "vault "+addr, func(ctx context.Context) error {
		h, err := c.Sys().HealthWithContext(ctx)
		if err != nil {
			return err
		}
		if !h.Initialized || h.Sealed {
			return fmt.Errorf("initialized=%t sealed=%t", h.Initialized, h.Sealed)
		}
		_, err = c.Auth().Token().LookupSelfWithContext(ctx)
		var re *vault.ResponseError
		if errors.As(err, &re) && re.StatusCode == http.StatusForbidden {
			return backoffStop{fmt.Errorf("the token is not accepted: %w", err)}
		}
		return err
	})
}

// S3 lists buckets at endpoint (http://host:port) with the given
// credentials, path-style, as the services are told to.
func S3(ctx context.Context, endpoint, region, accessKeyID, secretAccessKey string) error {
	c := s3.New(s3.Options{
		Region:           region,
		Credentials:      credentials.NewStaticCredentialsProvider(accessKeyID, secretAccessKey, ""),
		BaseEndpoint:     aws.String(endpoint),
		UsePathStyle:     true,
		HTTPClient:       &http.Client{Timeout: 2 * time.Second},
		RetryMaxAttempts: 1,
	})
	return poll(ctx, "s3 "+endpoint, func(ctx context.Context) error {
		_, err := c.ListBuckets(ctx, &s3.ListBucketsInput{})
		return err
	})
}

// backoffStop wraps an error that retrying will not fix.
type backoffStop struct{ error }

func (b backoffStop) Unwrap() error { return b.error }

func poll(ctx context.Context, what string, f func(context.Context) error) error {
	var last error
	for {
		err := f(ctx)
		if err == nil {
			return nil
		}
		var stop backoffStop
		if errors.As(err, &stop) {
			return fmt.Errorf("%s: %w", what, stop.error)
		}
		last = err
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s not ready: %w (last error: %w)", what, ctx.Err(), last)
		case <-time.After(interval):
		}
	}
}
