package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"reflect"
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Error is one problem in devctl.yaml, located at File:Line:Col (Line and
// Col are zero when unknown). Field is the path of the field, such as
// "services[0].port" (for an unknown field, the path of the mapping holding
// it); it is empty for problems with the whole file.
type Error struct {
	File      string
	Line, Col int
	Field     string
	Msg       string
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
		if e.Col > 0 {
			fmt.Fprintf(&b, ":%d", e.Col)
		}
	}
	b.WriteString(": ")
	if e.Field != "" {
		b.WriteString(e.Field)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

type position struct{ line, col int }

// maxAliases bounds alias expansion so that a crafted file cannot make
// decoding exponential.
const maxAliases = 1000

var yamlLineErr = regexp.MustCompile(`(?s)^yaml: line (\d+): (.*)$`)

func (c *Config) decode(data []byte) error {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return &Error{File: c.file, Msg: "the file is empty; run `devctl init` to write one"}
		}
		return c.syntaxError(err)
	}
	var extra yaml.Node
	switch err := dec.Decode(&extra); {
	case err == nil:
		return &Error{File: c.file, Line: extra.Line, Col: extra.Column,
			Msg: "a second YAML document; " + FileName + " holds exactly one"}
	case !errors.Is(err, io.EOF):
		return c.syntaxError(err)
	}
	if len(doc.Content) == 0 {
		return &Error{File: c.file, Msg: "the file is empty; run `devctl init` to write one"}
	}
	d := &decoder{file: c.file, pos: c.pos, aliases: maxAliases, expanding: map[*yaml.Node]bool{}}
	d.decode(doc.Content[0], reflect.ValueOf(c).Elem(), "")
	return errors.Join(d.errs...)
}

func (c *Config) syntaxError(err error) error {
	if m := yamlLineErr.FindStringSubmatch(err.Error()); m != nil {
		line, _ := strconv.Atoi(m[1])
		return &Error{File: c.file, Line: line, Msg: m[2]}
	}
	return &Error{File: c.file, Msg: strings.TrimPrefix(err.Error(), "yaml: ")}
}

// decoder walks a yaml.Node tree into the Config structs, recording the
// position of every field and collecting every problem.
type decoder struct {
	file    string
	pos     map[string]position
	aliases int
	// expanding holds the values nodes being walked, to catch alias cycles.
	expanding map[*yaml.Node]bool
	errs      []error
}

func (d *decoder) errorf(n *yaml.Node, field, format string, args ...any) {
	d.errs = append(d.errs, &Error{File: d.file, Line: n.Line, Col: n.Column, Field: field, Msg: fmt.Sprintf(format, args...)})
}

// resolve follows aliases; it returns nil when the alias budget is spent.
func (d *decoder) resolve(n *yaml.Node, field string) *yaml.Node {
	for n.Kind == yaml.AliasNode {
		if d.aliases--; d.aliases < 0 {
			if d.aliases == -1 {
				d.errorf(n, field, "too many alias expansions (more than %d)", maxAliases)
			}
			return nil
		}
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

// describe names what a node holds, for "expected X, got Y" messages.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		kind := map[string]string{"!!str": "string", "!!int": "integer", "!!float": "number", "!!bool": "boolean",
			"!!timestamp": "timestamp", "!!binary": "binary"}[n.ShortTag()]
		if kind == "" {
			kind = n.ShortTag()
		}
		return fmt.Sprintf("%s %q", kind, n.Value)
	case yaml.DocumentNode, yaml.AliasNode:
	}
	return "an unexpected node"
}

func join(parent, key string) string {
	if parent == "" {
		return key
	}
	return parent + "." + key
}

func (d *decoder) decode(n *yaml.Node, v reflect.Value, field string) {
	if n = d.resolve(n, field); n == nil {
		return
	}
	d.pos[field] = position{n.Line, n.Column}
	if isNull(n) {
		return
	}
	switch v.Kind() {
	case reflect.Pointer:
		p := reflect.New(v.Type().Elem())
		d.decode(n, p.Elem(), field)
		v.Set(p)
	case reflect.Struct:
		d.decodeStruct(n, v, field)
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			d.errorf(n, field, "expected a list, got %s", describe(n))
			return
		}
		if len(n.Content) == 0 {
			return
		}
		s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
		for i, item := range n.Content {
			d.decode(item, s.Index(i), fmt.Sprintf("%s[%d]", field, i))
		}
		v.Set(s)
	case reflect.Map: // free-form values
		if n.Kind != yaml.MappingNode {
			d.errorf(n, field, "expected a mapping, got %s", describe(n))
			return
		}
		if m, _ := d.value(n, field).(map[string]any); len(m) > 0 {
			v.Set(reflect.ValueOf(m))
		}
	case reflect.String:
		if n.Kind != yaml.ScalarNode {
			d.errorf(n, field, "expected a string, got %s", describe(n))
			return
		}
		v.SetString(n.Value)
	case reflect.Bool:
		var b bool
		if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!bool" || n.Decode(&b) != nil {
			d.errorf(n, field, "expected true or false, got %s", describe(n))
			return
		}
		v.SetBool(b)
	case reflect.Int:
		var i int
		if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!int" || n.Decode(&i) != nil {
			d.errorf(n, field, "expected an integer, got %s", describe(n))
			return
		}
		v.SetInt(int64(i))
	default:
		panic(fmt.Sprintf("config: no decoder for %s", v.Type()))
	}
}

func (d *decoder) decodeStruct(n *yaml.Node, v reflect.Value, field string) {
	if n.Kind != yaml.MappingNode {
		d.errorf(n, field, "expected a mapping, got %s", describe(n))
		return
	}
	t := v.Type()
	index := map[string]int{}
	var names []string
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ",")
		if name != "" && name != "-" {
			index[name] = i
			names = append(names, name)
		}
	}
	seen := map[string]*yaml.Node{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			d.errorf(k, field, "expected a field name, got %s", describe(k))
			continue
		}
		if k.ShortTag() == "!!merge" {
			d.errorf(k, field, "YAML merge keys (<<) are not supported; write the fields out")
			continue
		}
		idx, ok := index[k.Value]
		if !ok {
			msg := fmt.Sprintf("unknown field %q", k.Value)
			if s := suggest(k.Value, names); s != "" {
				msg += fmt.Sprintf(" (did you mean %q?)", s)
			}
			d.errorf(k, field, "%s", msg)
			continue
		}
		if prev := seen[k.Value]; prev != nil {
			d.errorf(k, field, "duplicate field %q (first set at line %d)", k.Value, prev.Line)
			continue
		}
		seen[k.Value] = k
		d.decode(val, v.Field(idx), join(field, k.Value))
	}
}

// value converts free-form YAML into JSON-compatible Go values
// (map[string]any, []any, scalars) as Helm expects.
func (d *decoder) value(n *yaml.Node, field string) any {
	alias := n
	if n = d.resolve(n, field); n == nil {
		return nil
	}
	if d.expanding[n] {
		d.errorf(alias, field, "alias *%s refers to itself", alias.Value)
		return nil
	}
	d.expanding[n] = true
	defer delete(d.expanding, n)
	switch n.Kind {
	case yaml.MappingNode:
		m := make(map[string]any, len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, val := n.Content[i], n.Content[i+1]
			if k.Kind != yaml.ScalarNode || k.ShortTag() == "!!merge" {
				d.errorf(k, field, "expected a plain key, got %s", describe(k))
				continue
			}
			if _, dup := m[k.Value]; dup {
				d.errorf(k, field, "duplicate key %q", k.Value)
				continue
			}
			d.pos[join(field, k.Value)] = position{k.Line, k.Column}
			m[k.Value] = d.value(val, join(field, k.Value))
		}
		return m
	case yaml.SequenceNode:
		s := make([]any, len(n.Content))
		for i, item := range n.Content {
			s[i] = d.value(item, fmt.Sprintf("%s[%d]", field, i))
		}
		return s
	case yaml.ScalarNode:
		var x any
		if err := n.Decode(&x); err != nil {
			d.errorf(n, field, "cannot read %s: %v", describe(n), err)
		}
		return x
	case yaml.DocumentNode, yaml.AliasNode:
	}
	d.errorf(n, field, "unexpected YAML node")
	return nil
}

// suggest returns the candidate closest to s when it is a plausible typo.
func suggest(s string, candidates []string) string {
	best, bestDist := "", 3
	for _, c := range candidates {
		if dist := editDistance(strings.ToLower(s), strings.ToLower(c)); dist < bestDist && 2*dist < len(s) {
			best, bestDist = c, dist
		}
	}
	return best
}

// editDistance is the optimal string alignment distance: insertions,
// deletions, substitutions and adjacent transpositions cost 1.
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	d := make([][]int, len(ra)+1)
	for i := range d {
		d[i] = make([]int, len(rb)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(ra); i++ {
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(ra)][len(rb)]
}
