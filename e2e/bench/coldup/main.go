// Command coldup measures a cold `devctl up --ci` of examples/hello side by
// side with `kind create cluster` on the same node image, in one run, and
// prints both, the ratio, and the time of an unchanged second up:
//
//	go run ./e2e/bench/coldup -devctl bin/devctl -runs 3
//
// -baseline names an earlier devctl build to time in the same rounds, so a
// change is compared under the same machine load. -watch times `devctl up
// --ci --watch` instead: a watched environment, whose pods run under the
// live-update agent (an unwatched one runs them as in production).
//
// Rounds alternate (kind, then devctl) so both see the same machine load.
// The service's image is built once before the first round, as on a
// developer's machine that ran `devctl up` before; each devctl round starts
// a fresh daemon and deletes its environment at the end.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"sigs.k8s.io/kind/pkg/apis/config/v1alpha4"
	"sigs.k8s.io/kind/pkg/cluster"
	"sigs.k8s.io/kind/pkg/log"

	"github.com/devctl/devctl/e2e/harness"
	"github.com/devctl/devctl/internal/api"
	"github.com/devctl/devctl/internal/freezer"
)

func main() {
	bin := flag.String("devctl", "bin/devctl", "the devctl binary")
	runs := flag.Int("runs", 2, "rounds of kind create cluster and devctl up")
	baseline := flag.String("baseline", "", "another devctl binary (an earlier build) to time in the same rounds, after kind and before -devctl")
	watch := flag.Bool("watch", false, "time `up --ci --watch` (live mode) instead of `up --ci`")
	flag.Parse()
	if *watch {
		upArgs = append(upArgs, "--watch")
	}
	if err := run(*bin, *baseline, *runs); err != nil {
		fmt.Fprintln(os.Stderr, "coldup:", err)
		os.Exit(1)
	}
}

// settle is the pause before the unchanged up that is timed.
const settle = 10 * time.Second

// upArgs is the command timed.
var upArgs = []string{"up", "--ci"}

func run(bin, baseline string, runs int) error {
	ctx := context.Background()
	bin, err := filepath.Abs(bin)
	if err != nil {
		return err
	}
	if baseline != "" {
		if baseline, err = filepath.Abs(baseline); err != nil {
			return err
		}
	}
	image, err := harness.NodeImage(ctx)
	if err != nil {
		return err
	}
	environ, err := harness.Env(os.Environ())
	if err != nil {
		return err
	}
	// kind runs docker through the wrapper on hosts without CAP_SYS_RESOURCE.
	for _, kv := range environ {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			_ = os.Setenv("PATH", v)
		}
	}
	root, err := harness.RepoRoot()
	if err != nil {
		return err
	}
	work, err := os.MkdirTemp("", "coldup")
	if err != nil {
		return err
	}
	defer func() { _ = os.RemoveAll(work) }()
	project := filepath.Join(work, "hello")
	if err := sh(work, "cp", "-r", filepath.Join(root, "examples", "hello"), project); err != nil {
		return err
	}
	_ = os.RemoveAll(filepath.Join(project, "bin"))
	for _, args := range [][]string{{"init", "-q", "-b", "bench"}, {"-c", "user.email=b@example.com", "-c", "user.name=b", "commit", "-q", "--allow-empty", "-m", "init"}} {
		if err := sh(project, "git", args...); err != nil {
			return err
		}
	}

	var kindTimes, upTimes, warmTimes, baseTimes []time.Duration
	for i := range runs {
		name := fmt.Sprintf("coldup-kind-%d", i)
		d, err := kindCreate(name, image)
		if err != nil {
			return err
		}
		kindTimes = append(kindTimes, d)
		fmt.Printf("round %d: kind create cluster %6.1fs\n", i+1, d.Seconds())
		if baseline != "" {
			cold, warm, err := devctlUp(baseline, project, image, environ, filepath.Join(work, fmt.Sprint("base", i)))
			if err != nil {
				return fmt.Errorf("baseline: %w", err)
			}
			baseTimes = append(baseTimes, cold)
			fmt.Printf("round %d: baseline %s %6.1fs (ratio %.2f), unchanged up %.2fs\n", i+1, strings.Join(upArgs, " "), cold.Seconds(), cold.Seconds()/d.Seconds(), warm.Seconds())
		}

		cold, warm, err := devctlUp(bin, project, image, environ, filepath.Join(work, fmt.Sprint(i)))
		if err != nil {
			return err
		}
		upTimes, warmTimes = append(upTimes, cold), append(warmTimes, warm)
		fmt.Printf("round %d: devctl %s %6.1fs (ratio %.2f), unchanged up %.2fs\n", i+1, strings.Join(upArgs, " "), cold.Seconds(), cold.Seconds()/d.Seconds(), warm.Seconds())
	}
	k, u, w := median(kindTimes), median(upTimes), median(warmTimes)
	fmt.Printf("\nmedian of %d: kind create cluster %.1fs, devctl %s %.1fs, ratio %.2f; unchanged devctl up %.2fs\n",
		runs, k.Seconds(), strings.Join(upArgs, " "), u.Seconds(), u.Seconds()/k.Seconds(), w.Seconds())
	if baseline != "" {
		b := median(baseTimes)
		fmt.Printf("median of %d: baseline %.1fs, ratio %.2f; devctl/baseline %.2f\n", runs, b.Seconds(), b.Seconds()/k.Seconds(), u.Seconds()/b.Seconds())
	}
	return nil
}

// kindCreate times what `kind create cluster --image IMAGE` does, with the
// kubelet patch this host's cgroup v1 needs (devctl applies the same one).
func kindCreate(name, image string) (time.Duration, error) {
	p := cluster.NewProvider(cluster.ProviderWithDocker(), cluster.ProviderWithLogger(log.NoopLogger{}))
	cfg := &v1alpha4.Cluster{
		TypeMeta:             v1alpha4.TypeMeta{Kind: "Cluster", APIVersion: "kind.x-k8s.io/v1alpha4"},
		Nodes:                []v1alpha4.Node{{Role: v1alpha4.ControlPlaneRole}},
		KubeadmConfigPatches: []string{"kind: KubeletConfiguration\nfailCgroupV1: false\n"},
	}
	kubeconfig := filepath.Join(os.TempDir(), name+".kubeconfig")
	defer func() { _ = os.Remove(kubeconfig) }()
	start := time.Now()
	err := p.Create(name, cluster.CreateWithV1Alpha4Config(cfg), cluster.CreateWithNodeImage(image),
		cluster.CreateWithKubeconfigPath(kubeconfig), cluster.CreateWithDisplayUsage(false), cluster.CreateWithDisplaySalutation(false))
	d := time.Since(start)
	if derr := deleteKind(p, name, kubeconfig); derr != nil && err == nil {
		err = derr
	}
	return d, err
}

// deleteKind deletes the cluster as devctl does on this host: a container
// whose pods' cgroups the kernel left frozen (cgroup v1) cannot be killed
// until they are thawed.
func deleteKind(p *cluster.Provider, name, kubeconfig string) error {
	err := p.Delete(name, kubeconfig)
	if !freezer.Stuck(err) {
		return err
	}
	out, ierr := exec.Command("docker", "ps", "-aq", "--no-trunc", "--filter", "label=io.x-k8s.kind.cluster="+name).Output()
	if ierr != nil {
		return errors.Join(err, ierr)
	}
	for _, id := range strings.Fields(string(out)) {
		if _, terr := freezer.Thaw(freezer.DefaultRoot, id); terr != nil {
			return errors.Join(err, terr)
		}
	}
	return p.Delete(name, kubeconfig)
}

// devctlUp times a cold `devctl up --ci` (new daemon, new cluster) and an
// unchanged one after it (the third up), then deletes the environment.
func devctlUp(bin, project, image string, environ []string, state string) (cold, warm time.Duration, err error) {
	sock, err := os.MkdirTemp("", "cu")
	if err != nil {
		return 0, 0, err
	}
	defer func() { _ = os.RemoveAll(sock) }()
	env := append(slices.Clone(environ), "DEVCTL_SOCKET="+filepath.Join(sock, "d.sock"), "DEVCTL_STATE_DIR="+state, "DEVCTL_NODE_IMAGE="+image)
	devctl := func(args ...string) (time.Duration, error) {
		cmd := exec.Command(bin, args...)
		cmd.Dir, cmd.Env = project, env
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		start := time.Now()
		err := cmd.Run()
		if err != nil {
			return 0, fmt.Errorf("devctl %s: %w\n%s", strings.Join(args, " "), err, out.String())
		}
		return time.Since(start), nil
	}
	defer func() {
		_, _ = devctl("down")
		_, _ = devctl("daemon", "stop")
	}()
	// Start the daemon first: its start-up is not part of an up.
	if _, err := devctl("ls"); err != nil {
		return 0, 0, err
	}
	ctx, stop := context.WithCancel(context.Background())
	tl := &timeline{start: time.Now(), seen: map[string]time.Duration{}}
	watched := make(chan struct{})
	go func() { defer close(watched); tl.watch(ctx, state, "hello") }()
	cold, err = devctl(upArgs...)
	stop()
	<-watched
	if err != nil {
		return 0, 0, err
	}
	printSteps(bin, project, env)
	fmt.Print(tl)
	// The first unchanged up runs while kind may still be finishing the
	// cluster (its storage class and kubeconfig export, after the services
	// answered) and the new cluster starts its own pods (CoreDNS,
	// kube-proxy, the storage provisioner); the one timed comes once that
	// has settled, as a developer's next up would.
	right, err := devctl(upArgs...)
	if err != nil {
		return 0, 0, err
	}
	time.Sleep(settle)
	warm, err = devctl(upArgs...)
	fmt.Printf("  unchanged up right after the cold one %.2fs, %s later %.2fs\n", right.Seconds(), settle, warm.Seconds())
	return cold, warm, err
}

// printSteps prints the steps of the cold up's run with their start
// offsets and durations (from `devctl status -o json`): where the time went.
func printSteps(bin, project string, env []string) {
	cmd := exec.Command(bin, "status", "-o", "json")
	cmd.Dir, cmd.Env = project, env
	out, err := cmd.Output()
	if err != nil {
		fmt.Printf("  (no steps: devctl status: %v)\n", err)
		return
	}
	var e api.Environment
	if err := json.Unmarshal(out, &e); err != nil {
		fmt.Printf("  (no steps: %v)\n", err)
		return
	}
	if len(e.Status.Run.Steps) == 0 {
		return
	}
	t0 := e.Status.Run.Steps[0].Started
	for _, s := range e.Status.Run.Steps {
		fmt.Printf("  %-14s +%5.1fs %5.1fs  %s\n", s.Name, s.Started.Sub(t0).Seconds(), s.Duration.Seconds(), s.Detail)
	}
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

func sh(dir, name string, args ...string) error {
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, io.MultiWriter(&out)
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, out.String())
	}
	return nil
}
