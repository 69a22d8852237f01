package daemon

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/devctl/devctl/internal/api"
	"github.com/devctl/devctl/internal/build/goimage"
)

// TestGoServiceBuiltWithoutDocker builds a Go service with the real Go
// builder: no Dockerfile, no Docker build, the image loaded as a `docker
// save` archive; a broken edit fails with the compiler's file:line and
// leaves the running image alone.
func TestGoServiceBuiltWithoutDocker(t *testing.T) {
	t.Parallel()
	f := newFakeDeps()
	f.goImages = goimage.New(goimage.WithCacheDir(t.TempDir()), goimage.WithCACertificates(""))
	c := startDaemon(t, f, t.TempDir())
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "devctl.yaml"), "apiVersion: devctl.dev/v1alpha1\nkind: Project\nname: hello\nteam: dx\nowner: dx@example.com\ncostCenter: cc-1\nservices:\n  - name: web\n    go: {package: .}\n")
	writeFile(t, filepath.Join(dir, "go.mod"), "module example.com/web\n\ngo 1.22\n")
	writeFile(t, filepath.Join(dir, "main.go"), "package main\n\nfunc main() {}\n")

	e := upAndWait(t, c, dir)
	if e.Status.Phase != api.PhaseReady {
		t.Fatalf("up: %s %s", e.Status.Phase, e.Status.Message)
	}
	ref := e.Status.Service("web").Image
	if !regexp.MustCompile(`^devctl\.local/hello/web:[0-9a-f]{16}$`).MatchString(ref) {
		t.Errorf("image %q, want devctl.local/hello/web:<digest>", ref)
	}
	if len(f.builds) != 0 {
		t.Errorf("the Docker builder ran: %v", f.builds)
	}
	if len(f.archives) != 1 {
		t.Fatalf("%d archives loaded, want 1", len(f.archives))
	}
	if tags := archiveTags(t, f.archives[0]); len(tags) != 1 || tags[0] != ref {
		t.Errorf("archive holds %v, want %s", tags, ref)
	}

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	events, _, err := c.Events(ctx, e.Name)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "main.go"), "package main\n\nfunc main() { x := 1 }\n")
	c.d.store.Dispatch(RebuildRequested{Name: e.Name, Services: []string{"web"}, Reason: "main.go changed", Changed: time.Now()})
	e = nextRun(t, events, e.Status.Run.ID)
	if len(e.Status.Rebuilds) != 1 {
		t.Fatalf("rebuilds %+v", e.Status.Rebuilds)
	}
	rb := e.Status.Rebuilds[0]
	if !strings.Contains(rb.Error, "main.go:3:15: declared and not used: x") {
		t.Errorf("rebuild error %q, want the compiler's main.go:3:15", rb.Error)
	}
	if e.Status.Phase != api.PhaseReady || e.Status.Service("web").Image != ref || !strings.Contains(e.Status.Message, "previous version keeps serving") {
		t.Errorf("after a broken edit: %s %q, image %s; want still ready on %s", e.Status.Phase, e.Status.Message, e.Status.Service("web").Image, ref)
	}
}

// archiveTags lists the tags of a `docker save` archive.
func archiveTags(t *testing.T, b []byte) []string {
	t.Helper()
	tr := tar.NewReader(bytes.NewReader(b))
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			t.Fatal("no manifest.json in the archive")
		}
		if err != nil {
			t.Fatal(err)
		}
		if h.Name != "manifest.json" {
			continue
		}
		var m []struct{ RepoTags []string }
		if err := json.NewDecoder(tr).Decode(&m); err != nil {
			t.Fatal(err)
		}
		var tags []string
		for _, e := range m {
			tags = append(tags, e.RepoTags...)
		}
		return tags
	}
}
