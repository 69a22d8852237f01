package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Order is one row of the orders table.
type Order struct {
	ID       int64     `json:"id"`
	Item     string    `json:"item"`
	Quantity int       `json:"quantity"`
	Created  time.Time `json:"created"`
}

// orders stores orders (PostgreSQL in the service, a map in tests).
type orders interface {
	Add(ctx context.Context, o Order) (Order, error)
	List(ctx context.Context) ([]Order, error)
}

// receipts stores receipt objects (S3 in the service).
type receipts interface {
	Put(ctx context.Context, key string, body io.Reader, size int64) error
	Get(ctx context.Context, key string) (io.ReadCloser, error)
}

// errNotFound is returned by receipts.Get for a missing key.
var errNotFound = errors.New("not found")

type app struct {
	cfg      config
	orders   orders
	receipts receipts
	log      *slog.Logger
}

// maxBody bounds request bodies.
const maxBody = 10 << 20

func (a *app) routes() http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	requests := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "http_requests_total", Help: "HTTP requests by route, method and status code.",
	}, []string{"handler", "method", "code"})
	duration := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "http_request_duration_seconds", Help: "HTTP request latency by route.",
		Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
	}, []string{"handler", "method", "code"})
	reg.MustRegister(requests, duration)

	mux := http.NewServeMux()
	handle := func(pattern, name string, h http.HandlerFunc) {
		labels := prometheus.Labels{"handler": name}
		mux.Handle(pattern, promhttp.InstrumentHandlerCounter(requests.MustCurryWith(labels),
			promhttp.InstrumentHandlerDuration(duration.MustCurryWith(labels), h)))
	}
	ok := func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok\n") }
	mux.HandleFunc("GET /healthz", ok)
	mux.HandleFunc("GET /readyz", ok)
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	handle("GET /{$}", "index", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, "shop: GET /secret, POST|GET /orders, PUT|GET /receipts/{key}, GET /metrics\n")
	})
	handle("GET /secret", "secret", a.secret)
	handle("POST /orders", "orders", a.addOrder)
	handle("GET /orders", "orders", a.listOrders)
	handle("PUT /receipts/{key...}", "receipts", a.putReceipt)
	handle("GET /receipts/{key...}", "receipts", a.getReceipt)
	return mux
}

// secret proves the service received its secret without revealing it.
func (a *app) secret(w http.ResponseWriter, _ *http.Request) {
	if a.cfg.Secret == "" {
		a.fail(w, http.StatusNotFound, "$"+a.cfg.SecretName+" is not set: is the secret in the store?")
		return
	}
	sum := sha256.Sum256([]byte(a.cfg.Secret))
	writeJSON(w, http.StatusOK, map[string]string{"name": a.cfg.SecretName, "sha256": hex.EncodeToString(sum[:])})
}

func (a *app) addOrder(w http.ResponseWriter, r *http.Request) {
	var o Order
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&o); err != nil {
		a.fail(w, http.StatusBadRequest, "want {\"item\": \"...\", \"quantity\": n}: "+err.Error())
		return
	}
	if strings.TrimSpace(o.Item) == "" || o.Quantity < 1 {
		a.fail(w, http.StatusBadRequest, "item is required and quantity must be at least 1")
		return
	}
	saved, err := a.orders.Add(r.Context(), o)
	if err != nil {
		a.error(w, "add order", err)
		return
	}
	writeJSON(w, http.StatusCreated, saved)
}

func (a *app) listOrders(w http.ResponseWriter, r *http.Request) {
	list, err := a.orders.List(r.Context())
	if err != nil {
		a.error(w, "list orders", err)
		return
	}
	if list == nil {
		list = []Order{}
	}
	writeJSON(w, http.StatusOK, list)
}

func (a *app) putReceipt(w http.ResponseWriter, r *http.Request) {
	key := r.PathValue("key")
	if key == "" {
		a.fail(w, http.StatusBadRequest, "a key is required: PUT /receipts/{key}")
		return
	}
	if r.ContentLength > maxBody {
		a.fail(w, http.StatusRequestEntityTooLarge, "receipts are at most 10 MiB")
		return
	}
	// The SDK computes a checksum of the body before sending it, which over
	// plain HTTP needs a seekable body: read it (at most maxBody) first.
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		a.fail(w, http.StatusRequestEntityTooLarge, "receipts are at most 10 MiB: "+err.Error())
		return
	}
	if err := a.receipts.Put(r.Context(), key, bytes.NewReader(body), int64(len(body))); err != nil {
		a.error(w, "put receipt", err)
		return
	}
	writeJSON(w, http.StatusCreated, map[string]string{"bucket": a.cfg.Bucket, "key": key})
}

func (a *app) getReceipt(w http.ResponseWriter, r *http.Request) {
	body, err := a.receipts.Get(r.Context(), r.PathValue("key"))
	if errors.Is(err, errNotFound) {
		a.fail(w, http.StatusNotFound, "no receipt "+r.PathValue("key"))
		return
	}
	if err != nil {
		a.error(w, "get receipt", err)
		return
	}
	defer func() { _ = body.Close() }()
	w.Header().Set("Content-Type", "application/octet-stream")
	_, _ = io.Copy(w, body)
}

func (a *app) fail(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, map[string]string{"error": msg})
}

func (a *app) error(w http.ResponseWriter, what string, err error) {
	a.log.Error(what, "err", err)
	a.fail(w, http.StatusInternalServerError, what+": "+err.Error())
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}
