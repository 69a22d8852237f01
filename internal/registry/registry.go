// Package registry is the OCI registry the devctl daemon serves, so that
// cluster nodes pull images instead of having whole archives loaded into
// them: a push sends only the layers the registry lacks, and a node fetches
// only the layers it lacks.
//
// Blobs, manifests and tags live under one directory and survive restarts.
// Blob uploads are served by go-containerregistry's registry handler over
// that directory; manifests, tags and the catalog are served here, from an
// index written atomically to disk on every change.
//
// The registry listens only on the addresses it is given: 127.0.0.1 for the
// host (as localhost:5001, the address KEP-1755 tools expect, or a free port
// when 5001 is taken) and the gateway of the Docker network the kind nodes
// are on, so that they can pull. Node-side, containerd maps the names images
// are tagged with (devctl.local and localhost:<port>) to that gateway
// address over plain HTTP: see NodeHosts and ContainerdConfigPatch.
package registry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"time"

	ggcr "github.com/google/go-containerregistry/pkg/registry"
)

// DefaultPort is the port the registry prefers, on every address: the one
// KEP-1755 tools and kind's local registry guide use (localhost:5001).
const DefaultPort = 5001

// DefaultName is the registry name images are tagged with for the cluster,
// besides localhost:<port>: devctl.local/<repository>:<tag>. It does not
// depend on the port the registry got.
const DefaultName = "devctl.local"

// ErrClosed means the registry was shut down.
var ErrClosed = errors.New("the registry is shut down")

// ErrUnspecifiedAddress means Listen was asked for 0.0.0.0 or ::.
var ErrUnspecifiedAddress = errors.New("the registry listens on specific addresses only (127.0.0.1, the kind network's gateway), never on all interfaces")

// Option configures a Registry.
type Option func(*Registry)

// WithLogger sets the logger for debug messages (one per request); the
// default discards them.
func WithLogger(l *slog.Logger) Option {
	return func(r *Registry) { r.log = l }
}

// WithPort sets the preferred port; 0 takes a free one. Default DefaultPort.
func WithPort(port int) Option {
	return func(r *Registry) { r.port = port }
}

// WithNames sets the registry names, besides localhost:<port>, that Push
// accepts and NodeHosts maps to the registry; pods' images use the first
// (see Hosting). Default DefaultName.
func WithNames(names ...string) Option {
	return func(r *Registry) { r.names = names }
}

// WithTransport sets the HTTP transport Push uses. Default
// http.DefaultTransport.
func WithTransport(t http.RoundTripper) Option {
	return func(r *Registry) { r.transport = t }
}

// WithClock sets the clock GC uses to age blobs. Default time.Now.
func WithClock(now func() time.Time) Option {
	return func(r *Registry) { r.now = now }
}

// Registry is an OCI distribution registry over a directory. It is an
// http.Handler, and serves itself on the addresses given to Listen. Its
// methods are safe for concurrent use.
type Registry struct {
	log       *slog.Logger
	port      int
	names     []string
	transport http.RoundTripper
	now       func() time.Time

	store *store
	blobs http.Handler // go-containerregistry's handler, for blob routes and /v2/

	mu        sync.Mutex
	srv       *http.Server
	listeners map[netip.Addr]net.Listener
	closed    bool
	serving   sync.WaitGroup
}

// New opens (creating it if needed) the registry stored in dir. It serves
// nothing until Listen is called.
func New(dir string, opts ...Option) (*Registry, error) {
	r := &Registry{
		log:       slog.New(slog.DiscardHandler),
		port:      DefaultPort,
		names:     []string{DefaultName},
		transport: http.DefaultTransport,
		now:       time.Now,
		listeners: map[netip.Addr]net.Listener{},
	}
	for _, o := range opts {
		o(r)
	}
	s, err := openStore(dir, r.now)
	if err != nil {
		return nil, err
	}
	r.store = s
	r.blobs = ggcr.New(ggcr.WithBlobHandler(s), ggcr.Logger(log.New(io.Discard, "", 0)))
	r.srv = &http.Server{
		Handler:           r,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(r.log.Handler(), slog.LevelDebug),
	}
	return r, nil
}

// ServeHTTP serves the OCI distribution API. Only requests that arrive on a
// loopback address may change the registry; on other addresses (the kind
// network's gateway, reachable by every container on that network) it only
// serves pulls.
func (r *Registry) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	start := time.Now()
	rec := &statusWriter{ResponseWriter: w, status: http.StatusOK}
	var rerr *regError
	switch rt, repo, ref := parseRoute(req.URL.Path); {
	case req.Method != http.MethodGet && req.Method != http.MethodHead && !fromLoopback(req):
		rerr = &regError{http.StatusForbidden, "DENIED", "this address of the registry only serves pulls: push to " + r.pushHost()}
	case rt == routeManifest:
		rerr = r.serveManifest(rec, req, repo, ref)
	case rt == routeTags:
		rerr = r.serveTags(rec, req, repo)
	case rt == routeCatalog:
		rerr = r.serveCatalog(rec, req)
	default:
		r.blobs.ServeHTTP(rec, req)
	}
	if rerr != nil {
		rerr.write(rec)
	}
	r.log.Debug("registry request", "method", req.Method, "path", req.URL.Path, "status", rec.status,
		"duration", time.Since(start))
}

// fromLoopback reports whether req arrived on a loopback address.
func fromLoopback(req *http.Request) bool {
	a, ok := req.Context().Value(http.LocalAddrContextKey).(net.Addr)
	if !ok {
		return false
	}
	ap, err := netip.ParseAddrPort(a.String())
	return err == nil && ap.Addr().Unmap().IsLoopback()
}

// pushHost is where to push, for messages.
func (r *Registry) pushHost() string {
	if h := r.Host(); h != "" {
		return h
	}
	return "the registry on 127.0.0.1"
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

// Listen serves the registry on ip, at the preferred port or, when that is
// taken, a free one, and returns the address. Listening again on the same ip
// returns the existing address.
func (r *Registry) Listen(ctx context.Context, ip netip.Addr) (netip.AddrPort, error) {
	if !ip.IsValid() || ip.IsUnspecified() {
		return netip.AddrPort{}, fmt.Errorf("listen on %s: %w", ip, ErrUnspecifiedAddress)
	}
	ip = ip.Unmap()
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return netip.AddrPort{}, fmt.Errorf("listen on %s: %w", ip, ErrClosed)
	}
	if l, ok := r.listeners[ip]; ok {
		return addrPort(l), nil
	}
	var lc net.ListenConfig
	l, err := lc.Listen(ctx, "tcp", netip.AddrPortFrom(ip, uint16(r.port)).String())
	if r.port != 0 && errors.Is(err, syscall.EADDRINUSE) {
		r.log.Debug("registry port taken, using a free one", "address", ip.String(), "port", r.port)
		l, err = lc.Listen(ctx, "tcp", netip.AddrPortFrom(ip, 0).String())
	}
	if errors.Is(err, syscall.EADDRNOTAVAIL) {
		return netip.AddrPort{}, fmt.Errorf("registry: listen on %s: %w: it is not an address of this host (with Docker Desktop the kind network's gateway lives in its VM)", ip, err)
	}
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("registry: listen on %s: %w", ip, err)
	}
	r.listeners[ip] = l
	r.serving.Add(1)
	go func() {
		defer r.serving.Done()
		if err := r.srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			r.log.Error("registry stopped serving", "address", l.Addr().String(), "err", err)
		}
	}()
	r.log.Debug("registry listening", "address", l.Addr().String())
	return addrPort(l), nil
}

func addrPort(l net.Listener) netip.AddrPort {
	return l.Addr().(*net.TCPAddr).AddrPort()
}

// Addrs returns the addresses the registry listens on, sorted.
func (r *Registry) Addrs() []netip.AddrPort {
	r.mu.Lock()
	defer r.mu.Unlock()
	var as []netip.AddrPort
	for _, l := range r.listeners {
		as = append(as, addrPort(l))
	}
	slices.SortFunc(as, func(a, b netip.AddrPort) int { return a.Compare(b) })
	return as
}

// loopback returns the address of a loopback listener.
func (r *Registry) loopback() (netip.AddrPort, bool) {
	for _, a := range r.Addrs() {
		if a.Addr().IsLoopback() {
			return a, true
		}
	}
	return netip.AddrPort{}, false
}

// Host is the registry's name on the host, "localhost:<port>" of its
// loopback listener (KEP-1755's host), or "" before Listen on a loopback
// address.
func (r *Registry) Host() string {
	a, ok := r.loopback()
	if !ok {
		return ""
	}
	return "localhost:" + strconv.Itoa(int(a.Port()))
}

// Names returns the names the registry answers to: those given by WithNames
// and, once it listens on loopback, Host.
func (r *Registry) Names() []string {
	names := slices.Clone(r.names)
	if h := r.Host(); h != "" {
		names = append(names, h)
	}
	return names
}

// Shutdown stops serving: it closes the listeners, then waits for requests
// in flight until ctx is done. The stored images stay; a Registry does not
// serve again, New opens the directory anew.
func (r *Registry) Shutdown(ctx context.Context) error {
	r.mu.Lock()
	r.closed = true
	r.mu.Unlock()
	err := r.srv.Shutdown(ctx)
	r.serving.Wait()
	r.mu.Lock()
	clear(r.listeners)
	r.mu.Unlock()
	return err
}
