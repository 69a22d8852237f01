package app

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/devctl/devctl/charts"
	"github.com/devctl/devctl/daemon"
	"github.com/devctl/devctl/internal/config"
	"github.com/devctl/devctl/internal/helm"
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
		proj     *daemon.Project
		docs     []policy.Document
		chart    *policy.ChartSource
		readErrs error // input that could not be read: reported, and exit 2
	)
	if len(paths) > 0 {
		in, err := readCheckInput(ctx, s, o, paths)
		if err != nil {
			return err
		}
		proj, docs, readErrs = in.project, in.docs, in.errs
	} else {
		r, err := o.project.resolveEnv(ctx, true, false)
		if err != nil {
			return err
		}
		proj = daemon.ProjectFromConfig(r.Config, r.Notes)
		ch, err := charts.GoldenPath()
		if err != nil {
			return err
		}
		branch := ""
		if r != nil {
			branch = r.Git.Branch
		}
		for _, svc := range proj.Services {
			values := daemon.ChartValues(proj, svc, "devctl.local/"+proj.Name+"/"+svc.Name+":check", branch, r.Env)
			m, err := helm.Render(ctx, ch, svc.Name, proj.Name, values)
			if err != nil {
				return fmt.Errorf("render %s: %w", svc.Name, err)
			}
			d, err := policy.ParseManifests("rendered:"+svc.Name, []byte(m))
			if err != nil {
				return err
			}
			docs = append(docs, d...)
		}
		var errs policy.ManifestErrors
		for _, p := range r.Config.Manifests {
			d, err := readManifests(ctx, s.In, filepath.Join(r.Config.Dir, p), proj.Name)
			docs = append(docs, d...)
			errs = append(errs, policy.AsManifestErrors(err)...)
		}
		if len(errs) > 0 {
			readErrs = errs
		}
		chart = daemon.GoldenPathSource()
	}
	rendered := time.Since(start)

	popts := policy.Options{}
	failOn := o.failOn
	if proj != nil {
		popts = daemon.PolicyOptions(proj)
		if failOn == "" && proj.Config != nil {
			failOn = proj.Config.Policy.FailOn
		}
	}
	if failOn == "" {
		failOn = config.DefaultFailOn
	}
	threshold, err := policy.ParseSeverity(failOn)
	if err != nil {
		return fmt.Errorf("--fail-on: %w", err)
	}
	eng, err := policy.New(ctx, popts)
	if err != nil {
		return err
	}
	rep, err := eng.Check(ctx, docs, chart)
	if err != nil {
		return err
	}
	rep.AddErrors(readErrs)
	if err := writeReport(s.Out, o.format, rep); err != nil {
		return err
	}
	if o.timing {
		fmt.Fprintf(s.ErrOut, "check: %d objects, render %.1fms, total %.1fms\n", rep.Objects, float64(rendered.Microseconds())/1000, float64(time.Since(start).Microseconds())/1000)
	}
	return checkVerdict(s, o, rep, threshold)
}
