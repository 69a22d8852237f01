package agent

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/textproto"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

const testToken = "0123456789abcdef0123456789abcdef"

// fakeController records what the server asks of the app.
type fakeController struct {
	mu         sync.Mutex
	restarts   int
	runs       [][]string
	RestartErr error
	RunErr     error
	lines      []LogLine
}

func (f *fakeController) Restart(context.Context) (time.Duration, time.Duration, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.restarts++
	return time.Millisecond, 2 * time.Millisecond, f.RestartErr
}

func (f *fakeController) Run(_ context.Context, argv []string) (*RunResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.runs = append(f.runs, argv)
	return &RunResult{Argv: argv}, f.RunErr
}

func (f *fakeController) Status() AppStatus {
	f.mu.Lock()
	defer f.mu.Unlock()
	return AppStatus{State: StateRunning, PID: 42, Restarts: f.restarts}
}

func (f *fakeController) FollowLogs(_ context.Context, tail int, _ bool, fn func(LogLine) error) error {
	lines := f.lines
	if tail >= 0 && tail < len(lines) {
		lines = lines[len(lines)-tail:]
	}
	for _, l := range lines {
		if err := fn(l); err != nil {
			return err
		}
	}
	return nil
}

// testAgent is a server over temporary directories: /static and /app/tpl
// are synced, /hello is the entrypoint.
type testAgent struct {
	ctl                  *fakeController
	srv                  *Server
	url                  string
	client               *Client
	static, tpl, appDir  string
	entrypoint, override string
	state                string
}

func newTestAgent(t *testing.T) *testAgent {
	t.Helper()
	root := t.TempDir()
	a := &testAgent{ctl: &fakeController{}}
	a.static = filepath.Join(root, "static")
	a.tpl = filepath.Join(root, "app", "tpl")
	a.appDir = filepath.Join(root, "devctl", "app")
	a.entrypoint = filepath.Join(root, "hello")
	a.override = OverridePath(a.appDir, a.entrypoint)
	a.state = filepath.Join(root, "devctl", "state.json")
	for _, d := range []string{a.static, a.tpl} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	a.srv = a.newServer(t)
	ts := httptest.NewServer(a.srv.Handler())
	t.Cleanup(ts.Close)
	a.url = ts.URL
	a.client = &Client{BaseURL: ts.URL, Token: testToken, HTTPClient: ts.Client()}
	return a
}

func (a *testAgent) newServer(t *testing.T) *Server {
	t.Helper()
	s, err := NewServer(a.ctl, ServerOptions{
		Token: testToken, Version: "test", SyncDirs: []string{a.static, a.tpl},
		Entrypoint: a.entrypoint, AppDir: a.appDir, StateFile: a.state,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestServerAuth(t *testing.T) {
	t.Parallel()
	a := newTestAgent(t)
	tests := []struct {
		name, header string
		want         int
	}{
		{"no header", "", http.StatusUnauthorized},
		{"wrong token", "Bearer nope", http.StatusUnauthorized},
		{"token prefix", "Bearer " + testToken[:10], http.StatusUnauthorized},
		{"wrong scheme", "Basic " + testToken, http.StatusUnauthorized},
		{"right token", "Bearer " + testToken, http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			for _, path := range []string{PathStatus, PathLogs} {
				req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, a.url+path, nil)
				if tt.header != "" {
					req.Header.Set("Authorization", tt.header)
				}
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				_ = resp.Body.Close()
				if resp.StatusCode != tt.want {
					t.Errorf("GET %s: %d, want %d", path, resp.StatusCode, tt.want)
				}
			}
		})
	}
	t.Run("health needs no token", func(t *testing.T) {
		t.Parallel()
		resp, err := http.Get(a.url + PathHealth)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s: %d", PathHealth, resp.StatusCode)
		}
	})
	t.Run("client sync with a wrong token", func(t *testing.T) {
		t.Parallel()
		c := *a.client
		c.Token = "wrong"
		_, err := c.Sync(t.Context(), Batch{Files: []File{DataFile(filepath.Join(a.static, "x"), []byte("x"), 0)}})
		if !errors.Is(err, ErrUnauthorized) {
			t.Errorf("err = %v, want ErrUnauthorized", err)
		}
		if _, err := os.Stat(filepath.Join(a.static, "x")); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("a refused sync wrote the file: %v", err)
		}
	})
}

func TestServerRefusesPathsOutsideSyncs(t *testing.T) {
	t.Parallel()
	a := newTestAgent(t)
	outside := filepath.Join(filepath.Dir(a.static), "outside")
	if err := os.MkdirAll(outside, 0o755); err != nil {
		t.Fatal(err)
	}
	// A link in a synced directory that points out of it.
	if err := os.Symlink("../outside", filepath.Join(a.static, "escape")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(a.static, "escape-abs")); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		file File
	}{
		{"dot-dot", DataFile(a.static+"/../outside/x", []byte("x"), 0)},
		{"dot-dot at the end", DataFile(a.static+"/sub/../../outside/x", []byte("x"), 0)},
		{"relative", DataFile("static/x", []byte("x"), 0)},
		{"the directory itself", DataFile(a.static, []byte("x"), 0)},
		{"trailing slash", DataFile(a.static+"/", []byte("x"), 0)},
		{"double slash", DataFile(a.static+"//x", []byte("x"), 0)},
		{"sibling with the same prefix", DataFile(a.static+"x/y", []byte("x"), 0)},
		{"not synced", DataFile(filepath.Join(outside, "x"), []byte("x"), 0)},
		{"the agent's temporary names", DataFile(a.static+"/"+tmpPrefix+"x", []byte("x"), 0)},
		{"through a relative symlink", DataFile(a.static+"/escape/x", []byte("x"), 0)},
		{"through an absolute symlink", DataFile(a.static+"/escape-abs/x", []byte("x"), 0)},
		{"delete through a symlink", DeleteFile(a.static + "/escape/keep")},
		{"delete outside", DeleteFile(filepath.Join(outside, "keep"))},
		{"a file beside the entrypoint", DataFile(a.entrypoint+"2", []byte("x"), 0)},
	}
	keep := filepath.Join(outside, "keep")
	if err := os.WriteFile(keep, []byte("keep"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Not parallel: every case checks that outside stayed as it was.
			ok := DataFile(a.static+"/fine.txt", []byte("fine"), 0)
			_, err := a.client.Sync(t.Context(), Batch{Files: []File{ok, tt.file}, Action: Action{Restart: true}})
			if !errors.Is(err, ErrPathNotAllowed) {
				t.Fatalf("err = %v, want ErrPathNotAllowed", err)
			}
			ents, _ := os.ReadDir(outside)
			if len(ents) != 1 || readFile(t, keep) != "keep" {
				t.Errorf("the directory outside changed: %v", ents)
			}
			if _, err := os.Stat(a.static + "/fine.txt"); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("the allowed file of a refused batch was written")
			}
		})
	}
	if a.ctl.restarts != 0 {
		t.Errorf("a refused batch restarted the app %d times", a.ctl.restarts)
	}
}

func TestServerSync(t *testing.T) {
	t.Parallel()
	a := newTestAgent(t)
	old := filepath.Join(a.static, "old", "gone.css")
	if err := os.MkdirAll(filepath.Dir(old), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(old, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), "hello")
	if err := os.WriteFile(bin, bytes.Repeat([]byte("ELF"), 100_000), 0o750); err != nil {
		t.Fatal(err)
	}
	binFile, err := LocalFile(a.entrypoint, bin)
	if err != nil {
		t.Fatal(err)
	}
	for _, compress := range []bool{false, true} {
		c := *a.client
		c.Compress = compress
		res, err := c.Sync(t.Context(), Batch{
			Generation: 7,
			Files: []File{
				DataFile(a.static+"/css/site.css", []byte("body{}"), 0),
				DataFile(a.tpl+"/index.tmpl", []byte("{{.}}"), 0o600),
				DeleteFile(a.static + "/old"),
				binFile,
			},
			Action: Action{Run: []string{"/hello", "migrate"}, Restart: true},
		})
		if err != nil {
			t.Fatalf("compress=%v: %v", compress, err)
		}
		if res.Generation != 7 || res.Written != 3 || res.Deleted != 1 || res.Bytes != 6+5+300_000 {
			t.Errorf("result = %+v", res)
		}
		if res.Timings.Write <= 0 || res.Timings.Total < res.Timings.Write || res.Timings.Stop != time.Millisecond || res.Timings.Start != 2*time.Millisecond {
			t.Errorf("timings = %+v", res.Timings)
		}
		if res.App.PID != 42 || res.Run == nil {
			t.Errorf("app %+v run %+v", res.App, res.Run)
		}
	}
	if got := readFile(t, a.static+"/css/site.css"); got != "body{}" {
		t.Errorf("site.css = %q", got)
	}
	if _, err := os.Stat(a.static + "/old"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("deleted directory still there: %v", err)
	}
	for p, want := range map[string]os.FileMode{a.static + "/css/site.css": 0o644, a.tpl + "/index.tmpl": 0o600, a.override: 0o750} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != want {
			t.Errorf("%s: mode %v, want %v", p, fi.Mode().Perm(), want)
		}
	}
	if got := readFile(t, a.override); len(got) != 300_000 {
		t.Errorf("entrypoint copy has %d bytes", len(got))
	}
	if a.ctl.restarts != 2 || len(a.ctl.runs) != 2 || !slices.Equal(a.ctl.runs[0], []string{"/hello", "migrate"}) {
		t.Errorf("restarts %d runs %q", a.ctl.restarts, a.ctl.runs)
	}
	assertNoTempFiles(t, filepath.Dir(a.static))

	// Deleting the entrypoint goes back to the image's binary.
	if _, err := a.client.Sync(t.Context(), Batch{Files: []File{DeleteFile(a.entrypoint)}}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(a.override); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("entrypoint copy still there: %v", err)
	}

	st, err := a.client.Status(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if st.Generation != 8 || st.Version != "test" || st.App.PID != 42 {
		t.Errorf("status = %+v, want generation 8 (7, then one more)", st)
	}
	// A restarted agent reports the generation it last applied.
	if g := a.newServer(t).currentGeneration(); g != 8 {
		t.Errorf("generation after an agent restart = %d, want 8", g)
	}
}

func TestServerActionFailure(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name              string
		restartErr, runEr error
		action            Action
		want              error
		wantRestarts      int
	}{
		{"start fails", &ActionError{Failure{Reason: ReasonExited, Message: "app exited (exit code 2)", Logs: []string{"panic: boom"}}}, nil, Action{Restart: true}, ErrStartFailed, 1},
		{"start times out", &ActionError{Failure{Reason: ReasonTimeout, Message: "no listen"}}, nil, Action{Restart: true}, ErrStartTimeout, 1},
		{"run fails: no restart", nil, &ActionError{Failure{Reason: ReasonRun, Message: "migrate: exit code 1"}}, Action{Run: []string{"migrate"}, Restart: true}, ErrRunFailed, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			a := newTestAgent(t)
			a.ctl.RestartErr, a.ctl.RunErr = tt.restartErr, tt.runEr
			res, err := a.client.Sync(t.Context(), Batch{Files: []File{DataFile(a.static+"/a", []byte("a"), 0)}, Action: tt.action})
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			if res == nil || res.Failure == nil || res.Written != 1 {
				t.Fatalf("result = %+v, want the applied files and the failure", res)
			}
			if errors.Is(tt.want, ErrStartFailed) && !strings.Contains(err.Error(), "panic: boom") {
				t.Errorf("error does not carry the app's output: %v", err)
			}
			if a.ctl.restarts != tt.wantRestarts {
				t.Errorf("restarts = %d, want %d", a.ctl.restarts, tt.wantRestarts)
			}
		})
	}
}

// TestServerAtomicWrites has a reader read a file while syncs replace it:
// every read must see one whole version, never a mix or a short file.
func TestServerAtomicWrites(t *testing.T) {
	t.Parallel()
	a := newTestAgent(t)
	p := a.static + "/big.bin"
	const size = 1 << 20
	versions := [][]byte{bytes.Repeat([]byte{'a'}, size), bytes.Repeat([]byte{'b'}, size)}
	if err := os.WriteFile(p, versions[0], 0o644); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	errc := make(chan error, 1)
	var reads int
	go func() {
		defer close(errc)
		for {
			select {
			case <-done:
				return
			default:
			}
			b, err := os.ReadFile(p)
			if err != nil {
				errc <- err
				return
			}
			reads++
			if len(b) != size || (!bytes.Equal(b, versions[0]) && !bytes.Equal(b, versions[1])) {
				errc <- fmt.Errorf("read a partial file: %d bytes, first %q last %q", len(b), b[:1], b[len(b)-1:])
				return
			}
		}
	}()
	for i := range 20 {
		if _, err := a.client.Sync(t.Context(), Batch{Files: []File{DataFile(p, versions[i%2], 0)}}); err != nil {
			t.Fatal(err)
		}
	}
	close(done)
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	t.Logf("%d reads during 20 syncs", reads)
}

// TestServerBrokenRequestChangesNothing cuts a request off in the middle of
// the second file: the first file, already received, must not be renamed
// into place, and no temporary file may be left.
func TestServerBrokenRequestChangesNothing(t *testing.T) {
	t.Parallel()
	a := newTestAgent(t)
	for _, name := range []string{"a.txt", "b.txt"} {
		if err := os.WriteFile(filepath.Join(a.static, name), []byte("old"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name   string
		body   func(mw *multipart.Writer) // writes after the manifest
		status int
	}{
		{"cut off in the second file", func(mw *multipart.Writer) {
			writePart(mw, "file", nil, "new-a")
			writePart(mw, "file", nil, "ne") // 2 of 5 bytes
		}, http.StatusBadRequest},
		{"second part missing", func(mw *multipart.Writer) {
			writePart(mw, "file", nil, "new-a")
		}, http.StatusBadRequest},
		{"a part too many", func(mw *multipart.Writer) {
			writePart(mw, "file", nil, "new-a")
			writePart(mw, "file", nil, "new-b")
			writePart(mw, "file", nil, "extra")
		}, http.StatusBadRequest},
		{"part longer than its size", func(mw *multipart.Writer) {
			writePart(mw, "file", nil, "new-a")
			writePart(mw, "file", nil, "new-b and more")
		}, http.StatusBadRequest},
		{"unknown encoding", func(mw *multipart.Writer) {
			writePart(mw, "file", nil, "new-a")
			writePart(mw, "file", textproto.MIMEHeader{"Content-Encoding": {"br"}}, "new-b")
		}, http.StatusBadRequest},
		{"bad gzip", func(mw *multipart.Writer) {
			writePart(mw, "file", nil, "new-a")
			writePart(mw, "file", textproto.MIMEHeader{"Content-Encoding": {"gzip"}}, "new-b")
		}, http.StatusBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var body bytes.Buffer
			mw := multipart.NewWriter(&body)
			writePart(mw, "manifest", nil, fmt.Sprintf(`{"files":[{"path":%q,"size":5},{"path":%q,"size":5}],"action":{"restart":true}}`,
				a.static+"/a.txt", a.static+"/b.txt"))
			tt.body(mw)
			_ = mw.Close()
			req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, a.url+PathSync, &body)
			req.Header.Set("Content-Type", mw.FormDataContentType())
			req.Header.Set("Authorization", "Bearer "+testToken)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			msg, _ := io.ReadAll(resp.Body)
			_ = resp.Body.Close()
			if resp.StatusCode != tt.status {
				t.Errorf("status %d, want %d: %s", resp.StatusCode, tt.status, msg)
			}
			for _, name := range []string{"a.txt", "b.txt"} {
				if got := readFile(t, filepath.Join(a.static, name)); got != "old" {
					t.Errorf("%s = %q, want the old content", name, got)
				}
			}
			assertNoTempFiles(t, a.static)
		})
	}
	if a.ctl.restarts != 0 {
		t.Errorf("a broken request restarted the app")
	}
}

// TestStageWithoutCommitKeepsOldFile is the agent dying between writing a
// file and renaming it: the destination still holds the old content.
func TestStageWithoutCommitKeepsOldFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "app.js"), []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	d, err := openDestinations([]string{dir}, "", "")
	if err != nil {
		t.Fatal(err)
	}
	defer d.close()
	tg, err := d.resolve(dir + "/app.js")
	if err != nil {
		t.Fatal(err)
	}
	st, err := stage(tg, 0o644, 3, strings.NewReader("new"), make([]byte, 8))
	if err != nil {
		t.Fatal(err)
	}
	// "Crash": nothing renames the staged file.
	if got := readFile(t, filepath.Join(dir, "app.js")); got != "old" {
		t.Errorf("app.js = %q before the rename, want old", got)
	}
	if got := readFile(t, filepath.Join(dir, st.tmp)); got != "new" {
		t.Errorf("staged file holds %q", got)
	}
	if err := st.commit(); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, filepath.Join(dir, "app.js")); got != "new" {
		t.Errorf("app.js = %q after the rename", got)
	}
}

func TestServerLogs(t *testing.T) {
	t.Parallel()
	a := newTestAgent(t)
	for i := range 5 {
		a.ctl.lines = append(a.ctl.lines, LogLine{Seq: uint64(i + 1), Stream: "stdout", Text: fmt.Sprint("line ", i)})
	}
	var got []string
	err := a.client.Logs(t.Context(), 2, false, func(l LogLine) error { got = append(got, l.Text); return nil })
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, []string{"line 3", "line 4"}) {
		t.Errorf("logs = %q", got)
	}
}

func writePart(mw *multipart.Writer, name string, h textproto.MIMEHeader, body string) {
	if h == nil {
		h = textproto.MIMEHeader{}
	}
	h.Set("Content-Disposition", fmt.Sprintf(`form-data; name=%q`, name))
	w, _ := mw.CreatePart(h)
	_, _ = io.WriteString(w, body)
}

func assertNoTempFiles(t *testing.T, dir string) {
	t.Helper()
	_ = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && strings.HasPrefix(d.Name(), tmpPrefix) {
			t.Errorf("temporary file left: %s", p)
		}
		return nil
	})
}
