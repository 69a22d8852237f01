//go:build e2e

package e2e

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/devctl/devctl/e2e/harness"
)

// TestCheckStartupBudget holds a plain `devctl check FILE` to a budget of
// package initialisation — where its start-up went (about 140 ms of
// package init made a one-file check slower than conftest; the lean front,
// cmd/devctl, links none of Helm, client-go and the CEL and Rego engines). It counts the
// bytes and allocations Go's inittrace reports, which do not depend on
// how busy the machine is; the clock time is logged, not asserted.
// e2e/tools/bench-conftest.sh times the whole invocation against conftest.
func TestCheckStartupBudget(t *testing.T) {
	bin := os.Getenv("DEVCTL_BIN")
	if bin == "" {
		t.Fatal("DEVCTL_BIN is not set: build devctl (make build) and point DEVCTL_BIN at it")
	}
	root, err := harness.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "check", filepath.Join(root, "internal", "policy", "testdata", "rendered.yaml"))
	cmd.Env = append(os.Environ(), "GODEBUG=inittrace=1")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	_ = cmd.Run() // the fixture's findings decide the exit code; the trace is what counts
	var pkgs, bytesTotal, allocs int
	var clock float64
	sc := bufio.NewScanner(&stderr)
	for sc.Scan() {
		// init pkg @0.1 ms, 0.2 ms clock, 1448 bytes, 9 allocs
		f := strings.Fields(sc.Text())
		if len(f) < 10 || f[0] != "init" {
			continue
		}
		ms, _ := strconv.ParseFloat(f[4], 64)
		b, _ := strconv.Atoi(f[7])
		a, _ := strconv.Atoi(f[9])
		pkgs, clock, bytesTotal, allocs = pkgs+1, clock+ms, bytesTotal+b, allocs+a
	}
	if pkgs == 0 {
		t.Fatalf("no inittrace output:\n%s", stderr.String())
	}
	t.Logf("package init: %d packages, %.0f KiB, %d allocations, %.1f ms clock (inflated on a busy machine)", pkgs, float64(bytesTotal)/1024, allocs, clock)
	// Measured: 1.1 MiB, 10,348 allocations in 162 packages since devctl is a
	// lean front (10.7 MiB and 94,816 before, when it was the full build).
	const maxBytes, maxAllocs = 2 << 20, 16_000
	if bytesTotal > maxBytes || allocs > maxAllocs {
		t.Errorf("package init allocates %d bytes in %d allocations, over the budget of %d and %d: a package now does work at init that devctl check pays on every run (GODEBUG=inittrace=1 devctl check FILE lists them)",
			bytesTotal, allocs, maxBytes, maxAllocs)
	}
}
