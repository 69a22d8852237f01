package daemon

import (
	"context"
	"net/http"
	"sort"
	"time"

	"github.com/devctl/devctl/internal/api"
)

// handleResources lists the Deployments, Pods and Services of an
// environment's namespace (the services' and the platform mocks') with
// readiness and the reason for what is not ready.
func (d *Daemon) handleResources(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	e, ok := d.store.Get(r.Context(), name)
	if !ok {
		writeError(w, http.StatusNotFound, api.CodeNotFound, notFound(name))
		return
	}
	out := api.Resources{Env: name, Items: []api.Resource{}}
	if e.Status.Namespace != "" {
		out.Namespaces = []string{e.Status.Namespace}
	}
	if e.Status.Kubeconfig == "" || len(out.Namespaces) == 0 {
		// Nothing is deployed yet: an empty list, not an error.
		writeJSON(w, http.StatusOK, out)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	defer cancel()
	items, err := d.deps.Cluster.Resources(ctx, e.Status.Kubeconfig, out.Namespaces)
	if err != nil {
		writeError(w, http.StatusBadGateway, api.CodeInternal, "list the resources of "+name+": "+err.Error()+" (is the cluster running? `devctl status "+name+"`)")
		return
	}
	sort.SliceStable(items, func(i, j int) bool {
		a, b := items[i], items[j]
		if a.Service != b.Service {
			return a.Service < b.Service
		}
		if a.Kind != b.Kind {
			return kindOrder(a.Kind) < kindOrder(b.Kind)
		}
		return a.Name < b.Name
	})
	out.Items = append(out.Items, items...)
	writeJSON(w, http.StatusOK, out)
}

func kindOrder(k api.ResourceKind) int {
	switch k {
	case api.KindDeployment:
		return 0
	case api.KindPod:
		return 1
	case api.KindService:
		return 2
	}
	return 3
}
