package policy

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/joshdk/go-junit"
)

var testNow = time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)

func badReport(t *testing.T, waivers string) *Report {
	t.Helper()
	ws, err := ParseWaivers("waivers.yaml", []byte(waivers))
	if err != nil {
		t.Fatal(err)
	}
	e := newTestEngine(t, Options{Waivers: ws, AllowedRegistries: []string{"ghcr.io/acme"}, Now: func() time.Time { return testNow }})
	docs := golden(t, func(d map[string]any) []Document {
		container(d)["securityContext"].(map[string]any)["readOnlyRootFilesystem"] = false
		delete(container(d), "livenessProbe")
		delete(container(d), "readinessProbe")
		return nil
	})
	r, err := e.Check(context.Background(), docs, nil)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestWaivers(t *testing.T) {
	t.Parallel()
	const waivers = `waivers:
- rule: read-only-root-filesystem
  target: {kind: Deployment, name: web, container: app}
  reason: writes to /var/cache until PLAT-42
  ticket: PLAT-42
  approver: alice
  expires: 2027-06-30
- rule: liveness-probe
  target: {kind: Deployment, name: web}
  reason: soon
  approver: bob
  expires: 2026-11-30
- rule: readiness-probe
  target: {name: web}
  reason: old
  approver: carol
  expires: 2026-11-01
- rule: allowed-registries
  target: {name: web}
  reason: strict rules cannot be waived
  approver: dave
  expires: 2027-01-01
`
	r := badReport(t, waivers)
	status := map[string]WaiverStatus{}
	for _, f := range r.Waived {
		status[f.Rule] = f.Waiver.Status
	}
	active := map[string]*WaiverRef{}
	for _, f := range r.Findings {
		active[f.Rule] = f.Waiver
	}
	if status[RuleReadOnlyRootFilesystem] != WaiverActive {
		t.Errorf("read-only-root-filesystem not waived: %v", status)
	}
	if status[RuleLivenessProbe] != WaiverExpiring {
		t.Errorf("waiver expiring in 7 days: status %v, want expiring", status[RuleLivenessProbe])
	}
	if w := active[RuleReadinessProbe]; w == nil || w.Status != WaiverExpired || !strings.Contains(w.Note, "expired on 2026-11-01") {
		t.Errorf("expired waiver must stop waiving and say so: %+v", w)
	}
	if w := active[RuleAllowedRegistries]; w == nil || w.Status != WaiverRejected {
		t.Errorf("strict rule waiver must be rejected: %+v", w)
	}
	if !r.Failed(High) {
		t.Error("report with a rejected waiver on a high finding did not fail at high")
	}
	var text bytes.Buffer
	if err := r.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Waived (2):", "waived until 2027-06-30 by alice", "expires on 2026-11-30 (in 7 days)", "waiver rejected", "waiver expired on 2026-11-01"} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("text report lacks %q:\n%s", want, text.String())
		}
	}
}

func TestParseWaiversRejectsIncomplete(t *testing.T) {
	t.Parallel()
	for _, in := range []string{
		"waivers:\n- rule: x\n  reason: r\n  expires: 2027-01-01\n",                        // no approver
		"waivers:\n- rule: x\n  reason: r\n  approver: a\n  expires: someday\n",            // bad date
		"waivers:\n- rule: x\n  reason: r\n  approver: a\n  expires: 2027-01-01\n  y: 1\n", // unknown field
	} {
		if _, err := ParseWaivers("w.yaml", []byte(in)); err == nil {
			t.Errorf("accepted %q", in)
		}
	}
}

func TestFailedThreshold(t *testing.T) {
	t.Parallel()
	r := &Report{Findings: []Finding{{Rule: "a", Severity: Medium}}}
	for sev, want := range map[Severity]bool{Low: true, Medium: true, High: false, Critical: false} {
		if got := r.Failed(sev); got != want {
			t.Errorf("Failed(%v) = %v, want %v", sev, got, want)
		}
	}
}

func TestWriteJSONSARIFJUnit(t *testing.T) {
	t.Parallel()
	r := badReport(t, "waivers:\n- rule: liveness-probe\n  reason: r\n  approver: a\n  expires: 2027-01-01\n")
	var js bytes.Buffer
	if err := r.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	var decoded struct {
		Findings []Finding      `json:"findings"`
		Waived   []Finding      `json:"waived"`
		Summary  map[string]int `json:"summary"`
	}
	if err := json.Unmarshal(js.Bytes(), &decoded); err != nil {
		t.Fatal(err)
	}
	if len(decoded.Findings) != len(r.Findings) || len(decoded.Waived) != 1 || decoded.Findings[0].Severity != r.Findings[0].Severity {
		t.Errorf("json round trip lost data: %s", js.String())
	}

	var sb bytes.Buffer
	if err := r.WriteSARIF(&sb); err != nil {
		t.Fatal(err)
	}
	var sarif sarifLog
	if err := json.Unmarshal(sb.Bytes(), &sarif); err != nil {
		t.Fatal(err)
	}
	run := sarif.Runs[0]
	if sarif.Version != "2.1.0" || len(run.Results) != len(r.Findings)+len(r.Waived) {
		t.Fatalf("sarif: version %s, %d results", sarif.Version, len(run.Results))
	}
	for _, res := range run.Results {
		if run.Tool.Driver.Rules[res.RuleIndex].ID != res.RuleID || run.Tool.Driver.Rules[res.RuleIndex].Help.Text == "" {
			t.Errorf("result %s: ruleIndex %d does not name its rule with help", res.RuleID, res.RuleIndex)
		}
		if len(res.Locations) != 1 || res.Locations[0].PhysicalLocation.ArtifactLocation.URI != "web/templates/deployment.yaml" {
			t.Errorf("result %s: locations %+v", res.RuleID, res.Locations)
		}
		if res.RuleID == RuleLivenessProbe && len(res.Suppressions) != 1 {
			t.Errorf("waived result not suppressed: %+v", res)
		}
	}

	var jb bytes.Buffer
	if err := r.WriteJUnit(&jb); err != nil {
		t.Fatal(err)
	}
	suites, err := junit.Ingest(jb.Bytes())
	if err != nil {
		t.Fatalf("junit: %v\n%s", err, jb.String())
	}
	var failed, skipped int
	for _, s := range suites {
		for _, tc := range s.Tests {
			switch tc.Status {
			case junit.StatusFailed:
				failed++
				if tc.Message == "" || tc.Classname != s.Name {
					t.Errorf("failed testcase %s lacks message or class: %+v", tc.Name, tc)
				}
			case junit.StatusSkipped:
				skipped++
			case junit.StatusPassed, junit.StatusError:
				t.Errorf("testcase %s has status %s, want failed or skipped", tc.Name, tc.Status)
			}
		}
	}
	if failed != len(r.Findings) || skipped != len(r.Waived) || len(suites) != 1 || suites[0].Name != "Deployment/web" {
		t.Errorf("junit: %d suites, %d failed, %d skipped; want 1 suite, %d failed, %d skipped:\n%s", len(suites), failed, skipped, len(r.Findings), len(r.Waived), jb.String())
	}
}

// incompleteReport has a finding, an unreadable document and an object
// that was not checked.
func incompleteReport(t *testing.T) *Report {
	t.Helper()
	docs, err := ParseManifests("in.yaml", []byte(`apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  template:
    spec:
      containers: [{name: c, image: "nginx:1.27", ports: [{containerPort: "80"}]}]
---
apiVersion: monitoring.coreos.com/v1
kind: ServiceMonitor
metadata: {name: web}
---
apiVersion: v1
kind: Pod
metadata: {name: p}
spec:
  containers: [{name: c, image: "nginx:latest"}]
---
kind: [broken
`))
	e := newTestEngine(t, Options{})
	r, cerr := e.Check(context.Background(), docs, nil)
	if cerr != nil {
		t.Fatal(cerr)
	}
	r.AddErrors(err)
	return r
}

func errorOnlyReport() *Report {
	r := NewReport()
	r.AddErrors(errors.New("load rules \"policies\": no such file or directory"))
	return r
}

func TestReportsDescribeUnreadableInput(t *testing.T) {
	t.Parallel()
	r := incompleteReport(t)
	if len(r.Errors) != 2 || len(r.NotChecked) != 1 || r.Objects != 1 || r.Err() == nil {
		t.Fatalf("errors %v, not checked %+v, objects %d", r.Errors, r.NotChecked, r.Objects)
	}
	if e := r.Errors[0].Error(); e != "in.yaml:7: spec.template.spec.containers[0].ports[0].containerPort: expected integer, got string" {
		t.Errorf("first error = %q", e)
	}

	var text bytes.Buffer
	if err := r.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Could not read (2)", "in.yaml:7: spec.template.spec.containers[0].ports[0].containerPort: expected integer, got string",
		"Not checked (1)", "ServiceMonitor/web (monitoring.coreos.com/v1) at in.yaml:9", "1 object checked, 1 not checked, 2 unreadable"} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("text report lacks %q:\n%s", want, text.String())
		}
	}

	var js bytes.Buffer
	if err := r.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	var decoded struct {
		Errors     []ManifestError `json:"errors"`
		NotChecked []Unchecked     `json:"notChecked"`
		Summary    map[string]int  `json:"summary"`
	}
	if err := json.Unmarshal(js.Bytes(), &decoded); err != nil {
		t.Fatal(err)
	}
	if len(decoded.Errors) != 2 || decoded.Errors[0].Line != 7 || decoded.Errors[0].Path == "" || len(decoded.NotChecked) != 1 ||
		decoded.Summary["errors"] != 2 || decoded.Summary["notChecked"] != 1 {
		t.Errorf("json report: %s", js.String())
	}

	var sb bytes.Buffer
	if err := r.WriteSARIF(&sb); err != nil {
		t.Fatal(err)
	}
	var sarif sarifLog
	if err := json.Unmarshal(sb.Bytes(), &sarif); err != nil {
		t.Fatal(err)
	}
	inv := sarif.Runs[0].Invocations[0]
	if inv.ExecutionSuccessful || len(inv.Notifications) != 3 || inv.Notifications[0].Level != "error" ||
		inv.Notifications[0].Locations[0].PhysicalLocation.Region.StartLine != 7 {
		t.Errorf("sarif invocation: %+v", inv)
	}

	var jb bytes.Buffer
	if err := r.WriteJUnit(&jb); err != nil {
		t.Fatal(err)
	}
	suites, err := junit.Ingest(jb.Bytes())
	if err != nil {
		t.Fatalf("junit: %v\n%s", err, jb.String())
	}
	var errored, skipped int
	for _, s := range suites {
		for _, tc := range s.Tests {
			switch tc.Status {
			case junit.StatusError:
				errored++
			case junit.StatusSkipped:
				skipped++
			case junit.StatusPassed, junit.StatusFailed:
			}
		}
	}
	if errored != 2 || skipped != 1 {
		t.Errorf("junit: %d errors, %d skipped; want 2 and 1:\n%s", errored, skipped, jb.String())
	}
}
