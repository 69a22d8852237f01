package helm

import (
	"context"
	"fmt"
	"time"

	"helm.sh/helm/v3/pkg/kube"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/cli-runtime/pkg/resource"
)

// waitInterval is how often readiness is polled.
const waitInterval = time.Second

// readyChecker is the part of kube.ReadyChecker that wait uses.
type readyChecker interface {
	IsReady(ctx context.Context, v *resource.Info) (bool, error)
}

// waitReady polls until every resource is ready, ctx ends or timeout passes.
// Unlike Helm's own wait it stops as soon as ctx ends. Transient API errors
// are retried until the deadline; the last one is reported.
func waitReady(ctx context.Context, c readyChecker, resources kube.ResourceList, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var pending string
	var lastErr error
	err := wait.PollUntilContextCancel(ctx, waitInterval, true, func(ctx context.Context) (bool, error) {
		for _, r := range resources {
			ready, err := c.IsReady(ctx, r)
			if !ready {
				pending, lastErr = objectName(r), err
				return false, nil
			}
		}
		return true, nil
	})
	if err == nil {
		return nil
	}
	if lastErr != nil {
		return fmt.Errorf("%s not ready: %w (last error: %w)", pending, err, lastErr)
	}
	return fmt.Errorf("%s not ready: %w", pending, err)
}

// objectName is "kind/name" when the resource's mapping is known.
func objectName(r *resource.Info) string {
	if r.Mapping == nil {
		return r.Name
	}
	return r.ObjectName()
}
