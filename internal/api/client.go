package api

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// ErrDaemonNotRunning is returned when nothing answers on the socket.
var ErrDaemonNotRunning = errors.New("the devctl daemon is not running (start it with `devctl daemon run`, or let `devctl up` start it)")

// ErrNotFound is returned when the daemon answers 404 for an environment.
var ErrNotFound = errors.New("not found")

// StatusError is a non-2xx answer from the daemon.
type StatusError struct {
	StatusCode int
	Err        Error
}

func (e *StatusError) Error() string { return e.Err.Message }

// Is makes errors.Is(err, ErrNotFound) work for 404 answers.
func (e *StatusError) Is(target error) bool {
	return target == ErrNotFound && e.StatusCode == http.StatusNotFound
}

// Client talks to the daemon over its unix socket. It is safe for
// concurrent use.
type Client struct {
	socket string
	http   *http.Client
}

// NewClient returns a client for the daemon listening on socket.
func NewClient(socket string) *Client {
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", socket)
		},
		MaxIdleConns:    4,
		IdleConnTimeout: 30 * time.Second,
	}
	return &Client{socket: socket, http: &http.Client{Transport: tr}}
}

// Socket returns the socket path the client dials.
func (c *Client) Socket() string { return c.socket }

// Health asks the daemon who it is; ErrDaemonNotRunning when nothing answers.
func (c *Client) Health(ctx context.Context) (*Health, error) {
	var h Health
	if err := c.do(ctx, http.MethodGet, "/health", nil, &h); err != nil {
		return nil, err
	}
	return &h, nil
}

// List returns every environment the daemon knows.
func (c *Client) List(ctx context.Context) ([]Environment, error) {
	var out []Environment
	err := c.do(ctx, http.MethodGet, "/envs", nil, &out)
	return out, err
}

// Get returns one environment; errors.Is(err, ErrNotFound) when unknown.
func (c *Client) Get(ctx context.Context, name string) (*Environment, error) {
	var e Environment
	if err := c.do(ctx, http.MethodGet, "/envs/"+url.PathEscape(name), nil, &e); err != nil {
		return nil, err
	}
	return &e, nil
}

// Resolve asks the daemon which environment a project directory and branch
// map to: it loads devctl.yaml (or detects defaults) and derives the name.
// Configuration errors come back as a *StatusError with CodeConfigInvalid.
func (c *Client) Resolve(ctx context.Context, ref ProjectRef) (*Resolved, error) {
	var r Resolved
	if err := c.do(ctx, http.MethodPost, "/resolve", ref, &r); err != nil {
		return nil, err
	}
	return &r, nil
}

// Up asks the daemon to bring an environment up. It returns at once with the
// environment as accepted, its Generation the one this request asked for;
// follow Events until Status.ObservedGeneration reaches it.
func (c *Client) Up(ctx context.Context, req UpRequest) (*Environment, error) {
	var e Environment
	if err := c.do(ctx, http.MethodPost, "/envs", req, &e); err != nil {
		return nil, err
	}
	return &e, nil
}

// Down asks the daemon to delete an environment. It returns at once; follow
// Events until EventDeleted. Deleting an environment the daemon does not
// know is not an error when its cluster is gone too.
func (c *Client) Down(ctx context.Context, name string) (*Environment, error) {
	var e Environment
	if err := c.do(ctx, http.MethodDelete, "/envs/"+url.PathEscape(name), nil, &e); err != nil {
		return nil, err
	}
	return &e, nil
}

// SetWatch pauses (false) or resumes (true) the watching of an
// environment's sources. Changes made while paused are rebuilt on resume.
func (c *Client) SetWatch(ctx context.Context, name string, watch bool) (*Environment, error) {
	var e Environment
	if err := c.do(ctx, http.MethodPut, "/envs/"+url.PathEscape(name)+"/watch", WatchRequest{Watch: watch}, &e); err != nil {
		return nil, err
	}
	return &e, nil
}

// Shutdown asks the daemon to stop. Environments keep running.
func (c *Client) Shutdown(ctx context.Context) error {
	return c.do(ctx, http.MethodPost, "/shutdown", nil, nil)
}

// Events streams events until ctx ends or the daemon closes the stream. With
// env set, only that environment's events come. The first events are
// snapshots of the current state. The channel is closed at the end; the
// returned func reports why the stream ended (nil for ctx cancellation).
func (c *Client) Events(ctx context.Context, env string) (<-chan Event, func() error, error) {
	q := url.Values{}
	if env != "" {
		q.Set("env", env)
	}
	resp, err := c.stream(ctx, "/events?"+q.Encode())
	if err != nil {
		return nil, nil, err
	}
	ch := make(chan Event, 64)
	var streamErr error
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer close(ch)
		defer func() { _ = resp.Body.Close() }()
		dec := json.NewDecoder(bufio.NewReader(resp.Body))
		for {
			var ev Event
			if err := dec.Decode(&ev); err != nil {
				if ctx.Err() == nil && !errors.Is(err, io.EOF) {
					streamErr = fmt.Errorf("event stream: %w", err)
				}
				return
			}
			select {
			case ch <- ev:
			case <-ctx.Done():
				return
			}
		}
	}()
	return ch, func() error { <-done; return streamErr }, nil
}

// LogOptions selects what Logs streams.
type LogOptions struct {
	Service string
	Follow  bool
	Tail    int
}

// path is the logs endpoint of env with o as its query.
func (o LogOptions) path(env string) string {
	q := url.Values{}
	if o.Service != "" {
		q.Set("service", o.Service)
	}
	if o.Follow {
		q.Set("follow", "true")
	}
	if o.Tail > 0 {
		q.Set("tail", strconv.Itoa(o.Tail))
	}
	return "/envs/" + url.PathEscape(env) + "/logs?" + q.Encode()
}

// Logs copies the logs of an environment's service pods to w until they end
// (or ctx ends, with Follow).
func (c *Client) Logs(ctx context.Context, env string, o LogOptions, w io.Writer) error {
	resp, err := c.stream(ctx, o.path(env))
	if err != nil {
		return err
	}
	defer func() { _ = resp.Body.Close() }()
	_, err = io.Copy(w, resp.Body)
	if err != nil && ctx.Err() != nil {
		return nil
	}
	return err
}

func (c *Client) url(path string) string { return "http://devctl/" + Version + path }

func (c *Client) stream(ctx context.Context, path string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.url(path), nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, c.dialError(err)
	}
	if resp.StatusCode/100 != 2 {
		defer func() { _ = resp.Body.Close() }()
		return nil, decodeError(resp)
	}
	return resp, nil
}

func (c *Client) do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.url(path), body)
	if err != nil {
		return err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return c.dialError(err)
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode/100 != 2 {
		return decodeError(resp)
	}
	if out == nil {
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("decode daemon answer to %s %s: %w", method, path, err)
	}
	return nil
}

func (c *Client) dialError(err error) error {
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return fmt.Errorf("%w: no answer on %s", ErrDaemonNotRunning, c.socket)
	}
	return fmt.Errorf("talk to the devctl daemon on %s: %w", c.socket, err)
}

func decodeError(resp *http.Response) error {
	se := &StatusError{StatusCode: resp.StatusCode}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err := json.Unmarshal(b, &se.Err); err != nil || se.Err.Message == "" {
		se.Err.Message = fmt.Sprintf("daemon answered %s: %s", resp.Status, bytes.TrimSpace(b))
	}
	return se
}

// Resources lists the Deployments, Pods and Services of an environment with
// their readiness and the reason for what is not ready.
func (c *Client) Resources(ctx context.Context, env string) (*Resources, error) {
	var r Resources
	if err := c.do(ctx, http.MethodGet, "/envs/"+url.PathEscape(env)+"/resources", nil, &r); err != nil {
		return nil, err
	}
	return &r, nil
}

// LogLines streams the log lines of an environment's service pods, each
// line as the daemon sends it ("pod | text" when the service has several
// pods). The channel is closed when the stream ends; the returned func
// reports why (nil for ctx cancellation or the end of the logs).
func (c *Client) LogLines(ctx context.Context, env string, o LogOptions) (<-chan string, func() error, error) {
	resp, err := c.stream(ctx, o.path(env))
	if err != nil {
		return nil, nil, err
	}
	ch := make(chan string, 256)
	var streamErr error
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer close(ch)
		defer func() { _ = resp.Body.Close() }()
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 64*1024), 1024*1024)
		for sc.Scan() {
			select {
			case ch <- sc.Text():
			case <-ctx.Done():
				return
			}
		}
		if err := sc.Err(); err != nil && ctx.Err() == nil {
			streamErr = fmt.Errorf("log stream: %w", err)
		}
	}()
	return ch, func() error { <-done; return streamErr }, nil
}
