package policy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"syscall"
	"testing"
	"time"
)

// BenchmarkCheck measures one check of a golden-path render (Deployment,
// Service, ServiceAccount, PodDisruptionBudget, HPA, NetworkPolicy) with
// an engine built once, as the daemon and the pre-push hook use it.
func BenchmarkCheck(b *testing.B) {
	data, err := os.ReadFile("testdata/rendered.yaml")
	if err != nil {
		b.Fatal(err)
	}
	e := newTestEngine(b, Options{AllowedRegistries: []string{"registry.devctl.localhost"}})
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		docs, err := ParseManifests("rendered.yaml", data)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := e.Check(ctx, docs, nil); err != nil {
			b.Fatal(err)
		}
	}
}

// workloadsManifest returns n Deployments (the golden-path one, renamed,
// every tenth with a :latest image and no readiness probe) and, for every
// hundredth, a NetworkPolicy and a PodDisruptionBudget selecting it: the
// input of BenchmarkCheckWorkloads and e2e/tools/bench-conftest.sh.
func workloadsManifest(tb testing.TB, n int) []byte {
	tb.Helper()
	var dep []byte
	for _, d := range loadDocs(tb, "testdata/rendered.yaml") {
		if d.Object.GetKind() == "Deployment" {
			data, err := os.ReadFile(d.File)
			if err != nil {
				tb.Fatal(err)
			}
			start := bytes.Index(data, []byte("# Source: web/templates/deployment.yaml"))
			end := bytes.Index(data[start:], []byte("\n---"))
			dep = data[start : start+end+1]
		}
	}
	var b bytes.Buffer
	for i := range n {
		name := fmt.Sprintf("web-%05d", i)
		d := bytes.ReplaceAll(dep, []byte(": web\n"), []byte(": "+name+"\n"))
		if i%10 == 0 {
			d = bytes.Replace(d, []byte(":3f2a9c1"), []byte(":latest"), 1)
			d = bytes.Replace(d, []byte("readinessProbe:"), []byte("startupProbe:"), 1)
		}
		b.WriteString("---\n")
		b.Write(d)
		if i%100 == 0 {
			fmt.Fprintf(&b, `---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: %[1]s}
spec:
  podSelector: {matchLabels: {app.kubernetes.io/name: %[1]s}}
  policyTypes: [Ingress, Egress]
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata: {name: %[1]s}
spec:
  maxUnavailable: 1
  selector: {matchLabels: {app.kubernetes.io/name: %[1]s}}
`, name)
		}
	}
	return b.Bytes()
}

// BenchmarkCheckWorkloads reads and checks 10,000 Deployments from
// scratch, engine included, as `devctl check big.yaml` does. It reports
// the wall time, the CPU time and the peak heap of one run. With CONFTEST
// set to a conftest binary it also runs `conftest test` with the same
// rules in Rego (testdata/rego) on the same input, once per iteration,
// and reports the ratio of the wall times (x-conftest; the goal is at
// most 0.5). e2e/tools/bench-conftest.sh builds conftest and compares the
// two as processes, memory included.
//
//	go test -run '^$' -bench CheckWorkloads -benchtime 3x ./internal/policy
//	CONFTEST=$(command -v conftest) go test -run '^$' -bench CheckWorkloads -benchtime 3x ./internal/policy
func BenchmarkCheckWorkloads(b *testing.B) {
	data := workloadsManifest(b, 10000)
	if out := os.Getenv("DEVCTL_BENCH_WRITE"); out != "" {
		if err := os.WriteFile(out, data, 0o644); err != nil {
			b.Fatal(err)
		}
	}
	conftest := os.Getenv("CONFTEST")
	var input string
	if conftest != "" {
		input = filepath.Join(b.TempDir(), "workloads.yaml")
		if err := os.WriteFile(input, data, 0o644); err != nil {
			b.Fatal(err)
		}
	}
	ctx := context.Background()
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	var objects, findings int
	var peak uint64
	var conftestTime time.Duration
	cpu0 := cpuTime()
	for b.Loop() {
		if conftest != "" {
			b.StopTimer()
			start := time.Now()
			out, err := exec.Command(conftest, "test", "--policy", "testdata/rego", "--namespace", "main", input).CombinedOutput()
			// conftest exits 1 when a rule denies, as it does here.
			if ee := (*exec.ExitError)(nil); err != nil && (!errors.As(err, &ee) || ee.ExitCode() != 1) {
				b.Fatalf("conftest: %v\n%.500s", err, out)
			}
			conftestTime += time.Since(start)
			b.StartTimer()
		}
		runtime.GC()
		var before runtime.MemStats
		runtime.ReadMemStats(&before)
		e, err := New(ctx, Options{AllowedRegistries: []string{"registry.devctl.localhost"}})
		if err != nil {
			b.Fatal(err)
		}
		docs, err := ParseManifests("workloads.yaml", data)
		if err != nil {
			b.Fatal(err)
		}
		r, err := e.Check(ctx, docs, nil)
		if err != nil {
			b.Fatal(err)
		}
		var after runtime.MemStats
		runtime.ReadMemStats(&after)
		peak = max(peak, after.HeapInuse)
		objects, findings = r.Objects, len(r.Findings)
	}
	b.ReportMetric(float64(peak)/(1<<20), "MiB-live")
	b.ReportMetric(float64(objects), "objects")
	b.ReportMetric(float64(findings), "findings")
	b.ReportMetric(float64(b.Elapsed())/float64(b.N)/float64(time.Second), "s/check")
	// CPU time tells the work apart from waiting for a core on a busy
	// machine (conftest's runs excluded only when CONFTEST is unset).
	if conftest == "" {
		b.ReportMetric((cpuTime()-cpu0).Seconds()/float64(b.N), "cpu-s/check")
	}
	if conftest != "" {
		b.ReportMetric(float64(b.Elapsed())/float64(conftestTime), "x-conftest")
	}
}

// cpuTime is the CPU time (user and system) this process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkNew measures building the engine with the Rego and CEL rules
// (the cost the CLI pays once per run).
func BenchmarkNew(b *testing.B) {
	for b.Loop() {
		if _, err := New(context.Background(), Options{RulesDir: "testdata/rego"}); err != nil {
			b.Fatal(err)
		}
	}
}
