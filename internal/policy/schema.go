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
	"time"

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

// decodeValue decodes v (a JSON-like value) into rv, as the API server's
// strict JSON decoding would, and appends what does not fit: a field of
// the wrong type (the object cannot be read) or an unknown field. rv must
// be settable; what does not fit is left zero.
func decodeValue(v any, rv reflect.Value, p *fieldPath, out *[]fieldProblem) {
	if v == nil {
		return // null: the field is unset
	}
	t := rv.Type()
	if t.Kind() == reflect.Pointer {
		ptr := reflect.New(t.Elem())
		decodeValue(v, ptr.Elem(), p, out)
		rv.Set(ptr)
		return
	}
	if decodeSpecial(v, rv, p, out) {
		return
	}
	switch t.Kind() {
	case reflect.Interface:
		if t.NumMethod() == 0 {
			rv.Set(reflect.ValueOf(v))
		}
	case reflect.String:
		s, ok := v.(string)
		if !ok {
			bad(out, v, p, "string")
			return
		}
		rv.SetString(s)
	case reflect.Bool:
		b, ok := v.(bool)
		if !ok {
			bad(out, v, p, "boolean")
			return
		}
		rv.SetBool(b)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n, ok := integer(v)
		if !ok {
			bad(out, v, p, "integer")
			return
		}
		if rv.OverflowInt(n) {
			invalid(out, p, "%v is out of range for %s", v, t.Kind())
			return
		}
		rv.SetInt(n)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		n, ok := integer(v)
		if !ok {
			bad(out, v, p, "integer")
			return
		}
		if n < 0 || rv.OverflowUint(uint64(n)) {
			invalid(out, p, "%v is out of range for %s", v, t.Kind())
			return
		}
		rv.SetUint(uint64(n))
	case reflect.Float32, reflect.Float64:
		switch x := v.(type) {
		case int64:
			rv.SetFloat(float64(x))
		case float64:
			rv.SetFloat(x)
		default:
			bad(out, v, p, "number")
		}
	case reflect.Slice:
		if t.Elem().Kind() == reflect.Uint8 {
			s, ok := v.(string)
			if !ok {
				bad(out, v, p, "string (base64-encoded)")
				return
			}
			b, err := base64.StdEncoding.DecodeString(s)
			if err != nil {
				invalid(out, p, "not valid base64 (put plain text in stringData instead)")
				return
			}
			rv.SetBytes(b)
			return
		}
		items, ok := v.([]any)
		if !ok {
			bad(out, v, p, "array")
			return
		}
		sl := reflect.MakeSlice(t, len(items), len(items))
		for i, it := range items {
			decodeValue(it, sl.Index(i), p.item(i), out)
		}
		rv.Set(sl)
	case reflect.Map:
		m, ok := v.(map[string]any)
		if !ok {
			bad(out, v, p, "object")
			return
		}
		mv := reflect.MakeMapWithSize(t, len(m))
		kt, et := t.Key(), t.Elem()
		for k, e := range m {
			ev := reflect.New(et).Elem()
			decodeValue(e, ev, p.child(k), out)
			mv.SetMapIndex(reflect.ValueOf(k).Convert(kt), ev)
		}
		rv.Set(mv)
	case reflect.Struct:
		info := structInfoFor(t)
		if info.opaque {
			// It decodes itself (RawExtension, FieldsV1, apiextensions JSON).
			b, err := json.Marshal(v)
			if err == nil {
				err = rv.Addr().Interface().(json.Unmarshaler).UnmarshalJSON(b)
			}
			if err != nil {
				invalid(out, p, "%v", err)
			}
			return
		}
		m, ok := v.(map[string]any)
		if !ok {
			bad(out, v, p, "object")
			return
		}
		for k, e := range m {
			f, ok := info.fields[k]
			if !ok {
				*out = append(*out, fieldProblem{path: p.child(k).String(), msg: unknownFieldMessage(k, info.names), unknown: true})
				continue
			}
			decodeValue(e, rv.FieldByIndex(f.index), p.child(k), out)
		}
	default:
		// Channels, funcs: not in API types.
	}
}

// decodeSpecial decodes the API types with their own JSON form, and
// reports whether rv was one of them.
func decodeSpecial(v any, rv reflect.Value, p *fieldPath, out *[]fieldProblem) bool {
	switch rv.Type() {
	case quantityType:
		var s string
		switch x := v.(type) {
		case string:
			s = x
		case int64:
			s = strconv.FormatInt(x, 10)
		case float64:
			s = strconv.FormatFloat(x, 'f', -1, 64)
		default:
			bad(out, v, p, "quantity (a string such as \"500m\" or \"128Mi\", or a number)")
			return true
		}
		q, err := resource.ParseQuantity(s)
		if err != nil {
			invalid(out, p, "%q is not a quantity (for example 500m, 128Mi or 2)", s)
			return true
		}
		rv.Set(reflect.ValueOf(q))
	case intOrStringType:
		switch x := v.(type) {
		case string:
			rv.Set(reflect.ValueOf(intstr.FromString(x)))
		case int64, float64:
			n, ok := integer(x)
			if !ok || n < math.MinInt32 || n > math.MaxInt32 {
				bad(out, v, p, "integer or string")
				return true
			}
			rv.Set(reflect.ValueOf(intstr.FromInt32(int32(n))))
		default:
			bad(out, v, p, "integer or string")
		}
	case timeType, microTimeType:
		s, ok := v.(string)
		if !ok {
			bad(out, v, p, "string (an RFC 3339 time)")
			return true
		}
		tm, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			invalid(out, p, "%q is not an RFC 3339 time (2006-01-02T15:04:05Z)", s)
			return true
		}
		if rv.Type() == timeType {
			rv.Set(reflect.ValueOf(metav1.NewTime(tm.Local())))
		} else {
			rv.Set(reflect.ValueOf(metav1.NewMicroTime(tm.Local())))
		}
	case durationType:
		s, ok := v.(string)
		if !ok {
			bad(out, v, p, "string (a duration such as 30s)")
			return true
		}
		d, err := time.ParseDuration(s)
		if err != nil {
			invalid(out, p, "%q is not a duration (for example 30s or 5m)", s)
			return true
		}
		rv.Set(reflect.ValueOf(metav1.Duration{Duration: d}))
	default:
		return false
	}
	return true
}

// bad reports a value of the wrong JSON type.
func bad(out *[]fieldProblem, v any, p *fieldPath, want string) {
	msg := fmt.Sprintf("expected %s, got %s", want, describe(v))
	if want == "string" {
		switch v.(type) {
		case int64, float64, bool:
			msg += fmt.Sprintf(" (quote the value: \"%v\")", v)
		}
	}
	*out = append(*out, fieldProblem{path: p.String(), msg: msg})
}

// invalid reports a value of the right type that the API rejects.
func invalid(out *[]fieldProblem, p *fieldPath, format string, args ...any) {
	*out = append(*out, fieldProblem{path: p.String(), msg: fmt.Sprintf(format, args...)})
}

// integer returns an integral JSON number (YAML 8080.0 reaches the API
// server as JSON 8080).
func integer(v any) (int64, bool) {
	switch x := v.(type) {
	case int64:
		return x, true
	case float64:
		if x != math.Trunc(x) || x < math.MinInt64 || x > math.MaxInt64 {
			return 0, false
		}
		return int64(x), true
	}
	return 0, false
}

// decodeAs decodes v as a t, appending what does not fit, and returns a
// pointer to the result.
func decodeAs(v any, t reflect.Type, p *fieldPath, out *[]fieldProblem) reflect.Value {
	ptr := reflect.New(t)
	decodeValue(v, ptr.Elem(), p, out)
	return ptr
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
	fields map[string]structField
	names  []string
	// opaque structs decode themselves from any JSON (RawExtension,
	// FieldsV1, apiextensions JSON): their fields do not describe it.
	opaque bool
}

type structField struct {
	index []int // for reflect.Value.FieldByIndex
}

var structInfos sync.Map // reflect.Type → *structInfo

// structInfoFor returns the JSON fields of a struct type, embedded
// (inline) structs flattened.
func structInfoFor(t reflect.Type) *structInfo {
	if v, ok := structInfos.Load(t); ok {
		return v.(*structInfo)
	}
	info := &structInfo{fields: map[string]structField{}, opaque: reflect.PointerTo(t).Implements(unmarshalerType)}
	addStructFields(t, nil, info)
	for name := range info.fields {
		info.names = append(info.names, name)
	}
	slices.Sort(info.names)
	v, _ := structInfos.LoadOrStore(t, info)
	return v.(*structInfo)
}

func addStructFields(t reflect.Type, base []int, info *structInfo) {
	for i := range t.NumField() {
		f := t.Field(i)
		name, opts, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" && opts == "" {
			continue
		}
		index := append(slices.Clone(base), i)
		if f.Anonymous && name == "" && f.Type.Kind() == reflect.Struct {
			// Inline (TypeMeta); API types embed no pointers.
			addStructFields(f.Type, index, info)
			continue
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		info.fields[name] = structField{index: index}
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

// editDistance is the optimal string alignment distance between a and b:
// insertions, deletions, substitutions and swaps of neighbours (lables →
// labels is one edit).
func editDistance(a, b string) int {
	d := make([][]int, len(a)+1)
	for i := range d {
		d[i] = make([]int, len(b)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(a); i++ {
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(a)][len(b)]
}

// sortProblems orders problems by path (maps are walked in random order).
func sortProblems(ps []fieldProblem) {
	slices.SortFunc(ps, func(a, b fieldProblem) int { return strings.Compare(a.path, b.path) })
}
