package main

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
)

func TestServeThenGet(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ready := make(chan string, 1)
	done := make(chan error, 1)
	var serveLog bytes.Buffer
	go func() {
		done <- run(ctx, []string{"serve", "-addr", "127.0.0.1:0", "-body", "hello-e2e"}, &serveLog, ready)
	}()
	addr := <-ready

	tests := []struct {
		name    string
		args    []string
		want    string
		wantErr bool
	}{
		{name: "body", args: []string{"get", "-timeout", "5s", "-expect", "hello-e2e", "http://" + addr + "/"}, want: "hello-e2e\n"},
		{name: "healthz", args: []string{"get", "-timeout", "5s", "http://" + addr + "/healthz"}, want: "ok\n\n"},
		{name: "unexpected body", args: []string{"get", "-timeout", "5s", "-expect", "other", "http://" + addr + "/"}, want: "hello-e2e\n", wantErr: true},
		{name: "no url", args: []string{"get"}, wantErr: true},
		{name: "unknown mode", args: []string{"post"}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			err := run(ctx, tt.args, &out, nil)
			if (err != nil) != tt.wantErr {
				t.Fatalf("run(%q) error = %v, wantErr %v", tt.args, err, tt.wantErr)
			}
			if out.String() != tt.want {
				t.Errorf("run(%q) printed %q, want %q", tt.args, out.String(), tt.want)
			}
		})
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("serve did not shut down cleanly: %v", err)
	}
}

func TestGetRetriesUntilReady(t *testing.T) {
	t.Parallel()
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		if calls.Add(1) < 2 {
			http.Error(w, "not yet", http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ready"))
	}))
	defer srv.Close()
	var out bytes.Buffer
	if err := run(context.Background(), []string{"get", "-timeout", "10s", "-expect", "ready", srv.URL}, &out, nil); err != nil {
		t.Fatalf("get: %v", err)
	}
	if calls.Load() != 2 {
		t.Errorf("server saw %d calls, want 2 (one 503, then 200)", calls.Load())
	}
}

func TestGetGivesUp(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "down", http.StatusBadGateway)
	}))
	defer srv.Close()
	err := run(context.Background(), []string{"get", "-timeout", "1500ms", srv.URL}, &bytes.Buffer{}, nil)
	if err == nil || !strings.Contains(err.Error(), "502") {
		t.Fatalf("get error = %v, want one naming the 502 status", err)
	}
	if errors.Is(err, errUsage) {
		t.Fatalf("get error = %v, want a give-up error, not usage", err)
	}
}
