// Command innerloop measures devctl's inner loop on a real kind cluster:
// from writing a source file of examples/hello to the first HTTP answer
// carrying the new text, N times each for a full image rebuild (live update
// off), a live update of the Go binary and a live update of a static file,
// and prints p50/p95 of each beside the daemon's own save → serving records:
//
//	go run ./e2e/bench/innerloop -devctl bin/devctl -n 10
//
// A devctl built with `make build` embeds the agent; for a plain go build,
// -agent names a static linux devctl-agent (built here when empty).
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/devctl/devctl/e2e/harness"
	"github.com/devctl/devctl/internal/api"
)

func main() {
	bin := flag.String("devctl", "bin/devctl", "the devctl binary")
	agentBin := flag.String("agent", "", "a static linux devctl-agent (default: built from ./cmd/devctl-agent)")
	n := flag.Int("n", 10, "edits per mode")
	tilt := flag.String("tilt", "", "a Tilt binary (e2e/tools/tilt.sh builds one): also time Tilt's live update and full rebuild of the same edits on the same cluster, and print the ratios")
	flag.Parse()
	if err := run(*bin, *agentBin, *tilt, *n); err != nil {
		fmt.Fprintln(os.Stderr, "innerloop:", err)
		os.Exit(1)
	}
}

const greeting = `c.Greeting = "hello"`

func run(bin, agentBin, tiltBin string, n int) error {
	ctx := context.Background()
	bin, err := filepath.Abs(bin)
	if err != nil {
		return err
	}
	image, err := harness.NodeImage(ctx)
	if err != nil {
		return err
	}
	environ, err := harness.Env(os.Environ())
	if err != nil {
		return err
	}
	root, err := harness.RepoRoot()
	if err != nil {
		return err
	}
	work, err := os.MkdirTemp("", "innerloop")
	if err != nil {
		return err
	}
	defer func() { _ = os.RemoveAll(work) }()
	if agentBin == "" {
		agentBin = filepath.Join(work, "devctl-agent")
		cmd := exec.Command("go", "build", "-trimpath", "-o", agentBin, "./cmd/devctl-agent")
		cmd.Dir, cmd.Env = root, append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux")
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("build devctl-agent: %w\n%s", err, out)
		}
	}
	project := filepath.Join(work, "hello")
	if err := sh(work, "cp", "-r", filepath.Join(root, "examples", "hello"), project); err != nil {
		return err
	}
	_ = os.RemoveAll(filepath.Join(project, "bin"))
	for _, args := range [][]string{{"init", "-q", "-b", "bench/innerloop"}, {"-c", "user.email=b@example.com", "-c", "user.name=b", "commit", "-q", "--allow-empty", "-m", "init"}} {
		if err := sh(project, "git", args...); err != nil {
			return err
		}
	}
	configPath, mainGo := filepath.Join(project, "devctl.yaml"), filepath.Join(project, "main.go")
	liveConfig, err := os.ReadFile(configPath)
	if err != nil {
		return err
	}
	src, err := os.ReadFile(mainGo)
	if err != nil {
		return err
	}
	liveBlock := regexp.MustCompile(`(?m)^    live:\n(?:      .*\n)*`)
	if !bytes.Contains(src, []byte(greeting)) || !liveBlock.Match(liveConfig) {
		return fmt.Errorf("examples/hello changed: update this benchmark")
	}
	sock, err := os.MkdirTemp("", "il")
	if err != nil {
		return err
	}
	defer func() { _ = os.RemoveAll(sock) }()
	socket := filepath.Join(sock, "d.sock")
	env := append(slices.Clone(environ), "DEVCTL_SOCKET="+socket, "DEVCTL_STATE_DIR="+filepath.Join(work, "state"),
		"DEVCTL_NODE_IMAGE="+image, "DEVCTL_AGENT_BINARY="+agentBin)
	devctl := func(args ...string) (string, error) {
		cmd := exec.Command(bin, args...)
		cmd.Dir, cmd.Env = project, env
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Run(); err != nil {
			return "", fmt.Errorf("devctl %s: %w\n%s", strings.Join(args, " "), err, out.String())
		}
		return out.String(), nil
	}
	defer func() {
		_, _ = devctl("down")
		_, _ = devctl("daemon", "stop")
	}()

	// Image rebuilds: live update off.
	if err := os.WriteFile(configPath, liveBlock.ReplaceAll(liveConfig, nil), 0o644); err != nil {
		return err
	}
	out, err := devctl("up", "--ci", "--watch")
	if err != nil {
		return err
	}
	m := regexp.MustCompile(`(?m)^\s+hello\s+(http://127\.0\.0\.1:\d+)\s*$`).FindStringSubmatch(out)
	if m == nil {
		return fmt.Errorf("no URL in:\n%s", out)
	}
	url := m[1]
	c := api.NewClient(socket)
	name := ""
	if list, err := c.List(ctx); err == nil {
		for _, e := range list {
			if strings.HasPrefix(e.Name, "hello-bench-innerloop") {
				name = e.Name
			}
		}
	}
	if name == "" {
		return fmt.Errorf("no hello-bench-innerloop environment")
	}
	static := filepath.Join(project, "static", "greeting.txt")
	edit := func(word string, file bool) (time.Duration, error) {
		start := time.Now()
		path, content, at := mainGo, bytes.Replace(src, []byte(greeting), []byte(`c.Greeting = "`+word+`"`), 1), url
		if file {
			path, content, at = static, []byte(word+"\n"), url+"/static/greeting.txt"
		}
		if err := os.WriteFile(path, content, 0o644); err != nil {
			return 0, err
		}
		if err := waitBody(ctx, at, word, 3*time.Minute); err != nil {
			st, _ := devctl("status", name)
			log, _ := os.ReadFile(filepath.Join(work, "state", "daemon.log"))
			return 0, fmt.Errorf("%w\n%s\ndaemon.log:\n%s", err, st, log)
		}
		d := time.Since(start)
		return d, idle(ctx, c, name)
	}
	measure := func(mode string) ([]time.Duration, error) {
		var ds []time.Duration
		for i := range n {
			d, err := edit(fmt.Sprintf("%s-%d", mode, i), mode == "static")
			if err != nil {
				return nil, err
			}
			fmt.Printf("%s edit %2d: %5dms\n", mode, i+1, d.Milliseconds())
			ds = append(ds, d)
		}
		return ds, nil
	}
	image1, err := measure("image")
	if err != nil {
		return err
	}

	// Live update of the Go binary: turn live: back on (an up), then edit.
	if err := os.WriteFile(configPath, liveConfig, 0o644); err != nil {
		return err
	}
	time.Sleep(time.Second) // the watcher's up starts; the CLI's joins it
	if _, err := devctl("up", "--ci", "--watch"); err != nil {
		return err
	}
	if err := idle(ctx, c, name); err != nil {
		return err
	}
	live, err := measure("live")
	if err != nil {
		return err
	}
	staticTimes, err := measure("static")
	if err != nil {
		return err
	}

	fmt.Printf("\nwrite → first answer with the new text, %d edits each (polled every 20ms):\n", n)
	for _, r := range []struct {
		mode string
		ds   []time.Duration
	}{{"full image rebuild", image1}, {"live update, Go binary", live}, {"live update, static file", staticTimes}} {
		fmt.Printf("  %-24s p50 %5dms  p95 %5dms\n", r.mode, pct(r.ds, 50).Milliseconds(), pct(r.ds, 95).Milliseconds())
	}
	e, err := c.Get(ctx, name)
	if err != nil {
		return err
	}
	fmt.Println("the daemon's records (first change seen → serving):")
	for _, s := range e.Status.RebuildStats {
		fmt.Printf("  %-24s p50 %5dms  p95 %5dms  (%d served, %d failed)\n", s.Mode, s.P50.Milliseconds(), s.P95.Milliseconds(), s.Count, s.Failed)
	}
	printPhases(e.Status.Rebuilds)
	if tiltBin == "" {
		return nil
	}
	tiltBin, err = filepath.Abs(tiltBin)
	if err != nil {
		return err
	}
	fmt.Printf("\nTilt (%s) on the same cluster, same app on a Debian image, same edits:\n", tiltBin)
	t, err := benchTilt(ctx, tiltBin, e.Status.Kubeconfig, filepath.Join(root, "examples", "hello"), work, n)
	if err != nil {
		return err
	}
	fmt.Printf("\nwrite → first answer with the new text, %d edits each:\n", n)
	row := func(what string, ds []time.Duration) {
		fmt.Printf("  %-34s p50 %5dms  p95 %5dms\n", what, pct(ds, 50).Milliseconds(), pct(ds, 95).Milliseconds())
	}
	row("devctl live update, Go binary", live)
	row("devctl live update, static file", staticTimes)
	row("devctl full image rebuild", image1)
	row("Tilt live update (sync + restart)", t.live)
	row("Tilt full image rebuild", t.full)
	ratio := func(what string, a, b []time.Duration, goal string) {
		fmt.Printf("  %-46s p50 %.2fx  p95 %.2fx  (goal %s)\n", what,
			pct(a, 50).Seconds()/pct(b, 50).Seconds(), pct(a, 95).Seconds()/pct(b, 95).Seconds(), goal)
	}
	fmt.Println("ratios devctl/Tilt:")
	ratio("live update, Go binary / Tilt live update", live, t.live, "≤ 0.5x")
	ratio("live update, static file / Tilt live update", staticTimes, t.live, "p50 ≤ 0.3 s")
	ratio("full image rebuild / Tilt full rebuild", image1, t.full, "≤ 0.8x")
	if t.rssKB > 0 {
		fmt.Printf("Tilt's resident set: up to %.0f MB\n", float64(t.rssKB)/1024)
	}
	return nil
}

// printPhases prints the mean time of each phase of the daemon's recorded
// rebuilds, per kind of edit: where the time goes.
func printPhases(h []api.Rebuild) {
	type agg struct {
		n      int
		order  []string
		phases map[string]time.Duration
		total  time.Duration
	}
	kinds := map[string]*agg{}
	var order []string
	for _, rb := range h {
		if rb.Error != "" {
			continue
		}
		k := rb.Mode + ", " + rb.Reason
		a := kinds[k]
		if a == nil {
			a = &agg{phases: map[string]time.Duration{}}
			kinds[k] = a
			order = append(order, k)
		}
		a.n++
		a.total += rb.SaveToServing
		for _, ph := range rb.Phases {
			if _, ok := a.phases[ph.Name]; !ok {
				a.order = append(a.order, ph.Name)
			}
			a.phases[ph.Name] += ph.Duration
		}
	}
	fmt.Println("mean phases of the daemon's records:")
	for _, k := range order {
		a := kinds[k]
		if a.n < 2 {
			continue
		}
		fmt.Printf("  %-30s", k)
		for _, ph := range a.order {
			fmt.Printf(" %s %dms", ph, (a.phases[ph] / time.Duration(a.n)).Milliseconds())
		}
		fmt.Printf(" = %dms (%d)\n", (a.total / time.Duration(a.n)).Milliseconds(), a.n)
	}
}

// idle waits until the environment runs nothing and has nothing queued.
func idle(ctx context.Context, c *api.Client, name string) error {
	deadline := time.Now().Add(5 * time.Minute)
	for time.Now().Before(deadline) {
		e, err := c.Get(ctx, name)
		if err != nil {
			return err
		}
		if !e.Status.Run.Active() && e.Status.Queued == nil {
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("%s never settled", name)
}

var fresh = &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}

func waitBody(ctx context.Context, url, want string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	var last string
	for time.Now().Before(deadline) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		if resp, err := fresh.Do(req); err == nil {
			b, _ := io.ReadAll(resp.Body)
			_ = resp.Body.Close()
			if last = string(b); strings.Contains(last, want) {
				return nil
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("%s never answered %q (last %q)", url, want, last)
}

// pct is the nearest-rank percentile p of ds.
func pct(ds []time.Duration, p int) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	return s[max((p*len(s)+99)/100, 1)-1]
}

func sh(dir, name string, args ...string) error {
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, out)
	}
	return nil
}
