package app

import (
	"fmt"
	"runtime"

	"github.com/spf13/cobra"

	"github.com/devctl/devctl/internal/version"
)

func newVersionCommand(s Streams) *cobra.Command {
	o := &outputFlag{}
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print devctl's version",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			if err := o.check(); err != nil {
				return err
			}
			info := map[string]string{"version": version.Version, "commit": version.Commit, "go": runtime.Version(), "platform": runtime.GOOS + "/" + runtime.GOARCH}
			if o.format == "json" {
				return writeJSONOut(s.Out, info)
			}
			fmt.Fprintf(s.Out, "devctl %s (commit %s, %s, %s)\n", info["version"], info["commit"], info["go"], info["platform"])
			return nil
		},
	}
	o.add(cmd)
	return cmd
}
