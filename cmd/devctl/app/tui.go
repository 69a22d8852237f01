package app

import (
	"context"
	"errors"
	"fmt"
	"os"

	tea "charm.land/bubbletea/v2"
	"github.com/spf13/cobra"

	"github.com/devctl/devctl/internal/api"
	"github.com/devctl/devctl/tui"
)

func newTUICommand(g *globalOptions, s Streams) *cobra.Command {
	p := &projectOptions{}
	cmd := &cobra.Command{
		Use:   "tui [ENV]",
		Short: "Open the terminal UI: environments, resources, logs, policy findings, rebuilds",
		Long: `Open devctl's terminal UI on the daemon: every environment it knows (this directory's
branch is marked), and for the selected one its Deployments, Pods and Services with the
reason anything is not ready, its logs (pods, build output, devctl's own steps), the
policy findings of the last render and the rebuild history. It works from any directory;
ENV selects an environment first. Leaving it (q) stops nothing. Press ? for the keys.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			c, err := g.ensureDaemon(ctx, func() { fmt.Fprintln(s.Out, "starting the devctl daemon ...") })
			if err != nil {
				return err
			}
			current := currentEnv(ctx, c, p)
			env := current
			if len(args) == 1 {
				env = args[0]
			}
			return runTUI(ctx, c, s, env, current)
		},
	}
	p.addFlags(cmd.Flags(), false)
	return cmd
}

// currentEnv is the environment of the current directory's branch, or ""
// when the directory is not in a git repository.
func currentEnv(ctx context.Context, c *api.Client, p *projectOptions) string {
	ref, err := p.ref()
	if err != nil {
		return ""
	}
	ref.NameOnly = true
	res, err := c.Resolve(ctx, ref)
	if err != nil {
		return ""
	}
	return res.Name
}

// runTUI runs the terminal UI until the user leaves it.
func runTUI(ctx context.Context, c *api.Client, s Streams, env, current string) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	m := tui.New(ctx, c, tui.Options{Env: env, Current: current, NoColor: os.Getenv("NO_COLOR") != ""})
	opts := []tea.ProgramOption{tea.WithContext(ctx)}
	if in, ok := s.In.(*os.File); ok {
		opts = append(opts, tea.WithInput(in))
	}
	if out, ok := s.Out.(*os.File); ok {
		opts = append(opts, tea.WithOutput(out))
	}
	if _, err := tea.NewProgram(m, opts...).Run(); err != nil && !errors.Is(err, tea.ErrProgramKilled) {
		return fmt.Errorf("terminal UI: %w", err)
	}
	fmt.Fprint(s.Out, m.Goodbye())
	return nil
}
