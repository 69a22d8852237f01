//go:build !devctl_lean

package policy

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
)

// regoChecker runs conftest-style Rego: every package's deny, violation
// and warn rules (sets of messages, or of objects with a msg field) with
// one object as input. Rule ids are <package>.<rule>, for example
// main.deny.
type regoChecker struct {
	queries []regoQuery
}

type regoQuery struct {
	pkg string
	pq  rego.PreparedEvalQuery
}

func newRegoChecker(ctx context.Context, files map[string]string) (*regoChecker, []Rule, error) {
	pkgs := map[string]bool{}
	var opts []func(*rego.Rego)
	for name, src := range files {
		m, err := ast.ParseModuleWithOpts(name, src, ast.ParserOptions{RegoVersion: ast.RegoV1})
		if err != nil {
			// conftest still accepts v0 syntax (deny[msg] { ... })
			m, err = ast.ParseModuleWithOpts(name, src, ast.ParserOptions{RegoVersion: ast.RegoV0})
			if err != nil {
				return nil, nil, fmt.Errorf("parse %s: %w: %w", name, ErrInvalidRego, err)
			}
			opts = append(opts, rego.ParsedModule(m))
		} else {
			opts = append(opts, rego.ParsedModule(m))
		}
		pkgs[strings.TrimPrefix(m.Package.Path.String(), "data.")] = true
	}
	names := make([]string, 0, len(pkgs))
	for p := range pkgs {
		names = append(names, p)
	}
	sort.Strings(names)
	c := &regoChecker{}
	var rules []Rule
	for _, pkg := range names {
		q := append([]func(*rego.Rego){rego.Query("data." + pkg)}, opts...)
		pq, err := rego.New(q...).PrepareForEval(ctx)
		if err != nil {
			return nil, nil, fmt.Errorf("compile package %s: %w: %w", pkg, ErrInvalidRego, err)
		}
		c.queries = append(c.queries, regoQuery{pkg: pkg, pq: pq})
		for _, k := range regoKinds {
			rules = append(rules, Rule{ID: pkg + "." + k.name, Severity: k.sev, Title: fmt.Sprintf("Rego %s rules of package %s", k.name, pkg)})
		}
	}
	return c, rules, nil
}

var regoKinds = []struct {
	name string
	sev  Severity
}{{"deny", High}, {"violation", High}, {"warn", Medium}}

func (c *regoChecker) check(ctx context.Context, s *objectSet) ([]Finding, error) {
	var out []Finding
	for _, d := range s.docs {
		for _, q := range c.queries {
			rs, err := q.pq.Eval(ctx, rego.EvalInput(d.Object.Object))
			if err != nil {
				return nil, fmt.Errorf("evaluate rego package %s on %s: %w", q.pkg, d.Ref(), err)
			}
			if len(rs) == 0 || len(rs[0].Expressions) == 0 {
				continue
			}
			doc, _ := rs[0].Expressions[0].Value.(map[string]any)
			for _, k := range regoKinds {
				for _, msg := range regoMessages(doc[k.name]) {
					out = append(out, Finding{Rule: q.pkg + "." + k.name, Severity: k.sev, Object: d.Ref(), Message: msg, doc: d})
				}
			}
		}
	}
	return out, nil
}

// regoMessages reads a conftest result set: strings, or objects with msg.
func regoMessages(v any) []string {
	items, _ := v.([]any)
	var out []string
	for _, it := range items {
		switch t := it.(type) {
		case string:
			out = append(out, t)
		case map[string]any:
			if m, ok := t["msg"].(string); ok {
				out = append(out, m)
			}
		}
	}
	sort.Strings(out)
	return out
}
