// Package policy checks rendered Kubernetes manifests against the
// golden-path baseline and an organisation's own rules, with the code the
// API server runs (Pod Security admission, ValidatingAdmissionPolicy CEL)
// plus Rego for conftest-style policies.
//
// Build an Engine once (New compiles every policy) and call Check for
// each render; findings point at the chart template line and values key
// that set the field, say how to fix it, and honour a waivers file.
package policy

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"time"
)

// Options configure an Engine.
type Options struct {
	// RulesDir holds organisation rules: ValidatingAdmissionPolicy YAML
	// (with bindings and param objects) and Rego (.rego) files. Optional.
	RulesDir string
	// WaiversFile is the repository's waivers file. Optional.
	WaiversFile string
	// Waivers are used in addition to WaiversFile.
	Waivers []Waiver
	// AllowedRegistries turns on the allowed-registries rule: images must
	// be under one of these prefixes (ghcr.io/acme, registry.example.com).
	AllowedRegistries []string
	// Namespace is the namespace of objects that do not set one (the
	// release namespace); ValidatingAdmissionPolicy bindings match on it.
	Namespace string
	// Now is the clock for waiver expiry; time.Now when nil.
	Now func() time.Time
	// Logger receives debug logs; silent when nil.
	Logger *slog.Logger
}

// Engine checks manifests. It is safe for concurrent use.
type Engine struct {
	opts     Options
	checkers []checker
	rules    map[string]Rule
	waivers  []Waiver
	log      *slog.Logger
}

// New compiles the built-in rules, the rules in o.RulesDir and the
// waivers file.
func New(ctx context.Context, o Options) (*Engine, error) {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	e := &Engine{opts: o, log: o.Logger, rules: map[string]Rule{}}
	for _, r := range Rules() {
		e.rules[r.ID] = r
	}
	e.checkers = builtinCheckers(o.AllowedRegistries)
	if o.RulesDir != "" {
		org, rules, err := loadRulesDir(ctx, o.RulesDir, o.Namespace)
		if err != nil {
			return nil, err
		}
		for _, r := range rules {
			e.rules[r.ID] = r
		}
		e.checkers = append(e.checkers, org...)
	}
	e.waivers = append(e.waivers, o.Waivers...)
	if o.WaiversFile != "" {
		ws, err := LoadWaivers(o.WaiversFile)
		if err != nil {
			return nil, err
		}
		e.waivers = append(e.waivers, ws...)
	}
	e.log.Debug("policy engine ready", "checkers", len(e.checkers), "waivers", len(e.waivers))
	return e, nil
}

// Rules returns the rules the engine knows (built-in and loaded).
func (e *Engine) Rules() map[string]Rule { return maps.Clone(e.rules) }

// Check evaluates the documents. chart is optional: with it, findings on
// Helm-rendered documents point at the template line that sets the field.
func (e *Engine) Check(ctx context.Context, docs []Document, chart *ChartSource) (*Report, error) {
	set := &objectSet{}
	for i := range docs {
		d := &docs[i]
		set.docs = append(set.docs, d)
		w, err := expandWorkload(d)
		if err != nil {
			return nil, fmt.Errorf("check: %w", err)
		}
		if w != nil {
			set.workloads = append(set.workloads, w)
		}
	}
	byRef := map[ObjectRef]*Document{}
	for _, d := range set.docs {
		byRef[d.Ref()] = d
	}
	var all []Finding
	for _, c := range e.checkers {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("check: %w", err)
		}
		fs, err := c.check(ctx, set)
		if err != nil {
			return nil, fmt.Errorf("check: %w", err)
		}
		all = append(all, fs...)
	}
	cache := map[string][]string{}
	for i := range all {
		f := &all[i]
		if d := byRef[f.Object]; d != nil {
			f.Source = chart.locate(d, f.Path, cache)
		}
		if f.Fix == "" {
			f.Fix = e.rules[f.Rule].Fix
		}
	}
	active, waived := applyWaivers(all, e.waivers, e.strict, e.opts.Now())
	sortFindings(active)
	sortFindings(waived)
	r := &Report{Findings: active, Waived: waived, Objects: len(docs), rules: e.rules}
	return r, nil
}

func (e *Engine) strict(rule string) bool { return e.rules[rule].Strict }
