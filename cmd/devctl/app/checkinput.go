package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strings"

	"github.com/spf13/pflag"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"

	"github.com/devctl/devctl/daemon"
	"github.com/devctl/devctl/internal/config"
	"github.com/devctl/devctl/internal/helm"
	"github.com/devctl/devctl/internal/policy"
)

// Exit codes of devctl check.
const (
	// checkFailed: a finding at or above --fail-on remains.
	checkFailed = 1
	// checkIncomplete: the input could not be read completely (or held no
	// object, with --fail-on-empty), or the check could not run.
	checkIncomplete = 2
)

// checkInputOptions are the flags about what devctl check reads.
type checkInputOptions struct {
	failOnEmpty bool
}

func (o *checkInputOptions) addFlags(fs *pflag.FlagSet) {
	fs.BoolVar(&o.failOnEmpty, "fail-on-empty", false, "exit 2 when the input holds no Kubernetes object")
}

// checkInput is what devctl check PATH... read.
type checkInput struct {
	// project is the devctl.yaml found upward from the working directory
	// (or given with -f); nil when there is none.
	project *daemon.Project
	docs    []policy.Document
	// errs lists what could not be read (a policy.ManifestErrors).
	errs error
}

// readCheckInput reads the PATHs (files, folders, chart folders, "-" for
// stdin) and the devctl.yaml that applies to them.
func readCheckInput(ctx context.Context, s Streams, o *checkOptions, paths []string) (*checkInput, error) {
	if os.Getenv("GOGC") == "" {
		// Reading manifests allocates a lot and keeps most of it: collect
		// less often (a third less CPU on 10,000 objects, for 30% more
		// memory). The process exits after the check.
		debug.SetGCPercent(400)
	}
	in := &checkInput{}
	cfg, err := checkConfig(&o.project)
	if err != nil {
		return nil, err
	}
	namespace := "default"
	if cfg != nil {
		in.project = daemon.ProjectFromConfig(cfg, nil)
		namespace = cfg.Name
	}
	var errs policy.ManifestErrors
	for _, p := range paths {
		docs, err := readManifests(ctx, s.In, p, namespace)
		in.docs = append(in.docs, docs...)
		errs = append(errs, policy.AsManifestErrors(err)...)
	}
	if len(errs) > 0 {
		in.errs = errs
	}
	return in, nil
}

// checkConfig loads the devctl.yaml given with -f, or the one found in
// the project directory (-C, default: the working directory) or above it.
// Without one, checking paths needs no project: it returns nil.
func checkConfig(p *projectOptions) (*config.Config, error) {
	path := p.file
	if path == "" {
		dir := p.dir
		if dir == "" {
			dir = "."
		}
		found, err := config.Find(dir)
		if errors.Is(err, config.ErrNotFound) {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		path = found
	}
	return config.Load(path)
}

// readManifests reads one PATH: "-" (stdin), a manifest file, a chart
// folder (rendered with its own values), or a folder (every .yaml, .yml
// and .json file below it, charts rendered, hidden folders skipped). It
// returns the documents it could read and a policy.ManifestErrors for the
// rest, so that one broken file does not hide the others.
func readManifests(ctx context.Context, stdin io.Reader, p, namespace string) ([]policy.Document, error) {
	if p == "-" {
		data, err := io.ReadAll(stdin)
		if err != nil {
			return nil, policy.ManifestErrors{{File: "-", Message: "read standard input: " + err.Error(), Err: err}}
		}
		return policy.ParseManifests("-", data)
	}
	fi, err := os.Stat(p)
	if err != nil {
		return nil, policy.ManifestErrors{fileError(p, err)}
	}
	if !fi.IsDir() {
		return readManifestFile(p)
	}
	var (
		docs []policy.Document
		errs policy.ManifestErrors
	)
	add := func(d []policy.Document, err error) {
		docs = append(docs, d...)
		errs = append(errs, policy.AsManifestErrors(err)...)
	}
	err = filepath.WalkDir(p, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			errs = append(errs, fileError(path, err))
			if d != nil && d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if d.IsDir() {
			if path != p && strings.HasPrefix(d.Name(), ".") {
				return filepath.SkipDir // .git, .github: not manifests
			}
			if isChart(path) {
				add(renderChart(ctx, path, namespace))
				return filepath.SkipDir
			}
			return nil
		}
		switch strings.ToLower(filepath.Ext(path)) {
		case ".yaml", ".yml", ".json":
			add(readManifestFile(path))
		}
		return nil
	})
	if err != nil {
		errs = append(errs, fileError(p, err))
	}
	if len(errs) > 0 {
		return docs, errs
	}
	return docs, nil
}

func fileError(path string, err error) *policy.ManifestError {
	msg := err.Error()
	var pe *fs.PathError
	if errors.As(err, &pe) {
		msg = pe.Err.Error()
	}
	return &policy.ManifestError{File: path, Message: msg, Err: err}
}

// readManifestFile reads a manifest file. Files that belong to a chart or
// a Kustomize overlay are not manifests: the error says what to do.
func readManifestFile(path string) ([]policy.Document, error) {
	switch strings.ToLower(filepath.Base(path)) {
	case "chart.yaml", "values.yaml", "values.schema.json":
		return nil, policy.ManifestErrors{{File: path, Err: policy.ErrHelmTemplate,
			Message: "this file belongs to a Helm chart: pass the chart's folder (" + filepath.Dir(path) + ") and devctl renders it"}}
	case "kustomization.yaml", "kustomization.yml":
		return nil, policy.ManifestErrors{{File: path,
			Message: "this is a Kustomize overlay, not a manifest: check what it builds: kustomize build " + filepath.Dir(path) + " | devctl check -"}}
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, policy.ManifestErrors{fileError(path, err)}
	}
	return policy.ParseManifests(path, data)
}

func isChart(dir string) bool {
	fi, err := os.Stat(filepath.Join(dir, chartutil.ChartfileName))
	return err == nil && fi.Mode().IsRegular()
}

// renderChart renders a chart folder with its own values, as `helm
// template` would, and points findings at its templates.
func renderChart(ctx context.Context, dir, namespace string) ([]policy.Document, error) {
	fail := func(err error) ([]policy.Document, error) {
		return nil, policy.ManifestErrors{{File: dir, Err: err,
			Message: fmt.Sprintf("render the Helm chart: %v", err)}}
	}
	ch, err := loader.LoadDir(dir)
	if err != nil {
		return fail(err)
	}
	release := ch.Name()
	if chartutil.ValidateReleaseName(release) != nil {
		release = "release"
	}
	out, err := helm.Render(ctx, ch, release, namespace, nil)
	if err != nil {
		return fail(err)
	}
	docs, err := policy.ParseManifests(filepath.Join(dir, "(rendered)"), []byte(out))
	src := &policy.ChartSource{FS: os.DirFS(dir), Dir: dir}
	for i := range docs {
		docs[i].Chart = src
	}
	return docs, err
}

// writeCheckError writes a report that holds only err, so that json,
// sarif and junit consumers get a valid document whatever happened.
func writeCheckError(w io.Writer, format string, err error) {
	if format == "text" {
		return
	}
	r := policy.NewReport()
	r.AddErrors(err)
	_ = writeReport(w, format, r)
}

func writeReport(w io.Writer, format string, r *policy.Report) error {
	switch format {
	case "json":
		return r.WriteJSON(w)
	case "sarif":
		return r.WriteSARIF(w)
	case "junit":
		return r.WriteJUnit(w)
	default:
		return r.WriteText(w)
	}
}

var checkFormats = []string{"text", "json", "sarif", "junit"}

func validFormat(f string) error {
	if !slices.Contains(checkFormats, f) {
		return fmt.Errorf("unknown format %q: use %s", f, strings.Join(checkFormats, ", "))
	}
	return nil
}

// checkVerdict turns a written report into the exit status: 2 when input
// could not be read (or none was given, with --fail-on-empty), 1 when a
// finding at or above threshold remains.
func checkVerdict(s Streams, o *checkOptions, rep *policy.Report, threshold policy.Severity) error {
	text := o.format == "text"
	switch {
	case rep.Err() != nil:
		if text {
			fmt.Fprintf(s.ErrOut, "\npolicy check incomplete: %s could not be read (see above); fix and run it again\n", plural(len(rep.Errors), "input"))
		}
		return exitError{code: checkIncomplete}
	case rep.Failed(threshold):
		if text {
			fmt.Fprintf(s.ErrOut, "\npolicy check failed: findings at or above %s (fix them, or add a waiver; see docs/policy.md)\n", threshold)
		}
		return exitError{code: checkFailed}
	case rep.Empty() && o.input.failOnEmpty:
		if text {
			fmt.Fprintln(s.ErrOut, "\npolicy check incomplete: the input holds no Kubernetes object (--fail-on-empty)")
		}
		return exitError{code: checkIncomplete}
	}
	return nil
}

// checkExit maps an error that stopped devctl check before it could
// report (bad flags, devctl.yaml, rules folder, a chart that does not
// render) to exit status 2, writing a report that describes it in the
// machine-readable formats.
func checkExit(s Streams, o *checkOptions, err error) error {
	if err == nil {
		return nil
	}
	var ee exitError
	if errors.As(err, &ee) {
		return err
	}
	if validFormat(o.format) == nil {
		writeCheckError(s.Out, o.format, err)
	}
	exitCode(s.ErrOut, err) // prints the banner
	return exitError{code: checkIncomplete}
}

// plural returns "1 input", "2 inputs".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
