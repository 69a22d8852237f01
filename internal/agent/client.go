package agent

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Batch is one sync: files to write or delete, then an action.
type Batch struct {
	// Generation numbers the batch (the daemon's build generation); 0 lets
	// the agent count.
	Generation uint64
	Files      []File
	Action     Action
}

// File is one change of a batch. Build it with LocalFile, DataFile or
// DeleteFile.
type File struct {
	// Path is the absolute destination in the container.
	Path string
	// Mode holds the permission bits; 0 means 0o644.
	Mode fs.FileMode
	// Delete removes Path instead of writing it.
	Delete bool
	// Size is the number of bytes Open yields.
	Size int64
	// Open returns the content; it is called once, while the request is
	// streamed.
	Open func() (io.ReadCloser, error)
}

// LocalFile is the file at src, written to dest with src's size and mode.
func LocalFile(dest, src string) (File, error) {
	fi, err := os.Stat(src)
	if err != nil {
		return File{}, err
	}
	if !fi.Mode().IsRegular() {
		return File{}, fmt.Errorf("sync %s: not a regular file", src)
	}
	return File{
		Path: dest,
		Mode: fi.Mode().Perm(),
		Size: fi.Size(),
		Open: func() (io.ReadCloser, error) { return os.Open(src) },
	}, nil
}

// DataFile is data written to dest with mode.
func DataFile(dest string, data []byte, mode fs.FileMode) File {
	return File{
		Path: dest,
		Mode: mode,
		Size: int64(len(data)),
		Open: func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil },
	}
}

// DeleteFile removes dest (recursively) in the container.
func DeleteFile(dest string) File { return File{Path: dest, Delete: true} }

// Client calls an agent, normally through a port-forward the daemon holds
// to the pod's agent port. The zero value needs BaseURL and Token.
type Client struct {
	// BaseURL is the agent's address, e.g. http://127.0.0.1:41234.
	BaseURL string
	Token   string
	// HTTPClient defaults to a client without timeouts that keeps
	// connections open between syncs (each new connection is a new stream
	// through the port-forward). Bound calls with ctx.
	HTTPClient *http.Client
	// Compress gzips file contents at the fastest level, which roughly
	// halves a Go binary but runs at only 40-150 MB/s: it pays off only on
	// a link slower than that (measure the port-forward first).
	Compress bool
}

var defaultHTTPClient = &http.Client{Transport: &http.Transport{
	Proxy:               nil, // always direct: the agent is behind a local port-forward
	MaxIdleConnsPerHost: 4,
	IdleConnTimeout:     90 * time.Second,
	WriteBufferSize:     256 << 10,
	ReadBufferSize:      64 << 10,
}}

// Sync sends b to the agent at baseURL and waits for the action; see
// Client.Sync.
func Sync(ctx context.Context, baseURL, token string, b Batch) (*Result, error) {
	return (&Client{BaseURL: baseURL, Token: token}).Sync(ctx, b)
}

// Sync streams b to the agent, which writes every file atomically, then runs
// the action and answers once the app listens again. When the files were
// applied but the action failed, it returns the Result and an *ActionError
// (ErrStartFailed, ErrStartTimeout or ErrRunFailed) carrying the app's
// last output lines. Other errors wrap ErrUnauthorized, ErrPathNotAllowed or
// ErrBadRequest when the agent refused the request; nothing was changed then.
func (c *Client) Sync(ctx context.Context, b Batch) (*Result, error) {
	m := Manifest{Generation: b.Generation, Action: b.Action, Files: make([]FileOp, len(b.Files))}
	for i, f := range b.Files {
		if !f.Delete && f.Open == nil {
			return nil, fmt.Errorf("sync %s: no content (build files with LocalFile or DataFile)", f.Path)
		}
		m.Files[i] = FileOp{Path: f.Path, Mode: uint32(f.Mode.Perm()), Size: f.Size, Delete: f.Delete}
		if f.Delete {
			m.Files[i].Size = 0
		}
	}
	pr, pw := io.Pipe()
	mw := multipart.NewWriter(pw)
	req, err := c.request(ctx, http.MethodPost, PathSync, pr)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", mw.FormDataContentType())
	done := make(chan error, 1)
	go func() {
		err := c.writeBody(mw, &m, b.Files)
		pw.CloseWithError(err)
		done <- err
	}()
	resp, err := c.httpClient().Do(req)
	_ = pr.Close() // the writer stops if the agent answered before reading everything
	werr := <-done
	if err != nil {
		if werr != nil && !errors.Is(werr, io.ErrClosedPipe) {
			err = werr
		}
		return nil, fmt.Errorf("sync to agent at %s: %w", c.BaseURL, err)
	}
	defer drainClose(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return nil, responseError(resp)
	}
	res := &Result{}
	if err := json.NewDecoder(resp.Body).Decode(res); err != nil {
		return nil, fmt.Errorf("sync to agent at %s: read the answer: %w", c.BaseURL, err)
	}
	if res.Failure != nil {
		return res, &ActionError{Failure: *res.Failure}
	}
	return res, nil
}

var gzipWriters = sync.Pool{New: func() any {
	w, _ := gzip.NewWriterLevel(nil, gzip.BestSpeed) // a valid level never fails
	return w
}}

var copyBufs = sync.Pool{New: func() any { b := make([]byte, 256<<10); return &b }}

// writeBody writes the manifest and then each file's content as its own part.
func (c *Client) writeBody(mw *multipart.Writer, m *Manifest, files []File) error {
	h := textproto.MIMEHeader{}
	h.Set("Content-Disposition", `form-data; name="`+manifestPart+`"`)
	h.Set("Content-Type", "application/json")
	w, err := mw.CreatePart(h)
	if err != nil {
		return err
	}
	if err := json.NewEncoder(w).Encode(m); err != nil {
		return err
	}
	bp := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(bp)
	for _, f := range files {
		if f.Delete {
			continue
		}
		h := textproto.MIMEHeader{}
		h.Set("Content-Disposition", fmt.Sprintf(`form-data; name=%q; filename=%q`, filePart, f.Path))
		h.Set("Content-Type", "application/octet-stream")
		if c.Compress {
			h.Set("Content-Encoding", "gzip")
		}
		pw, err := mw.CreatePart(h)
		if err != nil {
			return err
		}
		if err := c.writeFile(pw, f, *bp); err != nil {
			return err
		}
	}
	return mw.Close()
}

func (c *Client) writeFile(w io.Writer, f File, buf []byte) error {
	rc, err := f.Open()
	if err != nil {
		return fmt.Errorf("sync %s: %w", f.Path, err)
	}
	defer func() { _ = rc.Close() }()
	var zw *gzip.Writer
	if c.Compress {
		zw = gzipWriters.Get().(*gzip.Writer)
		defer gzipWriters.Put(zw)
		zw.Reset(w)
		w = zw
	}
	n, err := io.CopyBuffer(struct{ io.Writer }{w}, io.LimitReader(rc, f.Size+1), buf)
	if err != nil {
		return fmt.Errorf("sync %s: %w", f.Path, err)
	}
	if n != f.Size {
		return fmt.Errorf("sync %s: it changed while being sent (%d bytes, expected %d): sync it again", f.Path, n, f.Size)
	}
	if zw != nil {
		return zw.Close()
	}
	return nil
}

// Status returns the agent's state.
func (c *Client) Status(ctx context.Context) (*Status, error) {
	req, err := c.request(ctx, http.MethodGet, PathStatus, nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.httpClient().Do(req)
	if err != nil {
		return nil, fmt.Errorf("agent status at %s: %w", c.BaseURL, err)
	}
	defer drainClose(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return nil, responseError(resp)
	}
	st := &Status{}
	if err := json.NewDecoder(resp.Body).Decode(st); err != nil {
		return nil, fmt.Errorf("agent status at %s: %w", c.BaseURL, err)
	}
	return st, nil
}

// Logs calls fn with the app's last tail output lines (-1: all the agent
// keeps) and, with follow, each later line until ctx ends.
func (c *Client) Logs(ctx context.Context, tail int, follow bool, fn func(LogLine) error) error {
	q := url.Values{"tail": {strconv.Itoa(tail)}}
	if follow {
		q.Set("follow", "1")
	}
	req, err := c.request(ctx, http.MethodGet, PathLogs+"?"+q.Encode(), nil)
	if err != nil {
		return err
	}
	resp, err := c.httpClient().Do(req)
	if err != nil {
		return fmt.Errorf("agent logs at %s: %w", c.BaseURL, err)
	}
	defer drainClose(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return responseError(resp)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var l LogLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			return fmt.Errorf("agent logs at %s: %w", c.BaseURL, err)
		}
		if err := fn(l); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil && ctx.Err() == nil {
		return fmt.Errorf("agent logs at %s: %w", c.BaseURL, err)
	}
	return nil
}

func (c *Client) request(ctx context.Context, method, path string, body io.Reader) (*http.Request, error) {
	if c.BaseURL == "" {
		return nil, errors.New("agent client: no BaseURL")
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimSuffix(c.BaseURL, "/")+path, body)
	if err != nil {
		return nil, fmt.Errorf("agent request: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+c.Token)
	return req, nil
}

func (c *Client) httpClient() *http.Client {
	if c.HTTPClient != nil {
		return c.HTTPClient
	}
	return defaultHTTPClient
}

// drainClose reads what is left of a body before closing it, so the
// connection (a stream through the port-forward) is kept for the next call.
func drainClose(body io.ReadCloser) {
	_, _ = io.Copy(io.Discard, io.LimitReader(body, 64<<10))
	_ = body.Close()
}

// responseError turns an error response into an error wrapping the
// matching sentinel.
func responseError(resp *http.Response) error {
	var body errorBody
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if json.Unmarshal(b, &body) != nil || body.Error == "" {
		body.Error = strings.TrimSpace(string(b))
	}
	var sentinel error
	switch body.Code {
	case codeUnauthorized:
		sentinel = ErrUnauthorized
	case codePathNotAllowed:
		sentinel = ErrPathNotAllowed
	case codeBadRequest:
		sentinel = ErrBadRequest
	}
	if sentinel == nil && resp.StatusCode == http.StatusUnauthorized {
		sentinel = ErrUnauthorized
	}
	if sentinel != nil {
		// The agent's message already names the sentinel's text when it
		// wrapped it; drop the repetition.
		msg := strings.TrimPrefix(strings.TrimPrefix(body.Error, sentinel.Error()), ": ")
		if msg == "" {
			return fmt.Errorf("agent: %w", sentinel)
		}
		return fmt.Errorf("agent: %w: %s", sentinel, msg)
	}
	return fmt.Errorf("agent: %s: %s", resp.Status, body.Error)
}
