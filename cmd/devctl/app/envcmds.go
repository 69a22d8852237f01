package app

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/devctl/devctl/envs"
	"github.com/devctl/devctl/internal/api"
	"github.com/devctl/devctl/internal/paths"
)

func newDownCommand(g *globalOptions, s Streams) *cobra.Command {
	p := &projectOptions{}
	cmd := &cobra.Command{
		Use:   "down [ENV]",
		Short: "Delete an environment (default: this branch's) and its cluster",
		Long: `Delete an environment (default: the current branch's) and its cluster. Deleting one
that does not exist, or whose cluster is already gone, succeeds and says so.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			c, err := g.ensureDaemon(ctx, nil)
			if err != nil {
				return err
			}
			name, err := envArg(ctx, c, p, args)
			if err != nil {
				return err
			}
			events, streamErr, err := c.Events(ctx, name)
			if err != nil {
				return err
			}
			env, err := c.Down(ctx, name)
			if errors.Is(err, api.ErrNotFound) {
				fmt.Fprintf(s.Out, "no environment %s: nothing to delete\n", name)
				return nil
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(s.Out, "deleting environment %s ...\n", name)
			start := time.Now()
			detail, err := followDown(events, name, env.Generation)
			if errors.Is(err, errStreamClosed) {
				// Only a closed stream has an error of its own to say;
				// waiting for it on an open one would never return.
				if serr := streamErr(); serr != nil {
					return serr
				}
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(s.Out, "%s (%.1fs)\n", detail, time.Since(start).Seconds())
			return nil
		},
	}
	p.addFlags(cmd.Flags(), false)
	return cmd
}

// followDown follows an environment's events until the delete of
// generation gen ends, and returns what it removed. Only that delete's run
// counts: an earlier run's failure (the reason the environment is being
// deleted) is not the delete's.
func followDown(events <-chan api.Event, name string, gen int64) (string, error) {
	var (
		detail string
		failed bool
	)
	for ev := range events {
		if ev.Type == api.EventDeleted {
			if failed {
				return "", fmt.Errorf("delete %s: %s", name, detail)
			}
			if detail == "" {
				detail = "deleted"
			}
			return detail, nil
		}
		e := ev.Environment
		if e == nil || e.Status.Run == nil || e.Status.Run.Request.Kind != api.RunDelete || e.Status.Run.Request.Generation < gen {
			continue
		}
		for _, st := range e.Status.Run.Steps {
			if st.Name == "delete" && st.Status != api.StepRunning {
				detail, failed = st.Detail, st.Status == api.StepFailed
			}
		}
		if run := e.Status.Run; !run.Active() && run.Error != "" {
			if run.Error == "cancelled" && e.Status.Queued != nil {
				continue
			}
			return "", fmt.Errorf("delete %s: %s", name, run.Error)
		}
	}
	return "", fmt.Errorf("%w before %s was deleted", errStreamClosed, name)
}

// errStreamClosed says the daemon ended the event stream.
var errStreamClosed = errors.New("the daemon closed the event stream")

type outputFlag struct{ format string }

func (o *outputFlag) add(cmd *cobra.Command) {
	cmd.Flags().StringVarP(&o.format, "output", "o", "table", "output format: table or json")
}

func (o *outputFlag) check() error {
	if o.format != "table" && o.format != "json" && o.format != "text" {
		return fmt.Errorf("unknown output format %q: use -o table or -o json", o.format)
	}
	return nil
}

func writeJSONOut(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func newLsCommand(g *globalOptions, s Streams) *cobra.Command {
	o := &outputFlag{}
	cmd := &cobra.Command{
		Use:     "ls",
		Aliases: []string{"list"},
		Short:   "List environments",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := o.check(); err != nil {
				return err
			}
			c, err := g.ensureDaemon(cmd.Context(), nil)
			if err != nil {
				return err
			}
			list, err := c.List(cmd.Context())
			if err != nil {
				return err
			}
			rows := staleness(cmd.Context(), list)
			if o.format == "json" {
				return writeJSONOut(s.Out, rows)
			}
			tw := tabwriter.NewWriter(s.Out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tPHASE\tPROJECT\tBRANCH\tSERVICES\tAGE")
			var notes []string
			for _, e := range rows {
				var svcs []string
				for _, sv := range e.Status.Services {
					if sv.URL != "" {
						svcs = append(svcs, sv.Name+"="+sv.URL)
					} else {
						svcs = append(svcs, sv.Name)
					}
				}
				phase := string(e.Status.Phase)
				if e.Stale != "" {
					phase += " (stale)"
					notes = append(notes, fmt.Sprintf("%s is stale: %s (`devctl gc` deletes it)", e.Name, e.Stale))
				}
				if e.Status.Phase == api.PhaseStopped {
					notes = append(notes, fmt.Sprintf("%s: %s", e.Name, e.Status.Message))
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", e.Name, phase, orDash(e.Spec.Project), orDash(e.Spec.Branch), orDash(strings.Join(svcs, ",")), age(e.Status.CreatedAt))
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			for _, n := range notes {
				fmt.Fprintln(s.Out, n)
			}
			// Spare vclusters are not environments: one line each under
			// the table, so that what runs on the host is accounted for.
			m := envs.New(envs.WithStateDir(paths.StateDir()), envs.WithLogger(slog.New(slog.DiscardHandler)))
			defer m.Close()
			spares, _ := m.Spares(cmd.Context())
			for _, sp := range spares {
				state := "starting"
				if sp.Ready {
					state = "ready"
				}
				fmt.Fprintf(s.Out, "spare vcluster %s on host %s (%s, %s old): the next new vcluster environment claims it\n",
					sp.Namespace, sp.Host, state, age(sp.Created))
			}
			return nil
		},
	}
	o.add(cmd)
	return cmd
}

func newStatusCommand(g *globalOptions, s Streams) *cobra.Command {
	o := &outputFlag{}
	p := &projectOptions{}
	cmd := &cobra.Command{
		Use:   "status [ENV]",
		Short: "Show an environment: phase, timed steps, services, findings",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := o.check(); err != nil {
				return err
			}
			ctx := cmd.Context()
			c, err := g.ensureDaemon(ctx, nil)
			if err != nil {
				return err
			}
			name, err := envArg(ctx, c, p, args)
			if err != nil {
				return err
			}
			e, err := c.Get(ctx, name)
			if errors.Is(err, api.ErrNotFound) {
				return fmt.Errorf("no environment %s: run `devctl up` to create it (`devctl ls` lists environments)", name)
			}
			if err != nil {
				return err
			}
			if o.format == "json" {
				return writeJSONOut(s.Out, e)
			}
			printStatus(s.Out, e)
			return nil
		},
	}
	o.add(cmd)
	p.addFlags(cmd.Flags(), false)
	return cmd
}

func printStatus(w io.Writer, e *api.Environment) {
	st := &e.Status
	fmt.Fprintf(w, "Environment: %s\nPhase:       %s\n", e.Name, st.Phase)
	if st.Message != "" {
		fmt.Fprintf(w, "Message:     %s\n", st.Message)
	}
	watch := "no"
	switch {
	case st.Watching:
		watch = "yes"
	case st.WatchError != "":
		watch = "no: " + st.WatchError
	case e.Spec.Watch:
		watch = "not yet (after the first up)"
	case st.ObservedGeneration > 0 && !e.Spec.Watch:
		watch = "no (`devctl watch resume` turns it on)"
	}
	fmt.Fprintf(w, "Project:     %s\nBranch:      %s\nProvider:    %s\nDirectory:   %s\nNamespace:   %s\nKubeconfig:  %s\nWatched:     %s\nGeneration:  %d (observed %d)\nCreated:     %s (%s ago)\n",
		orDash(e.Spec.Project), orDash(e.Spec.Branch), orDash(e.Spec.Provider), orDash(e.Spec.Dir), orDash(st.Namespace), orDash(st.Kubeconfig),
		watch, e.Generation, st.ObservedGeneration, st.CreatedAt.Format(time.RFC3339), age(st.CreatedAt))
	if len(st.Services) > 0 {
		fmt.Fprintln(w, "Services:")
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		for _, sv := range st.Services {
			ready := "not ready"
			if sv.Ready {
				ready = "ready"
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\trev %d\t%s\n", sv.Name, ready, orDash(sv.URL), sv.Revision, orDash(sv.Image))
		}
		_ = tw.Flush()
		for _, sv := range st.Services {
			if sv.RED != nil {
				fmt.Fprintf(w, "  %s RED: %s\n", sv.Name, formatRED(sv.RED))
			}
		}
	}
	if run := st.Run; run != nil {
		state := "running"
		switch {
		case run.Active():
		case run.Error != "":
			state = "failed"
		default:
			state = fmt.Sprintf("done in %.1fs", run.Ended.Sub(run.Started).Seconds())
		}
		fmt.Fprintf(w, "Last run:    %s #%d (%s), generation %d: %s\n", run.Request.Kind, run.ID, orDash(run.Request.Reason), run.Request.Generation, state)
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		for _, step := range run.Steps {
			fmt.Fprintf(tw, "  %s\t%s\t%.1fs\t%s\n", step.Name, step.Status, step.Duration.Seconds(), step.Detail)
		}
		_ = tw.Flush()
		if run.Error != "" {
			fmt.Fprintf(w, "Error:\n  %s\n", strings.ReplaceAll(run.Error, "\n", "\n  "))
		}
	}
	if q := st.Queued; q != nil {
		fmt.Fprintf(w, "Queued:      %s (%s), generation %d\n", q.Kind, orDash(q.Reason), q.Generation)
	}
	printRebuilds(w, st)
	if len(st.Findings) > 0 {
		fmt.Fprintln(w, "Policy findings:")
		for _, f := range st.Findings {
			waived := ""
			if f.Waived {
				waived = " (waived)"
			}
			fmt.Fprintf(w, "  [%s] %s %s: %s%s\n", f.Severity, f.Rule, f.Object, f.Message, waived)
		}
	}
	if st.Diagnostics != "" {
		fmt.Fprintf(w, "Diagnostics:\n%s", st.Diagnostics)
	}
}

func age(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	d := time.Since(t).Round(time.Second)
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh", int(d.Hours()))
	default:
		return fmt.Sprintf("%dd", int(d.Hours()/24))
	}
}

func newLogsCommand(g *globalOptions, s Streams) *cobra.Command {
	p := &projectOptions{}
	var (
		env    string
		follow bool
		tail   int
	)
	cmd := &cobra.Command{
		Use:   "logs [SERVICE]",
		Short: "Print a service's logs (default: the first service of this branch's environment)",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			c, err := g.ensureDaemon(ctx, nil)
			if err != nil {
				return err
			}
			var envArgs []string
			if env != "" {
				envArgs = []string{env}
			}
			name, err := envArg(ctx, c, p, envArgs)
			if err != nil {
				return err
			}
			o := api.LogOptions{Follow: follow, Tail: tail}
			if len(args) == 1 {
				o.Service = args[0]
			}
			return c.Logs(ctx, name, o, s.Out)
		},
	}
	p.addFlags(cmd.Flags(), false)
	cmd.Flags().StringVarP(&env, "env", "e", "", "the environment (default: this branch's)")
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "keep streaming new lines")
	cmd.Flags().IntVar(&tail, "tail", 0, "only the last N lines (0: all)")
	return cmd
}

// formatRED is one line of rate, errors and latency percentiles.
func formatRED(r *api.RED) string {
	ms := func(d *time.Duration) string {
		if d == nil {
			return "-"
		}
		return fmt.Sprintf("%.1fms", float64(*d)/float64(time.Millisecond))
	}
	return fmt.Sprintf("%.2f req/s, %.1f%% errors, p50 %s p95 %s p99 %s (%d requests in the last %.0fs)",
		r.RatePerSecond, 100*r.ErrorRatio, ms(r.P50), ms(r.P95), ms(r.P99), int64(r.Requests), r.Window.Seconds())
}
