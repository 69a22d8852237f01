package externalsecrets

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
)

// Controller syncs ExternalSecrets into Secrets.
type Controller struct {
	dyn       dynamic.Interface
	http      *http.Client
	log       *slog.Logger
	namespace string
	now       func() time.Time
	queue     workqueue.TypedRateLimitingInterface[key]
	lister    cache.GenericLister
	ready     atomic.Bool
}

type key struct{ namespace, name string }

type options struct {
	http      *http.Client
	logger    *slog.Logger
	namespace string
	now       func() time.Time
}

// Option configures New.
type Option func(*options)

// WithLogger logs syncs (names and outcomes, never values). Discarded by
// default.
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.logger = l } }

// WithHTTPClient sets the client used to reach Vault (default: one with a
// 10 s timeout).
func WithHTTPClient(c *http.Client) Option { return func(o *options) { o.http = c } }

// WithNamespace watches one namespace instead of all.
func WithNamespace(ns string) Option { return func(o *options) { o.namespace = ns } }

// WithClock replaces time.Now for status timestamps.
func WithClock(now func() time.Time) Option { return func(o *options) { o.now = now } }

// New returns a controller using dyn for the Kubernetes API.
func New(dyn dynamic.Interface, opts ...Option) *Controller {
	o := options{
		http:   &http.Client{Timeout: 10 * time.Second},
		logger: slog.New(slog.DiscardHandler),
		now:    time.Now,
	}
	for _, opt := range opts {
		opt(&o)
	}
	return &Controller{
		dyn:       dyn,
		http:      o.http,
		log:       o.logger,
		namespace: o.namespace,
		now:       o.now,
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(
			workqueue.NewTypedItemExponentialFailureRateLimiter[key](500*time.Millisecond, 30*time.Second),
			workqueue.TypedRateLimitingQueueConfig[key]{Name: "externalsecrets"}),
	}
}

// Run watches ExternalSecrets and syncs them with workers goroutines until
// ctx ends. It returns an error when the ExternalSecret CRD is not served.
func (c *Controller) Run(ctx context.Context, workers int) error {
	if _, err := c.dyn.Resource(ExternalSecretsV1).Namespace(c.namespace).List(ctx, metav1.ListOptions{Limit: 1}); err != nil {
		return fmt.Errorf("list ExternalSecrets (is the external-secrets.io CRD installed?): %w", err)
	}
	factory := dynamicinformer.NewFilteredDynamicSharedInformerFactory(c.dyn, 10*time.Minute, c.namespace, nil)
	informer := factory.ForResource(ExternalSecretsV1)
	c.lister = informer.Lister()
	if _, err := informer.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: c.enqueue,
		UpdateFunc: func(oldObj, newObj any) {
			// Status writes (ours) do not change the generation; spec
			// changes and annotations (ESO's force-sync) do.
			o, ok1 := oldObj.(*unstructured.Unstructured)
			n, ok2 := newObj.(*unstructured.Unstructured)
			if !ok1 || !ok2 || o.GetGeneration() != n.GetGeneration() || !equalMaps(o.GetAnnotations(), n.GetAnnotations()) {
				c.enqueue(newObj)
			}
		},
		DeleteFunc: func(obj any) {
			if k, ok := keyOf(obj); ok {
				c.queue.Forget(k)
			}
		},
	}); err != nil {
		return err
	}
	factory.Start(ctx.Done())
	defer factory.Shutdown()
	if !cache.WaitForCacheSync(ctx.Done(), informer.Informer().HasSynced) {
		return ctx.Err()
	}
	c.ready.Store(true)
	defer c.ready.Store(false)
	c.log.Info("external secrets controller started", "namespace", c.namespace)

	var wg sync.WaitGroup
	for range max(workers, 1) {
		wg.Go(func() {
			for c.next(ctx) {
			}
		})
	}
	<-ctx.Done()
	c.queue.ShutDown()
	wg.Wait()
	return nil
}

// Ready reports whether Run has synced its cache and is syncing.
func (c *Controller) Ready() bool { return c.ready.Load() }

func (c *Controller) enqueue(obj any) {
	if k, ok := keyOf(obj); ok {
		c.queue.Add(k)
	}
}

func keyOf(obj any) (key, bool) {
	if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = d.Obj
	}
	u, ok := obj.(*unstructured.Unstructured)
	if !ok {
		return key{}, false
	}
	return key{u.GetNamespace(), u.GetName()}, true
}

// next syncs one queued ExternalSecret; false once the queue shut down.
func (c *Controller) next(ctx context.Context) bool {
	k, quit := c.queue.Get()
	if quit {
		return false
	}
	defer c.queue.Done(k)
	refresh, err := c.Sync(ctx, k.namespace, k.name)
	switch {
	case err != nil:
		c.log.Warn("sync ExternalSecret", "namespace", k.namespace, "name", k.name, "error", err)
		c.queue.AddRateLimited(k)
	default:
		c.queue.Forget(k)
		if refresh > 0 {
			c.queue.AddAfter(k, refresh)
		}
	}
	return true
}

// Sync reads the ExternalSecret ns/name, writes its Secret and its status,
// and returns when to sync it again (0: only on change). An ExternalSecret
// that no longer exists is not an error.
func (c *Controller) Sync(ctx context.Context, ns, name string) (time.Duration, error) {
	es, err := c.get(ctx, ns, name)
	if apierrors.IsNotFound(err) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	var spec externalSecret
	if err := fromUnstructured(es, &spec); err != nil {
		return 0, c.fail(ctx, es, fmt.Errorf("read spec: %w", err))
	}
	refresh, err := spec.refresh()
	if err != nil {
		return 0, c.fail(ctx, es, err)
	}
	target, err := c.sync(ctx, es, &spec)
	if err != nil {
		return 0, c.fail(ctx, es, err)
	}
	c.log.Debug("synced ExternalSecret", "namespace", ns, "name", name, "secret", target)
	return refresh, c.setStatus(ctx, es, metav1.ConditionTrue, ReasonSynced, "secret synced", target)
}

func (c *Controller) get(ctx context.Context, ns, name string) (*unstructured.Unstructured, error) {
	if c.lister != nil {
		obj, err := c.lister.ByNamespace(ns).Get(name)
		if err != nil {
			return nil, err
		}
		if u, ok := obj.(*unstructured.Unstructured); ok {
			return u.DeepCopy(), nil
		}
	}
	return c.dyn.Resource(ExternalSecretsV1).Namespace(ns).Get(ctx, name, metav1.GetOptions{})
}

// fail records err in the status and returns it (so the sync is retried).
func (c *Controller) fail(ctx context.Context, es *unstructured.Unstructured, err error) error {
	if serr := c.setStatus(ctx, es, metav1.ConditionFalse, ReasonSyncedError, err.Error(), ""); serr != nil {
		return errors.Join(err, serr)
	}
	return err
}

// setStatus writes the Ready condition (keeping its transition time when the
// status does not change) and ESO's refreshTime and binding.
func (c *Controller) setStatus(ctx context.Context, es *unstructured.Unstructured, status metav1.ConditionStatus, reason, msg, target string) error {
	now := metav1.NewTime(c.now().UTC().Truncate(time.Second))
	transition := now
	conds, _, _ := unstructured.NestedSlice(es.Object, "status", "conditions")
	for _, cond := range conds {
		m, _ := cond.(map[string]any)
		if m["type"] == "Ready" && m["status"] == string(status) {
			if t, ok := m["lastTransitionTime"].(string); ok {
				if parsed, err := time.Parse(time.RFC3339, t); err == nil {
					transition = metav1.NewTime(parsed)
				}
			}
		}
	}
	st := map[string]any{
		"conditions": []any{map[string]any{
			"type":               "Ready",
			"status":             string(status),
			"reason":             reason,
			"message":            msg,
			"lastTransitionTime": transition.UTC().Format(time.RFC3339),
		}},
		"syncedResourceVersion": fmt.Sprintf("%d-%s", es.GetGeneration(), es.GetResourceVersion()),
	}
	if status == metav1.ConditionTrue {
		st["refreshTime"] = now.UTC().Format(time.RFC3339)
		st["binding"] = map[string]any{"name": target}
	} else if old, ok, _ := unstructured.NestedFieldCopy(es.Object, "status", "refreshTime"); ok {
		st["refreshTime"] = old
	}
	es.Object["status"] = st
	_, err := c.dyn.Resource(ExternalSecretsV1).Namespace(es.GetNamespace()).UpdateStatus(ctx, es, metav1.UpdateOptions{})
	if apierrors.IsConflict(err) || apierrors.IsNotFound(err) {
		return nil // a newer version is queued, or it is gone
	}
	if err != nil {
		return fmt.Errorf("update status: %w", err)
	}
	return nil
}

func equalMaps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if bv, ok := b[k]; !ok || bv != v {
			return false
		}
	}
	return true
}
