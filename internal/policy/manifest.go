package policy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// ErrInvalidManifest is wrapped by every error about input that cannot be
// read as Kubernetes objects.
var ErrInvalidManifest = errors.New("invalid manifest")

// ErrHelmTemplate is wrapped by a ManifestError for a file that is a Helm
// template, not rendered YAML.
var ErrHelmTemplate = errors.New("unrendered Helm template")

// Document is one object of a (multi-document) manifest stream.
type Document struct {
	// File is the name the stream was parsed under (a file path or "-").
	File string
	// Template is the path from Helm's "# Source:" comment, if any
	// (for example web/templates/deployment.yaml).
	Template string
	// Line is the 1-based line in File where the object starts.
	Line int
	// Object is the decoded object.
	Object *unstructured.Unstructured
	// Chart is the chart the document was rendered from, when it is not
	// the one given to Engine.Check (several charts checked together).
	Chart *ChartSource

	lines *lineRef // the line of each field; nil: only Line is known
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

// ManifestError is input devctl could not read as a Kubernetes object: a
// YAML or JSON syntax error, a document that is not an object, a field of
// the wrong type, an unrendered template. Line is 1-based in File (the
// whole file, not the document); Path names the field when one is at fault.
type ManifestError struct {
	File    string `json:"file"`
	Line    int    `json:"line,omitempty"`
	Path    string `json:"path,omitempty"`
	Message string `json:"message"`
	// Err is a sentinel (ErrHelmTemplate) or the underlying error, if any.
	Err error `json:"-"`
}

func (e *ManifestError) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File)
		if e.Line > 0 {
			fmt.Fprintf(&b, ":%d", e.Line)
		}
		b.WriteString(": ")
	}
	if e.Path != "" {
		b.WriteString(e.Path)
		b.WriteString(": ")
	}
	b.WriteString(e.Message)
	return b.String()
}

// Unwrap makes every ManifestError an ErrInvalidManifest, and exposes Err.
func (e *ManifestError) Unwrap() []error {
	if e.Err == nil {
		return []error{ErrInvalidManifest}
	}
	return []error{ErrInvalidManifest, e.Err}
}

// ManifestErrors is the error ParseManifests returns: one entry per
// document (or file) that could not be read, in input order.
type ManifestErrors []*ManifestError

func (es ManifestErrors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// Unwrap exposes the entries to errors.Is and errors.As.
func (es ManifestErrors) Unwrap() []error {
	out := make([]error, len(es))
	for i, e := range es {
		out[i] = e
	}
	return out
}

// AsManifestErrors returns the ManifestErrors in err (nil when there are
// none), so that callers can report each unreadable document.
func AsManifestErrors(err error) ManifestErrors {
	var es ManifestErrors
	if errors.As(err, &es) {
		return es
	}
	var e *ManifestError
	if errors.As(err, &e) {
		return ManifestErrors{e}
	}
	return nil
}

// ParseManifests reads a manifest stream: multi-document YAML (as `helm
// template` prints it, keeping each document's "# Source:" comment) or
// JSON (one object, or several back to back). Lists (kind List, and typed
// lists such as DeploymentList) are expanded to their items.
//
// It reads the whole input whatever happens: the documents it can read are
// returned, and err, when not nil, is a ManifestErrors naming every
// document it could not read, with the file-absolute line.
func ParseManifests(name string, data []byte) ([]Document, error) {
	if e := checkEncoding(name, data); e != nil {
		return nil, ManifestErrors{e}
	}
	data = bytes.TrimPrefix(data, utf8BOM)
	chunks := splitDocuments(data)
	results := make([]chunkResult, len(chunks))
	parallel(len(chunks), func(i int) {
		results[i] = parseChunk(name, chunks[i])
	})
	var (
		docs []Document
		errs ManifestErrors
	)
	for _, r := range results {
		docs = append(docs, r.docs...)
		errs = append(errs, r.errs...)
	}
	if len(errs) > 0 {
		return docs, errs
	}
	return docs, nil
}

var utf8BOM = []byte{0xEF, 0xBB, 0xBF}

// checkEncoding rejects input that is not UTF-8 text (a binary file, or
// UTF-16 as some Windows editors save it).
func checkEncoding(name string, data []byte) *ManifestError {
	if bytes.HasPrefix(data, []byte{0xFF, 0xFE}) || bytes.HasPrefix(data, []byte{0xFE, 0xFF}) {
		return &ManifestError{File: name, Line: 1, Message: "the file is UTF-16 text; save it as UTF-8"}
	}
	bad := -1
	if i := bytes.IndexByte(data, 0); i >= 0 {
		bad = i
	}
	if !utf8.Valid(data) {
		for i := 0; i < len(data); {
			r, size := utf8.DecodeRune(data[i:])
			if r == utf8.RuneError && size <= 1 {
				if bad < 0 || i < bad {
					bad = i
				}
				break
			}
			i += size
		}
	}
	if bad < 0 {
		return nil
	}
	return &ManifestError{File: name, Line: 1 + bytes.Count(data[:bad], []byte("\n")),
		Message: fmt.Sprintf("not UTF-8 text (byte %#x at offset %d): a manifest is YAML or JSON", data[bad], bad)}
}

// chunk is one YAML document of the stream, or a run of JSON values.
type chunk struct {
	text   []byte
	line   int // line of text's first line in the stream
	source string
}

type chunkResult struct {
	docs []Document
	errs ManifestErrors
}

// splitDocuments cuts the stream at "---" lines (and after "..." lines).
// Splitting by hand rather than with a streaming decoder keeps Helm's
// "# Source:" comment with its document, and lets one broken document be
// reported while the others are still read. Lines of any length are fine.
func splitDocuments(data []byte) []chunk {
	var out []chunk
	cur := chunk{line: 1}
	start := 0  // offset of cur's first byte
	lineNo := 0 // lines consumed
	// A document keeps its bytes as they are in the stream: no copying.
	flush := func(end, next int, nextLine int) {
		cur.text = data[start:end]
		out = append(out, cur)
		cur = chunk{line: nextLine}
		start = next
	}
	for off := 0; off < len(data); {
		end := bytes.IndexByte(data[off:], '\n')
		next := len(data)
		if end < 0 {
			end = len(data)
		} else {
			end += off
			next = end + 1
		}
		lineNo++
		l := bytes.TrimSuffix(data[off:end], []byte("\r"))
		switch {
		case isMarker(l, "---"):
			if rest := bytes.TrimSpace(l[3:]); len(rest) > 0 && rest[0] != '#' {
				// "--- {json}" or "--- !!map": the document starts on the
				// marker line; keep that line (the marker parses as YAML).
				flush(off, off, lineNo)
			} else {
				flush(off, next, lineNo+1)
			}
		case isMarker(l, "..."):
			flush(off, next, lineNo+1)
		case cur.source == "" && bytes.HasPrefix(l, []byte("# Source: ")):
			cur.source = string(bytes.TrimSpace(l[len("# Source: "):]))
		}
		off = next
	}
	flush(len(data), len(data), lineNo+1)
	return out
}

// isMarker reports whether l is the document marker m ("---" or "..."),
// alone or followed by a space or tab.
func isMarker(l []byte, m string) bool {
	if !bytes.HasPrefix(l, []byte(m)) {
		return false
	}
	return len(l) == len(m) || l[len(m)] == ' ' || l[len(m)] == '\t'
}

// parseChunk reads one document (or a run of JSON values).
func parseChunk(name string, c chunk) chunkResult {
	first := firstContent(c.text)
	if first == 0 {
		return chunkResult{} // empty, or only comments
	}
	if e := helmTemplateError(name, c); e != nil {
		return chunkResult{errs: ManifestErrors{e}}
	}
	if first != '{' && first != '[' {
		if v, table, ok := readBlockYAML(string(c.text)); ok {
			table.shift = c.line - 1
			ref := &lineRef{table: table}
			return toDocuments(name, c.source, ref.line(), v, ref)
		}
	}
	// A decoder, not Unmarshal: Unmarshal reads the first document and
	// ignores the rest ({...}{...} as jq prints JSON).
	var res chunkResult
	dec := yaml.NewDecoder(bytes.NewReader(c.text))
	for {
		var root yaml.Node
		err := dec.Decode(&root)
		if errors.Is(err, io.EOF) {
			return res
		}
		if err != nil {
			if first == '{' || first == '[' {
				// JSON that YAML cannot read (tabs): the JSON decoder.
				return parseJSON(name, c)
			}
			res.errs = append(res.errs, yamlError(name, c, err, c.line-1))
			return res
		}
		if len(root.Content) == 0 {
			continue
		}
		table := &lineTable{shift: c.line - 1}
		conv := yamlConverter{table: table, budget: 2*len(c.text) + 1<<16}
		v, err := conv.value(root.Content[0], -1, -1, "", 0)
		if err != nil {
			var ne *nodeError
			if errors.As(err, &ne) {
				res.errs = append(res.errs, &ManifestError{File: name, Line: ne.line + c.line - 1, Message: "YAML: " + ne.msg})
			} else {
				res.errs = append(res.errs, &ManifestError{File: name, Line: root.Line + c.line - 1, Message: "YAML: " + err.Error()})
			}
			return res
		}
		if v == nil {
			continue
		}
		ref := &lineRef{table: table}
		r := toDocuments(name, c.source, ref.line(), v, ref)
		res.docs = append(res.docs, r.docs...)
		res.errs = append(res.errs, r.errs...)
	}
}

// firstContent returns the first byte of text that is not blank, not in a
// comment and not a "---" marker (0 when there is none).
func firstContent(text []byte) byte {
	for off := 0; off < len(text); {
		end := bytes.IndexByte(text[off:], '\n')
		next := len(text)
		if end >= 0 {
			next = off + end + 1
			end = off + end
		} else {
			end = len(text)
		}
		l := bytes.TrimSpace(text[off:end])
		if isMarker(l, "---") {
			l = bytes.TrimSpace(l[3:])
		}
		if len(l) > 0 && l[0] != '#' && l[0] != '%' {
			return l[0]
		}
		off = next
	}
	return 0
}

var yamlLine = regexp.MustCompile(`line (\d+)`)

// yamlError turns a YAML error into a ManifestError on the file-absolute
// line, recognising unrendered Helm templates.
func yamlError(name string, c chunk, err error, shift int) *ManifestError {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	// yaml.v3 counts lines from 1 for scanner errors and from 0 for
	// parser errors (those below).
	if strings.Contains(msg, ": did not find expected") || strings.Contains(msg, ": found duplicate %") ||
		strings.Contains(msg, ": found incompatible YAML") || strings.Contains(msg, ": found undefined tag") {
		shift++
	}
	line := 0
	msg = yamlLine.ReplaceAllStringFunc(msg, func(s string) string {
		n, _ := strconv.Atoi(strings.TrimPrefix(s, "line "))
		n += shift
		if line == 0 {
			line = n
		}
		return "line " + strconv.Itoa(n)
	})
	if line == 0 {
		line = c.line
	}
	msg = strings.TrimPrefix(msg, "line "+strconv.Itoa(line)+": ")
	if bytes.Contains(c.text, []byte("{{")) {
		return helmError(name, line)
	}
	return &ManifestError{File: name, Line: line, Message: "YAML: " + msg}
}

func helmError(name string, line int) *ManifestError {
	return &ManifestError{File: name, Line: line, Err: ErrHelmTemplate,
		Message: "this is a Helm template ({{ ... }}), not a manifest: pass the chart's folder (the one with Chart.yaml) and devctl renders it, or check `helm template` output: helm template CHART | devctl check -"}
}

// helmAction matches template actions only Helm charts use.
var helmAction = regexp.MustCompile(`\{\{-?\s*(?:\$?\.(?:Values|Release|Chart|Capabilities|Template|Files)\b|include\s|toYaml\s|tpl\s)`)

// helmTemplateError recognises a Helm template that happens to parse as
// YAML (its actions are quoted, or read as flow mappings).
func helmTemplateError(name string, c chunk) *ManifestError {
	if !bytes.Contains(c.text, []byte("{{")) {
		return nil
	}
	loc := helmAction.FindIndex(c.text)
	if loc == nil {
		return nil
	}
	return helmError(name, c.line+bytes.Count(c.text[:loc[0]], []byte("\n")))
}

// parseJSON reads JSON that YAML refuses: several values back to back
// (as jq prints them), or indented with tabs. Field lines are not known.
func parseJSON(name string, c chunk) chunkResult {
	text := c.text
	if bytes.HasPrefix(text, []byte("---")) {
		// "--- {...}": blank the marker, keeping the offsets.
		text = append([]byte("   "), text[3:]...)
	}
	var res chunkResult
	dec := json.NewDecoder(bytes.NewReader(text))
	dec.UseNumber()
	for {
		off := int(dec.InputOffset())
		var raw any
		err := dec.Decode(&raw)
		if errors.Is(err, io.EOF) {
			return res
		}
		line := c.line + lineAt(text, off)
		if err != nil {
			var se *json.SyntaxError
			if errors.As(err, &se) {
				line = c.line + bytes.Count(text[:min(int(se.Offset), len(text))], []byte("\n"))
			}
			res.errs = append(res.errs, &ManifestError{File: name, Line: line, Message: "JSON: " + strings.TrimPrefix(err.Error(), "json: ")})
			return res
		}
		r := toDocuments(name, c.source, line, normalize(raw), nil)
		res.docs = append(res.docs, r.docs...)
		res.errs = append(res.errs, r.errs...)
	}
}

// lineAt returns the 0-based line of the first non-blank byte at or after off.
func lineAt(text []byte, off int) int {
	off = min(off, len(text))
	for off < len(text) && (text[off] == ' ' || text[off] == '\n' || text[off] == '\r' || text[off] == '\t') {
		off++
	}
	return bytes.Count(text[:off], []byte("\n"))
}

// toDocuments makes a document of a decoded value, expanding Lists. src
// holds the value's field lines (nil for JSON read by the JSON decoder).
func toDocuments(name, source string, line int, v any, src *lineRef) chunkResult {
	var res chunkResult
	fail := func(line int, path, format string, args ...any) chunkResult {
		res.errs = append(res.errs, &ManifestError{File: name, Line: line, Path: path, Message: fmt.Sprintf(format, args...)})
		return res
	}
	// items returns the lines of the elements of the sequence at path
	// ("" for v itself), one per element (nil where unknown).
	items := func(path string, n int) []*lineRef {
		out := make([]*lineRef, n)
		if src == nil {
			return out
		}
		r := *src
		for _, seg := range splitPath(path) {
			var ok bool
			if r, ok = r.child(seg); !ok {
				return out
			}
		}
		for i, c := range r.children() {
			if i < n {
				out[i] = &c
			}
		}
		return out
	}
	lineOr := func(r *lineRef) int {
		if r == nil {
			return line
		}
		return r.line()
	}
	if list, ok := v.([]any); ok {
		// A JSON array of objects, as some tools print them.
		refs := items("", len(list))
		for i, it := range list {
			r := toDocuments(name, source, lineOr(refs[i]), it, refs[i])
			res.docs = append(res.docs, r.docs...)
			res.errs = append(res.errs, r.errs...)
		}
		return res
	}
	m, ok := v.(map[string]any)
	if !ok {
		return fail(line, "", "a document must be a Kubernetes object (a mapping with apiVersion and kind), got %s", describe(v))
	}
	d := Document{File: name, Template: source, Line: line, Object: &unstructured.Unstructured{Object: m}, lines: src}
	for _, key := range []string{"apiVersion", "kind"} {
		s, isString := m[key].(string)
		switch {
		case m[key] == nil:
			return fail(line, "", "apiVersion and kind are required: %s is missing (is this a Kubernetes manifest?)", key)
		case !isString:
			return fail(d.lineOf(key), key, "expected string, got %s", describe(m[key]))
		case s == "":
			return fail(d.lineOf(key), key, "must not be empty")
		}
	}
	kind := m["kind"].(string)
	if raw, found := m["items"]; kind == "List" || (found && strings.HasSuffix(kind, "List")) {
		list, ok := raw.([]any)
		if !ok && raw != nil {
			return fail(d.lineOf("items"), "items", "expected array, got %s", describe(raw))
		}
		itemKind := strings.TrimSuffix(kind, "List")
		refs := items("items", len(list))
		for i, it := range list {
			il := lineOr(refs[i])
			im, ok := it.(map[string]any)
			if !ok {
				res.errs = append(res.errs, &ManifestError{File: name, Line: il, Path: fmt.Sprintf("items[%d]", i), Message: "expected object, got " + describe(it)})
				continue
			}
			// Typed lists (DeploymentList) may leave out their items' kind.
			if im["kind"] == nil && itemKind != "" {
				im["kind"] = itemKind
			}
			if im["apiVersion"] == nil && itemKind != "" {
				im["apiVersion"] = m["apiVersion"]
			}
			r := toDocuments(name, source, il, im, refs[i])
			res.docs = append(res.docs, r.docs...)
			res.errs = append(res.errs, r.errs...)
		}
		return res
	}
	res.docs = append(res.docs, d)
	return res
}

// normalize turns decoded YAML and JSON values into the JSON-compatible
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
		if t > math.MaxInt64 {
			return float64(t)
		}
		return int64(t)
	case json.Number:
		if i, err := t.Int64(); err == nil {
			return i
		}
		f, _ := t.Float64()
		return f
	default:
		return v
	}
}

// describe names the JSON type of a decoded value for error messages.
func describe(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case string:
		return "string"
	case bool:
		return "boolean"
	case int64, int:
		return "integer"
	case float64:
		return "number"
	case []any:
		return "array"
	case map[string]any:
		return "object"
	default:
		return fmt.Sprintf("%T", v)
	}
}

// lineOf returns the line of the deepest node on path that exists in the
// document: the field itself, or its nearest enclosing block.
func (d *Document) lineOf(path string) int {
	l, _ := d.lineOfPath(path)
	return l
}

// lineOfPath is lineOf, and whether the full path was found.
func (d *Document) lineOfPath(path string) (int, bool) {
	if d.lines == nil {
		return d.Line, false
	}
	r := *d.lines
	for _, seg := range splitPath(path) {
		next, ok := r.child(seg)
		if !ok {
			return r.line(), false
		}
		r = next
	}
	return r.line(), true
}

type pathSeg struct {
	key   string
	index int // -1 for a map key
}

// splitPath splits `a.b[0].c["x.y/z"]` into a, b, [0], c, x.y/z.
func splitPath(p string) []pathSeg {
	var out []pathSeg
	for p != "" {
		switch {
		case p[0] == '.':
			p = p[1:]
		case strings.HasPrefix(p, `["`):
			// A quoted map key: ["app.kubernetes.io/name"].
			end := strings.Index(p, `"]`)
			if end < 0 {
				return out
			}
			key, err := strconv.Unquote(p[1 : end+1])
			if err != nil {
				key = p[2:end]
			}
			out = append(out, pathSeg{key: key, index: -1})
			p = p[end+2:]
		case p[0] == '[':
			end := strings.IndexByte(p, ']')
			if end < 0 {
				return out
			}
			if i, err := strconv.Atoi(p[1:end]); err == nil {
				out = append(out, pathSeg{index: i})
			}
			p = p[end+1:]
		default:
			end := strings.IndexAny(p, ".[")
			if end < 0 {
				end = len(p)
			}
			out = append(out, pathSeg{key: p[:end], index: -1})
			p = p[end:]
		}
	}
	return out
}

// parallel runs fn(0..n-1) on up to GOMAXPROCS goroutines.
func parallel(n int, fn func(i int)) {
	workers := min(runtime.GOMAXPROCS(0), n)
	if workers <= 1 {
		for i := range n {
			fn(i)
		}
		return
	}
	var (
		wg   sync.WaitGroup
		next = make(chan int, workers)
	)
	for range workers {
		wg.Go(func() {
			for i := range next {
				fn(i)
			}
		})
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
}
