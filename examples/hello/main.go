// Command hello is the example service devctl builds and deploys: a small
// HTTP server with health endpoints and a graceful shutdown.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"
)

// version is set at link time: -ldflags "-X main.version=v1.2.3".
var version = "dev"

// config is what the service reads from its environment.
type config struct {
	Greeting string // GREETING, default "hello"
	Branch   string // DEVCTL_BRANCH, set by devctl's chart
	Version  string
	Addr     string // ":" + PORT, default ":8080"
	Static   string // STATIC_DIR, default "/static": served under /static/
}

func configFromEnv(getenv func(string) string) config {
	c := config{
		Greeting: getenv("GREETING"),
		Branch:   getenv("DEVCTL_BRANCH"),
		Version:  version,
		Addr:     ":8080",
		Static:   getenv("STATIC_DIR"),
	}
	if c.Static == "" {
		c.Static = "/static"
	}
	if c.Greeting == "" {
		c.Greeting = "hello"
	}
	if p := getenv("PORT"); p != "" {
		c.Addr = ":" + p
	}
	return c
}

// newHandler returns the service's routes, logging every request to log.
func newHandler(c config, log *slog.Logger) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) {
		msg := c.Greeting
		if c.Branch != "" {
			msg += " from branch " + c.Branch
		}
		fmt.Fprintf(w, "%s (version %s)\n", msg, c.Version)
	})
	mux.Handle("GET /static/", http.StripPrefix("/static/", http.FileServer(http.Dir(c.Static))))
	ok := func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok\n") }
	mux.HandleFunc("GET /healthz", ok)
	mux.HandleFunc("GET /readyz", ok)
	return logRequests(mux, log)
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	r.status = code
	r.ResponseWriter.WriteHeader(code)
}

func logRequests(next http.Handler, log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(rec, r)
		log.Info("request", "method", r.Method, "path", r.URL.Path,
			"status", rec.status, "duration", time.Since(start))
	})
}

// run serves until ctx is cancelled, then drains in-flight requests.
func run(ctx context.Context, c config, log *slog.Logger) error {
	ln, err := net.Listen("tcp", c.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s (set PORT to use another port): %w", c.Addr, err)
	}
	srv := &http.Server{
		Handler:           newHandler(c, log),
		ReadHeaderTimeout: 10 * time.Second,
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	log.Info("listening", "addr", ln.Addr().String(), "version", c.Version)

	select {
	case err := <-serveErr:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	log.Info("shutting down")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-serveErr; !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve: %w", err)
	}
	return nil
}

func main() {
	log := slog.New(slog.NewTextHandler(os.Stdout, nil))
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if err := run(ctx, configFromEnv(os.Getenv), log); err != nil {
		log.Error("hello failed", "err", err)
		stop()
		os.Exit(1)
	}
}
