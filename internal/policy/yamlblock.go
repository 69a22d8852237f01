package policy

import (
	"strings"

	"go.yaml.in/yaml/v3"
)

// Most manifests (helm template, kubectl, kustomize output) are block YAML:
// nested mappings and sequences, one plain or quoted scalar per line.
// readBlockYAML reads that form directly into values and a line table, a
// single pass over the text with no token or node objects, several times
// faster than building yaml.v3's node tree and converting it. It gives up
// (ok false) on anything else — flow collections that span lines, block
// scalars, anchors, aliases, tags, multi-line scalars, tabs, CR line
// breaks, non-ASCII text, duplicate keys, a root that is not a mapping,
// anything unusual in the indentation — and the document is then read by
// yaml.v3. What it accepts it reads exactly as the yaml.v3 path does (same
// values, same lines); TestReadBlockYAMLMatchesYAMLv3 and FuzzReadBlockYAML
// hold it to that.

// blockLine is one line of a document with content (blank lines and
// comment lines are left out).
type blockLine struct {
	indent int
	text   string // after the indentation
	line   int32  // 1-based in the document
}

type blockReader struct {
	lines []blockLine
	next  int // index of the first line not read yet
	table *lineTable
	depth int
}

// maxBlockDepth bounds the nesting the block reader follows (yaml.v3's
// own limit is far higher; deeper documents go to yaml.v3).
const maxBlockDepth = 200

// readBlockYAML reads one document (a mapping). ok is false when the
// document is not in the block subset, or has no content.
func readBlockYAML(text string) (v any, table *lineTable, ok bool) {
	lines, ok := blockLines(text)
	if !ok || len(lines) == 0 {
		return nil, nil, false
	}
	r := &blockReader{lines: lines, table: &lineTable{entries: make([]lineEntry, 0, len(lines)+len(lines)/4)}}
	root := lines[0]
	if root.indent != 0 || isSeqEntry(root.text) {
		return nil, nil, false // a sequence or an indented root: yaml.v3
	}
	v, ok = r.mapping(root.indent, -1, -1, "", root.line)
	if !ok || r.next != len(r.lines) {
		return nil, nil, false
	}
	return v, r.table, true
}

// blockLines splits text into its content lines, refusing bytes the block
// reader leaves to yaml.v3: control characters (tabs, CR), non-ASCII and
// directive or document-marker lines.
func blockLines(text string) ([]blockLine, bool) {
	out := make([]blockLine, 0, 64)
	lineNo := int32(0)
	for off := 0; off < len(text); {
		lineNo++
		end := strings.IndexByte(text[off:], '\n')
		next := len(text)
		if end < 0 {
			end = len(text)
		} else {
			end += off
			next = end + 1
		}
		l := text[off:end]
		off = next
		indent := 0
		for indent < len(l) && l[indent] == ' ' {
			indent++
		}
		for i := indent; i < len(l); i++ {
			if c := l[i]; c < 0x20 || c >= 0x7f {
				return nil, false
			}
		}
		body := l[indent:]
		if body == "" || body[0] == '#' {
			continue
		}
		if indent == 0 && (body[0] == '%' || strings.HasPrefix(body, "---") || strings.HasPrefix(body, "...")) {
			return nil, false
		}
		out = append(out, blockLine{indent: indent, text: body, line: lineNo})
	}
	return out, true
}

// isSeqEntry reports whether a line's text starts a sequence entry.
func isSeqEntry(s string) bool { return s[0] == '-' && (len(s) == 1 || s[1] == ' ') }

// add appends the line table entry of a value and returns its index.
func (r *blockReader) add(parent, index int32, key string, line int32) int32 {
	at := int32(len(r.table.entries))
	r.table.entries = append(r.table.entries, lineEntry{parent: parent, index: index, line: line, key: key})
	return at
}

func (r *blockReader) end(at int32) { r.table.entries[at].end = int32(len(r.table.entries)) }

// mapping reads the block mapping whose keys are at indent, starting at
// r.next; its table entry has the given parent, index, key and line.
func (r *blockReader) mapping(indent int, parent, index int32, key string, line int32) (map[string]any, bool) {
	if r.depth++; r.depth > maxBlockDepth {
		return nil, false
	}
	defer func() { r.depth-- }()
	at := r.add(parent, index, key, line)
	out := make(map[string]any, 8)
	for r.next < len(r.lines) {
		l := r.lines[r.next]
		if l.indent < indent {
			break
		}
		if l.indent > indent || isSeqEntry(l.text) {
			return nil, false
		}
		k, rest, ok := splitKey(l.text)
		if !ok {
			return nil, false
		}
		if _, dup := out[k]; dup {
			return nil, false // yaml.v3's path says where the first one is
		}
		r.next++
		var v any
		if rest == "" {
			v, ok = r.nested(indent, at, -1, k, l.line)
		} else {
			v, ok = r.inline(rest, indent, at, -1, k, l.line)
		}
		if !ok {
			return nil, false
		}
		out[k] = v
	}
	r.end(at)
	return out, true
}

// sequence reads the block sequence whose dashes are at indent.
func (r *blockReader) sequence(indent int, parent, index int32, key string, line int32) ([]any, bool) {
	if r.depth++; r.depth > maxBlockDepth {
		return nil, false
	}
	defer func() { r.depth-- }()
	at := r.add(parent, index, key, line)
	out := make([]any, 0, 4)
	for r.next < len(r.lines) {
		l := r.lines[r.next]
		if l.indent < indent || (l.indent == indent && !isSeqEntry(l.text)) {
			break // the enclosing mapping's next key, or its end
		}
		if l.indent > indent {
			return nil, false
		}
		i := int32(len(out))
		rest := strings.TrimLeft(l.text[1:], " ")
		var (
			v  any
			ok bool
		)
		switch {
		case rest == "" || rest[0] == '#':
			// The item is the block on the next lines; an empty item
			// (null) goes to yaml.v3.
			r.next++
			if r.next >= len(r.lines) || r.lines[r.next].indent <= indent || isSeqEntry(r.lines[r.next].text) {
				return nil, false
			}
			v, ok = r.mapping(r.lines[r.next].indent, at, i, "", r.lines[r.next].line)
		case isSeqEntry(rest):
			return nil, false // "- - x"
		default:
			col := l.indent + len(l.text) - len(rest)
			if _, _, isKey := splitKey(rest); isKey {
				// "- name: x": a mapping whose keys are at the column of
				// its first key.
				r.lines[r.next] = blockLine{indent: col, text: rest, line: l.line}
				v, ok = r.mapping(col, at, i, "", l.line)
			} else {
				r.next++
				v, ok = r.inline(rest, indent, at, i, "", l.line)
			}
		}
		if !ok {
			return nil, false
		}
		out = append(out, v)
	}
	r.end(at)
	return out, true
}

// nested reads the value of "key:" with nothing after it: the block on
// the next lines, or null. A mapping's value may be a sequence whose
// dashes are at the mapping's own indentation.
func (r *blockReader) nested(indent int, parent, index int32, key string, line int32) (any, bool) {
	if r.next < len(r.lines) {
		n := r.lines[r.next]
		switch {
		case n.indent > indent && isSeqEntry(n.text):
			return r.sequence(n.indent, parent, index, key, line)
		case n.indent == indent && isSeqEntry(n.text):
			return r.sequence(n.indent, parent, index, key, line)
		case n.indent > indent && (n.text[0] == '{' || n.text[0] == '['):
			// A flow collection on its own line, as Helm's toYaml
			// prints an empty one ("resources:\n  {}").
			r.next++
			v, rest, ok := r.flow(n.text, parent, index, key, line, n.line)
			if !ok || !blankOrComment(rest) || (r.next < len(r.lines) && r.lines[r.next].indent > indent) {
				return nil, false
			}
			return v, true
		case n.indent > indent:
			return r.mapping(n.indent, parent, index, key, line)
		}
	}
	at := r.add(parent, index, key, line)
	r.end(at)
	return nil, true
}

// inline reads a scalar or a one-line flow collection that follows a key
// or a dash on its line; the next line must not be more indented (a
// continuation).
func (r *blockReader) inline(s string, indent int, parent, index int32, key string, line int32) (any, bool) {
	if r.next < len(r.lines) && r.lines[r.next].indent > indent {
		return nil, false
	}
	if s[0] == '{' || s[0] == '[' {
		v, rest, ok := r.flow(s, parent, index, key, line, line)
		return v, ok && blankOrComment(rest)
	}
	at := r.add(parent, index, key, line)
	r.end(at)
	if s[0] == '"' || s[0] == '\'' {
		v, rest, ok := quoted(s)
		return v, ok && blankOrComment(rest)
	}
	v, ok := plain(s)
	if !ok {
		return nil, false
	}
	return resolvePlain(v, line)
}

// resolvePlain resolves a plain scalar as the yaml.v3 path does.
func resolvePlain(v string, line int32) (any, bool) {
	n := yaml.Node{Kind: yaml.ScalarNode, Value: v, Line: int(line)}
	val, err := scalarValue(&n)
	if err != nil {
		return nil, false // yaml.v3's path reports it
	}
	return val, true
}

// flow reads a flow collection that closes on its line ([a, "b"],
// {k: v, k2: [x]}), and returns the text after it. line is the line of
// its table entry (its key's), at the line it is on.
func (r *blockReader) flow(s string, parent, index int32, key string, line, at int32) (v any, rest string, ok bool) {
	if r.depth++; r.depth > maxBlockDepth {
		return nil, "", false
	}
	defer func() { r.depth-- }()
	self := r.add(parent, index, key, line)
	open, end := s[0], closing(s[0])
	s = strings.TrimLeft(s[1:], " ")
	var (
		seq []any
		m   map[string]any
	)
	if open == '[' {
		seq = make([]any, 0, 4)
	} else {
		m = make(map[string]any, 4)
	}
	for n := int32(0); ; n++ {
		if s == "" {
			return nil, "", false
		}
		if s[0] == end {
			if n > 0 {
				return nil, "", false // a trailing comma
			}
			break
		}
		if open == '[' {
			var item any
			if item, s, ok = r.flowItem(s, self, n, "", at); !ok {
				return nil, "", false
			}
			seq = append(seq, item)
		} else {
			var k string
			if s[0] == '"' || s[0] == '\'' {
				if k, s, ok = quoted(s); !ok {
					return nil, "", false
				}
			} else {
				i := strings.IndexAny(s, flowStops)
				if i <= 0 || strings.IndexByte(indicators, s[0]) >= 0 || s[i-1] == ' ' {
					return nil, "", false
				}
				k, s = s[:i], s[i:]
			}
			if len(s) < 2 || s[0] != ':' || s[1] != ' ' || k == "<<" {
				return nil, "", false
			}
			if _, dup := m[k]; dup {
				return nil, "", false
			}
			var val any
			if val, s, ok = r.flowItem(strings.TrimLeft(s[1:], " "), self, -1, k, at); !ok {
				return nil, "", false
			}
			m[k] = val
		}
		s = strings.TrimLeft(s, " ")
		switch {
		case s != "" && s[0] == ',':
			s = strings.TrimLeft(s[1:], " ")
			if s != "" && s[0] == end {
				return nil, "", false // a trailing comma
			}
			continue
		case s != "" && s[0] == end:
		default:
			return nil, "", false
		}
		break
	}
	r.end(self)
	if open == '[' {
		return seq, s[1:], true
	}
	return m, s[1:], true
}

// flowStops end a plain scalar in a flow collection; ':' and '#' inside
// one are left to yaml.v3.
const flowStops = ",[]{}:#"

// flowItem reads a value inside a flow collection.
func (r *blockReader) flowItem(s string, parent, index int32, key string, line int32) (v any, rest string, ok bool) {
	if s == "" {
		return nil, "", false
	}
	switch s[0] {
	case '{', '[':
		return r.flow(s, parent, index, key, line, line)
	case '"', '\'':
		at := r.add(parent, index, key, line)
		r.end(at)
		return quoted(s)
	}
	if strings.IndexByte(indicators, s[0]) >= 0 && (s[0] != '-' || len(s) < 2 || s[1] == ' ') {
		return nil, "", false
	}
	i := strings.IndexAny(s, flowStops)
	if i < 0 || s[i] == ':' || s[i] == '#' {
		return nil, "", false
	}
	text := strings.TrimRight(s[:i], " ")
	if text == "" {
		return nil, "", false
	}
	at := r.add(parent, index, key, line)
	r.end(at)
	val, ok := resolvePlain(text, line)
	return val, s[i:], ok
}

func closing(c byte) byte {
	if c == '{' {
		return '}'
	}
	return ']'
}

// blankOrComment reports whether s is spaces, then nothing or a comment.
func blankOrComment(s string) bool {
	t := strings.TrimLeft(s, " ")
	return t == "" || (t[0] == '#' && len(t) < len(s))
}

// indicators may not start a plain scalar in the block subset.
const indicators = "-?:,[]{}#&*!|>'\"%@`"

// plain returns a plain scalar's value (comment and trailing spaces cut).
// A scalar holding ": " or ending in ":" is a mapping the reader did not
// expect: left to yaml.v3.
func plain(s string) (string, bool) {
	if strings.IndexByte(indicators, s[0]) >= 0 {
		// "-1", "-x": a dash followed by text is a scalar.
		if s[0] != '-' || len(s) < 2 || s[1] == ' ' {
			return "", false
		}
	}
	end := len(s)
	for i := 1; i < len(s); i++ {
		if s[i] == '#' && s[i-1] == ' ' {
			end = i
			break
		}
		if s[i] == ':' && (i+1 == len(s) || s[i+1] == ' ') {
			return "", false
		}
	}
	v := strings.TrimRight(s[:end], " ")
	return v, v != ""
}

// splitKey splits "key: rest" (rest "" when the value is on the next
// lines) and reports whether s is a mapping entry of the subset.
func splitKey(s string) (key, rest string, ok bool) {
	var after string
	switch s[0] {
	case '"', '\'':
		k, r, ok := quoted(s)
		if !ok || r == "" || r[0] != ':' || len(s)-len(r) > 1000 {
			return "", "", false
		}
		key, after = k, r[1:]
	default:
		if strings.IndexByte(indicators, s[0]) >= 0 {
			return "", "", false
		}
		colon := -1
		for i := 1; i < len(s); i++ {
			if s[i] == '#' && s[i-1] == ' ' {
				return "", "", false
			}
			if s[i] == ':' && (i+1 == len(s) || s[i+1] == ' ') {
				colon = i
				break
			}
		}
		// A key longer than 1024 characters is an error in YAML; "<<" is
		// a merge key.
		if colon < 0 || s[colon-1] == ' ' || colon > 1000 || s[:colon] == "<<" {
			return "", "", false
		}
		key, after = s[:colon], s[colon+1:]
	}
	if after != "" && after[0] != ' ' {
		return "", "", false
	}
	rest = strings.TrimLeft(after, " ")
	if rest != "" && rest[0] == '#' {
		rest = ""
	}
	return key, rest, true
}

// quoted reads a single- or double-quoted scalar that closes on its line,
// and returns it and the text after the closing quote. Double-quoted
// escapes other than \\ \" \n and \t are left to yaml.v3.
func quoted(s string) (v, rest string, ok bool) {
	q := s[0]
	var b strings.Builder
	plainRun := true // no escape seen yet: v is a slice of s
	start := 1
	for i := 1; i < len(s); i++ {
		c := s[i]
		switch {
		case c == q && q == '\'' && i+1 < len(s) && s[i+1] == '\'':
			if plainRun {
				b.WriteString(s[start:i])
				plainRun = false
			}
			b.WriteByte('\'')
			i++
		case c == q:
			if plainRun {
				return s[start:i], s[i+1:], true
			}
			return b.String(), s[i+1:], true
		case c == '\\' && q == '"':
			if i+1 >= len(s) {
				return "", "", false
			}
			var e byte
			switch s[i+1] {
			case '\\', '"':
				e = s[i+1]
			case 'n':
				e = '\n'
			case 't':
				e = '\t'
			default:
				return "", "", false
			}
			if plainRun {
				b.WriteString(s[start:i])
				plainRun = false
			}
			b.WriteByte(e)
			i++
		default:
			if !plainRun {
				b.WriteByte(c)
			}
		}
	}
	return "", "", false
}
