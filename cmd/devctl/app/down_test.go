package app

import (
	"strings"
	"testing"
	"time"

	"github.com/devctl/devctl/internal/api"
)

func envEvent(phase api.Phase, run *api.Run) api.Event {
	return api.Event{Type: api.EventEnv, Env: "a", Environment: &api.Environment{Name: "a", Status: api.EnvStatus{Phase: phase, Run: run}}}
}

func TestFollowDown(t *testing.T) {
	t.Parallel()
	// The environment failed before (generation 1); the down is generation 2.
	oldFailure := envEvent(api.PhaseFailed, &api.Run{ID: 1, Request: api.Request{Kind: api.RunUp, Generation: 1},
		Error: "cluster: kubeadm init failed", Steps: []api.Step{{Name: "cluster", Status: api.StepFailed, Detail: "kubeadm init failed"}}})
	deleting := envEvent(api.PhaseDeleting, &api.Run{ID: 2, Request: api.Request{Kind: api.RunDelete, Generation: 2},
		Steps: []api.Step{{Name: "delete", Status: api.StepRunning}}})
	deleted := func(detail string) api.Event {
		return envEvent(api.PhaseDeleting, &api.Run{ID: 2, Request: api.Request{Kind: api.RunDelete, Generation: 2},
			Steps: []api.Step{{Name: "delete", Status: api.StepDone, Detail: detail}}})
	}
	gone := api.Event{Type: api.EventDeleted, Env: "a"}
	feed := func(evs ...api.Event) <-chan api.Event {
		ch := make(chan api.Event, len(evs))
		for _, e := range evs {
			ch <- e
		}
		close(ch)
		return ch
	}

	t.Run("an earlier failure is not the down's", func(t *testing.T) {
		detail, err := followDown(feed(oldFailure, deleting, deleted("deleted kind cluster a"), gone), "a", 2)
		if err != nil || detail != "deleted kind cluster a" {
			t.Fatalf("got %q, %v", detail, err)
		}
	})
	t.Run("nothing to delete", func(t *testing.T) {
		detail, err := followDown(feed(deleting, deleted("nothing to delete: no cluster and no files"), gone), "a", 2)
		if err != nil || !strings.Contains(detail, "nothing to delete") {
			t.Fatalf("got %q, %v", detail, err)
		}
	})
	t.Run("a failed delete is reported with its own reason", func(t *testing.T) {
		failed := envEvent(api.PhaseFailed, &api.Run{ID: 2, Request: api.Request{Kind: api.RunDelete, Generation: 2},
			Ended: time.Now(), Error: "delete: docker did not answer", Steps: []api.Step{{Name: "delete", Status: api.StepFailed, Detail: "docker did not answer"}}})
		_, err := followDown(feed(oldFailure, deleting, failed), "a", 2)
		if err == nil || !strings.Contains(err.Error(), "docker did not answer") || strings.Contains(err.Error(), "kubeadm") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("a failed delete of an unknown name", func(t *testing.T) {
		failedStep := envEvent(api.PhaseDeleting, &api.Run{ID: 2, Request: api.Request{Kind: api.RunDelete, Generation: 2},
			Steps: []api.Step{{Name: "delete", Status: api.StepFailed, Detail: "not created by devctl"}}})
		_, err := followDown(feed(deleting, failedStep, gone), "a", 2)
		if err == nil || !strings.Contains(err.Error(), "not created by devctl") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("stream ends", func(t *testing.T) {
		if _, err := followDown(feed(oldFailure), "a", 2); err == nil {
			t.Fatal("no error when the stream ended early")
		}
	})
}
