package app

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/devctl/devctl/internal/api"
	"github.com/devctl/devctl/internal/status"
)

type upOptions struct {
	project   projectOptions
	ci        bool
	noTUI     bool
	watch     bool
	noWatch   bool
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
the environment keeps running after this command returns. On a terminal the run is
followed in the terminal UI (` + "`devctl tui`" + `; --no-tui prints the steps instead); leaving
it with q leaves the environment running.

With --ci (and whenever stdout is not a terminal) there is no animation: each timed
phase is printed, the exit code is 0 when the environment is healthy, and on failure
the pods' events and last log lines are printed.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runUp(cmd.Context(), g, s, o) },
	}
	o.project.addFlags(cmd.Flags(), true)
	cmd.Flags().BoolVar(&o.ci, "ci", false, "no UI: print timed phases, exit non-zero unless healthy; the sources are not watched unless --watch")
	cmd.Flags().BoolVar(&o.noTUI, "no-tui", false, "on a terminal, print the steps instead of opening the terminal UI")
	cmd.Flags().BoolVar(&o.watch, "watch", false, "rebuild when the sources change (default, except with --ci)")
	cmd.Flags().BoolVar(&o.noWatch, "no-watch", false, "do not rebuild when the sources change")
	cmd.Flags().StringVar(&o.nodeImage, "node-image", os.Getenv("DEVCTL_NODE_IMAGE"), "kind node image (env DEVCTL_NODE_IMAGE; default: devctl.yaml, then the image install.sh recorded, then kind's default)")
	cmd.Flags().DurationVar(&o.timeout, "timeout", 15*time.Minute, "give up after this long")
	cmd.MarkFlagsMutuallyExclusive("watch", "no-watch")
	return cmd
}

// watchRequest is the watch setting an up asks for: nil keeps the
// environment's (on for a new one).
func (o *upOptions) watchRequest() *bool {
	switch {
	case o.watch:
		return ptr(true)
	case o.noWatch, o.ci:
		return ptr(false)
	}
	return nil
}

func ptr[T any](v T) *T { return &v }

func runUp(ctx context.Context, g *globalOptions, s Streams, o *upOptions) error {
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	plain := o.ci || !isTerminal(s.Out)
	st := status.New(s.Out, plain)

	ref, err := o.project.ref()
	if err != nil {
		return err
	}
	c, err := g.ensureDaemon(ctx, func() { fmt.Fprintln(s.Out, "starting the devctl daemon ...") })
	if err != nil {
		return err
	}
	res, err := c.Resolve(ctx, ref)
	if err != nil {
		return err
	}
	for _, n := range res.Notes {
		fmt.Fprintf(s.Out, "no devctl.yaml: %s\n", n)
	}
	events, streamErr, err := c.Events(ctx, res.Name)
	if err != nil {
		return err
	}
	env, err := c.Up(ctx, api.UpRequest{ProjectRef: ref, NodeImage: o.nodeImage, Watch: o.watchRequest()})
	if err != nil {
		return err
	}
	fmt.Fprintf(s.Out, "environment %s (branch %s, generation %d)\n", env.Name, orDash(env.Spec.Branch), env.Generation)
	if what := interrupted(env); what != "" {
		fmt.Fprintf(s.Out, "the devctl daemon stopped during an earlier %s: this up does that work again (nothing it left half-done is trusted)\n", what)
	}
	if !plain && !o.noTUI && isTerminal(s.In) {
		// On a terminal the run is followed in the TUI; leaving it leaves
		// the environment coming up (or up).
		cancel()
		return runTUI(context.WithoutCancel(ctx), c, s, env.Name, env.Name)
	}
	final, err := follow(ctx, events, streamErr, env.Generation, st, g.verbose)
	if err != nil {
		return err
	}
	if final.Status.Phase != api.PhaseReady {
		fmt.Fprintf(s.ErrOut, "\nenvironment %s failed: %s\n", final.Name, final.Status.Message)
		if final.Status.Diagnostics != "" {
			fmt.Fprintf(s.ErrOut, "\n%s", final.Status.Diagnostics)
		}
		return exitError{code: 1}
	}
	printReady(s.Out, final)
	return nil
}

// follow prints the steps of the runs that carry generation gen as they end
// and returns the environment once that generation is observed and settled.
func follow(ctx context.Context, events <-chan api.Event, streamErr func() error, gen int64, st *status.Status, verbose bool) (*api.Environment, error) {
	printed := map[int64]map[int]bool{} // run → steps printed
	running := ""
	for ev := range events {
		switch ev.Type {
		case api.EventLog:
			if verbose || ev.Source == api.SourceConfig || (ev.Source == api.SourceProgress && ev.Step == "cluster") || ev.Level == api.LevelError {
				st.Printf("    %s\n", ev.Message)
			}
			continue
		case api.EventDeleted:
			return nil, fmt.Errorf("environment %s was deleted while coming up", ev.Env)
		case api.EventSnapshot, api.EventEnv:
		}
		e := ev.Environment
		if e == nil {
			continue
		}
		if run := e.Status.Run; run != nil && run.Request.Generation >= gen {
			done := printed[run.ID]
			if done == nil {
				done = map[int]bool{}
				printed[run.ID] = done
			}
			for i, step := range run.Steps {
				if done[i] || step.Status == api.StepRunning {
					continue
				}
				done[i] = true
				if running == step.Name {
					running = ""
				}
				detail := step.Detail
				if step.Status == api.StepSkipped {
					detail = "skipped: " + detail
				}
				st.Step(step.Status != api.StepFailed, step.Name, step.Duration, detail)
			}
			for _, step := range run.Steps {
				if step.Status == api.StepRunning {
					if running != step.Name {
						running = step.Name
						st.Start(running)
					}
					break
				}
			}
		}
		if e.Status.ObservedGeneration >= gen && (e.Status.Phase == api.PhaseReady || e.Status.Phase == api.PhaseFailed || !e.Status.Run.Active()) {
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
	if run := e.Status.Run; run != nil && !run.Ended.IsZero() {
		total = run.Ended.Sub(run.Started)
	}
	fmt.Fprintf(w, "\nenvironment %s is ready (%.1fs)\n", e.Name, total.Seconds())
	for _, svc := range e.Status.Services {
		fmt.Fprintf(w, "  %-16s %s\n", svc.Name, svc.URL)
	}
	open, waived := 0, 0
	for _, f := range e.Status.Findings {
		if f.Waived {
			waived++
		} else {
			open++
		}
	}
	if open+waived > 0 {
		fmt.Fprintf(w, "  policy: %d finding(s), %d waived (`devctl check` for details)\n", open, waived)
	}
	fmt.Fprintf(w, "  kubeconfig: %s\n", e.Status.Kubeconfig)
	if e.Status.Watching {
		fmt.Fprintf(w, "  watching %s: saved changes are rebuilt and deployed\n", e.Spec.Dir)
	}
}

func isTerminal(w any) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// interrupted is what an earlier daemon was doing when it stopped, when
// env's current or queued run picks that up again, or "".
func interrupted(env *api.Environment) string {
	if run := env.Status.Run; run.Active() && run.Request.Recovered && run.Request.Interrupted != "" {
		return run.Request.Interrupted
	}
	if q := env.Status.Queued; q != nil && q.Recovered && q.Interrupted != "" {
		return q.Interrupted
	}
	return ""
}
