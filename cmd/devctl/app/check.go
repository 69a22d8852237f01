package app

import (
	"context"
	"time"

	"github.com/spf13/cobra"

	"github.com/devctl/devctl/envs"
	"github.com/devctl/devctl/internal/check"
	"github.com/devctl/devctl/internal/config"
	"github.com/devctl/devctl/internal/git"
	"github.com/devctl/devctl/internal/goldenpath"
	"github.com/devctl/devctl/internal/policy"
)

type checkOptions struct {
	project projectOptions
	check.Options
}

func newCheckCommand(_ *globalOptions, s Streams) *cobra.Command {
	o := &checkOptions{}
	cmd := &cobra.Command{
		Use:   "check [PATH...]",
		Short: "Check manifests against the golden-path policies (pre-push, CI); no cluster needed",
		Long: `Render the golden-path chart with each service's values (plus the manifests devctl.yaml
lists) and check the result against the built-in golden-path rules, the organisation's
rules (policy.rules in devctl.yaml: ValidatingAdmissionPolicy YAML and Rego) and the
waivers file.

With PATHs, check those instead: manifest files (multi-document YAML, JSON, Lists),
folders (every .yaml, .yml and .json file below them), Helm chart folders (rendered
with their values) and "-" for standard input. The devctl.yaml found upward from the
working directory (or given with -f) still sets the registries, rules, waivers and
failOn.

Exit status: 0 pass; 1 a finding at or above --fail-on remains; 2 the input could not
be read completely (a syntax or type error, an unrendered template; the other files
are still checked), or --fail-on-empty and no object, or the check could not run.

Formats: text (default), json, sarif (SARIF 2.1.0, for code scanning), junit; unreadable
input is reported in every format.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Dir, o.File = o.project.dir, o.project.file
			cs := check.Streams(s)
			return check.Finish(cs, &o.Options, runCheck(cmd.Context(), cs, o, args))
		},
	}
	o.project.addFlags(cmd.Flags(), true)
	o.AddFlags(cmd.Flags())
	return cmd
}

func runCheck(ctx context.Context, s check.Streams, o *checkOptions, paths []string) error {
	checker := goldenpath.NewChecker(nil)
	if len(paths) > 0 {
		engine := func(ctx context.Context, cfg *config.Config) (*policy.Engine, error) {
			if cfg == nil {
				return check.NewEngine(ctx, nil)
			}
			return checker.Engine(ctx, &goldenpath.Project{Config: cfg})
		}
		return check.Paths(ctx, s, &o.Options, paths, goldenpath.RenderChart, engine)
	}
	start := time.Now()
	if err := check.ValidFormat(o.Format); err != nil {
		return err
	}
	ref, err := o.project.ref()
	if err != nil {
		return err
	}
	p, err := goldenpath.Load(ref.Dir, ref.Config)
	if err != nil {
		return err
	}
	t := goldenpath.Target{Env: ref.Name, Branch: ref.Branch}
	if info, err := git.Describe(ctx, p.Dir); err == nil {
		if t.Branch == "" {
			t.Branch = info.Branch
		}
		if t.Env == "" {
			t.Env = envs.Name(info.Repo, t.Branch)
		}
	}
	rels, err := goldenpath.Render(ctx, p, t, goldenpath.CheckImages(p))
	if err != nil {
		return err
	}
	rendered := time.Since(start)
	rep, err := checker.Check(ctx, p, rels)
	if err != nil {
		return err
	}
	return check.Report(s, &o.Options, p.Config, rep, start, rendered)
}
