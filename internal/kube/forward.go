package kube

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/tools/portforward"
	"k8s.io/client-go/transport/spdy"
)

// Forward holds a port-forward from 127.0.0.1:LocalPort to a ready pod of a
// release. When the pod goes away it picks another (or waits for one) and
// forwards again on the same local port, until Close.
type Forward struct {
	c                *Client
	ns, release      string
	remote, local    int
	log              *slog.Logger
	cancel           context.CancelFunc
	done             chan struct{}
	mu               sync.Mutex
	pod              string
	reconnects       int
	firstReady       chan struct{}
	firstReadyClosed bool
}

// StartForward starts forwarding local (0: a free port) to remote on a ready
// pod of release and returns once the first forward listens.
func (c *Client) StartForward(ctx context.Context, ns, release string, remote, local int, log *slog.Logger) (*Forward, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if local == 0 {
		p, err := freePort()
		if err != nil {
			return nil, err
		}
		local = p
	}
	fctx, cancel := context.WithCancel(ctx)
	f := &Forward{c: c, ns: ns, release: release, remote: remote, local: local, log: log, cancel: cancel,
		done: make(chan struct{}), firstReady: make(chan struct{})}
	firstErr := make(chan error, 1)
	go f.loop(fctx, firstErr)
	select {
	case <-f.firstReady:
		return f, nil
	case err := <-firstErr:
		cancel()
		<-f.done
		return nil, err
	case <-ctx.Done():
		cancel()
		<-f.done
		return nil, ctx.Err()
	}
}

// LocalPort is the port on 127.0.0.1.
func (f *Forward) LocalPort() int { return f.local }

// Reconnects counts how often the forward moved to a new pod.
func (f *Forward) Reconnects() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.reconnects
}

// Close stops forwarding and waits until the port is released.
func (f *Forward) Close() {
	f.cancel()
	<-f.done
}

func (f *Forward) loop(ctx context.Context, firstErr chan<- error) {
	defer close(f.done)
	backoff := forwardBackoff
	for attempt := 0; ctx.Err() == nil; attempt++ {
		pod, err := f.c.ReadyPod(ctx, f.ns, f.release)
		served := false
		if err == nil {
			served, err = f.forwardOnce(ctx, pod)
		}
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			f.log.Debug("port-forward interrupted", "release", f.release, "err", err)
			f.mu.Lock()
			ready := f.firstReadyClosed
			f.mu.Unlock()
			if !ready && attempt >= 3 && isBindError(err) {
				firstErr <- err
				return
			}
		}
		// A forward that served ended (the app restarted under a live
		// update and refused a connection, which ends client-go's
		// forwarder, or its pod went away): forward again at once. Only
		// failures in a row back off.
		if served {
			backoff = forwardBackoff
			continue
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		if backoff < 2*time.Second {
			backoff *= 2
		}
	}
}

// forwardBackoff is the first wait after a forward that could not start.
const forwardBackoff = 100 * time.Millisecond

// forwardOnce forwards to pod until the pod stops being ready, the tunnel
// breaks, or ctx ends. served says whether the forward listened.
func (f *Forward) forwardOnce(ctx context.Context, pod *corev1.Pod) (served bool, err error) {
	rt, upgrader, err := spdy.RoundTripperFor(f.c.Config)
	if err != nil {
		return false, err
	}
	req := f.c.Set.CoreV1().RESTClient().Post().Resource("pods").Namespace(pod.Namespace).Name(pod.Name).SubResource("portforward")
	dialer := spdy.NewDialer(upgrader, &http.Client{Transport: rt}, http.MethodPost, req.URL())
	stop := make(chan struct{})
	ready := make(chan struct{})
	pf, err := portforward.NewOnAddresses(dialer, []string{"127.0.0.1"},
		[]string{fmt.Sprintf("%d:%d", f.local, f.remote)}, stop, ready, io.Discard, io.Discard)
	if err != nil {
		return false, err
	}
	errc := make(chan error, 1)
	go func() { errc <- pf.ForwardPorts() }()
	var once sync.Once
	closeStop := func() { once.Do(func() { close(stop) }) }
	defer closeStop()
	select {
	case <-ready:
	case err := <-errc:
		return false, err
	case <-ctx.Done():
		closeStop()
		<-errc //nolint:errcheck // wait for the forwarder to end; the error returned below supersedes its own
		return false, ctx.Err()
	}
	f.mu.Lock()
	if f.pod != "" && f.pod != pod.Name {
		f.reconnects++
	}
	f.pod = pod.Name
	if !f.firstReadyClosed {
		f.firstReadyClosed = true
		close(f.firstReady)
	}
	f.mu.Unlock()
	// Watch the pod: the SPDY tunnel does not always end when the pod dies.
	// A watch costs nothing while the pod is fine (no polling); when it
	// ends (the API server's timeout), the pod is read again and watched
	// from there.
	gone := func() error {
		closeStop()
		<-errc //nolint:errcheck // wait for the forwarder to end; the error returned below supersedes its own
		return fmt.Errorf("pod %s went away", pod.Name)
	}
	rv := pod.ResourceVersion
	for {
		w, err := f.c.Set.CoreV1().Pods(pod.Namespace).Watch(ctx, metav1.ListOptions{
			FieldSelector:   fields.OneTermEqualSelector("metadata.name", pod.Name).String(),
			ResourceVersion: rv,
		})
		if err != nil {
			if ctx.Err() != nil {
				closeStop()
				<-errc //nolint:errcheck // as above
				return true, ctx.Err()
			}
			return true, gone()
		}
		ended, err := f.watchPod(ctx, w, pod, errc, closeStop)
		w.Stop()
		if ended {
			return true, err
		}
		p, err := f.c.Set.CoreV1().Pods(pod.Namespace).Get(ctx, pod.Name, metav1.GetOptions{})
		if err != nil || !stillServing(p, pod) {
			return true, gone()
		}
		rv = p.ResourceVersion
	}
}

// watchPod follows w until pod stops serving (ended, with why), the
// forwarder ends (ended), ctx ends (ended) or the watch closes (not ended:
// watch again).
func (f *Forward) watchPod(ctx context.Context, w watch.Interface, pod *corev1.Pod, errc <-chan error, closeStop func()) (bool, error) {
	for {
		select {
		case err := <-errc:
			if err == nil {
				err = errors.New("port-forward ended")
			}
			return true, err
		case <-ctx.Done():
			closeStop()
			<-errc //nolint:errcheck // wait for the forwarder to end; the error returned below supersedes its own
			return true, ctx.Err()
		case ev, ok := <-w.ResultChan():
			if !ok {
				return false, nil
			}
			p, isPod := ev.Object.(*corev1.Pod)
			switch {
			case ev.Type == watch.Error:
				return false, nil // e.g. the resource version is too old: read the pod again
			case !isPod || ev.Type == watch.Bookmark:
				continue
			case ev.Type != watch.Deleted && stillServing(p, pod):
				continue
			}
			closeStop()
			<-errc //nolint:errcheck // as above
			return true, fmt.Errorf("pod %s went away", pod.Name)
		}
	}
}

// stillServing says whether p is still the ready, running pod forwarded to.
func stillServing(p, forwarded *corev1.Pod) bool {
	return p.DeletionTimestamp == nil && p.UID == forwarded.UID && p.Status.Phase == corev1.PodRunning && podReady(p)
}

func isBindError(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "listen"
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free local port: %w", err)
	}
	defer func() { _ = l.Close() }()
	_, p, _ := net.SplitHostPort(l.Addr().String())
	return strconv.Atoi(p)
}
