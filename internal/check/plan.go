package check

import (
	"context"
	"errors"
	"io"
	"time"

	"github.com/spf13/pflag"

	"github.com/devctl/devctl/internal/config"
	"github.com/devctl/devctl/internal/policy"
)

// Invocation is a `devctl check PATH...` that the lean front can run.
type Invocation struct {
	opts  Options
	paths []string
	cfg   *config.Config // the devctl.yaml Plan loaded; nil outside a project
	start time.Time
}

// Plan reads a devctl command line (without the program name) as devctl
// check would, and returns the check when the lean build can run it: plain
// manifests with the built-in rules. It returns false for everything else,
// which devctl-core runs: another command, check without PATHs (it renders
// the golden-path chart), -h, a flag it does not know or a report format
// it does not have (devctl-core prints the usage error), a devctl.yaml that does not load (it reports the
// error) or that names organisation rules (ValidatingAdmissionPolicy and
// Rego need the CEL and OPA engines), and a PATH that is or holds a Helm
// chart.
func Plan(args []string) (*Invocation, bool) {
	if len(args) == 0 || args[0] != "check" {
		return nil, false
	}
	inv := &Invocation{start: time.Now()}
	fs := Flags(&inv.opts)
	if err := fs.Parse(args[1:]); err != nil {
		return nil, false
	}
	inv.paths = fs.Args()
	if len(inv.paths) == 0 || ValidFormat(inv.opts.Format) != nil {
		return nil, false
	}
	cfg, err := Config(inv.opts.Dir, inv.opts.File)
	if err != nil || (cfg != nil && cfg.Policy.Rules != "") {
		return nil, false
	}
	inv.cfg = cfg
	for _, p := range inv.paths {
		if p != "-" && policy.HasChart(p) {
			return nil, false
		}
	}
	return inv, true
}

// Flags is the lean front's flag set of devctl check: the check's own
// flags, the project flags of every project command (-C, -f, and --name and
// --branch, which a check of PATHs does not use) and devctl's global flags
// (--socket, -v), so that it accepts what devctl-core's check accepts. It
// writes nothing: a parse error means devctl-core runs the command.
func Flags(o *Options) *pflag.FlagSet {
	fs := pflag.NewFlagSet("check", pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	fs.StringVarP(&o.Dir, "dir", "C", "", "")
	fs.StringVarP(&o.File, "file", "f", "", "")
	fs.String("name", "", "")
	fs.String("branch", "", "")
	fs.String("socket", "", "")
	fs.BoolP("verbose", "v", false, "")
	o.AddFlags(fs)
	return fs
}

// Run runs the check and returns the exit status.
func (inv *Invocation) Run(ctx context.Context, s Streams) int {
	err := Finish(s, &inv.opts, checkPaths(ctx, s, &inv.opts, inv.cfg, inv.paths, noCharts, NewEngine, inv.start))
	var ee ExitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee):
		return ee.Code
	default:
		PrintError(s.ErrOut, err)
		return 1
	}
}

// noCharts is the chart renderer of the lean build, which Plan keeps from
// being called.
func noCharts(_ context.Context, dir, _ string) ([]policy.Document, error) {
	return nil, policy.ManifestErrors{{File: dir, Message: "this build of devctl does not render Helm charts; run devctl-core check", Err: errNoCharts}}
}

var errNoCharts = errors.New("no chart renderer")
