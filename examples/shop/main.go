// Command shop is the example service that uses platform dependencies the
// way a golden-path service does in production, with nothing local in its
// code: a secret from the secrets store (env vars from an ExternalSecret),
// a PostgreSQL database (PG* / DATABASE_URL from the claim's Secret), an S3
// bucket (AWS_ENDPOINT_URL_S3, S3_BUCKET and the AWS SDK's variables) and
// Prometheus metrics on /metrics. devctl up gives it stand-ins for all four.
//
//	GET  /secret           SHA-256 of the secret named by $SECRET_NAME (never the value)
//	POST /orders           {"item": "book", "quantity": 2} -> the stored order
//	GET  /orders           every order
//	PUT  /receipts/{key}   stores the body in the bucket
//	GET  /receipts/{key}   reads it back
//	GET  /metrics          Prometheus metrics (http_requests_total, http_request_duration_seconds)
package main

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/jackc/pgx/v5/pgxpool"
)

func main() {
	log := slog.New(slog.NewJSONHandler(os.Stdout, nil))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, log, os.Getenv); err != nil {
		log.Error("shop stopped", "err", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, log *slog.Logger, getenv func(string) string) error {
	cfg := configFromEnv(getenv)
	db, err := pgxpool.New(ctx, cfg.DatabaseURL)
	if err != nil {
		return err
	}
	defer db.Close()
	if err := migrate(ctx, db); err != nil {
		return err
	}
	awsCfg, err := awsconfig.LoadDefaultConfig(ctx)
	if err != nil {
		return err
	}
	// The endpoint comes from AWS_ENDPOINT_URL_S3; stand-ins and most
	// S3-compatible stores want path-style addressing.
	store := s3.NewFromConfig(awsCfg, func(o *s3.Options) { o.UsePathStyle = cfg.PathStyle })

	app := &app{cfg: cfg, orders: pgOrders{db}, receipts: s3Receipts{client: store, bucket: cfg.Bucket}, log: log}
	srv := &http.Server{Addr: cfg.Addr, Handler: app.routes(), ReadHeaderTimeout: 5 * time.Second}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return err
	}
	log.Info("listening", "addr", ln.Addr().String(), "bucket", cfg.Bucket, "secret", cfg.SecretName)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// config is what the service reads from its environment.
type config struct {
	Addr        string // ":" + PORT
	DatabaseURL string // DATABASE_URL (the PG* variables work too)
	Bucket      string // S3_BUCKET
	PathStyle   bool   // true unless S3_VIRTUAL_HOSTED=true
	SecretName  string // SECRET_NAME, default API_KEY
	Secret      string // the value of $SECRET_NAME
}

func configFromEnv(getenv func(string) string) config {
	c := config{Addr: ":8080", DatabaseURL: getenv("DATABASE_URL"), Bucket: getenv("S3_BUCKET"),
		PathStyle: getenv("S3_VIRTUAL_HOSTED") != "true", SecretName: getenv("SECRET_NAME")}
	if p := getenv("PORT"); p != "" {
		c.Addr = ":" + p
	}
	if c.SecretName == "" {
		c.SecretName = "API_KEY"
	}
	c.Secret = getenv(c.SecretName)
	return c
}
