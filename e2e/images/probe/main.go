// Command probe is the test workload of the e2e suite, shipped as a static
// binary in a FROM scratch image. It has two modes:
//
//	probe serve [-addr :8080] [-body TEXT]
//	    serves TEXT (default "probe <hostname>") on every path; /healthz answers "ok".
//	probe get [-timeout 2m] [-expect TEXT] URL
//	    GETs URL until it answers 200 (retrying while DNS or the Service is not
//	    ready yet), prints the body and fails unless it contains TEXT.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

// errUsage is returned for a missing or unknown mode.
var errUsage = errors.New("usage: probe serve [-addr :8080] [-body TEXT] | probe get [-timeout 2m] [-expect TEXT] URL")

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, nil); err != nil {
		fmt.Fprintln(os.Stderr, "probe:", err)
		os.Exit(1)
	}
}

// run executes one mode. ready, when not nil, receives the listening address
// in serve mode (tests use it; main passes nil).
func run(ctx context.Context, args []string, stdout io.Writer, ready chan<- string) error {
	if len(args) == 0 {
		return errUsage
	}
	switch args[0] {
	case "serve":
		fs := flag.NewFlagSet("serve", flag.ContinueOnError)
		addr := fs.String("addr", ":8080", "listen address")
		body := fs.String("body", "", "response body (default \"probe <hostname>\")")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		if *body == "" {
			host, _ := os.Hostname()
			*body = "probe " + host
		}
		return serve(ctx, *addr, *body, stdout, ready)
	case "get":
		fs := flag.NewFlagSet("get", flag.ContinueOnError)
		timeout := fs.Duration("timeout", 2*time.Minute, "give up after this long")
		expect := fs.String("expect", "", "fail unless the body contains this text")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		if fs.NArg() != 1 {
			return errUsage
		}
		ctx, cancel := context.WithTimeout(ctx, *timeout)
		defer cancel()
		body, err := get(ctx, fs.Arg(0), stdout)
		if err != nil {
			return err
		}
		if !strings.Contains(body, *expect) {
			return fmt.Errorf("GET %s: body %q does not contain %q", fs.Arg(0), body, *expect)
		}
		return nil
	default:
		return errUsage
	}
}

func serve(ctx context.Context, addr, body string, log io.Writer, ready chan<- string) error {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, "ok\n")
	})
	mux.HandleFunc("GET /", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, body)
	})
	srv := &http.Server{Addr: addr, Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("listen %s: %w", addr, err)
	}
	fmt.Fprintf(log, "probe: serving on %s\n", ln.Addr())
	if ready != nil {
		ready <- ln.Addr().String()
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve %s: %w", addr, err)
	case <-ctx.Done():
		shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		return srv.Shutdown(shutdownCtx)
	}
}

// get retries until the URL answers 200 or ctx ends, and prints the body.
func get(ctx context.Context, url string, out io.Writer) (string, error) {
	client := &http.Client{Timeout: 5 * time.Second}
	var last error
	for {
		body, err := getOnce(ctx, client, url)
		if err == nil {
			fmt.Fprintln(out, body)
			return body, nil
		}
		last = err
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("GET %s: gave up: %w", url, last)
		case <-time.After(time.Second):
		}
	}
}

func getOnce(ctx context.Context, client *http.Client, url string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	resp, err := client.Do(req)
	if err != nil {
		return "", err
	}
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("status %s", resp.Status)
	}
	return string(b), nil
}
