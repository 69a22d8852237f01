package k8stest

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
)

// Start starts a control plane for one test and stops it in t.Cleanup. When
// the binaries are missing the test fails, saying to run `make k8s-tools`.
// If the test failed, the tail of every component log is logged first.
func Start(t testing.TB, opts ...Option) *ControlPlane {
	t.Helper()
	c, err := New(t.Context(), opts...)
	if err != nil {
		t.Fatalf("k8stest: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Log(c.logTails())
		}
		if err := c.Stop(); err != nil {
			t.Errorf("k8stest: stop: %v", err)
		}
	})
	return c
}

var shared struct {
	mu      sync.Mutex
	started bool
	cp      *ControlPlane
	err     error
}

// Shared returns the control plane shared by every test of this test binary,
// starting it on first use. Tests sharing it should each work in their own
// namespace (see NewNamespace). It is stopped by Main, or, without a
// TestMain, killed with the test process (Linux) and its directory removed
// by the next control plane started on this machine.
func Shared(t testing.TB) *ControlPlane {
	t.Helper()
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if !shared.started {
		shared.started = true
		shared.cp, shared.err = New(context.Background())
	}
	if shared.err != nil {
		t.Fatalf("k8stest: shared control plane: %v", shared.err)
	}
	return shared.cp
}

// StopShared stops the shared control plane if one was started.
func StopShared() error {
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if shared.cp == nil {
		return nil
	}
	return shared.cp.Stop()
}

// Main runs the tests, stops the shared control plane and exits:
//
//	func TestMain(m *testing.M) { k8stest.Main(m) }
//
// When tests failed, the tail of every component log goes to stderr.
func Main(m *testing.M) {
	code := m.Run()
	shared.mu.Lock()
	cp := shared.cp
	shared.mu.Unlock()
	if cp != nil && code != 0 {
		fmt.Fprintln(os.Stderr, cp.logTails())
	}
	if err := StopShared(); err != nil {
		fmt.Fprintf(os.Stderr, "k8stest: stop shared control plane: %v\n", err)
		if code == 0 {
			code = 1
		}
	}
	os.Exit(code)
}

// NewNamespace creates a namespace named after the test with the given
// labels, waits until its default ServiceAccount exists (pods cannot be
// created before) and deletes it in t.Cleanup.
func (c *ControlPlane) NewNamespace(t testing.TB, labels map[string]string) string {
	t.Helper()
	ns, err := c.client.CoreV1().Namespaces().Create(t.Context(), &corev1.Namespace{
		ObjectMeta: metav1.ObjectMeta{GenerateName: namespacePrefix(t.Name()), Labels: labels},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("k8stest: create namespace: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := c.client.CoreV1().Namespaces().Delete(ctx, ns.Name, metav1.DeleteOptions{}); err != nil {
			t.Errorf("k8stest: delete namespace %s: %v", ns.Name, err)
		}
	})
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if err := wait.PollUntilContextCancel(ctx, 50*time.Millisecond, true, saReady(c.client, ns.Name)); err != nil {
		t.Fatalf("k8stest: namespace %s: default ServiceAccount not created: %v", ns.Name, err)
	}
	return ns.Name
}

// namespacePrefix turns a test name into a DNS label prefix.
func namespacePrefix(testName string) string {
	s := strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			return r
		case r >= 'A' && r <= 'Z':
			return r + ('a' - 'A')
		default:
			return '-'
		}
	}, testName)
	s = strings.TrimPrefix(s, "test")
	if len(s) > 40 {
		s = s[:40]
	}
	s = strings.Trim(s, "-")
	if s == "" {
		s = "test"
	}
	return s + "-"
}

// logTails returns the tail of every component's log.
func (c *ControlPlane) logTails() string {
	var b strings.Builder
	for _, p := range c.procs {
		b.WriteString(p.logTail())
		b.WriteString("\n")
	}
	return b.String()
}
