package policy

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
)

// Report is the result of a check.
type Report struct {
	// Findings count towards Failed, including those whose waiver expired
	// or was rejected (see Finding.Waiver).
	Findings []Finding `json:"findings"`
	// Waived findings are reported, never dropped.
	Waived []Finding `json:"waived"`
	// Objects is how many objects were checked.
	Objects int `json:"objects"`
	// NotChecked are objects the built-in rules do not know: custom
	// resources that run no pods, kinds at versions the API server does
	// not serve. Organisation rules still saw them.
	NotChecked []Unchecked `json:"notChecked"`
	// Errors is input that could not be read; it was not checked, so a
	// report with errors is incomplete. Callers add the errors of reading
	// (ParseManifests) with AddErrors.
	Errors ManifestErrors `json:"errors"`

	rules map[string]Rule
}

// NewReport returns an empty report, for input that could not be read
// at all (the report then carries only Errors).
func NewReport() *Report { return &Report{rules: map[string]Rule{}} }

// AddErrors adds the errors of reading the input (ParseManifests'
// ManifestErrors; any other error becomes one entry).
func (r *Report) AddErrors(err error) {
	if err == nil {
		return
	}
	if es := AsManifestErrors(err); es != nil {
		r.Errors = append(r.Errors, es...)
		return
	}
	r.Errors = append(r.Errors, &ManifestError{Message: err.Error(), Err: err})
}

// Err returns the input errors (a ManifestErrors), or nil when the whole
// input was read.
func (r *Report) Err() error {
	if len(r.Errors) == 0 {
		return nil
	}
	return r.Errors
}

// Empty reports whether the input held no object at all.
func (r *Report) Empty() bool {
	return r.Objects == 0 && len(r.NotChecked) == 0 && len(r.Errors) == 0
}

// Failed reports whether a finding at or above threshold remains.
func (r *Report) Failed(threshold Severity) bool {
	for _, f := range r.Findings {
		if f.Severity >= threshold {
			return true
		}
	}
	return false
}

// Rule returns the description of a rule the report refers to.
func (r *Report) Rule(id string) Rule {
	if rule, ok := r.rules[id]; ok {
		return rule
	}
	return Rule{ID: id}
}

// usedRules lists the rules of all findings, sorted by id.
func (r *Report) usedRules() []Rule {
	seen := map[string]bool{}
	var out []Rule
	for _, f := range slices.Concat(r.Findings, r.Waived) {
		if !seen[f.Rule] {
			seen[f.Rule] = true
			out = append(out, r.Rule(f.Rule))
		}
	}
	slices.SortFunc(out, func(a, b Rule) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// WriteJSON writes the report as indented JSON.
func (r *Report) WriteJSON(w io.Writer) error {
	out := struct {
		*Report
		Summary map[string]int `json:"summary"`
	}{r, r.summary()}
	if out.Findings == nil {
		out.Findings = []Finding{}
	}
	if out.Waived == nil {
		out.Waived = []Finding{}
	}
	if out.NotChecked == nil {
		out.NotChecked = []Unchecked{}
	}
	if out.Errors == nil {
		out.Errors = ManifestErrors{}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(out); err != nil {
		return fmt.Errorf("write json report: %w", err)
	}
	return nil
}

func (r *Report) summary() map[string]int {
	m := map[string]int{"objects": r.Objects, "findings": len(r.Findings), "waived": len(r.Waived),
		"notChecked": len(r.NotChecked), "errors": len(r.Errors)}
	for _, f := range r.Findings {
		m[f.Severity.String()]++
	}
	return m
}

// WriteText writes a human report grouped by object, with fix hints and
// source locations.
func (r *Report) WriteText(w io.Writer) error {
	var b strings.Builder
	writeGroup := func(fs []Finding, waived bool) {
		var last ObjectRef
		for i, f := range fs {
			if i == 0 || f.Object != last {
				last = f.Object
				fmt.Fprintf(&b, "\n%s\n", f.Object)
			}
			fmt.Fprintf(&b, "  %-8s %s: %s\n", strings.ToUpper(f.Severity.String()), f.Rule, f.Message)
			if f.Path != "" {
				fmt.Fprintf(&b, "           field: %s\n", f.Path)
			}
			if s := f.Source.String(); s != "" {
				fmt.Fprintf(&b, "           at:    %s\n", s)
			}
			if f.Fix != "" && !waived {
				fmt.Fprintf(&b, "           fix:   %s\n", f.Fix)
			}
			if f.Waiver != nil {
				if waived {
					fmt.Fprintf(&b, "           waived until %s by %s: %s", f.Waiver.Expires.Format("2006-01-02"), f.Waiver.Approver, f.Waiver.Reason)
					if f.Waiver.Ticket != "" {
						fmt.Fprintf(&b, " (%s)", f.Waiver.Ticket)
					}
					b.WriteString("\n")
				}
				if f.Waiver.Note != "" {
					fmt.Fprintf(&b, "           note:  %s\n", f.Waiver.Note)
				}
			}
		}
	}
	if len(r.Errors) > 0 {
		fmt.Fprintf(&b, "\nCould not read (%d); these were not checked:\n", len(r.Errors))
		for _, e := range r.Errors {
			fmt.Fprintf(&b, "  ERROR    %s\n", e)
		}
	}
	writeGroup(r.Findings, false)
	if len(r.Waived) > 0 {
		fmt.Fprintf(&b, "\nWaived (%d):\n", len(r.Waived))
		writeGroup(r.Waived, true)
	}
	if len(r.NotChecked) > 0 {
		fmt.Fprintf(&b, "\nNot checked (%d): kinds the built-in rules do not know, with no pod template:\n", len(r.NotChecked))
		for _, u := range r.NotChecked {
			fmt.Fprintf(&b, "  %s (%s)", u.Object, u.Object.APIVersion)
			if s := u.Source.String(); s != "" {
				fmt.Fprintf(&b, " at %s", s)
			}
			fmt.Fprintf(&b, ": %s\n", u.Reason)
		}
	}
	s := r.summary()
	if r.Empty() {
		b.WriteString("\nno Kubernetes objects in the input: nothing was checked\n")
	} else {
		fmt.Fprintf(&b, "\n%s checked", plural(r.Objects, "object"))
		if len(r.NotChecked) > 0 {
			fmt.Fprintf(&b, ", %d not checked", len(r.NotChecked))
		}
		if len(r.Errors) > 0 {
			fmt.Fprintf(&b, ", %d unreadable", len(r.Errors))
		}
		fmt.Fprintf(&b, ": %s (critical %d, high %d, medium %d, low %d, info %d), %d waived\n",
			plural(len(r.Findings), "finding"), s["critical"], s["high"], s["medium"], s["low"], s["info"], len(r.Waived))
	}
	_, err := io.WriteString(w, strings.TrimPrefix(b.String(), "\n"))
	if err != nil {
		return fmt.Errorf("write text report: %w", err)
	}
	return nil
}

// plural returns "1 object", "2 objects".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
