package policy

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

// FuzzParseManifests feeds arbitrary streams to the manifest splitter and
// parser: it never panics, every error is a ManifestErrors with lines
// inside the stream, and the splitter's documents are the stream's bytes
// in order, none lost or duplicated.
func FuzzParseManifests(f *testing.F) {
	for _, s := range []string{
		"",
		"---\n# Source: hello/templates/deployment.yaml\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n",
		"apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: ConfigMap\n  metadata: {name: a}\n",
		`{"apiVersion":"v1","kind":"Service","metadata":{"name":"a"}}{"apiVersion":"v1","kind":"Service","metadata":{"name":"b"}}`,
		"--- {\"kind\": \"Pod\"}\n--- !!map\n...\n---\n",
		"a: [\n---\nkind: Pod\r\nmetadata: {name: x}\r\n",
		"\xef\xbb\xbfkind: Pod\n",
		"\xff\xfe\x00k",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		docs, err := ParseManifests("in.yaml", data)
		if err != nil {
			var me ManifestErrors
			if !errors.As(err, &me) || len(me) == 0 {
				t.Fatalf("error %v (%T) is not a ManifestErrors", err, err)
			}
			// The YAML parser reports an error at the end of the stream
			// (an unclosed "[") on the line after the last. It counts
			// line breaks as YAML defines them: \n, \r\n and a lone \r.
			lines := yamlLines(data) + 2
			for _, e := range me {
				if e.Line < 0 || e.Line > lines {
					t.Fatalf("error at line %d of a %d-line stream: %v", e.Line, lines, e)
				}
			}
		}
		_ = docs
		var prevEnd, prevLine int
		for _, c := range splitDocuments(data) {
			if c.line < prevLine {
				t.Fatalf("documents out of order: line %d after %d", c.line, prevLine)
			}
			prevLine = c.line
			if len(c.text) == 0 {
				continue
			}
			i := bytes.Index(data[prevEnd:], c.text)
			if i < 0 {
				t.Fatalf("document %q is not in the stream after offset %d", c.text, prevEnd)
			}
			prevEnd += i + len(c.text)
		}
	})
}

// FuzzParseWaivers: arbitrary waiver files never panic, and whatever is
// accepted has every required field.
func FuzzParseWaivers(f *testing.F) {
	for _, s := range []string{
		"",
		"waivers:\n- rule: read-only-root-filesystem\n  target: {kind: Deployment, name: web, container: app}\n  reason: r\n  ticket: PLAT-42\n  approver: a@example.com\n  expires: 2026-12-31\n",
		"waivers: [{rule: x}]\n",
		"waivers:\n- rule: x\n  reason: y\n  approver: z\n  expires: not-a-date\n",
		"unknown: 1\n",
		"waivers: &a [*a]\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		ws, err := ParseWaivers("waivers.yaml", data)
		if err != nil {
			return
		}
		for _, w := range ws {
			if strings.TrimSpace(w.Rule) == "" || strings.TrimSpace(w.Reason) == "" || strings.TrimSpace(w.Approver) == "" || strings.TrimSpace(w.Expires) == "" {
				t.Fatalf("accepted an incomplete waiver %+v from %q", w, data)
			}
		}
	})
}

// yamlLines counts the line breaks of data as YAML does: "\r\n" is one, and
// a lone "\r" (old Mac files) is one too.
func yamlLines(data []byte) int {
	return bytes.Count(data, []byte("\n")) + bytes.Count(data, []byte("\r")) - bytes.Count(data, []byte("\r\n"))
}
