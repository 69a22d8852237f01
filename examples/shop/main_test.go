package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

type memOrders struct {
	mu   sync.Mutex
	list []Order
}

func (m *memOrders) Add(_ context.Context, o Order) (Order, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	o.ID, o.Created = int64(len(m.list)+1), time.Unix(1, 0).UTC()
	m.list = append(m.list, o)
	return o, nil
}

func (m *memOrders) List(context.Context) ([]Order, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]Order(nil), m.list...), nil
}

type memReceipts map[string][]byte

func (m memReceipts) Put(_ context.Context, key string, body io.Reader, _ int64) error {
	b, err := io.ReadAll(body)
	m[key] = b
	return err
}

func (m memReceipts) Get(_ context.Context, key string) (io.ReadCloser, error) {
	b, ok := m[key]
	if !ok {
		return nil, errNotFound
	}
	return io.NopCloser(bytes.NewReader(b)), nil
}

func testServer(t *testing.T, env map[string]string) *httptest.Server {
	t.Helper()
	a := &app{cfg: configFromEnv(func(k string) string { return env[k] }), orders: &memOrders{},
		receipts: memReceipts{}, log: slog.New(slog.DiscardHandler)}
	s := httptest.NewServer(a.routes())
	t.Cleanup(s.Close)
	return s
}

func do(t *testing.T, method, url, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestSecretIsHashedNeverShown(t *testing.T) {
	s := testServer(t, map[string]string{"API_KEY": "hunter2"})
	code, body := do(t, "GET", s.URL+"/secret", "")
	sum := sha256.Sum256([]byte("hunter2"))
	if code != 200 || !strings.Contains(body, hex.EncodeToString(sum[:])) || strings.Contains(body, "hunter2") {
		t.Errorf("GET /secret = %d %s", code, body)
	}
	s2 := testServer(t, map[string]string{"SECRET_NAME": "TOKEN"})
	if code, body := do(t, "GET", s2.URL+"/secret", ""); code != 404 || !strings.Contains(body, "$TOKEN is not set") {
		t.Errorf("GET /secret without the secret = %d %s", code, body)
	}
}

func TestOrdersAndReceipts(t *testing.T) {
	s := testServer(t, map[string]string{"S3_BUCKET": "receipts"})
	code, body := do(t, "POST", s.URL+"/orders", `{"item":"book","quantity":2}`)
	var o Order
	if code != 201 || json.Unmarshal([]byte(body), &o) != nil || o.ID != 1 || o.Item != "book" {
		t.Fatalf("POST /orders = %d %s", code, body)
	}
	for _, bad := range []string{`{"item":"","quantity":1}`, `{"item":"x","quantity":0}`, `{"item":"x","qty":1}`, `nope`} {
		if code, _ := do(t, "POST", s.URL+"/orders", bad); code != 400 {
			t.Errorf("POST /orders %s = %d, want 400", bad, code)
		}
	}
	if code, body := do(t, "GET", s.URL+"/orders", ""); code != 200 || !strings.Contains(body, `"item":"book"`) {
		t.Errorf("GET /orders = %d %s", code, body)
	}
	if code, body := do(t, "PUT", s.URL+"/receipts/2026/1.txt", "paid"); code != 201 || !strings.Contains(body, `"key":"2026/1.txt"`) {
		t.Errorf("PUT /receipts = %d %s", code, body)
	}
	if code, body := do(t, "GET", s.URL+"/receipts/2026/1.txt", ""); code != 200 || body != "paid" {
		t.Errorf("GET /receipts = %d %q", code, body)
	}
	if code, _ := do(t, "GET", s.URL+"/receipts/none", ""); code != 404 {
		t.Errorf("GET a missing receipt = %d", code)
	}
	// RED metrics: requests by code, and the latency histogram.
	_, metrics := do(t, "GET", s.URL+"/metrics", "")
	for _, want := range []string{`http_requests_total{code="201",handler="orders",method="post"} 1`,
		`http_requests_total{code="400",handler="orders",method="post"} 4`, "http_request_duration_seconds_bucket"} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}
