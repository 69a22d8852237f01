// Package check is `devctl check PATH...`: reading manifest files, folders
// and standard input, the devctl.yaml that applies to them, the report in
// every format and the exit status.
//
// Two binaries run it. devctl-core (the full build) renders Helm charts and
// evaluates an organisation's ValidatingAdmissionPolicies and Rego; devctl
// itself (cmd/devctl, built with the devctl_lean tag) links neither Helm,
// client-go nor those engines, so that a check on plain manifests starts in a
// few milliseconds, and hands every other invocation to devctl-core (see
// Plan). Both run the code here, so a check prints the same whichever of
// them ran it.
package check

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/devctl/devctl/internal/config"
	"github.com/devctl/devctl/internal/policy"
)

// Exit statuses of devctl check.
const (
	// Failed: a finding at or above --fail-on remains.
	Failed = 1
	// Incomplete: the input could not be read completely (or held no
	// object, with --fail-on-empty), or the check could not run.
	Incomplete = 2
)

// ExitError carries an exit status without a message of its own: what went
// wrong is already written.
type ExitError struct{ Code int }

func (e ExitError) Error() string { return fmt.Sprintf("exit status %d", e.Code) }

// Streams are the standard streams of a check.
type Streams struct {
	In          io.Reader
	Out, ErrOut io.Writer
}

// Options are devctl check's flags.
type Options struct {
	// Dir (-C) and File (-f) locate devctl.yaml; the caller owns these
	// flags (every project command has them).
	Dir, File string

	Format      string
	FailOn      string
	FailOnEmpty bool
	Timing      bool
}

// AddFlags adds the flags of the check itself (not -C and -f).
func (o *Options) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.Format, "format", "text", "output format: text, json, sarif or junit")
	fs.StringVar(&o.FailOn, "fail-on", "", "lowest severity that fails: info, low, medium, high, critical (default: devctl.yaml policy.failOn, else high)")
	fs.BoolVar(&o.FailOnEmpty, "fail-on-empty", false, "exit 2 when the input holds no Kubernetes object")
	fs.BoolVar(&o.Timing, "timing", false, "print how long rendering and checking took to stderr")
}

// ChartRenderer renders a Helm chart folder found among the PATHs with its
// own values in namespace, as `helm template` would.
type ChartRenderer func(ctx context.Context, dir, namespace string) ([]policy.Document, error)

// EngineFunc returns the policy engine for a project's settings (cfg is nil
// outside a project).
type EngineFunc func(ctx context.Context, cfg *config.Config) (*policy.Engine, error)

// NewEngine builds an engine for cfg's policy settings, or for the built-in
// rules alone when cfg is nil.
func NewEngine(ctx context.Context, cfg *config.Config) (*policy.Engine, error) {
	if cfg == nil {
		return policy.New(ctx, policy.Options{})
	}
	return policy.New(ctx, PolicyOptions(cfg))
}

// Paths checks the PATHs and writes the report: everything devctl check
// PATH... does. It returns an ExitError for a failed or incomplete check,
// and any other error when the check could not run (Finish turns it into
// the exit status).
func Paths(ctx context.Context, s Streams, o *Options, paths []string, render ChartRenderer, engine EngineFunc) error {
	start := time.Now()
	if err := ValidFormat(o.Format); err != nil {
		return err
	}
	cfg, err := Config(o.Dir, o.File)
	if err != nil {
		return err
	}
	return checkPaths(ctx, s, o, cfg, paths, render, engine, start)
}

// checkPaths is Paths once o.Format is known to be valid and devctl.yaml
// is loaded (cfg is nil outside a project).
func checkPaths(ctx context.Context, s Streams, o *Options, cfg *config.Config, paths []string, render ChartRenderer, engine EngineFunc, start time.Time) error {
	in := readInput(ctx, s.In, cfg, paths, render)
	eng, err := engine(ctx, cfg)
	if err != nil {
		return err
	}
	rep, err := eng.Check(ctx, in.docs, nil)
	if err != nil {
		return err
	}
	rep.AddErrors(in.errs)
	return Report(s, o, cfg, rep, start, 0)
}

// Report writes rep in o.Format and returns the verdict. start is when the
// check began and rendered how long rendering took, for --timing.
func Report(s Streams, o *Options, cfg *config.Config, rep *policy.Report, start time.Time, rendered time.Duration) error {
	threshold, err := FailOn(cfg, o.FailOn)
	if err != nil {
		return err
	}
	if err := WriteReport(s.Out, o.Format, rep); err != nil {
		return err
	}
	if o.Timing {
		fmt.Fprintf(s.ErrOut, "check: %d objects, render %.1fms, total %.1fms\n", rep.Objects, ms(rendered), ms(time.Since(start)))
	}
	return verdict(s, o, rep, threshold)
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// PolicyOptions are the policy engine options of a project: its
// organisation rules, waivers and allowed registries.
func PolicyOptions(cfg *config.Config) policy.Options {
	o := policy.Options{Namespace: cfg.Name}
	pc := cfg.Policy
	if pc.Rules != "" {
		o.RulesDir = filepath.Join(cfg.Dir, pc.Rules)
	}
	if pc.Waivers != "" {
		o.WaiversFile = filepath.Join(cfg.Dir, pc.Waivers)
	}
	o.AllowedRegistries = pc.AllowedRegistries
	return o
}

// FailOn is the lowest severity that fails a check: override when set (a
// --fail-on flag), else policy.failOn of devctl.yaml (cfg may be nil), else
// the default.
func FailOn(cfg *config.Config, override string) (policy.Severity, error) {
	s := override
	if s == "" && cfg != nil {
		s = cfg.Policy.FailOn
	}
	if s == "" {
		s = config.DefaultFailOn
	}
	sev, err := policy.ParseSeverity(s)
	if err != nil {
		return 0, fmt.Errorf("fail-on: %w", err)
	}
	return sev, nil
}

// Config loads the devctl.yaml given as file, or the one found in dir
// (default: the working directory) or above it. Without one, checking
// paths needs no project: it returns nil.
func Config(dir, file string) (*config.Config, error) {
	path := file
	if path == "" {
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

// input is what devctl check PATH... read.
type input struct {
	docs []policy.Document
	// errs lists what could not be read (a policy.ManifestErrors), or nil.
	errs error
}

// readInput reads the PATHs: files, folders, chart folders and "-" for
// stdin. The namespace of objects without one is the project's.
func readInput(ctx context.Context, stdin io.Reader, cfg *config.Config, paths []string, render ChartRenderer) *input {
	if os.Getenv("GOGC") == "" {
		// Reading manifests allocates a lot and keeps most of it: collect
		// less often (a third less CPU on 10,000 objects, for 30% more
		// memory). The process exits after the check.
		debug.SetGCPercent(400)
	}
	namespace := "default"
	if cfg != nil {
		namespace = cfg.Name
	}
	in := &input{}
	var errs policy.ManifestErrors
	for _, p := range paths {
		var (
			docs []policy.Document
			err  error
		)
		if p == "-" {
			docs, err = readStdin(stdin)
		} else {
			docs, err = policy.ReadManifests(p, func(dir string) ([]policy.Document, error) { return render(ctx, dir, namespace) })
		}
		in.docs = append(in.docs, docs...)
		errs = append(errs, policy.AsManifestErrors(err)...)
	}
	if len(errs) > 0 {
		in.errs = errs
	}
	return in
}

func readStdin(r io.Reader) ([]policy.Document, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, policy.ManifestErrors{{File: "-", Message: "read standard input: " + err.Error(), Err: err}}
	}
	return policy.ParseManifests("-", data)
}

// WriteReport writes r in format (text, json, sarif or junit).
func WriteReport(w io.Writer, format string, r *policy.Report) error {
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

var formats = []string{"text", "json", "sarif", "junit"}

// ValidFormat says whether f is a report format, and which are.
func ValidFormat(f string) error {
	if !slices.Contains(formats, f) {
		return fmt.Errorf("unknown format %q: use %s", f, strings.Join(formats, ", "))
	}
	return nil
}

// verdict turns a written report into the exit status: 2 when input could
// not be read (or none was given, with --fail-on-empty), 1 when a finding
// at or above threshold remains.
func verdict(s Streams, o *Options, rep *policy.Report, threshold policy.Severity) error {
	text := o.Format == "text"
	switch {
	case rep.Err() != nil:
		if text {
			fmt.Fprintf(s.ErrOut, "\npolicy check incomplete: %s could not be read (see above); fix and run it again\n", plural(len(rep.Errors), "input"))
		}
		return ExitError{Code: Incomplete}
	case rep.Failed(threshold):
		if text {
			fmt.Fprintf(s.ErrOut, "\npolicy check failed: findings at or above %s (fix them, or add a waiver; see docs/policy.md)\n", threshold)
		}
		return ExitError{Code: Failed}
	case rep.Empty() && o.FailOnEmpty:
		if text {
			fmt.Fprintln(s.ErrOut, "\npolicy check incomplete: the input holds no Kubernetes object (--fail-on-empty)")
		}
		return ExitError{Code: Incomplete}
	}
	return nil
}

// Finish maps an error that stopped devctl check before it could report
// (bad flags, devctl.yaml, the rules folder, a chart that does not render)
// to exit status 2: it writes the error (PrintError) and, in the
// machine-readable formats, a report that describes it. A nil error and
// an ExitError pass through.
func Finish(s Streams, o *Options, err error) error {
	if err == nil {
		return nil
	}
	var ee ExitError
	if errors.As(err, &ee) {
		return err
	}
	if ValidFormat(o.Format) == nil && o.Format != "text" {
		r := policy.NewReport()
		r.AddErrors(err)
		_ = WriteReport(s.Out, o.Format, r)
	}
	PrintError(s.ErrOut, err)
	return ExitError{Code: Incomplete}
}

// PrintError writes err as devctl prints errors: one banner, then the
// error; a multi-line error keeps its shape.
func PrintError(w io.Writer, err error) {
	msg := err.Error()
	if strings.Contains(msg, "\n") {
		fmt.Fprintf(w, "ERROR:\n%s\n", strings.TrimRight(msg, "\n"))
	} else {
		fmt.Fprintf(w, "ERROR: %s\n", msg)
	}
}

// plural returns "1 input", "2 inputs".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
