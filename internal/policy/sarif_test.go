package policy

import (
	"bytes"
	"os"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// TestSARIFValidatesAgainstSchema validates the SARIF output against the
// official SARIF 2.1.0 JSON schema (OASIS, testdata/sarif-schema-2.1.0.json).
func TestSARIFValidatesAgainstSchema(t *testing.T) {
	t.Parallel()
	f, err := os.Open("testdata/sarif-schema-2.1.0.json")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = f.Close() }()
	doc, err := jsonschema.UnmarshalJSON(f)
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	if err := c.AddResource("sarif-schema-2.1.0.json", doc); err != nil {
		t.Fatal(err)
	}
	schema, err := c.Compile("sarif-schema-2.1.0.json")
	if err != nil {
		t.Fatal(err)
	}
	for name, r := range map[string]*Report{
		"findings and waivers": badReport(t, "waivers:\n- rule: liveness-probe\n  reason: r\n  ticket: T-1\n  approver: a\n  expires: 2027-01-01\n"),
		"empty":                {},
		"unreadable input":     incompleteReport(t),
		"only an error":        errorOnlyReport(),
	} {
		var b bytes.Buffer
		if err := r.WriteSARIF(&b); err != nil {
			t.Fatal(err)
		}
		v, err := jsonschema.UnmarshalJSON(&b)
		if err != nil {
			t.Fatal(err)
		}
		if err := schema.Validate(v); err != nil {
			t.Errorf("%s: SARIF output does not validate: %v", name, err)
		}
	}
	// the validator is not vacuous
	if err := schema.Validate(map[string]any{"version": "2.0", "runs": []any{}}); err == nil {
		t.Error("schema accepted version 2.0")
	}
}
