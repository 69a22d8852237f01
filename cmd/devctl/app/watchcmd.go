package app

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/devctl/devctl/internal/api"
)

func newWatchCommand(g *globalOptions, s Streams) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "watch",
		Short: "Pause or resume rebuilding an environment when its sources change",
		Long: `After devctl up the daemon watches the environment's sources and rebuilds (or
live-updates) the services whose files changed. Pause it while you make a large
change; on resume, everything changed meanwhile is rebuilt at once.`,
	}
	cmd.AddCommand(
		newWatchSetCommand(g, s, "pause", false, "Stop rebuilding on changes (they are kept for resume)"),
		newWatchSetCommand(g, s, "resume", true, "Rebuild on changes again, starting with those made while paused"),
	)
	return cmd
}

func newWatchSetCommand(g *globalOptions, s Streams, use string, watch bool, short string) *cobra.Command {
	p := &projectOptions{}
	cmd := &cobra.Command{
		Use:   use + " [ENV]",
		Short: short,
		Args:  cobra.MaximumNArgs(1),
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
			e, err := c.SetWatch(ctx, name, watch)
			if errors.Is(err, api.ErrNotFound) {
				return fmt.Errorf("no environment %s: run `devctl up` to create it (`devctl ls` lists environments)", name)
			}
			if err != nil {
				return err
			}
			switch {
			case watch && e.Status.WatchError != "":
				fmt.Fprintf(s.Out, "%s: resumed, but the sources cannot be watched: %s\n", name, e.Status.WatchError)
			case watch:
				fmt.Fprintf(s.Out, "%s: watching %s\n", name, e.Spec.Dir)
			default:
				fmt.Fprintf(s.Out, "%s: paused; changes are kept and rebuilt on `devctl watch resume`\n", name)
			}
			return nil
		},
	}
	p.addFlags(cmd.Flags(), false)
	return cmd
}

// printRebuilds shows the last rebuilds and the save → serving percentiles.
func printRebuilds(w io.Writer, st *api.EnvStatus) {
	if len(st.Rebuilds) == 0 {
		return
	}
	fmt.Fprintln(w, "Rebuilds:")
	for _, s := range st.RebuildStats {
		fmt.Fprintf(w, "  %s: %d served, p50 %s, p95 %s", s.Mode, s.Count, ms(s.P50), ms(s.P95))
		if s.Failed > 0 {
			fmt.Fprintf(w, ", %d failed", s.Failed)
		}
		fmt.Fprintln(w)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	const last = 5
	for _, r := range st.Rebuilds[max(0, len(st.Rebuilds)-last):] {
		var phases []string
		for _, ph := range r.Phases {
			if ph.Duration > 0 {
				phases = append(phases, ph.Name+" "+ms(ph.Duration))
			}
		}
		result := "serving in " + ms(r.SaveToServing)
		if r.Error != "" {
			result = "FAILED (the previous version keeps serving)"
		}
		fmt.Fprintf(tw, "  #%d\t%s\t%s\t%s\t%s\t%s\n", r.Run, r.Mode, strings.Join(r.Services, ","), orDash(r.Reason), result, strings.Join(phases, ", "))
		if r.Error != "" {
			_ = tw.Flush()
			fmt.Fprintf(w, "    %s\n", strings.ReplaceAll(r.Error, "\n", "\n    "))
		}
	}
	_ = tw.Flush()
}

func ms(d time.Duration) string {
	if d < 10*time.Second {
		return fmt.Sprintf("%dms", d.Milliseconds())
	}
	return fmt.Sprintf("%.1fs", d.Seconds())
}
