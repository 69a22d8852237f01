package policy

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// ErrInvalidManifest is returned when a document cannot be read as a
// Kubernetes object.
var ErrInvalidManifest = errors.New("invalid manifest")

// Document is one object of a (multi-document) manifest stream.
type Document struct {
	// File is the name the stream was parsed under (a file path or "-").
	File string
	// Template is the path from Helm's "# Source:" comment, if any
	// (for example web/templates/deployment.yaml).
	Template string
	// Line is the 1-based line in File where the document starts.
	Line int
	// Object is the decoded object.
	Object *unstructured.Unstructured

	node *yaml.Node // the document's root mapping; line numbers are in File
}

// Ref returns the object's reference.
func (d *Document) Ref() ObjectRef {
	return ObjectRef{
		APIVersion: d.Object.GetAPIVersion(),
		Kind:       d.Object.GetKind(),
		Namespace:  d.Object.GetNamespace(),
		Name:       d.Object.GetName(),
	}
}

// ParseManifests splits a multi-document YAML stream (as `helm template`
// prints it) into documents, keeping each document's "# Source:" comment
// and line numbers. Empty documents and Lists are handled; a document
// without apiVersion or kind is an error.
func ParseManifests(name string, data []byte) ([]Document, error) {
	var docs []Document
	for _, c := range splitDocuments(data) {
		var root yaml.Node
		if err := yaml.Unmarshal(c.text, &root); err != nil {
			return nil, fmt.Errorf("parse %s:%d: %w: %w", name, c.line, ErrInvalidManifest, err)
		}
		if len(root.Content) == 0 {
			continue // empty document (only comments)
		}
		n := root.Content[0]
		shiftLines(n, c.line-1)
		if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
			continue
		}
		if n.Kind != yaml.MappingNode {
			return nil, fmt.Errorf("parse %s:%d: %w: a document must be a mapping", name, n.Line, ErrInvalidManifest)
		}
		var raw any
		if err := n.Decode(&raw); err != nil {
			return nil, fmt.Errorf("parse %s:%d: %w: %w", name, n.Line, ErrInvalidManifest, err)
		}
		m, _ := normalize(raw).(map[string]any)
		obj := &unstructured.Unstructured{Object: m}
		if obj.GetAPIVersion() == "" || obj.GetKind() == "" {
			return nil, fmt.Errorf("parse %s:%d: %w: apiVersion and kind are required", name, n.Line, ErrInvalidManifest)
		}
		if obj.IsList() {
			items := mapValue(n, "items")
			list, err := obj.ToList()
			if err != nil {
				return nil, fmt.Errorf("parse %s:%d: %w: %w", name, n.Line, ErrInvalidManifest, err)
			}
			for i := range list.Items {
				d := Document{File: name, Template: c.source, Line: n.Line, Object: &list.Items[i]}
				if items != nil && i < len(items.Content) {
					d.node = items.Content[i]
					d.Line = d.node.Line
				}
				docs = append(docs, d)
			}
			continue
		}
		docs = append(docs, Document{File: name, Template: c.source, Line: c.line, Object: obj, node: n})
	}
	return docs, nil
}

type chunk struct {
	text   []byte
	line   int // first line of text in the stream
	source string
}

// splitDocuments cuts the stream at "---" lines. Splitting by hand (rather
// than with a streaming decoder) keeps Helm's "# Source:" comment with its
// document.
func splitDocuments(data []byte) []chunk {
	var out []chunk
	cur := chunk{line: 1}
	var buf bytes.Buffer
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64*1024), 16*1024*1024)
	lineNo := 0
	flush := func(next int) {
		cur.text = bytes.Clone(buf.Bytes())
		out = append(out, cur)
		buf.Reset()
		cur = chunk{line: next}
	}
	for sc.Scan() {
		lineNo++
		l := sc.Text()
		if l == "---" || strings.HasPrefix(l, "--- ") || strings.HasPrefix(l, "---\t") {
			flush(lineNo + 1)
			continue
		}
		if s, ok := strings.CutPrefix(l, "# Source: "); ok && cur.source == "" {
			cur.source = strings.TrimSpace(s)
		}
		buf.WriteString(l)
		buf.WriteByte('\n')
	}
	flush(lineNo + 1)
	return out
}

func shiftLines(n *yaml.Node, by int) {
	n.Line += by
	for _, c := range n.Content {
		shiftLines(c, by)
	}
}

// normalize turns yaml.v3's decoded values into the JSON-compatible
// types unstructured objects use (int64, float64, map[string]any).
func normalize(v any) any {
	switch t := v.(type) {
	case map[string]any:
		for k, e := range t {
			t[k] = normalize(e)
		}
		return t
	case map[any]any:
		m := make(map[string]any, len(t))
		for k, e := range t {
			m[fmt.Sprint(k)] = normalize(e)
		}
		return m
	case []any:
		for i, e := range t {
			t[i] = normalize(e)
		}
		return t
	case int:
		return int64(t)
	case uint64:
		return int64(t)
	default:
		return v
	}
}

func mapValue(n *yaml.Node, key string) *yaml.Node {
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	return nil
}

// lineOf returns the line of the deepest node on path that exists in the
// document (the field itself, or its nearest enclosing block) and whether
// the full path was found.
func (d *Document) lineOf(path string) (int, bool) {
	if d.node == nil {
		return d.Line, false
	}
	line := d.node.Line
	n := d.node
	for _, seg := range splitPath(path) {
		var next, key *yaml.Node
		if seg.index >= 0 {
			if n.Kind == yaml.SequenceNode && seg.index < len(n.Content) {
				next = n.Content[seg.index]
			}
		} else if n.Kind == yaml.MappingNode {
			for i := 0; i+1 < len(n.Content); i += 2 {
				if n.Content[i].Value == seg.key {
					key, next = n.Content[i], n.Content[i+1]
					break
				}
			}
		}
		if next == nil {
			return line, false
		}
		if key != nil {
			line = key.Line
		} else {
			line = next.Line
		}
		n = next
	}
	return line, true
}

type pathSeg struct {
	key   string
	index int // -1 for a map key
}

// splitPath splits "a.b[0].c" into a, b, [0], c.
func splitPath(p string) []pathSeg {
	var out []pathSeg
	for _, part := range strings.Split(p, ".") {
		if part == "" {
			continue
		}
		name, rest, _ := strings.Cut(part, "[")
		if name != "" {
			out = append(out, pathSeg{key: name, index: -1})
		}
		for rest != "" {
			idx, after, ok := strings.Cut(rest, "]")
			if !ok {
				break
			}
			if i, err := strconv.Atoi(idx); err == nil {
				out = append(out, pathSeg{index: i})
			}
			_, rest, _ = strings.Cut(after, "[")
		}
	}
	return out
}

// ReadManifests reads all of r and parses it with ParseManifests.
func ReadManifests(name string, r io.Reader) ([]Document, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("read manifests %q: %w", name, err)
	}
	return ParseManifests(name, data)
}
