package app

import (
	"encoding/json"
	"io"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/pflag"

	"github.com/devctl/devctl/internal/check"
)

func repoRoot(t *testing.T) string {
	t.Helper()
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Join(wd, "..", "..", "..")
}

func TestCheckExamplePasses(t *testing.T) {
	root := repoRoot(t)
	out, errOut, code := run(t, filepath.Join(root, "examples", "hello"), "check")
	if code != 0 {
		t.Fatalf("devctl check on examples/hello: exit %d\n%s\n%s", code, out, errOut)
	}
	if !strings.Contains(out, "0 findings") {
		t.Errorf("output: %s", out)
	}
}

func TestCheckReportsEveryRuleWithAFix(t *testing.T) {
	manifest := filepath.Join(repoRoot(t), "cmd", "devctl", "app", "testdata", "violations.yaml")
	out, _, code := run(t, t.TempDir(), "check", "--format", "json", manifest)
	if code != 1 {
		t.Fatalf("exit %d, want 1\n%s", code, out)
	}
	var rep struct {
		Findings []struct {
			Rule   string `json:"rule"`
			Fix    string `json:"fix"`
			Object struct {
				Kind string `json:"kind"`
				Name string `json:"name"`
			} `json:"object"`
			Source struct {
				File string `json:"file"`
				Line int    `json:"line"`
			} `json:"source"`
		} `json:"findings"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("json: %v\n%s", err, out)
	}
	seen := map[string]bool{}
	for _, f := range rep.Findings {
		seen[f.Rule] = true
		if f.Fix == "" {
			t.Errorf("finding %s on %s/%s has no fix hint", f.Rule, f.Object.Kind, f.Object.Name)
		}
		if f.Source.File != manifest || f.Source.Line == 0 {
			t.Errorf("finding %s has no file:line (%+v)", f.Rule, f.Source)
		}
	}
	for _, rule := range []string{
		"pss-privileged", "pss-host-namespaces", "pss-volumes", "pss-run-as-non-root", "pss-run-as-user",
		"pss-allow-privilege-escalation", "pss-capabilities", "pss-seccomp-profile",
		"read-only-root-filesystem", "resource-requests", "resource-limits", "readiness-probe", "liveness-probe",
		"image-tag", "required-labels", "pod-disruption-budget", "network-policy",
	} {
		if !seen[rule] {
			t.Errorf("rule %s not reported", rule)
		}
	}
	// The CronJob's pod is checked and the finding names the CronJob.
	cron := false
	for _, f := range rep.Findings {
		cron = cron || (f.Object.Kind == "CronJob" && f.Rule == "pss-privileged")
	}
	if !cron {
		t.Error("the CronJob's privileged pod template is not reported against the CronJob")
	}
}

func TestCheckFormats(t *testing.T) {
	root := repoRoot(t)
	manifest := filepath.Join(root, "cmd", "devctl", "app", "testdata", "violations.yaml")
	for format, want := range map[string]string{
		"sarif": `"version": "2.1.0"`,
		"junit": "<testsuite",
		"text":  "pss-privileged",
	} {
		out, _, code := run(t, t.TempDir(), "check", "--format", format, manifest)
		if code != 1 || !strings.Contains(out, want) {
			t.Errorf("--format %s: exit %d, output lacks %q:\n%.400s", format, code, want, out)
		}
	}
	// Below the threshold the check passes.
	if out, errOut, code := run(t, t.TempDir(), "check", "--fail-on", "critical", filepath.Join(root, "internal", "policy", "testdata", "rendered.yaml")); code != 0 {
		t.Errorf("compliant manifests with --fail-on critical: exit %d\n%s\n%s", code, out, errOut)
	}
}

// The lean front parses devctl check's command line with a flag set of its
// own: it must accept exactly the flags devctl-core's check does (and parse
// them alike), or a valid check would be handed to devctl-core for nothing
// and an invalid one run by the front.
func TestLeanFrontHasTheFlagsOfCheck(t *testing.T) {
	root := NewRootCommand(Streams{In: strings.NewReader(""), Out: io.Discard, ErrOut: io.Discard})
	cmd, _, err := root.Find([]string{"check"})
	if err != nil {
		t.Fatal(err)
	}
	type flag struct{ short, typ string }
	core := map[string]flag{}
	for _, fs := range []*pflag.FlagSet{cmd.LocalFlags(), cmd.InheritedFlags()} {
		fs.VisitAll(func(f *pflag.Flag) { core[f.Name] = flag{f.Shorthand, f.Value.Type()} })
	}
	delete(core, "help") // cobra's: the front hands --help to devctl-core
	front := map[string]flag{}
	check.Flags(&check.Options{}).VisitAll(func(f *pflag.Flag) { front[f.Name] = flag{f.Shorthand, f.Value.Type()} })
	if !maps.Equal(core, front) {
		t.Errorf("flags of devctl check:\ncore:  %v\nfront: %v", core, front)
	}
}
