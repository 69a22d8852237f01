package goimage

import (
	"fmt"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"github.com/devctl/devctl/internal/build"
)

// CompileError is a failed go build. Output is everything the go command
// printed; Diagnostics are the file:line errors found in it, in order.
//
// errors.As also fills a *build.BuildError from it, with the last lines of
// the output, so code showing Docker build failures shows these too.
type CompileError struct {
	Dir         string // where go build ran
	Package     string
	Output      string
	Diagnostics []Diagnostic
	Err         error // the go command's exit status
}

// Diagnostic is one compiler error.
type Diagnostic struct {
	File    string // absolute path
	Line    int
	Column  int // 0 when the compiler gave none
	Message string
}

func (d Diagnostic) String() string {
	if d.Column == 0 {
		return fmt.Sprintf("%s:%d: %s", d.File, d.Line, d.Message)
	}
	return fmt.Sprintf("%s:%d:%d: %s", d.File, d.Line, d.Column, d.Message)
}

// Error is the first diagnostic (or the output's last line) with the
// package: `go build .: main.go:7:2: declared and not used: x (and 1 more)`.
func (e *CompileError) Error() string {
	msg := e.Err.Error()
	if len(e.Diagnostics) > 0 {
		d := e.Diagnostics[0]
		if rel, err := filepath.Rel(e.Dir, d.File); err == nil && !strings.HasPrefix(rel, "..") {
			d.File = rel
		}
		msg = d.String()
		if n := len(e.Diagnostics) - 1; n > 0 {
			msg += fmt.Sprintf(" (and %d more)", n)
		}
	} else if lines := e.lines(); len(lines) > 0 {
		msg = lines[len(lines)-1]
	}
	return "go build " + e.Package + ": " + msg
}

func (e *CompileError) Unwrap() error { return e.Err }

// As lets errors.As turn e into a *build.BuildError.
func (e *CompileError) As(target any) bool {
	be, ok := target.(**build.BuildError)
	if !ok {
		return false
	}
	lines := e.lines()
	const tail = 20
	if len(lines) > tail {
		lines = lines[len(lines)-tail:]
	}
	*be = &build.BuildError{
		Step:    build.StepGoBuild,
		Message: fmt.Sprintf("go build %s in %s: %v", e.Package, e.Dir, e.Err),
		Output:  lines,
	}
	return true
}

func (e *CompileError) lines() []string {
	s := strings.TrimRight(e.Output, "\n")
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

// diagnosticLine matches the compiler's "file.go:line:col: message" and the
// column-less "file.go:line: message".
var diagnosticLine = regexp.MustCompile(`^(\S[^:]*\.go):(\d+)(?::(\d+))?: (.*)$`)

func newCompileError(dir, pkg, output string, err error) *CompileError {
	e := &CompileError{Dir: dir, Package: pkg, Output: output, Err: err}
	for _, line := range strings.Split(output, "\n") {
		if m := diagnosticLine.FindStringSubmatch(line); m != nil {
			d := Diagnostic{File: m[1], Message: m[4]}
			d.Line, _ = strconv.Atoi(m[2])
			d.Column, _ = strconv.Atoi(m[3])
			if !filepath.IsAbs(d.File) {
				d.File = filepath.Join(dir, d.File)
			}
			e.Diagnostics = append(e.Diagnostics, d)
			continue
		}
		// Indented lines continue the message above them (have/want).
		if n := len(e.Diagnostics); n > 0 && strings.HasPrefix(line, "\t") {
			e.Diagnostics[n-1].Message += "\n" + line
		}
	}
	return e
}
