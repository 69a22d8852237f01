package app

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/spf13/cobra"

	"github.com/devctl/devctl/daemon"
	"github.com/devctl/devctl/internal/api"
)

func newDaemonCommand(g *globalOptions, s Streams) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "daemon",
		Short: "Run, stop or inspect the devctl daemon",
		Long: `The daemon owns devctl's state: it creates environments, builds, deploys and holds
the port-forwards. ` + "`devctl up`" + ` starts it in the background when it is not running.
Environments outlive the daemon; a new daemon rediscovers them from the clusters.`,
	}
	cmd.AddCommand(&cobra.Command{
		Use:   "run",
		Short: "Run the daemon in the foreground",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			level := slog.LevelInfo
			if g.verbose {
				level = slog.LevelDebug
			}
			log := slog.New(slog.NewTextHandler(s.ErrOut, &slog.HandlerOptions{Level: level}))
			deps, closeDeps := daemon.RealDeps(log)
			defer closeDeps()
			d := daemon.New(daemon.Options{Socket: g.socket, Version: buildID(), Logger: log, Deps: deps})
			return d.Run(cmd.Context())
		},
	})
	cmd.AddCommand(&cobra.Command{
		Use:   "stop",
		Short: "Stop the daemon (environments keep running)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c := g.client()
			h, err := c.Health(cmd.Context())
			if errors.Is(err, api.ErrDaemonNotRunning) {
				fmt.Fprintln(s.Out, "the devctl daemon is not running")
				return nil
			}
			if err != nil {
				return err
			}
			// Stopped means exited: the daemon writes its state last, after
			// its socket stops answering.
			if err := stopDaemon(cmd.Context(), c, g.socket, 20*time.Second); err != nil {
				return fmt.Errorf("the daemon (pid %d): %w; `kill %d` stops it", h.PID, err, h.PID)
			}
			fmt.Fprintf(s.Out, "stopped the devctl daemon (pid %d)\n", h.PID)
			return nil
		},
	})
	o := &outputFlag{}
	statusCmd := &cobra.Command{
		Use:   "status",
		Short: "Say whether the daemon runs, with its pid and socket",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := o.check(); err != nil {
				return err
			}
			h, err := g.client().Health(cmd.Context())
			if errors.Is(err, api.ErrDaemonNotRunning) {
				if o.format == "json" {
					return writeJSONOut(s.Out, map[string]any{"running": false, "socket": g.socket})
				}
				fmt.Fprintf(s.Out, "not running (socket %s)\n", g.socket)
				return exitError{code: 3}
			}
			if err != nil {
				return err
			}
			if o.format == "json" {
				return writeJSONOut(s.Out, map[string]any{"running": true, "health": h})
			}
			fmt.Fprintf(s.Out, "running: pid %d, version %s, up %s, socket %s\n", h.PID, h.Version, time.Since(h.StartedAt).Round(time.Second), h.Socket)
			if h.StateError != "" {
				fmt.Fprintf(s.Out, "state not saved: %s\n", h.StateError)
			}
			return nil
		},
	}
	o.add(statusCmd)
	cmd.AddCommand(statusCmd)
	return cmd
}
