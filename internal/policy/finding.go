package policy

import (
	"cmp"
	"fmt"
	"slices"
)

// ObjectRef names a Kubernetes object.
type ObjectRef struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Namespace  string `json:"namespace,omitempty"`
	Name       string `json:"name"`
}

func (o ObjectRef) String() string {
	if o.Namespace == "" {
		return fmt.Sprintf("%s/%s", o.Kind, o.Name)
	}
	return fmt.Sprintf("%s/%s/%s", o.Kind, o.Namespace, o.Name)
}

// Source is where a finding comes from: the chart template (or manifest
// file) and line that sets the field, and the values key used there.
type Source struct {
	// File is the chart template (for example charts/web/templates/deployment.yaml)
	// or, for plain manifests, the manifest file.
	File string `json:"file,omitempty"`
	// Line is 1-based; 0 means unknown.
	Line int `json:"line,omitempty"`
	// ValuesKey is the values.yaml key referenced on that line
	// (for example securityContext.readOnlyRootFilesystem), if any.
	ValuesKey string `json:"valuesKey,omitempty"`
}

func (s Source) String() string {
	if s.File == "" {
		return ""
	}
	out := s.File
	if s.Line > 0 {
		out = fmt.Sprintf("%s:%d", s.File, s.Line)
	}
	if s.ValuesKey != "" {
		out += " (.Values." + s.ValuesKey + ")"
	}
	return out
}

// Finding is one rule violation on one object.
type Finding struct {
	Rule      string    `json:"rule"`
	Severity  Severity  `json:"severity"`
	Object    ObjectRef `json:"object"`
	Container string    `json:"container,omitempty"`
	// Path is the field path in the object, for example
	// spec.template.spec.containers[0].securityContext.readOnlyRootFilesystem.
	Path    string     `json:"path,omitempty"`
	Source  Source     `json:"source"`
	Message string     `json:"message"`
	Fix     string     `json:"fix,omitempty"`
	Waiver  *WaiverRef `json:"waiver,omitempty"`

	doc *Document // the document the finding is on, when the checker knows it
}

// Document returns the object the finding is on as the checker read it,
// or nil when the checker does not know it.
func (f Finding) Document() *Document { return f.doc }

// sortFindings orders findings by object, then severity (highest first),
// rule and field. The order is total (findings that compare equal are
// identical), so an unstable sort, which moves these large structs far
// less, is deterministic.
func sortFindings(fs []Finding) {
	slices.SortFunc(fs, func(a, b Finding) int {
		return cmp.Or(
			cmp.Compare(a.Object.Namespace, b.Object.Namespace),
			cmp.Compare(a.Object.Kind, b.Object.Kind),
			cmp.Compare(a.Object.Name, b.Object.Name),
			cmp.Compare(b.Severity, a.Severity),
			cmp.Compare(a.Rule, b.Rule),
			cmp.Compare(a.Path, b.Path),
			cmp.Compare(a.Container, b.Container),
			cmp.Compare(a.Message, b.Message),
			cmp.Compare(a.Object.APIVersion, b.Object.APIVersion),
			cmp.Compare(a.Source.File, b.Source.File),
			cmp.Compare(a.Source.Line, b.Source.Line),
		)
	})
}
