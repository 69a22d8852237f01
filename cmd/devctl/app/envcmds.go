package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/devctl/devctl/internal/api"
)

func newDownCommand(g *globalOptions, s Streams) *cobra.Command {
	p := &projectOptions{}
	cmd := &cobra.Command{
		Use:   "down [ENV]",
		Short: "Delete an environment (default: this branch's) and its cluster",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			name, err := envArg(ctx, p, args)
			if err != nil {
				return err
			}
			c := g.client()
			events, streamErr, err := c.Events(ctx, name)
			if err != nil {
				return err
			}
			if _, err := c.Down(ctx, name); err != nil {
				return err
			}
			fmt.Fprintf(s.Out, "deleting environment %s ...\n", name)
			start := time.Now()
			for ev := range events {
				switch {
				case ev.Type == api.EventDeleted:
					fmt.Fprintf(s.Out, "deleted environment %s (%.1fs)\n", name, time.Since(start).Seconds())
					return nil
				case ev.Environment != nil && ev.Environment.Phase == api.PhaseFailed:
					return fmt.Errorf("delete %s: %s", name, ev.Environment.Message)
				}
			}
			if err := streamErr(); err != nil {
				return err
			}
			return fmt.Errorf("the daemon closed the event stream before %s was deleted", name)
		},
	}
	p.addFlags(cmd.Flags(), false)
	return cmd
}

// envArg is the environment named on the command line, else the one of the
// current directory's branch.
func envArg(ctx context.Context, p *projectOptions, args []string) (string, error) {
	if len(args) == 1 {
		return args[0], nil
	}
	r, err := p.resolve(ctx, false)
	if err != nil {
		return "", fmt.Errorf("%w (or name the environment: `devctl ls` lists them)", err)
	}
	return r.Env, nil
}

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
			if list == nil {
				list = []api.Environment{}
			}
			if o.format == "json" {
				return writeJSONOut(s.Out, list)
			}
			tw := tabwriter.NewWriter(s.Out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tPHASE\tPROJECT\tBRANCH\tSERVICES\tAGE")
			for _, e := range list {
				var svcs []string
				for _, sv := range e.Services {
					if sv.URL != "" {
						svcs = append(svcs, sv.Name+"="+sv.URL)
					} else {
						svcs = append(svcs, sv.Name)
					}
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", e.Name, e.Phase, orDash(e.Project), orDash(e.Branch), orDash(strings.Join(svcs, ",")), age(e.CreatedAt))
			}
			return tw.Flush()
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
			name, err := envArg(ctx, p, args)
			if err != nil {
				return err
			}
			c, err := g.ensureDaemon(ctx, nil)
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
	fmt.Fprintf(w, "Environment: %s\nPhase:       %s\n", e.Name, e.Phase)
	if e.Message != "" {
		fmt.Fprintf(w, "Message:     %s\n", e.Message)
	}
	fmt.Fprintf(w, "Project:     %s\nBranch:      %s\nProvider:    %s\nNamespace:   %s\nKubeconfig:  %s\nCreated:     %s (%s ago)\n",
		orDash(e.Project), orDash(e.Branch), orDash(e.Provider), orDash(e.Namespace), orDash(e.Kubeconfig), e.CreatedAt.Format(time.RFC3339), age(e.CreatedAt))
	if len(e.Services) > 0 {
		fmt.Fprintln(w, "Services:")
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		for _, sv := range e.Services {
			ready := "not ready"
			if sv.Ready {
				ready = "ready"
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\trev %d\t%s\n", sv.Name, ready, orDash(sv.URL), sv.Revision, sv.Image)
		}
		_ = tw.Flush()
	}
	if len(e.Steps) > 0 {
		fmt.Fprintln(w, "Last up:")
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		for _, st := range e.Steps {
			fmt.Fprintf(tw, "  %s\t%s\t%.1fs\t%s\n", st.Name, st.Status, st.Duration.Seconds(), st.Detail)
		}
		_ = tw.Flush()
	}
	if len(e.Findings) > 0 {
		fmt.Fprintln(w, "Policy findings:")
		for _, f := range e.Findings {
			waived := ""
			if f.Waived {
				waived = " (waived)"
			}
			fmt.Fprintf(w, "  [%s] %s %s: %s%s\n", f.Severity, f.Rule, f.Object, f.Message, waived)
		}
	}
	if e.Diagnostics != "" {
		fmt.Fprintf(w, "Diagnostics:\n%s", e.Diagnostics)
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
			var envArgs []string
			if env != "" {
				envArgs = []string{env}
			}
			name, err := envArg(ctx, p, envArgs)
			if err != nil {
				return err
			}
			o := api.LogOptions{Follow: follow, Tail: tail}
			if len(args) == 1 {
				o.Service = args[0]
			}
			c, err := g.ensureDaemon(ctx, nil)
			if err != nil {
				return err
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
