package app

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/devctl/devctl/internal/config"
)

func newInitCommand(s Streams) *cobra.Command {
	var (
		dir    string
		force  bool
		deploy string
	)
	cmd := &cobra.Command{
		Use:   "init",
		Short: "Write devctl.yaml for this repository (detects a Dockerfile or a Go main package)",
		Long: `Write devctl.yaml for the repository in the current directory. With a Dockerfile,
the service is built from it (the port comes from EXPOSE). With a Go main package and no
Dockerfile, devctl compiles a static binary and init also writes a FROM scratch Dockerfile,
so no base image is ever pulled. A repository that deploys itself (a Helm chart, a
Kustomize overlay, or a deploy/, k8s/ or manifests/ folder of YAML) is deployed that
way (an escape hatch, checked by the same policies); --deploy golden-path uses the
golden-path chart instead. The port comes from the Dockerfile's EXPOSE, the chart's
values or the default of the main package's listen flag. init also adds .devctl/secrets.yaml (the seed of the
local secrets store, see dependencies in devctl.yaml) to .gitignore. Existing files
are kept unless --force.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if dir == "" {
				wd, err := os.Getwd()
				if err != nil {
					return err
				}
				dir = wd
			}
			dir, err := filepath.Abs(dir)
			if err != nil {
				return err
			}
			path := filepath.Join(dir, config.FileName)
			if _, err := os.Stat(path); err == nil && !force {
				return fmt.Errorf("%s already exists; edit it, or pass --force to write it anew", path)
			}
			switch deploy {
			case "", config.DeployGoldenPath, config.DeployChart, config.DeployKustomize, config.DeployManifests:
			default:
				return fmt.Errorf("--deploy %q: use %s, %s, %s or %s (or leave it out to detect)", deploy,
					config.DeployGoldenPath, config.DeployChart, config.DeployKustomize, config.DeployManifests)
			}
			cfg, notes, err := config.DetectWith(dir, config.DetectOptions{Deploy: deploy})
			if err != nil {
				return err
			}
			var written []string
			for _, svc := range cfg.Services {
				if svc.Go == nil {
					continue
				}
				df := filepath.Join(dir, svc.Context, svc.Dockerfile)
				if _, err := os.Stat(df); errors.Is(err, fs.ErrNotExist) {
					if err := os.WriteFile(df, config.ScratchDockerfile(svc.Go.Output, svc.Port), 0o644); err != nil {
						return fmt.Errorf("write %s: %w", df, err)
					}
					written = append(written, df)
				}
			}
			b, err := config.Marshal(cfg)
			if err != nil {
				return err
			}
			if err := os.WriteFile(path, b, 0o644); err != nil {
				return fmt.Errorf("write %s: %w", path, err)
			}
			// The secrets store's seed file holds secret values: keep it out
			// of git before anyone writes it.
			if changed, err := config.EnsureGitignore(dir); err != nil {
				return err
			} else if changed {
				written = append(written, filepath.Join(dir, ".gitignore")+" (ignores "+config.DefaultSecretsFile+")")
			}
			for _, n := range notes {
				fmt.Fprintf(s.Out, "  %s\n", n)
			}
			for _, w := range written {
				fmt.Fprintf(s.Out, "wrote %s\n", w)
			}
			fmt.Fprintf(s.Out, "wrote %s\nnext: review it, then run `devctl up`\n", path)
			return nil
		},
	}
	cmd.Flags().StringVarP(&dir, "dir", "C", "", "the repository directory (default: the current directory)")
	cmd.Flags().BoolVar(&force, "force", false, "overwrite an existing devctl.yaml")
	cmd.Flags().StringVar(&deploy, "deploy", "", "how to deploy: golden-path, chart, kustomize or manifests (default: the repository's own chart, overlay or manifests when found, else golden-path)")
	return cmd
}
