package policy

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"

	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// The schema of built-in kinds is their Go type in k8s.io/api — the types
// the API server decodes into and its OpenAPI is generated from — read
// through the json tags, as the API server's strict field validation does
// (case-sensitive names, no unknown fields).

// fieldProblem is one field that does not fit its kind's schema.
type fieldProblem struct {
	path string
	msg  string
	// unknown is an unknown field (a finding: the API server rejects it
	// under strict validation and drops it otherwise); the other problems
	// are type errors (the object cannot be decoded at all).
	unknown bool
}

// fieldPath is a field path built while walking; it is turned into a
// string only when a problem is found.
type fieldPath struct {
	parent *fieldPath
	key    string
	index  int // -1 for a key
}

func (p *fieldPath) child(key string) *fieldPath { return &fieldPath{parent: p, key: key, index: -1} }

func (p *fieldPath) item(i int) *fieldPath { return &fieldPath{parent: p, index: i} }

var simpleKey = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_-]*$`)

func (p *fieldPath) String() string {
	if p == nil {
		return ""
	}
	var segs []*fieldPath
	for q := p; q != nil; q = q.parent {
		segs = append(segs, q)
	}
	var b strings.Builder
	for i := len(segs) - 1; i >= 0; i-- {
		s := segs[i]
		switch {
		case s.index >= 0:
			fmt.Fprintf(&b, "[%d]", s.index)
		case s.key == "":
			// the root of a relative walk
		case simpleKey.MatchString(s.key):
			if b.Len() > 0 {
				b.WriteByte('.')
			}
			b.WriteString(s.key)
		default:
			fmt.Fprintf(&b, "[%s]", strconv.Quote(s.key))
		}
	}
	return b.String()
}

// rootPath starts a walk at a dotted path (spec.template).
func rootPath(dotted string) *fieldPath {
	var p *fieldPath
	for _, s := range splitPath(dotted) {
		if s.index >= 0 {
			p = p.item(s.index)
		} else {
			p = p.child(s.key)
		}
	}
	return p
}

// validateValue walks v against Go type t and appends what does not fit.
func validateValue(v any, t reflect.Type, p *fieldPath, out *[]fieldProblem) {
	if v == nil {
		return // null: the field is unset
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	bad := func(want string) {
		msg := fmt.Sprintf("expected %s, got %s", want, describe(v))
		if want == "string" {
			switch v.(type) {
			case int64, float64, bool:
				msg += fmt.Sprintf(" (quote the value: \"%v\")", v)
			}
		}
		*out = append(*out, fieldProblem{path: p.String(), msg: msg})
	}
	switch t {
	case quantityType:
		switch q := v.(type) {
		case int64, float64:
		case string:
			if _, err := resource.ParseQuantity(q); err != nil {
				*out = append(*out, fieldProblem{path: p.String(), msg: fmt.Sprintf("%q is not a quantity (for example 500m, 128Mi or 2)", q)})
			}
		default:
			bad("quantity (a string such as \"500m\" or \"128Mi\", or a number)")
		}
		return
	case intOrStringType:
		switch x := v.(type) {
		case string:
		case int64:
		case float64:
			if x != math.Trunc(x) {
				bad("integer or string")
			}
		default:
			bad("integer or string")
		}
		return
	case timeType, microTimeType, durationType:
		if _, ok := v.(string); !ok {
			bad("string")
		}
		return
	}
	switch t.Kind() {
	case reflect.Interface:
		return
	case reflect.String:
		if _, ok := v.(string); !ok {
			bad("string")
		}
	case reflect.Bool:
		if _, ok := v.(bool); !ok {
			bad("boolean")
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		validateInt(v, t, p, out, bad)
	case reflect.Float32, reflect.Float64:
		switch v.(type) {
		case int64, float64:
		default:
			bad("number")
		}
	case reflect.Slice:
		if t.Elem().Kind() == reflect.Uint8 {
			s, ok := v.(string)
			if !ok {
				bad("string (base64-encoded)")
			} else if _, err := base64.StdEncoding.DecodeString(s); err != nil {
				*out = append(*out, fieldProblem{path: p.String(), msg: "not valid base64 (use stringData for plain text)"})
			}
			return
		}
		items, ok := v.([]any)
		if !ok {
			bad("array")
			return
		}
		for i, it := range items {
			validateValue(it, t.Elem(), p.item(i), out)
		}
	case reflect.Map:
		m, ok := v.(map[string]any)
		if !ok {
			bad("object")
			return
		}
		for k, e := range m {
			validateValue(e, t.Elem(), p.child(k), out)
		}
	case reflect.Struct:
		info := structInfoFor(t)
		if info.opaque {
			return
		}
		m, ok := v.(map[string]any)
		if !ok {
			bad("object")
			return
		}
		for k, e := range m {
			ft, ok := info.fields[k]
			if !ok {
				*out = append(*out, fieldProblem{path: p.child(k).String(), msg: unknownFieldMessage(k, info.names), unknown: true})
				continue
			}
			validateValue(e, ft, p.child(k), out)
		}
	default:
		// Channels, funcs: not in API types.
	}
}

func validateInt(v any, t reflect.Type, p *fieldPath, out *[]fieldProblem, bad func(string)) {
	var n float64
	switch x := v.(type) {
	case int64:
		n = float64(x)
	case float64:
		// YAML 8080.0 reaches the API server as JSON 8080.
		if x != math.Trunc(x) {
			bad("integer")
			return
		}
		n = x
	default:
		bad("integer")
		return
	}
	lo, hi := intRange(t)
	if n < lo || n > hi {
		*out = append(*out, fieldProblem{path: p.String(), msg: fmt.Sprintf("%v is out of range for %s", v, t.Kind())})
	}
}

func intRange(t reflect.Type) (float64, float64) {
	bits := t.Bits()
	switch t.Kind() {
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return 0, math.Ldexp(1, bits) - 1
	default:
		return -math.Ldexp(1, bits-1), math.Ldexp(1, bits-1) - 1
	}
}

var (
	quantityType    = reflect.TypeFor[resource.Quantity]()
	intOrStringType = reflect.TypeFor[intstr.IntOrString]()
	timeType        = reflect.TypeFor[metav1.Time]()
	microTimeType   = reflect.TypeFor[metav1.MicroTime]()
	durationType    = reflect.TypeFor[metav1.Duration]()
	unmarshalerType = reflect.TypeFor[json.Unmarshaler]()
)

type structInfo struct {
	fields map[string]reflect.Type
	names  []string
	// opaque structs decode themselves from any JSON (RawExtension,
	// FieldsV1, apiextensions JSON): their fields do not describe it.
	opaque bool
}

var structInfos sync.Map // reflect.Type → *structInfo

// structInfoFor returns the JSON fields of a struct type, embedded
// (inline) structs flattened.
func structInfoFor(t reflect.Type) *structInfo {
	if v, ok := structInfos.Load(t); ok {
		return v.(*structInfo)
	}
	info := &structInfo{fields: map[string]reflect.Type{}, opaque: reflect.PointerTo(t).Implements(unmarshalerType)}
	addStructFields(t, info)
	for name := range info.fields {
		info.names = append(info.names, name)
	}
	slices.Sort(info.names)
	v, _ := structInfos.LoadOrStore(t, info)
	return v.(*structInfo)
}

func addStructFields(t reflect.Type, info *structInfo) {
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		name, opts, _ := strings.Cut(tag, ",")
		if name == "-" && opts == "" {
			continue
		}
		if f.Anonymous && name == "" {
			ft := f.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				addStructFields(ft, info)
				continue
			}
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		info.fields[name] = f.Type
	}
}

func unknownFieldMessage(field string, known []string) string {
	msg := fmt.Sprintf("unknown field %q", field)
	if s := closest(field, known); s != "" {
		msg += fmt.Sprintf(" (did you mean %q?)", s)
	}
	return msg
}

// closest returns the known name nearest to s when it is a plausible
// misspelling (a different case, or a few edits away).
func closest(s string, known []string) string {
	best, bestDist := "", math.MaxInt
	for _, k := range known {
		if strings.EqualFold(k, s) {
			return k
		}
		if d := editDistance(strings.ToLower(s), strings.ToLower(k)); d < bestDist {
			best, bestDist = k, d
		}
	}
	if bestDist <= max(1, min(3, len(s)/4)) {
		return best
	}
	return ""
}

// editDistance is the Levenshtein distance between a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// sortProblems orders problems by path (maps are walked in random order).
func sortProblems(ps []fieldProblem) {
	slices.SortFunc(ps, func(a, b fieldProblem) int { return strings.Compare(a.path, b.path) })
}
