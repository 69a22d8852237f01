package policy

import (
	"io/fs"
	"path"
	"regexp"
	"slices"
	"strings"
	"sync"
)

// ChartSource gives the engine the chart's files so findings on rendered
// manifests point at the template line that sets the field.
type ChartSource struct {
	// FS holds the chart directory (Chart.yaml at its root).
	FS fs.FS
	// Dir is prefixed to the template paths in findings, so they are
	// relative to the repository (for example "charts/web").
	Dir string
}

var valuesRef = regexp.MustCompile(`\$?\.Values((?:\.[A-Za-z_][A-Za-z0-9_-]*)+)`)

// sourceCache reads each chart template once per check.
type sourceCache struct {
	mu    sync.Mutex
	files map[string][]string
}

func newSourceCache() *sourceCache { return &sourceCache{files: map[string][]string{}} }

func (sc *sourceCache) lines(c *ChartSource, rel string) []string {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	key := c.Dir + "\x00" + rel
	lines, found := sc.files[key]
	if !found {
		if b, err := fs.ReadFile(c.FS, rel); err == nil {
			lines = strings.Split(string(b), "\n")
		}
		sc.files[key] = lines
	}
	return lines
}

// locate returns where a field of a document is set: the chart template
// line (c may be nil), or the manifest file line.
func (sc *sourceCache) locate(c *ChartSource, d *Document, fieldPath string) Source {
	if d.Chart != nil {
		c = d.Chart
	}
	if d.Template != "" && c != nil && c.FS != nil {
		// "# Source: <chart>/templates/x.yaml"; subcharts are
		// "<chart>/charts/<sub>/templates/x.yaml".
		if _, rel, ok := strings.Cut(d.Template, "/"); ok {
			if lines := sc.lines(c, rel); lines != nil {
				line, key := templateLine(lines, fieldPath)
				return Source{File: path.Join(c.Dir, rel), Line: line, ValuesKey: key}
			}
		}
	}
	if d.Template != "" {
		// Rendered Helm output without the chart: name the template; the
		// line is only meaningful in the rendered stream.
		return Source{File: d.Template}
	}
	return Source{File: d.File, Line: d.lineOf(fieldPath)}
}

// templateLine finds the line of a Go-templated YAML file that sets
// fieldPath: it walks the path's keys down the file by indentation and
// stops at the deepest one it finds (the field itself, or the nearest
// enclosing block, which is where a `toYaml .Values.x | nindent` sets it).
// It returns the 1-based line and the values key referenced there or in
// the block's templated lines.
func templateLine(lines []string, fieldPath string) (int, string) {
	var keys []string
	for _, s := range splitPath(fieldPath) {
		if s.index < 0 {
			keys = append(keys, s.key)
		}
	}
	best, bestIndent, pos := -1, -1, 0
	for _, k := range keys {
		found := -1
		for i := pos; i < len(lines); i++ {
			t := strings.TrimSpace(lines[i])
			ind := indentOf(lines[i])
			if t == "" || strings.HasPrefix(t, "#") || strings.HasPrefix(t, "{{") {
				continue
			}
			if best >= 0 && ind <= bestIndent && i > best {
				// left the enclosing block
				break
			}
			t = strings.TrimPrefix(t, "- ")
			if strings.HasPrefix(t, k+":") {
				found = i
				bestIndent = ind
				break
			}
		}
		if found < 0 {
			break
		}
		best, pos = found, found+1
	}
	if best < 0 {
		return 0, ""
	}
	return best + 1, valuesKeyNear(lines, best, bestIndent)
}

// valuesKeyNear returns the .Values reference on line i, or in the
// template lines of its block, or in a `with`/`if` line just above it.
func valuesKeyNear(lines []string, i, indent int) string {
	if ms := valuesRef.FindAllStringSubmatch(lines[i], -1); ms != nil {
		var keys []string
		for _, m := range ms {
			if k := strings.TrimPrefix(m[1], "."); !slices.Contains(keys, k) {
				keys = append(keys, k)
			}
		}
		return strings.Join(keys, ", ")
	}
	// A block filled by a template action: `key:` followed by
	// `{{- toYaml .Values.x | nindent N }}` as its first child line.
	for j := i + 1; j < len(lines); j++ {
		t := strings.TrimSpace(lines[j])
		if t == "" {
			continue
		}
		if m := valuesRef.FindStringSubmatch(t); m != nil && strings.HasPrefix(t, "{{") && indentOf(lines[j]) > indent {
			return strings.TrimPrefix(m[1], ".")
		}
		break
	}
	if i > 0 {
		t := strings.TrimSpace(lines[i-1])
		if strings.HasPrefix(t, "{{") && (strings.Contains(t, "with ") || strings.Contains(t, "if ")) {
			if m := valuesRef.FindStringSubmatch(t); m != nil {
				return strings.TrimPrefix(m[1], ".")
			}
		}
	}
	return ""
}

func indentOf(s string) int {
	return len(s) - len(strings.TrimLeft(s, " "))
}
