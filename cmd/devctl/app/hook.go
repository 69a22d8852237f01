package app

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/devctl/devctl/internal/hook"
)

func newHookCommand(s Streams) *cobra.Command {
	var (
		dir     string
		command string
	)
	repo := func() (string, error) {
		if dir != "" {
			return dir, nil
		}
		return os.Getwd()
	}
	cmd := &cobra.Command{
		Use:   "hook",
		Short: "Install or remove the git pre-push hook that runs `devctl check`",
	}
	cmd.PersistentFlags().StringVarP(&dir, "dir", "C", "", "the repository (default: the current directory)")
	install := &cobra.Command{
		Use:   "install",
		Short: "Install a pre-push hook that blocks the push when `devctl check` fails (an existing hook is kept and chained)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			d, err := repo()
			if err != nil {
				return err
			}
			if err := hook.Install(cmd.Context(), d, hook.Options{Command: command}); err != nil {
				return err
			}
			hd, _ := hook.HooksDir(cmd.Context(), d, "")
			fmt.Fprintf(s.Out, "installed the devctl pre-push hook in %s\n", hd)
			return nil
		},
	}
	install.Flags().StringVar(&command, "command", "", "the command the hook runs (default: devctl check)")
	cmd.AddCommand(install, &cobra.Command{
		Use:   "uninstall",
		Short: "Remove devctl's pre-push hook and restore the hook it chained",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			d, err := repo()
			if err != nil {
				return err
			}
			if err := hook.Uninstall(cmd.Context(), d, hook.Options{}); err != nil {
				return err
			}
			fmt.Fprintln(s.Out, "removed the devctl pre-push hook")
			return nil
		},
	})
	return cmd
}
