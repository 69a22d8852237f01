// Package s3 is a stand-in for Amazon S3: gofakes3
// (github.com/johannesboyne/gofakes3) behind a front that makes it accept
// what current AWS SDKs send by default and reject what S3 rejects:
//
//   - AWS Signature Version 4, in the Authorization header or a presigned
//     URL, checked against one access key: a wrong key fails with
//     InvalidAccessKeyId, a wrong secret with SignatureDoesNotMatch, a stale
//     date with RequestTimeTooSkewed, a wrong region with
//     AuthorizationHeaderMalformed;
//   - aws-chunked payloads (Content-Encoding: aws-chunked), unsigned with
//     trailers (STREAMING-UNSIGNED-PAYLOAD-TRAILER, the SDKs' default over
//     TLS) and signed (STREAMING-AWS4-HMAC-SHA256-PAYLOAD[-TRAILER]), chunk
//     and trailer signatures verified;
//   - flexible checksums (x-amz-checksum-crc32, -crc32c, -crc64nvme, -sha1,
//     -sha256), in headers or trailers, verified (BadDigest), stored with the
//     object and returned when the client asks (x-amz-checksum-mode);
//   - the payload's x-amz-content-sha256 verified
//     (XAmzContentSHA256Mismatch).
//
// With WithDataDir objects are files under dir/buckets and their metadata
// JSON under dir/metadata (gofakes3's s3afero backend), so they survive a
// restart; otherwise they live in memory. Buckets use path-style addressing
// (http://host/bucket/key): clients set UsePathStyle, as with MinIO.
package s3

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3afero"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
	"github.com/spf13/afero"
)

// DefaultRegion is the region requests must be signed for unless WithRegion
// says otherwise.
const DefaultRegion = "us-east-1"

// ErrNoCredentials reports that New was called without an access key or
// secret.
var ErrNoCredentials = errors.New("s3: an access key ID and a secret access key are required (generate them per environment)")

// Credentials are the one access key the server accepts.
type Credentials struct {
	AccessKeyID     string
	SecretAccessKey string
}

// Server is the S3 stand-in; an http.Handler.
type Server struct {
	creds  Credentials
	region string
	now    func() time.Time
	log    *slog.Logger
	spool  string // directory for large request bodies
	fake   http.Handler
	reqID  atomic.Uint64
}

type options struct {
	region  string
	buckets []string
	dataDir string
	logger  *slog.Logger
	now     func() time.Time
}

// Option configures New.
type Option func(*options)

// WithRegion sets the region requests must be signed for (default us-east-1).
func WithRegion(r string) Option { return func(o *options) { o.region = r } }

// WithBuckets creates the buckets at start when they do not exist.
func WithBuckets(names ...string) Option { return func(o *options) { o.buckets = names } }

// WithDataDir keeps objects in files under dir (created when missing)
// instead of memory, and spools large request bodies there.
func WithDataDir(dir string) Option { return func(o *options) { o.dataDir = dir } }

// WithLogger logs each request's method, path and status (never headers or
// bodies). Discarded by default.
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.logger = l } }

// WithClock replaces time.Now for signature dates, for deterministic tests.
func WithClock(now func() time.Time) Option { return func(o *options) { o.now = now } }

// New returns a Server accepting creds.
func New(creds Credentials, opts ...Option) (*Server, error) {
	if creds.AccessKeyID == "" || creds.SecretAccessKey == "" {
		return nil, ErrNoCredentials
	}
	o := options{region: DefaultRegion, logger: slog.New(slog.DiscardHandler), now: time.Now}
	for _, opt := range opts {
		opt(&o)
	}
	s := &Server{creds: creds, region: o.region, now: o.now, log: o.logger, spool: o.dataDir}

	var backend gofakes3.Backend
	if o.dataDir != "" {
		if err := os.MkdirAll(o.dataDir, 0o700); err != nil {
			return nil, fmt.Errorf("s3: data dir: %w", err)
		}
		b, err := s3afero.MultiBucket(afero.NewBasePathFs(afero.NewOsFs(), o.dataDir))
		if err != nil {
			return nil, fmt.Errorf("s3: data dir %s: %w", o.dataDir, err)
		}
		backend = b
	} else {
		backend = s3mem.New()
	}
	for _, name := range o.buckets {
		if err := gofakes3.ValidateBucketName(name); err != nil {
			return nil, fmt.Errorf("s3: bucket %q: %w", name, err)
		}
		ok, err := backend.BucketExists(name)
		if err == nil && !ok {
			err = backend.CreateBucket(name)
		}
		if err != nil {
			return nil, fmt.Errorf("s3: create bucket %q: %w", name, err)
		}
	}
	s.fake = gofakes3.New(backend,
		gofakes3.WithTimeSkewLimit(0), // checked with the signature
		gofakes3.WithIntegrityCheck(true),
	).Server()
	return s, nil
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rw := &responseWriter{ResponseWriter: w, status: http.StatusOK,
		checksums: (r.Method != http.MethodGet && r.Method != http.MethodHead) ||
			strings.EqualFold(r.Header.Get("X-Amz-Checksum-Mode"), "ENABLED") && r.Header.Get("Range") == ""}
	if err := s.serve(rw, r); err != nil {
		s.writeError(rw, r, err)
	}
	s.log.Debug("s3 request", "method", r.Method, "path", r.URL.Path, "status", rw.status)
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) *apiError {
	a, aerr := s.verify(r)
	if aerr != nil {
		return aerr
	}
	r = r.Clone(r.Context())
	if r.Body != nil && r.Body != http.NoBody && (r.ContentLength != 0 || len(r.TransferEncoding) > 0) {
		sp := &spool{dir: s.spool}
		defer sp.close()
		sums, aerr := s.readBody(r, a, sp)
		if aerr != nil {
			return aerr
		}
		if r.Method == http.MethodPut {
			for name, v := range sums {
				w.Header().Set(name, v) // S3 answers an upload with its checksum
			}
		}
		body, n, err := sp.reader()
		if err != nil {
			return errorf(http.StatusInternalServerError, "InternalError", "spool request body: %v", err)
		}
		r.Body, r.ContentLength, r.TransferEncoding = io.NopCloser(body), n, nil
		r.Header.Set("Content-Length", strconv.FormatInt(n, 10))
	}
	// What only the transport and the signature needed; gofakes3 would store
	// every X-Amz-* header as object metadata.
	for _, h := range []string{"X-Amz-Date", "X-Amz-Content-Sha256", "X-Amz-Decoded-Content-Length", "X-Amz-Trailer",
		"X-Amz-Sdk-Checksum-Algorithm", "X-Amz-Security-Token", "X-Amz-User-Agent", "X-Amz-Checksum-Mode",
		"X-Amz-Checksum-Type", "X-Amz-Checksum-Algorithm", "Authorization"} {
		r.Header.Del(h)
	}
	if ce := r.Header.Values("Content-Encoding"); len(ce) > 0 {
		var keep []string
		for _, v := range strings.Split(strings.Join(ce, ","), ",") {
			if v = strings.TrimSpace(v); v != "" && !strings.EqualFold(v, "aws-chunked") {
				keep = append(keep, v)
			}
		}
		r.Header.Del("Content-Encoding")
		if len(keep) > 0 {
			r.Header.Set("Content-Encoding", strings.Join(keep, ","))
		}
	}
	s.fake.ServeHTTP(w, r)
	return nil
}

// readBody copies r's payload, decoded from aws-chunked when it is, into sp
// and verifies its length, SHA-256 and announced checksums, which it
// returns by header name. A checksum sent as a trailer becomes a header, so
// it is stored with the object.
func (s *Server) readBody(r *http.Request, a *auth, sp *spool) (map[string]string, *apiError) {
	mode := r.Header.Get("X-Amz-Content-Sha256")
	var names []string
	for name := range r.Header {
		if n := strings.ToLower(name); strings.HasPrefix(n, "x-amz-checksum-") && checksumAlgorithms[strings.TrimPrefix(n, "x-amz-checksum-")] != nil {
			names = append(names, n)
		}
	}
	for t := range strings.SplitSeq(r.Header.Get("X-Amz-Trailer"), ",") {
		if t = strings.ToLower(strings.TrimSpace(t)); t != "" {
			names = append(names, t)
		}
	}
	cs := newChecksums(names)
	dst := io.MultiWriter(sp, cs)
	given := map[string]string{}
	for _, n := range names {
		if v := r.Header.Get(n); v != "" {
			given[n] = v
		}
	}

	switch {
	case strings.HasPrefix(mode, "STREAMING-"):
		if mode != streamingSigned && mode != streamingSignedTrailer && mode != streamingUnsignedTrailer {
			return nil, errorf(http.StatusNotImplemented, "NotImplemented", "x-amz-content-sha256 %s is not supported", mode)
		}
		trailers, n, aerr := decodeChunked(r.Body, dst, mode, a)
		if aerr != nil {
			return nil, aerr
		}
		if d := r.Header.Get("X-Amz-Decoded-Content-Length"); d != "" && d != strconv.FormatInt(n, 10) {
			return nil, incomplete(fmt.Errorf("decoded %d bytes, x-amz-decoded-content-length says %s", n, d))
		}
		for k, v := range trailers {
			if strings.HasPrefix(k, "x-amz-checksum-") {
				given[k] = v
				r.Header.Set(k, v)
			}
		}
	default:
		if _, err := io.Copy(dst, r.Body); err != nil {
			return nil, incomplete(err)
		}
		if mode != unsigned {
			if got := fmt.Sprintf("%x", cs.payload.Sum(nil)); got != mode {
				return nil, errorf(http.StatusBadRequest, "XAmzContentSHA256Mismatch", "The provided 'x-amz-content-sha256' header does not match what was computed.")
			}
		}
	}
	for name, want := range given {
		got, ok := cs.sum(name)
		if ok && got != want {
			alg := strings.ToUpper(strings.TrimPrefix(name, "x-amz-checksum-"))
			return nil, errorf(http.StatusBadRequest, "BadDigest", "The %s you specified did not match the calculated checksum.", alg)
		}
	}
	return given, nil
}

// apiError is an S3 error response.
type apiError struct {
	Status  int
	Code    string
	Message string
}

func errorf(status int, code, format string, args ...any) *apiError {
	return &apiError{Status: status, Code: code, Message: fmt.Sprintf(format, args...)}
}

func (s *Server) writeError(w http.ResponseWriter, r *http.Request, e *apiError) {
	id := fmt.Sprintf("%016X", s.reqID.Add(1))
	w.Header().Set("Content-Type", "application/xml")
	w.Header().Set("X-Amz-Request-Id", id)
	w.WriteHeader(e.Status)
	if r.Method == http.MethodHead {
		return
	}
	_, _ = io.WriteString(w, xml.Header)
	_ = xml.NewEncoder(w).Encode(struct {
		XMLName   xml.Name `xml:"Error"`
		Code      string
		Message   string
		Resource  string
		RequestID string `xml:"RequestId"`
	}{Code: e.Code, Message: e.Message, Resource: r.URL.Path, RequestID: id})
}

// responseWriter records the status and drops stored checksums unless the
// client asked for them on a whole object, as S3 does.
type responseWriter struct {
	http.ResponseWriter
	status      int
	checksums   bool
	wroteHeader bool
}

func (w *responseWriter) WriteHeader(code int) {
	if w.wroteHeader {
		return
	}
	w.wroteHeader, w.status = true, code
	if !w.checksums {
		for k := range w.Header() {
			if strings.HasPrefix(strings.ToLower(k), "x-amz-checksum-") {
				w.Header().Del(k)
			}
		}
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *responseWriter) Write(p []byte) (int, error) {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	return w.ResponseWriter.Write(p)
}

// spoolMemory is how much of a request body stays in memory; the rest goes
// to a temporary file.
const spoolMemory = 8 << 20

// spool holds a request body while it is verified.
type spool struct {
	dir string
	buf bytes.Buffer
	f   *os.File
	n   int64
}

func (sp *spool) Write(p []byte) (int, error) {
	if sp.f == nil && sp.buf.Len()+len(p) > spoolMemory {
		f, err := os.CreateTemp(sp.dir, ".s3-upload-*")
		if err != nil {
			return 0, err
		}
		sp.f = f
		if _, err := f.Write(sp.buf.Bytes()); err != nil {
			return 0, err
		}
		sp.buf = bytes.Buffer{}
	}
	sp.n += int64(len(p))
	if sp.f != nil {
		return sp.f.Write(p)
	}
	return sp.buf.Write(p)
}

func (sp *spool) reader() (io.Reader, int64, error) {
	if sp.f == nil {
		return bytes.NewReader(sp.buf.Bytes()), sp.n, nil
	}
	if _, err := sp.f.Seek(0, io.SeekStart); err != nil {
		return nil, 0, err
	}
	return sp.f, sp.n, nil
}

func (sp *spool) close() {
	if sp.f != nil {
		_ = sp.f.Close()
		_ = os.Remove(sp.f.Name())
	}
}
