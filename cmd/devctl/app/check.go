package app

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
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
		proj  *daemon.Project
		docs  []policy.Document
		chart *policy.ChartSource
	)
	r, err := o.project.resolveEnv(ctx, len(paths) == 0, false)
	if err != nil && len(paths) == 0 {
		return err
	}
	if r != nil && r.Config != nil {
		proj = daemon.ProjectFromConfig(r.Config, r.Notes)
	}
	if len(paths) > 0 {
		for _, p := range paths {
			d, err := readManifestPaths(p)
			if err != nil {
				return err
			}
			docs = append(docs, d...)
		}
	} else {
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
		for _, p := range r.Config.Manifests {
			d, err := readManifestPaths(filepath.Join(r.Config.Dir, p))
			if err != nil {
				return err
			}
			docs = append(docs, d...)
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

// readManifestPaths reads a manifest file, or every .yaml/.yml/.json file
// under a folder, in a stable order.
func readManifestPaths(p string) ([]policy.Document, error) {
	fi, err := os.Stat(p)
	if err != nil {
		return nil, fmt.Errorf("read manifests: %w", err)
	}
	var files []string
	if fi.IsDir() {
		err = filepath.WalkDir(p, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			switch strings.ToLower(filepath.Ext(path)) {
			case ".yaml", ".yml", ".json":
				if !d.IsDir() {
					files = append(files, path)
				}
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
		sort.Strings(files)
	} else {
		files = []string{p}
	}
	var out []policy.Document
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		d, err := policy.ParseManifests(f, b)
		if err != nil {
			return nil, err
		}
		out = append(out, d...)
	}
	return out, nil
}
