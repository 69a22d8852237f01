package app

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/devctl/devctl/internal/k8stest"
	"github.com/devctl/devctl/internal/preview"
)

// runCLI runs devctl with args and returns stdout, stderr and the exit code
// Main would exit with.
func runCLI(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	var out, errOut bytes.Buffer
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	err := Run(ctx, Streams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut}, args)
	code := exitCode(&errOut, err)
	return out.String(), errOut.String(), code
}

func createNS(t *testing.T, c kubernetes.Interface, name string, labels map[string]string) {
	t.Helper()
	_, err := c.CoreV1().Namespaces().Create(t.Context(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
}

func nsExists(t *testing.T, c kubernetes.Interface, name string) bool {
	t.Helper()
	_, err := c.CoreV1().Namespaces().Get(t.Context(), name, metav1.GetOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		t.Fatal(err)
	}
	return err == nil
}

// The preview commands that work from the host's labels alone, against a
// real API server: ls -o json, gc (dry run, then for real) leaving an
// unlabelled namespace alone, pause and resume, the cap, and the exit codes
// a workflow branches on.
func TestIntegrationPreviewCommands(t *testing.T) {
	if testing.Short() {
		t.Skip("integration: needs the control plane binaries from `make k8s-tools`")
	}
	cp := k8stest.Start(t)
	c := cp.Client()
	socket := filepath.Join(t.TempDir(), "no-daemon.sock") // nothing here may need the daemon
	host := []string{"--kubeconfig", cp.Kubeconfig, "--socket", socket}
	now := time.Now()

	expired := preview.Request{Repo: "acme/shop", PR: 1, SHA: "1111111", TTL: time.Hour, Now: now.Add(-3 * time.Hour)}
	running := preview.Request{Repo: "acme/shop", PR: 2, SHA: "2222222", TTL: time.Hour, Now: now}
	other := preview.Request{Repo: "other/shop", PR: 1, TTL: time.Hour, Now: now}
	for _, r := range []preview.Request{expired, running, other} {
		createNS(t, c, "vc-"+r.Env(), r.Labels())
	}
	createNS(t, c, "team-prod", map[string]string{"devctl.dev/pr": "1", "devctl.dev/expires-at": "20000101T000000Z"})
	createNS(t, c, "plain", nil)
	one := int32(1)
	labels := map[string]string{"app": "vcluster"}
	_, err := c.AppsV1().StatefulSets("vc-"+running.Env()).Create(t.Context(), &appsv1.StatefulSet{
		ObjectMeta: metav1.ObjectMeta{Name: "vc"},
		Spec: appsv1.StatefulSetSpec{
			Replicas: &one, Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "syncer", Image: "vcluster:test"}}}},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}

	t.Run("ls", func(t *testing.T) {
		out, errOut, code := runCLI(t, append([]string{"preview", "ls", "-o", "json"}, host...)...)
		if code != 0 {
			t.Fatalf("exit %d: %s", code, errOut)
		}
		var items []struct {
			preview.Preview
			State preview.State `json:"state"`
		}
		if err := json.Unmarshal([]byte(out), &items); err != nil {
			t.Fatalf("%v: %s", err, out)
		}
		var got []string
		for _, it := range items {
			got = append(got, it.Repo+"#"+strconv.Itoa(it.PR)+":"+string(it.State))
		}
		if want := "acme.shop#1:Expired acme.shop#2:Running other.shop#1:Running"; strings.Join(got, " ") != want {
			t.Errorf("ls = %v, want %s", got, want)
		}
		out, _, code = runCLI(t, append([]string{"preview", "ls", "--repo", "https://github.com/other/shop.git"}, host...)...)
		t.Logf("devctl preview ls --repo other/shop:\n%s", out)
		if code != 0 || !strings.Contains(out, "other.shop") || strings.Contains(out, "acme.shop") {
			t.Errorf("ls --repo other/shop (exit %d):\n%s", code, out)
		}
	})

	t.Run("cap", func(t *testing.T) {
		// acme/shop runs #1 (expired, still running) and #2: a third is refused.
		summary := filepath.Join(t.TempDir(), "summary.md")
		_, errOut, code := runCLI(t, append([]string{"preview", "up", "--repo", "acme/shop", "--pr", "3", "--sha", "3333333",
			"--max-previews", "2", "--summary-file", summary, "-C", t.TempDir()}, host...)...)
		if code != preview.ExitCapReached || !strings.Contains(errOut, "PRs #1, #2") {
			t.Errorf("up over the cap: exit %d, want %d:\n%s", code, preview.ExitCapReached, errOut)
		}
		t.Logf("devctl preview up over the cap:\n%s", errOut)
		md, err := os.ReadFile(summary)
		t.Logf("its step summary:\n%s", md)
		if err != nil || !strings.Contains(string(md), "did not come up") || !strings.Contains(string(md), "| host |") {
			t.Errorf("summary of a refused up (%v):\n%s", err, md)
		}
	})

	t.Run("pause and resume", func(t *testing.T) {
		out, errOut, code := runCLI(t, append([]string{"preview", "pause", "--repo", "acme/shop", "--pr", "2"}, host...)...)
		if code != 0 || !strings.Contains(out, "scaled StatefulSet vc") {
			t.Fatalf("pause: exit %d\n%s%s", code, out, errOut)
		}
		sts, err := c.AppsV1().StatefulSets("vc-"+running.Env()).Get(t.Context(), "vc", metav1.GetOptions{})
		if err != nil || *sts.Spec.Replicas != 0 {
			t.Errorf("after pause: %v %v", sts.Spec.Replicas, err)
		}
		// Paused previews do not count against the cap: #1 alone is running.
		out, _, _ = runCLI(t, append([]string{"preview", "ls", "--repo", "acme/shop"}, host...)...)
		if !strings.Contains(out, "Paused") {
			t.Errorf("ls after pause:\n%s", out)
		}
		out, errOut, code = runCLI(t, append([]string{"preview", "resume", "--repo", "acme/shop", "--pr", "2", "--wait", "1m"}, host...)...)
		if code != 0 || !strings.Contains(out, "ready") {
			t.Fatalf("resume: exit %d\n%s%s", code, out, errOut)
		}
		_, errOut, code = runCLI(t, append([]string{"preview", "pause", "--repo", "acme/shop", "--pr", "99"}, host...)...)
		if code != preview.ExitNotFound || !strings.Contains(errOut, "no preview of PR #99") {
			t.Errorf("pause of an absent PR: exit %d: %s", code, errOut)
		}
	})

	t.Run("gc", func(t *testing.T) {
		out, errOut, code := runCLI(t, append([]string{"preview", "gc", "--dry-run"}, host...)...)
		if code != 0 || !strings.Contains(out, "would delete "+expired.Env()) || strings.Count(out, "would delete") != 1 {
			t.Fatalf("gc --dry-run: exit %d\n%s%s", code, out, errOut)
		}
		if !nsExists(t, c, "vc-"+expired.Env()) {
			t.Fatal("--dry-run deleted")
		}
		out, errOut, code = runCLI(t, append([]string{"preview", "gc"}, host...)...)
		t.Logf("devctl preview gc:\n%s", out)
		if code != 0 || !strings.Contains(out, "deleted "+expired.Env()) {
			t.Fatalf("gc: exit %d\n%s%s", code, out, errOut)
		}
		if nsExists(t, c, "vc-"+expired.Env()) {
			t.Error("the expired preview's namespace is still there")
		}
		for _, ns := range []string{"vc-" + running.Env(), "vc-" + other.Env(), "team-prod", "plain"} {
			if !nsExists(t, c, ns) {
				t.Errorf("gc deleted %s", ns)
			}
		}
	})

	t.Run("down", func(t *testing.T) {
		out, errOut, code := runCLI(t, append([]string{"preview", "down", "--repo", "other/shop", "--pr", "1"}, host...)...)
		if code != 0 || !strings.Contains(out, "is gone") {
			t.Fatalf("down: exit %d\n%s%s", code, out, errOut)
		}
		if nsExists(t, c, "vc-"+other.Env()) {
			t.Error("namespace left after down")
		}
		out, _, code = runCLI(t, append([]string{"preview", "down", "--repo", "other/shop", "--pr", "1"}, host...)...)
		if code != 0 || !strings.Contains(out, "nothing to delete") {
			t.Errorf("second down: exit %d\n%s", code, out)
		}
	})

	t.Run("usage and host errors", func(t *testing.T) {
		if _, errOut, code := runCLI(t, append([]string{"preview", "up", "--repo", "acme/shop"}, host...)...); code != preview.ExitUsage {
			t.Errorf("up without --pr: exit %d: %s", code, errOut)
		}
		if _, errOut, code := runCLI(t, "preview", "ls", "--kubeconfig", cp.Kubeconfig, "--context", "nope"); code != preview.ExitHost || !strings.Contains(errOut, `no context "nope"`) {
			t.Errorf("ls with a wrong context: exit %d: %s", code, errOut)
		}
	})
}
