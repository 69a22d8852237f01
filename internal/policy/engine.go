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
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"time"

	"k8s.io/apimachinery/pkg/runtime"
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

// AdmissionPolicies are the admission policies of the engine's rules that
// CEL can express, bound to namespace, with the engine's waivers in force
// now excluded (see AdmissionPoliciesWaived).
func (e *Engine) AdmissionPolicies(namespace string) ([]runtime.Object, error) {
	return AdmissionPoliciesWaived(namespace, e.waivers, e.opts.Now())
}

// Rules returns the rules the engine knows (built-in and loaded).
func (e *Engine) Rules() map[string]Rule { return maps.Clone(e.rules) }

// Check evaluates the documents. chart is optional: with it, findings on
// Helm-rendered documents point at the template line that sets the field.
//
// Documents that do not fit their kind's schema (a field of the wrong
// type) are not checked and are listed in Report.Errors; objects of kinds
// the built-in rules do not know and that run no pods are listed in
// Report.NotChecked. The error is for the check itself failing (a
// cancelled ctx, a Rego evaluation error), not for the input.
func (e *Engine) Check(ctx context.Context, docs []Document, chart *ChartSource) (*Report, error) {
	reg := builtinKinds()
	preps := make([]prepared, len(docs))
	parallel(len(docs), func(i int) { preps[i] = prepare(&docs[i], reg) })

	set := &objectSet{namespace: e.opts.Namespace}
	r := &Report{rules: e.rules}
	cache := newSourceCache()
	var all []Finding
	for i := range preps {
		p, d := &preps[i], &docs[i]
		for _, pr := range p.problems {
			src := cache.locate(chart, d, pr.path)
			r.Errors = append(r.Errors, &ManifestError{File: src.File, Line: src.Line, Path: pr.path, Message: pr.msg})
		}
		if !p.readable {
			continue // its type errors come first; the rest once it can be read
		}
		all = append(all, p.findings...)
		set.docs = append(set.docs, d)
		set.typed = append(set.typed, p.typed)
		if p.workload != nil {
			set.workloads = append(set.workloads, p.workload)
		}
		if p.unchecked != "" {
			r.NotChecked = append(r.NotChecked, Unchecked{Object: p.ref, Source: cache.locate(chart, d, ""), Reason: p.unchecked})
		} else {
			r.Objects++
		}
	}
	set.buildIndex()

	results := make([][]Finding, len(e.checkers))
	errs := make([]error, len(e.checkers))
	parallel(len(e.checkers), func(i int) {
		if err := ctx.Err(); err != nil {
			errs[i] = err
			return
		}
		results[i], errs[i] = e.checkers[i].check(ctx, set)
	})
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("check: %w", err)
	}
	for _, fs := range results {
		all = append(all, fs...)
	}

	byRef := make(map[ObjectRef]*Document, len(set.docs))
	for _, d := range set.docs {
		byRef[d.Ref()] = d
	}
	parallel(len(all), func(i int) {
		f := &all[i]
		d := f.doc
		if d == nil {
			d = byRef[f.Object]
		}
		if d != nil {
			f.Source = cache.locate(chart, d, f.Path)
		}
		if f.Fix == "" {
			f.Fix = e.rules[f.Rule].Fix
		}
	})
	r.Findings, r.Waived = applyWaivers(all, e.waivers, e.strict, e.opts.Now())
	sortFindings(r.Findings)
	sortFindings(r.Waived)
	return r, nil
}

func (e *Engine) strict(rule string) bool { return e.rules[rule].Strict }
