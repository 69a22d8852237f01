package policy

import (
	"encoding/base64"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// A document's YAML node tree is turned into the JSON-like values of an
// unstructured object (map[string]any, []any, string, int64, float64,
// bool, nil) in one walk, which also records the line of every field in a
// compact table. The node tree is then dropped: it takes several times
// the memory of the object, and findings only need the lines.

// lineTable holds the line of every value of a document, in pre-order.
type lineTable struct {
	shift   int // lines before the document in its file
	entries []lineEntry
}

type lineEntry struct {
	parent int32  // index of the enclosing value; -1 for the root
	end    int32  // index after the last entry of this value's subtree
	index  int32  // position in a sequence; -1 for a mapping value
	line   int32  // of the key for a mapping value, of the value otherwise
	key    string // for a mapping value
}

// lineRef is a value of a lineTable: a document, or an item of a List.
type lineRef struct {
	table *lineTable
	at    int32
}

// line returns the file line of the entry.
func (r lineRef) line() int { return int(r.table.entries[r.at].line) + r.table.shift }

// child returns the entry a path segment leads to, if any. It visits the
// direct children only (each subtree is skipped whole).
func (r lineRef) child(seg pathSeg) (lineRef, bool) {
	es := r.table.entries
	for i := r.at + 1; i < es[r.at].end; i = es[i].end {
		e := &es[i]
		if (seg.index >= 0 && int(e.index) == seg.index) || (seg.index < 0 && e.index < 0 && e.key == seg.key) {
			return lineRef{r.table, i}, true
		}
	}
	return lineRef{}, false
}

// children returns the direct children in order (the items of a sequence).
func (r lineRef) children() []lineRef {
	es := r.table.entries
	var out []lineRef
	for i := r.at + 1; i < es[r.at].end; i = es[i].end {
		out = append(out, lineRef{r.table, i})
	}
	return out
}

// errAliasBudget stops documents whose aliases expand without bound.
var errAliasBudget = errors.New("the document expands to too many values through aliases")

// yamlConverter turns one document's node tree into values.
type yamlConverter struct {
	table  *lineTable
	budget int // values left before errAliasBudget
}

// nodeError is a conversion error at a node.
type nodeError struct {
	line int
	msg  string
}

func (e *nodeError) Error() string { return fmt.Sprintf("line %d: %s", e.line, e.msg) }

func (c *yamlConverter) value(n *yaml.Node, parent, index int32, key string, keyLine int) (any, error) {
	c.budget--
	if c.budget < 0 {
		return nil, errAliasBudget
	}
	at := int32(len(c.table.entries))
	line := n.Line
	if keyLine > 0 {
		line = keyLine
	}
	c.table.entries = append(c.table.entries, lineEntry{parent: parent, index: index, line: int32(line), key: key})
	if n.Kind != yaml.AliasNode {
		defer func() { c.table.entries[at].end = int32(len(c.table.entries)) }()
	}
	switch n.Kind {
	case yaml.AliasNode:
		if n.Alias == nil {
			return nil, &nodeError{n.Line, "unknown alias"}
		}
		// The anchor's value; the field stays on the alias' line.
		c.table.entries = c.table.entries[:at]
		return c.value(n.Alias, parent, index, key, line)
	case yaml.SequenceNode:
		out := make([]any, len(n.Content))
		for i, item := range n.Content {
			v, err := c.value(item, at, int32(i), "", 0)
			if err != nil {
				return nil, err
			}
			out[i] = v
		}
		return out, nil
	case yaml.MappingNode:
		return c.mapping(n, at)
	case yaml.ScalarNode:
		return scalarValue(n)
	case yaml.DocumentNode:
	}
	return nil, &nodeError{n.Line, "unexpected YAML node"}
}

func (c *yamlConverter) mapping(n *yaml.Node, at int32) (map[string]any, error) {
	out := make(map[string]any, len(n.Content)/2)
	// Merge keys (<<: *defaults) first: the mapping's own keys win.
	var explicit map[string]bool
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := n.Content[i]
		if k.Kind != yaml.ScalarNode || k.Value != "<<" || k.Style != 0 || (k.Tag != "" && k.Tag != "!!merge") {
			continue
		}
		if err := c.merge(out, n.Content[i+1], at); err != nil {
			return nil, err
		}
		if explicit == nil {
			explicit = map[string]bool{}
		}
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind == yaml.ScalarNode && k.Value == "<<" && k.Style == 0 && (k.Tag == "" || k.Tag == "!!merge") {
			continue
		}
		key, err := keyString(k)
		if err != nil {
			return nil, err
		}
		if explicit != nil {
			if explicit[key] {
				return nil, &nodeError{k.Line, fmt.Sprintf("mapping key %q already defined", key)}
			}
			explicit[key] = true
		} else if _, dup := out[key]; dup {
			return nil, &nodeError{k.Line, fmt.Sprintf("mapping key %q already defined", key)}
		}
		val, err := c.value(v, at, -1, key, k.Line)
		if err != nil {
			return nil, err
		}
		out[key] = val
	}
	return out, nil
}

// merge adds the entries of a merged mapping (or of each mapping of a
// sequence, earlier ones winning) that out does not have.
func (c *yamlConverter) merge(out map[string]any, n *yaml.Node, at int32) error {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	var srcs []*yaml.Node
	switch n.Kind {
	case yaml.MappingNode:
		srcs = []*yaml.Node{n}
	case yaml.SequenceNode:
		srcs = n.Content
	default:
		return &nodeError{n.Line, "a merge key (<<) needs a mapping or a list of mappings"}
	}
	for _, s := range srcs {
		for s.Kind == yaml.AliasNode && s.Alias != nil {
			s = s.Alias
		}
		if s.Kind != yaml.MappingNode {
			return &nodeError{s.Line, "a merge key (<<) needs a mapping or a list of mappings"}
		}
		m, err := c.mapping(s, at)
		if err != nil {
			return err
		}
		for k, v := range m {
			if _, ok := out[k]; !ok {
				out[k] = v
			}
		}
	}
	return nil
}

// keyString returns a mapping key as the string JSON (and so the API
// server) sees: 80 → "80", true → "true".
func keyString(k *yaml.Node) (string, error) {
	for k.Kind == yaml.AliasNode && k.Alias != nil {
		k = k.Alias
	}
	if k.Kind != yaml.ScalarNode {
		return "", &nodeError{k.Line, "a mapping key must be a string, not a " + map[yaml.Kind]string{yaml.MappingNode: "mapping", yaml.SequenceNode: "sequence"}[k.Kind]}
	}
	return k.Value, nil
}

// scalarValue resolves a scalar as YAML 1.2 does (yaml.v3's rules), except
// timestamps, which stay strings as they do through kubectl's YAML to
// JSON conversion.
func scalarValue(n *yaml.Node) (any, error) {
	v := n.Value
	tag := n.Tag
	if n.Style&(yaml.SingleQuotedStyle|yaml.DoubleQuotedStyle|yaml.LiteralStyle|yaml.FoldedStyle) != 0 && (tag == "" || tag == "!") {
		return v, nil
	}
	if tag == "" || tag == "!" {
		if v == "" {
			return nil, nil
		}
		switch c := v[0]; {
		case c == '~' || c == 'n' || c == 'N':
			if v == "~" || v == "null" || v == "Null" || v == "NULL" {
				return nil, nil
			}
			return v, nil
		case c == 't' || c == 'T' || c == 'f' || c == 'F':
			switch v {
			case "true", "True", "TRUE":
				return true, nil
			case "false", "False", "FALSE":
				return false, nil
			}
			return v, nil
		case (c >= '0' && c <= '9') || c == '-' || c == '+' || c == '.':
			tag = n.ShortTag()
		default:
			return v, nil
		}
	}
	switch tag {
	case "!!null", "tag:yaml.org,2002:null":
		return nil, nil
	case "!!bool", "tag:yaml.org,2002:bool":
		b, err := strconv.ParseBool(strings.ToLower(v))
		if err != nil {
			return nil, &nodeError{n.Line, fmt.Sprintf("%q is not a boolean", v)}
		}
		return b, nil
	case "!!int", "tag:yaml.org,2002:int":
		if i, err := strconv.ParseInt(v, 0, 64); err == nil {
			return i, nil
		}
		if u, err := strconv.ParseUint(strings.TrimPrefix(v, "+"), 0, 64); err == nil {
			return float64(u), nil
		}
		if strings.HasPrefix(v, "0b") || strings.HasPrefix(v, "-0b") {
			break
		}
		return nil, &nodeError{n.Line, fmt.Sprintf("%q is not an integer", v)}
	case "!!float", "tag:yaml.org,2002:float":
		switch strings.ToLower(strings.TrimPrefix(v, "+")) {
		case ".inf":
			return math.Inf(1), nil
		case "-.inf":
			return math.Inf(-1), nil
		case ".nan":
			return math.NaN(), nil
		}
		f, err := strconv.ParseFloat(strings.ReplaceAll(v, "_", ""), 64)
		if err != nil {
			return nil, &nodeError{n.Line, fmt.Sprintf("%q is not a number", v)}
		}
		return f, nil
	case "!!binary", "tag:yaml.org,2002:binary":
		b, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(v), ""))
		if err != nil {
			return nil, &nodeError{n.Line, "!!binary value is not base64"}
		}
		return string(b), nil
	}
	// Strings, timestamps, and tags of other schemas (!Ref): the text.
	return v, nil
}
