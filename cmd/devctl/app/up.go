package app

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/devctl/devctl/internal/api"
	"github.com/devctl/devctl/internal/build"
	"github.com/devctl/devctl/internal/status"
)

type upOptions struct {
	project   projectOptions
	ci        bool
	nodeImage string
	timeout   time.Duration
}

func newUpCommand(g *globalOptions, s Streams) *cobra.Command {
	o := &upOptions{}
	cmd := &cobra.Command{
		Use:   "up",
		Short: "Bring this branch's environment up: cluster, build, deploy, ready",
		Long: `Bring up the environment of the current branch: create its cluster when missing,
build the services' images, deliver them, render the golden-path chart, check policy,
install or upgrade the release when something changed, wait until the service answers,
and print its URL. The daemon is started in the background when it is not running;
the environment keeps running after this command returns.

With --ci (and whenever stdout is not a terminal) there is no animation: each timed
phase is printed, the exit code is 0 when the environment is healthy, and on failure
the pods' events and last log lines are printed.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runUp(cmd.Context(), g, s, o) },
	}
	o.project.addFlags(cmd.Flags(), true)
	cmd.Flags().BoolVar(&o.ci, "ci", false, "no UI: print timed phases, exit non-zero unless healthy")
	cmd.Flags().StringVar(&o.nodeImage, "node-image", os.Getenv("DEVCTL_NODE_IMAGE"), "kind node image (env DEVCTL_NODE_IMAGE; default: devctl.yaml, then kind's default)")
	cmd.Flags().DurationVar(&o.timeout, "timeout", 15*time.Minute, "give up after this long")
	return cmd
}

func runUp(ctx context.Context, g *globalOptions, s Streams, o *upOptions) error {
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	plain := o.ci || !isTerminal(s.Out)
	st := status.New(s.Out, plain)

	r, err := o.project.resolve(ctx, true)
	if err != nil {
		return err
	}
	for _, n := range r.Notes {
		fmt.Fprintf(s.Out, "no devctl.yaml: %s\n", n)
	}
	if err := preflight(ctx, r); err != nil {
		return err
	}
	c, err := g.ensureDaemon(ctx, func() { fmt.Fprintln(s.Out, "starting the devctl daemon ...") })
	if err != nil {
		return err
	}
	req := api.UpRequest{Dir: r.Dir, Name: r.Env, Repo: r.Git.Repo, Branch: r.Git.Branch, NodeImage: o.nodeImage}
	if r.Config != nil && r.Config.Path != "" {
		req.Config = r.Config.Path
	}
	if req.NodeImage == "" && (r.Config == nil || r.Config.Cluster.NodeImage == "") {
		req.NodeImage = installedNodeImage()
	}
	events, streamErr, err := c.Events(ctx, r.Env)
	if err != nil {
		return err
	}
	env, err := c.Up(ctx, req)
	if err != nil {
		return err
	}
	fmt.Fprintf(s.Out, "environment %s (branch %s, generation %d)\n", env.Name, orDash(req.Branch), env.Generation)
	final, err := follow(ctx, events, streamErr, env.Generation, st, g.verbose || o.ci)
	if err != nil {
		return err
	}
	if final.Phase == api.PhaseFailed {
		fmt.Fprintf(s.ErrOut, "\nenvironment %s failed: %s\n", final.Name, final.Message)
		if final.Diagnostics != "" {
			fmt.Fprintf(s.ErrOut, "\n%s", final.Diagnostics)
		}
		return exitError{code: 1}
	}
	printReady(s.Out, final)
	return nil
}

// follow prints the steps of generation gen as they end and returns the
// environment once it settles.
func follow(ctx context.Context, events <-chan api.Event, streamErr func() error, gen int64, st *status.Status, showLogs bool) (*api.Environment, error) {
	printed := 0
	running := ""
	for ev := range events {
		switch ev.Type {
		case api.EventLog:
			if showLogs || strings.HasPrefix(ev.Line, "config:") || strings.HasPrefix(ev.Line, "cluster:") {
				st.Printf("    %s\n", ev.Line)
			}
			continue
		case api.EventDeleted:
			return nil, fmt.Errorf("environment %s was deleted while coming up", ev.Env)
		}
		e := ev.Environment
		if e == nil || e.Generation < gen {
			continue
		}
		for ; printed < len(e.Steps) && e.Steps[printed].Status != api.StepRunning; printed++ {
			step := e.Steps[printed]
			if running == step.Name {
				running = ""
			}
			detail := step.Detail
			if step.Status == api.StepSkipped {
				detail = "skipped: " + detail
			}
			st.Step(step.Status != api.StepFailed, step.Name, step.Duration, detail)
		}
		if printed < len(e.Steps) && running != e.Steps[printed].Name {
			running = e.Steps[printed].Name
			st.Start(running)
		}
		if e.Phase == api.PhaseReady || e.Phase == api.PhaseFailed {
			return e, nil
		}
	}
	if err := streamErr(); err != nil {
		return nil, err
	}
	if ctx.Err() != nil {
		return nil, fmt.Errorf("gave up waiting: %w (the environment keeps coming up; `devctl status` shows where it is)", ctx.Err())
	}
	return nil, fmt.Errorf("the daemon closed the event stream; `devctl status` shows where the environment is")
}

func printReady(w io.Writer, e *api.Environment) {
	var total time.Duration
	for _, st := range e.Steps {
		total += st.Duration
	}
	fmt.Fprintf(w, "\nenvironment %s is ready (%.1fs)\n", e.Name, total.Seconds())
	for _, svc := range e.Services {
		fmt.Fprintf(w, "  %-16s %s\n", svc.Name, svc.URL)
	}
	open, waived := 0, 0
	for _, f := range e.Findings {
		if f.Waived {
			waived++
		} else {
			open++
		}
	}
	if open+waived > 0 {
		fmt.Fprintf(w, "  policy: %d finding(s), %d waived (`devctl check` for details)\n", open, waived)
	}
	fmt.Fprintf(w, "  kubeconfig: %s\n", e.Kubeconfig)
}

// installedNodeImage is the node image install.sh recorded (pulled, or built
// locally on an air-gapped machine), or "" for kind's default.
func installedNodeImage() string {
	dir := os.Getenv("XDG_CONFIG_HOME")
	if dir == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return ""
		}
		dir = filepath.Join(home, ".config")
	}
	b, err := os.ReadFile(filepath.Join(dir, "devctl", "node-image"))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// preflight catches in a second what would otherwise fail minutes later in
// the daemon: a missing Dockerfile, an unreachable Docker engine.
func preflight(ctx context.Context, r *resolved) error {
	for _, svc := range r.Config.Services {
		df := svc.Dockerfile
		if !filepath.IsAbs(df) {
			df = filepath.Join(r.Config.Dir, svc.Context, df)
		}
		if _, err := os.Stat(df); err != nil {
			hint := ""
			if svc.Go != nil {
				hint = " (`devctl init --force` writes a FROM scratch one for Go services)"
			}
			return fmt.Errorf("service %s: %w%s (looked for %s)", svc.Name, build.ErrDockerfileNotFound, hint, df)
		}
	}
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	b, err := build.New(pctx)
	if err != nil {
		return err
	}
	return b.Close()
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
