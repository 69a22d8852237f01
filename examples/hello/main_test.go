package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestHandler(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		env        map[string]string
		method     string
		path       string
		wantStatus int
		wantBody   string
	}{
		{"default greeting", nil, "GET", "/", 200, "hello (version dev)\n"},
		{"greeting and branch", map[string]string{"GREETING": "hi", "DEVCTL_BRANCH": "feature/x"}, "GET", "/", 200, "hi from branch feature/x (version dev)\n"},
		{"healthz", nil, "GET", "/healthz", 200, "ok\n"},
		{"readyz", nil, "GET", "/readyz", 200, "ok\n"},
		{"static file", map[string]string{"STATIC_DIR": "testdata/static"}, "GET", "/static/greeting.txt", 200, "hello from a file\n"},
		{"unknown path", nil, "GET", "/nope", 404, ""},
		{"wrong method", nil, "POST", "/", 405, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var logs bytes.Buffer
			c := configFromEnv(func(k string) string { return tt.env[k] })
			h := newHandler(c, slog.New(slog.NewTextHandler(&logs, nil)))
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(tt.method, tt.path, nil))
			if rec.Code != tt.wantStatus {
				t.Fatalf("status = %d, want %d", rec.Code, tt.wantStatus)
			}
			if tt.wantBody != "" && rec.Body.String() != tt.wantBody {
				t.Errorf("body = %q, want %q", rec.Body.String(), tt.wantBody)
			}
			for _, want := range []string{"path=" + tt.path, "status=" + strconv.Itoa(tt.wantStatus)} {
				if !strings.Contains(logs.String(), want) {
					t.Errorf("request log %q does not mention %q", logs.String(), want)
				}
			}
		})
	}
}

func TestConfigFromEnv(t *testing.T) {
	t.Parallel()
	c := configFromEnv(func(k string) string { return map[string]string{"PORT": "9090"}[k] })
	if c.Addr != ":9090" || c.Greeting != "hello" {
		t.Fatalf("config = %+v, want Addr :9090 and Greeting hello", c)
	}
}

func TestRunShutsDownGracefully(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, config{Greeting: "hello", Version: "test", Addr: addr}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	}()

	var resp *http.Response
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if resp, err = http.Get("http://" + addr + "/readyz"); err == nil {
			break
		}
	}
	if err != nil {
		t.Fatalf("server never answered: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("readyz = %d, want 200", resp.StatusCode)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("run returned %v after cancel, want nil", err)
	}
}
