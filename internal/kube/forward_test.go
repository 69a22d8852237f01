package kube

import (
	"context"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8stypes "k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
)

func readyPod(uid string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "web-1", Namespace: "ns", UID: k8stypes.UID(uid)},
		Status: corev1.PodStatus{Phase: corev1.PodRunning, Conditions: []corev1.PodCondition{
			{Type: corev1.PodReady, Status: corev1.ConditionTrue},
		}},
	}
}

// The forward follows its pod by a watch: changes that keep it serving
// are ignored, one that does not ends the forward, and a closed watch is
// watched again.
func TestWatchPodEndsWhenThePodStopsServing(t *testing.T) {
	t.Parallel()
	f := &Forward{}
	pod := readyPod("a")
	run := func(events ...watch.Event) (bool, error) {
		w := watch.NewFake()
		errc := make(chan error, 1)
		stopped := false
		go func() {
			for _, ev := range events {
				w.Action(ev.Type, ev.Object)
			}
			w.Stop()
		}()
		ended, err := f.watchPod(context.Background(), w, pod, errc, func() {
			if !stopped {
				stopped = true
				errc <- nil
			}
		})
		return ended, err
	}
	notReady := readyPod("a")
	notReady.Status.Conditions[0].Status = corev1.ConditionFalse
	for _, tc := range []struct {
		name   string
		events []watch.Event
		ended  bool
	}{
		{"still ready, then the watch closes", []watch.Event{{Type: watch.Modified, Object: readyPod("a")}}, false},
		{"not ready", []watch.Event{{Type: watch.Modified, Object: readyPod("a")}, {Type: watch.Modified, Object: notReady}}, true},
		{"deleted", []watch.Event{{Type: watch.Deleted, Object: readyPod("a")}}, true},
		{"replaced by another pod of that name", []watch.Event{{Type: watch.Modified, Object: readyPod("b")}}, true},
		{"a watch error is watched again", []watch.Event{{Type: watch.Error, Object: &metav1.Status{}}}, false},
	} {
		done := make(chan struct{})
		var ended bool
		var err error
		go func() {
			defer close(done)
			ended, err = run(tc.events...)
		}()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatalf("%s: watchPod did not return", tc.name)
		}
		if ended != tc.ended || (tc.ended && (err == nil || !strings.Contains(err.Error(), "went away"))) {
			t.Errorf("%s: ended %v, %v; want ended %v", tc.name, ended, err, tc.ended)
		}
	}
}
