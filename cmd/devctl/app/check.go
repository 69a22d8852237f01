package app

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/devctl/devctl/envs"
	"github.com/devctl/devctl/internal/git"
	"github.com/devctl/devctl/internal/goldenpath"
	"github.com/devctl/devctl/internal/policy"
)

type checkOptions struct {
	project projectOptions
	input   checkInputOptions
	format  string
	failOn  string
	timing  bool
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
			return checkExit(s, o, runCheck(cmd.Context(), s, o, args))
		},
	}
	o.project.addFlags(cmd.Flags(), true)
	o.input.addFlags(cmd.Flags())
	cmd.Flags().StringVar(&o.format, "format", "text", "output format: text, json, sarif or junit")
	cmd.Flags().StringVar(&o.failOn, "fail-on", "", "lowest severity that fails: info, low, medium, high, critical (default: devctl.yaml policy.failOn, else high)")
	cmd.Flags().BoolVar(&o.timing, "timing", false, "print how long rendering and checking took to stderr")
	return cmd
}

func runCheck(ctx context.Context, s Streams, o *checkOptions, paths []string) error {
	start := time.Now()
	if err := validFormat(o.format); err != nil {
		return err
	}
	var (
		p        *goldenpath.Project
		rep      *policy.Report
		rendered time.Duration
	)
	checker := goldenpath.NewChecker(nil)
	if len(paths) > 0 {
		in, err := readCheckInput(ctx, s, o, paths)
		if err != nil {
			return err
		}
		p = in.project
		eng, err := checkEngine(ctx, checker, p)
		if err != nil {
			return err
		}
		if rep, err = eng.Check(ctx, in.docs, nil); err != nil {
			return err
		}
		rep.AddErrors(in.errs)
	} else {
		ref, err := o.project.ref()
		if err != nil {
			return err
		}
		if p, err = goldenpath.Load(ref.Dir, ref.Config); err != nil {
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
		rendered = time.Since(start)
		if rep, err = checker.Check(ctx, p, rels); err != nil {
			return err
		}
	}
	threshold, err := goldenpath.FailOn(p, o.failOn)
	if err != nil {
		return err
	}
	if err := writeReport(s.Out, o.format, rep); err != nil {
		return err
	}
	if o.timing {
		fmt.Fprintf(s.ErrOut, "check: %d objects, render %.1fms, total %.1fms\n", rep.Objects, float64(rendered.Microseconds())/1000, float64(time.Since(start).Microseconds())/1000)
	}
	return checkVerdict(s, o, rep, threshold)
}

// checkEngine is the engine for the project's policy settings, or the
// built-in rules alone outside a project.
func checkEngine(ctx context.Context, c *goldenpath.Checker, p *goldenpath.Project) (*policy.Engine, error) {
	if p == nil {
		return policy.New(ctx, policy.Options{})
	}
	return c.Engine(ctx, p)
}
