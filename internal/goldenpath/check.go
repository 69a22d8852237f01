package goldenpath

import (
	"context"
	"fmt"
	"io/fs"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"

	"github.com/devctl/devctl/charts"
	"github.com/devctl/devctl/internal/api"
	"github.com/devctl/devctl/internal/check"
	"github.com/devctl/devctl/internal/policy"
)

// ChartSource lets findings on rendered releases point at the golden-path
// chart's template lines.
func ChartSource() *policy.ChartSource {
	sub, err := fs.Sub(charts.FS, charts.GoldenPathName)
	if err != nil {
		return nil
	}
	return &policy.ChartSource{FS: sub, Dir: charts.GoldenPathName}
}

// Checker checks what a project renders. It keeps one compiled engine per
// set of policy options, so every render after the first is checked without
// compiling again. It is safe for concurrent use.
type Checker struct {
	log     *slog.Logger
	mu      sync.Mutex
	engines map[string]*policy.Engine
}

// NewChecker returns a Checker logging to log (nil discards).
func NewChecker(log *slog.Logger) *Checker {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Checker{log: log, engines: map[string]*policy.Engine{}}
}

// Engine returns the (cached) engine for a project's policy settings.
func (c *Checker) Engine(ctx context.Context, p *Project) (*policy.Engine, error) {
	o := check.PolicyOptions(p.Config)
	key := strings.Join([]string{o.RulesDir, o.WaiversFile, strings.Join(o.AllowedRegistries, ","), o.Namespace}, "|")
	if o.RulesDir != "" || o.WaiversFile != "" {
		// Rules and waivers are files the user edits: their content is part
		// of the key, so an edit is picked up by the next check.
		key += "|" + filesStamp(o.RulesDir, o.WaiversFile)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.engines[key]; ok {
		return e, nil
	}
	o.Logger = c.log
	e, err := policy.New(ctx, o)
	if err != nil {
		return nil, err
	}
	c.engines[key] = e
	return e, nil
}

// Check checks the rendered releases and the manifests devctl.yaml lists
// (`manifests:`) against the project's policies.
func (c *Checker) Check(ctx context.Context, p *Project, rels []*Release) (*policy.Report, error) {
	var docs []policy.Document
	for _, r := range rels {
		d, err := policy.ParseManifests("rendered:"+r.Service, []byte(r.Manifest))
		if err != nil {
			return nil, err
		}
		if r.Source != nil {
			for i := range d {
				d[i].Chart = r.Source
			}
		}
		docs = append(docs, d...)
	}
	var errs policy.ManifestErrors
	for _, m := range p.Manifests {
		d, err := ReadManifests(ctx, filepath.Join(p.Dir, m), p.Namespace())
		docs = append(docs, d...)
		errs = append(errs, policy.AsManifestErrors(err)...)
	}
	e, err := c.Engine(ctx, p)
	if err != nil {
		return nil, err
	}
	rep, err := e.Check(ctx, docs, ChartSource())
	if err != nil {
		return nil, err
	}
	if len(errs) > 0 {
		rep.AddErrors(errs)
	}
	return rep, nil
}

// Findings converts a report to the API's findings, waived ones marked.
func Findings(r *policy.Report) []api.Finding {
	out := make([]api.Finding, 0, len(r.Findings)+len(r.Waived))
	conv := func(f policy.Finding, waived bool) api.Finding {
		out := api.Finding{
			Rule: f.Rule, Severity: f.Severity.String(), Object: f.Object.String(), Path: f.Path,
			Source: f.Source.String(), Message: f.Message, Fix: f.Fix, Waived: waived,
		}
		if w := f.Waiver; waived && w != nil {
			out.Waiver = &api.Waiver{Approver: w.Approver, Reason: w.Reason, Ticket: w.Ticket, Expires: w.Expires}
		}
		return out
	}
	for _, f := range r.Findings {
		out = append(out, conv(f, false))
	}
	for _, f := range r.Waived {
		out = append(out, conv(f, true))
	}
	return out
}

// filesStamp summarises the modification times and sizes of the files
// under the given paths, so cached engines are rebuilt after an edit.
func filesStamp(paths ...string) string {
	var b strings.Builder
	for _, p := range paths {
		if p == "" {
			continue
		}
		_ = filepath.WalkDir(p, func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return nil
			}
			if fi, err := d.Info(); err == nil {
				fmt.Fprintf(&b, "%s:%d:%d;", path, fi.Size(), fi.ModTime().UnixNano())
			}
			return nil
		})
	}
	return b.String()
}
