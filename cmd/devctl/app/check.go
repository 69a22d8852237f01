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
waivers file. With PATHs, check those manifest files or folders instead (multi-document
YAML). Exits 1 when a finding at or above --fail-on remains.

Formats: text (default), json, sarif (SARIF 2.1.0, for code scanning), junit.`,
		RunE: func(cmd *cobra.Command, args []string) error { return runCheck(cmd.Context(), s, o, args) },
	}
	o.project.addFlags(cmd.Flags(), true)
	cmd.Flags().StringVar(&o.format, "format", "text", "output format: text, json, sarif or junit")
	cmd.Flags().StringVar(&o.failOn, "fail-on", "", "lowest severity that fails: info, low, medium, high, critical (default: devctl.yaml policy.failOn, else high)")
	cmd.Flags().BoolVar(&o.timing, "timing", false, "print how long rendering and checking took to stderr")
	return cmd
}

func runCheck(ctx context.Context, s Streams, o *checkOptions, paths []string) error {
	start := time.Now()
	switch o.format {
	case "text", "json", "sarif", "junit":
	default:
		return fmt.Errorf("unknown format %q: use text, json, sarif or junit", o.format)
	}
	var (
		p   *goldenpath.Project
		rep *policy.Report
	)
	ref, err := o.project.ref()
	if err != nil {
		return err
	}
	checker := goldenpath.NewChecker(nil)
	rendered := time.Duration(0)
	if len(paths) == 0 {
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
	} else {
		var docs []policy.Document
		for _, path := range paths {
			d, err := goldenpath.ReadManifests(path)
			if err != nil {
				return err
			}
			docs = append(docs, d...)
		}
		eng, err := policy.New(ctx, policy.Options{})
		if err != nil {
			return err
		}
		if rep, err = eng.Check(ctx, docs, nil); err != nil {
			return err
		}
	}
	threshold, err := goldenpath.FailOn(p, o.failOn)
	if err != nil {
		return err
	}
	switch o.format {
	case "json":
		err = rep.WriteJSON(s.Out)
	case "sarif":
		err = rep.WriteSARIF(s.Out)
	case "junit":
		err = rep.WriteJUnit(s.Out)
	default:
		err = rep.WriteText(s.Out)
	}
	if err != nil {
		return err
	}
	if o.timing {
		fmt.Fprintf(s.ErrOut, "check: %d objects, render %.1fms, total %.1fms\n", rep.Objects, float64(rendered.Microseconds())/1000, float64(time.Since(start).Microseconds())/1000)
	}
	if rep.Failed(threshold) {
		if o.format == "text" {
			fmt.Fprintf(s.ErrOut, "\npolicy check failed: findings at or above %s (fix them, or add a waiver; see docs/policy.md)\n", threshold)
		}
		return exitError{code: 1}
	}
	return nil
}
