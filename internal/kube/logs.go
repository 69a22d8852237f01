package kube

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"sort"
	"sync"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Logs copies the logs of release's pods to w. With several pods each line
// is prefixed with the pod's name. With follow it streams until ctx ends.
func (c *Client) Logs(ctx context.Context, ns, release string, follow bool, tail int, w io.Writer) error {
	pods, err := c.Set.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: InstanceLabel + "=" + release})
	if err != nil {
		return fmt.Errorf("list pods of %s: %w", release, err)
	}
	if len(pods.Items) == 0 {
		return fmt.Errorf("no pods of %s in namespace %s (is it deployed? `devctl status`)", release, ns)
	}
	sort.Slice(pods.Items, func(i, j int) bool { return pods.Items[i].Name < pods.Items[j].Name })
	var (
		mu sync.Mutex
		wg sync.WaitGroup
	)
	errs := make(chan error, len(pods.Items))
	for _, p := range pods.Items {
		prefix := ""
		if len(pods.Items) > 1 {
			prefix = p.Name + " | "
		}
		opts := &corev1.PodLogOptions{Follow: follow}
		if tail > 0 {
			t := int64(tail)
			opts.TailLines = &t
		}
		wg.Add(1)
		go func(pod string) {
			defer wg.Done()
			rc, err := c.Set.CoreV1().Pods(ns).GetLogs(pod, opts).Stream(ctx)
			if err != nil {
				errs <- fmt.Errorf("logs of %s: %w", pod, err)
				return
			}
			defer func() { _ = rc.Close() }()
			sc := bufio.NewScanner(rc)
			sc.Buffer(make([]byte, 64*1024), 1024*1024)
			for sc.Scan() {
				mu.Lock()
				_, err := fmt.Fprintf(w, "%s%s\n", prefix, sc.Text())
				mu.Unlock()
				if err != nil {
					return
				}
			}
		}(p.Name)
	}
	wg.Wait()
	close(errs)
	if ctx.Err() != nil {
		return nil
	}
	return <-errs
}
