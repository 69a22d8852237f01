package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/spf13/cobra"

	"github.com/devctl/devctl/envs"
	"github.com/devctl/devctl/internal/api"
	"github.com/devctl/devctl/internal/git"
	"github.com/devctl/devctl/internal/paths"
)

// listed is an environment as `devctl ls -o json` prints it: the daemon's
// view and, when it outlived its branch, why.
type listed struct {
	api.Environment
	Stale string `json:"stale,omitempty"`
}

// staleness looks up why each environment outlived its branch. A git
// failure says nothing about the branch and marks nothing.
func staleness(ctx context.Context, list []api.Environment) []listed {
	out := make([]listed, len(list))
	for i, e := range list {
		out[i].Environment = e
		if why, err := git.Stale(ctx, e.Spec.Dir, e.Spec.Branch); err == nil {
			out[i].Stale = why
		}
	}
	return out
}

func newGCCommand(g *globalOptions, s Streams) *cobra.Command {
	var orphans, dryRun bool
	cmd := &cobra.Command{
		Use:   "gc",
		Short: "Delete environments whose branch was deleted or merged, or whose folder is gone",
		Long: `Delete the environments ` + "`devctl ls`" + ` marks stale: their branch was deleted or merged
into the default branch, or their project folder is gone.

With --orphans, also delete what devctl made that no environment accounts for: clusters
whose devctl metadata is gone and state folders without a cluster. Clusters devctl did
not make are never touched.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			c, err := g.ensureDaemon(ctx, nil)
			if err != nil {
				return err
			}
			list, err := c.List(ctx)
			if err != nil {
				return err
			}
			known := map[string]bool{}
			var stale []listed
			for _, e := range staleness(ctx, list) {
				known[e.Name] = true
				if e.Stale != "" && !e.Status.Run.Active() {
					stale = append(stale, e)
				}
			}
			m := envs.New(envs.WithStateDir(paths.StateDir()), envs.WithLogger(slog.New(slog.DiscardHandler)))
			var orphaned []envs.Orphan
			all, err := m.Orphans(ctx)
			if err != nil {
				return fmt.Errorf("look for orphans: %w", err)
			}
			for _, o := range all {
				// One the daemon knows is being created or deleted by it.
				if !known[o.Name] {
					orphaned = append(orphaned, o)
				}
			}
			return gc(ctx, s.Out, c, m, stale, orphaned, orphans, dryRun)
		},
	}
	cmd.Flags().BoolVar(&orphans, "orphans", false, "also delete clusters devctl made whose metadata is gone, and state folders without a cluster")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "only say what would be deleted")
	return cmd
}

func gc(ctx context.Context, out io.Writer, c *api.Client, m *envs.Manager, stale []listed, orphaned []envs.Orphan, withOrphans, dryRun bool) error {
	verb := "deleting"
	if dryRun {
		verb = "would delete"
	}
	var errs []error
	for _, e := range stale {
		fmt.Fprintf(out, "%s environment %s: %s\n", verb, e.Name, e.Stale)
		if dryRun {
			continue
		}
		events, _, err := c.Events(ctx, e.Name)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		acc, err := c.Down(ctx, e.Name)
		if err != nil {
			errs = append(errs, fmt.Errorf("delete %s: %w", e.Name, err))
			continue
		}
		detail, err := followDown(events, e.Name, acc.Generation)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		fmt.Fprintf(out, "  %s\n", detail)
	}
	for _, o := range orphaned {
		what := "state folder of " + o.Name + " (no cluster)"
		if o.Cluster {
			what = o.Provider + " cluster " + o.Name + " (devctl began it; its metadata is gone)"
		}
		if !withOrphans {
			fmt.Fprintf(out, "orphan: %s; `devctl gc --orphans` deletes it\n", what)
			continue
		}
		fmt.Fprintf(out, "%s orphan %s\n", verb, what)
		if dryRun {
			continue
		}
		start := time.Now()
		if _, err := m.Delete(ctx, o.Name, o.Provider); err != nil {
			errs = append(errs, err)
			continue
		}
		fmt.Fprintf(out, "  deleted (%.1fs)\n", time.Since(start).Seconds())
	}
	if len(stale) == 0 && len(orphaned) == 0 {
		fmt.Fprintln(out, "nothing to collect: no stale environment, no orphan")
	}
	return errors.Join(errs...)
}
