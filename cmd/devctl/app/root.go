package app

import (
	"context"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/devctl/devctl/internal/paths"
)

// globalOptions are the flags every command has.
type globalOptions struct {
	socket  string
	verbose bool
	errOut  io.Writer
	// spawn, when set, starts the daemon instead of `devctl daemon run`
	// in the background (tests run one in the test process).
	spawn func(ctx context.Context) error
}

// NewRootCommand returns the devctl command tree.
func NewRootCommand(streams Streams) *cobra.Command {
	g := &globalOptions{errOut: streams.ErrOut}
	cmd := &cobra.Command{
		Use:   "devctl",
		Short: "The golden path, executable: an environment per branch, built, deployed and policy-checked",
		Long: `devctl brings up an ephemeral Kubernetes environment for the current git branch,
builds the service's images, installs them with the golden-path Helm chart and checks
them against the platform's policies, on a laptop and in CI.

  devctl init      write devctl.yaml for this repository
  devctl up        bring this branch's environment up (starts the daemon when needed)
  devctl tui       watch every environment: resources, logs, findings, rebuilds
  devctl check     check the rendered manifests against policy (pre-push, CI)
  devctl preview   per-pull-request preview environments on a shared host cluster (CI)`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	cmd.SetOut(streams.Out)
	cmd.SetErr(streams.ErrOut)
	cmd.SetIn(streams.In)
	cmd.PersistentFlags().StringVar(&g.socket, "socket", paths.Socket(), "the daemon's unix socket (env DEVCTL_SOCKET)")
	cmd.PersistentFlags().BoolVarP(&g.verbose, "verbose", "v", os.Getenv("DEVCTL_DEBUG") != "", "log debug detail to stderr")
	cmd.AddCommand(
		newUpCommand(g, streams),
		newDownCommand(g, streams),
		newLsCommand(g, streams),
		newGCCommand(g, streams),
		newPreviewCommand(g, streams),
		newStatusCommand(g, streams),
		newLogsCommand(g, streams),
		newTUICommand(g, streams),
		newWatchCommand(g, streams),
		newDaemonCommand(g, streams),
		newInitCommand(streams),
		newCheckCommand(g, streams),
		newHookCommand(streams),
		newVersionCommand(streams),
	)
	return cmd
}
