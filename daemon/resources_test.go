package daemon

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/devctl/devctl/internal/api"
)

func TestResourcesOverTheAPI(t *testing.T) {
	t.Parallel()
	f := newFakeDeps()
	c := startDaemon(t, f, t.TempDir())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	if _, err := c.Resources(ctx, "nope"); !errors.Is(err, api.ErrNotFound) {
		t.Fatalf("resources of an unknown environment: %v, want not found", err)
	}
	e := upAndWait(t, c, writeProject(t, "web"))
	r, err := c.Resources(ctx, e.Name)
	if err != nil {
		t.Fatal(err)
	}
	if r.Env != e.Name || len(r.Namespaces) != 1 || r.Namespaces[0] != e.Status.Namespace {
		t.Fatalf("resources answer %+v for namespace %s", r, e.Status.Namespace)
	}
	if len(r.Items) != 1 || r.Items[0].Name != "web" || !r.Items[0].OK {
		t.Fatalf("items = %+v", r.Items)
	}

	f.mu.Lock()
	f.ResourcesErr = errors.New("connection refused")
	f.mu.Unlock()
	_, err = c.Resources(ctx, e.Name)
	var se *api.StatusError
	if !errors.As(err, &se) || se.StatusCode != http.StatusBadGateway || !strings.Contains(se.Err.Message, "devctl status") {
		t.Fatalf("a cluster that does not answer: %v, want 502 with advice", err)
	}
}
