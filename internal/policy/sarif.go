package policy

import (
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"strings"
)

const sarifSchema = "https://json.schemastore.org/sarif-2.1.0.json"

type sarifLog struct {
	Schema  string     `json:"$schema"`
	Version string     `json:"version"`
	Runs    []sarifRun `json:"runs"`
}

type sarifRun struct {
	Tool        sarifTool         `json:"tool"`
	Invocations []sarifInvocation `json:"invocations"`
	Results     []sarifResult     `json:"results"`
}

// sarifInvocation says whether the whole input was read; unreadable input
// and objects that were not checked are its notifications.
type sarifInvocation struct {
	ExecutionSuccessful bool                `json:"executionSuccessful"`
	Notifications       []sarifNotification `json:"toolExecutionNotifications,omitempty"`
}

type sarifNotification struct {
	Level      string          `json:"level"`
	Message    sarifText       `json:"message"`
	Locations  []sarifLocation `json:"locations,omitempty"`
	Descriptor *sarifDescRef   `json:"descriptor,omitempty"`
}

type sarifDescRef struct {
	ID string `json:"id"`
}

type sarifTool struct {
	Driver sarifDriver `json:"driver"`
}

type sarifDriver struct {
	Name           string      `json:"name"`
	InformationURI string      `json:"informationUri,omitempty"`
	Rules          []sarifRule `json:"rules"`
}

type sarifText struct {
	Text string `json:"text"`
}

type sarifRule struct {
	ID                   string         `json:"id"`
	ShortDescription     sarifText      `json:"shortDescription"`
	Help                 sarifText      `json:"help"`
	DefaultConfiguration sarifRuleLevel `json:"defaultConfiguration"`
}

type sarifRuleLevel struct {
	Level string `json:"level"`
}

type sarifResult struct {
	RuleID       string             `json:"ruleId"`
	RuleIndex    int                `json:"ruleIndex"`
	Level        string             `json:"level"`
	Message      sarifText          `json:"message"`
	Locations    []sarifLocation    `json:"locations,omitempty"`
	Suppressions []sarifSuppression `json:"suppressions,omitempty"`
	Properties   map[string]any     `json:"properties,omitempty"`
}

type sarifLocation struct {
	PhysicalLocation sarifPhysical `json:"physicalLocation"`
}

type sarifPhysical struct {
	ArtifactLocation sarifArtifact `json:"artifactLocation"`
	Region           *sarifRegion  `json:"region,omitempty"`
}

type sarifArtifact struct {
	URI string `json:"uri"`
}

type sarifRegion struct {
	StartLine int `json:"startLine"`
}

type sarifSuppression struct {
	Kind          string `json:"kind"`
	Status        string `json:"status"`
	Justification string `json:"justification"`
}

func sarifLevel(s Severity) string {
	switch {
	case s >= High:
		return "error"
	case s >= Medium:
		return "warning"
	default:
		return "note"
	}
}

// WriteSARIF writes the report as SARIF 2.1.0 (for code scanning UIs).
// Waived findings are included with an accepted external suppression.
func (r *Report) WriteSARIF(w io.Writer) error {
	rules := r.usedRules()
	index := map[string]int{}
	driver := sarifDriver{Name: "devctl", Rules: []sarifRule{}}
	for i, rule := range rules {
		index[rule.ID] = i
		title := rule.Title
		if title == "" {
			title = rule.ID
		}
		help := title
		if rule.Fix != "" {
			help = title + ". Fix: " + rule.Fix
		}
		driver.Rules = append(driver.Rules, sarifRule{ID: rule.ID, ShortDescription: sarifText{title}, Help: sarifText{help},
			DefaultConfiguration: sarifRuleLevel{sarifLevel(rule.Severity)}})
	}
	inv := sarifInvocation{ExecutionSuccessful: len(r.Errors) == 0}
	for _, e := range r.Errors {
		n := sarifNotification{Level: "error", Message: sarifText{e.Error()}, Descriptor: &sarifDescRef{ID: "unreadable-input"}}
		if l := sarifLoc(Source{File: e.File, Line: e.Line}); l != nil {
			n.Locations = []sarifLocation{*l}
		}
		inv.Notifications = append(inv.Notifications, n)
	}
	for _, u := range r.NotChecked {
		n := sarifNotification{Level: "note", Message: sarifText{fmt.Sprintf("%s (%s) not checked: %s", u.Object, u.Object.APIVersion, u.Reason)},
			Descriptor: &sarifDescRef{ID: "not-checked"}}
		if l := sarifLoc(u.Source); l != nil {
			n.Locations = []sarifLocation{*l}
		}
		inv.Notifications = append(inv.Notifications, n)
	}
	run := sarifRun{Tool: sarifTool{Driver: driver}, Invocations: []sarifInvocation{inv}, Results: []sarifResult{}}
	add := func(f Finding) {
		res := sarifResult{RuleID: f.Rule, RuleIndex: index[f.Rule], Level: sarifLevel(f.Severity),
			Message:    sarifText{fmt.Sprintf("%s: %s", f.Object, f.Message)},
			Properties: map[string]any{"severity": f.Severity.String(), "object": f.Object, "path": f.Path}}
		if f.Container != "" {
			res.Properties["container"] = f.Container
		}
		if f.Source.ValuesKey != "" {
			res.Properties["valuesKey"] = f.Source.ValuesKey
		}
		if l := sarifLoc(f.Source); l != nil {
			res.Locations = []sarifLocation{*l}
		}
		if f.Waiver != nil && (f.Waiver.Status == WaiverActive || f.Waiver.Status == WaiverExpiring) {
			res.Suppressions = []sarifSuppression{{Kind: "external", Status: "accepted",
				Justification: fmt.Sprintf("%s (approved by %s, ticket %s, expires %s)", f.Waiver.Reason, f.Waiver.Approver, f.Waiver.Ticket, f.Waiver.Expires.Format("2006-01-02"))}}
		}
		run.Results = append(run.Results, res)
	}
	for _, f := range r.Findings {
		add(f)
	}
	for _, f := range r.Waived {
		add(f)
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(sarifLog{Schema: sarifSchema, Version: "2.1.0", Runs: []sarifRun{run}}); err != nil {
		return fmt.Errorf("write sarif report: %w", err)
	}
	return nil
}

func sarifLoc(s Source) *sarifLocation {
	if s.File == "" {
		return nil
	}
	loc := &sarifLocation{PhysicalLocation: sarifPhysical{ArtifactLocation: sarifArtifact{URI: s.File}}}
	if s.Line > 0 {
		loc.PhysicalLocation.Region = &sarifRegion{StartLine: s.Line}
	}
	return loc
}

type junitSuites struct {
	XMLName  xml.Name     `xml:"testsuites"`
	Name     string       `xml:"name,attr"`
	Tests    int          `xml:"tests,attr"`
	Failures int          `xml:"failures,attr"`
	Errors   int          `xml:"errors,attr"`
	Skipped  int          `xml:"skipped,attr"`
	Suites   []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Name     string      `xml:"name,attr"`
	Tests    int         `xml:"tests,attr"`
	Failures int         `xml:"failures,attr"`
	Errors   int         `xml:"errors,attr"`
	Skipped  int         `xml:"skipped,attr"`
	Cases    []junitCase `xml:"testcase"`
}

type junitCase struct {
	Name      string        `xml:"name,attr"`
	Classname string        `xml:"classname,attr"`
	File      string        `xml:"file,attr,omitempty"`
	Line      int           `xml:"line,attr,omitempty"`
	Failure   *junitFailure `xml:"failure,omitempty"`
	Error     *junitFailure `xml:"error,omitempty"`
	Skipped   *junitSkipped `xml:"skipped,omitempty"`
}

type junitFailure struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr"`
	Text    string `xml:",chardata"`
}

type junitSkipped struct {
	Message string `xml:"message,attr"`
}

// WriteJUnit writes the report as JUnit XML: one testsuite per object,
// one failed testcase per finding, waived findings as skipped testcases.
func (r *Report) WriteJUnit(w io.Writer) error {
	out := junitSuites{Name: "devctl check"}
	suites := map[ObjectRef]*junitSuite{}
	var order []ObjectRef
	add := func(f Finding, waived bool) {
		s := suites[f.Object]
		if s == nil {
			s = &junitSuite{Name: f.Object.String()}
			suites[f.Object] = s
			order = append(order, f.Object)
		}
		c := junitCase{Name: f.Rule, Classname: f.Object.String(), File: f.Source.File, Line: f.Source.Line}
		if f.Container != "" {
			c.Name = fmt.Sprintf("%s[%s]", f.Rule, f.Container)
		}
		if waived {
			c.Skipped = &junitSkipped{Message: "waived: " + f.Waiver.Reason}
			s.Skipped++
			out.Skipped++
		} else {
			var text strings.Builder
			fmt.Fprintf(&text, "%s\nseverity: %s\n", f.Message, f.Severity)
			if f.Path != "" {
				fmt.Fprintf(&text, "field: %s\n", f.Path)
			}
			if src := f.Source.String(); src != "" {
				fmt.Fprintf(&text, "at: %s\n", src)
			}
			if f.Fix != "" {
				fmt.Fprintf(&text, "fix: %s\n", f.Fix)
			}
			c.Failure = &junitFailure{Message: f.Message, Type: f.Severity.String(), Text: text.String()}
			s.Failures++
			out.Failures++
		}
		s.Tests++
		out.Tests++
		s.Cases = append(s.Cases, c)
	}
	for _, f := range r.Findings {
		add(f, false)
	}
	for _, f := range r.Waived {
		add(f, true)
	}
	if len(r.Errors) > 0 {
		s := junitSuite{Name: "unreadable input"}
		for _, e := range r.Errors {
			s.Cases = append(s.Cases, junitCase{Name: "read", Classname: e.File, File: e.File, Line: e.Line,
				Error: &junitFailure{Message: e.Error(), Type: "unreadable-input", Text: e.Error() + "\n"}})
			s.Tests++
			s.Errors++
		}
		out.Tests += s.Tests
		out.Errors += s.Errors
		out.Suites = append(out.Suites, s)
	}
	for _, o := range order {
		out.Suites = append(out.Suites, *suites[o])
	}
	if len(r.NotChecked) > 0 {
		s := junitSuite{Name: "not checked"}
		for _, u := range r.NotChecked {
			s.Cases = append(s.Cases, junitCase{Name: "not-checked", Classname: u.Object.String(), File: u.Source.File, Line: u.Source.Line,
				Skipped: &junitSkipped{Message: u.Reason}})
			s.Tests++
			s.Skipped++
		}
		out.Tests += s.Tests
		out.Skipped += s.Skipped
		out.Suites = append(out.Suites, s)
	}
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return fmt.Errorf("write junit report: %w", err)
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(out); err != nil {
		return fmt.Errorf("write junit report: %w", err)
	}
	_, err := io.WriteString(w, "\n")
	return err
}
