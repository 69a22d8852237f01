package build

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/moby/moby/api/types/jsonstream"
)

// tailLines is how many output lines a BuildError keeps.
const tailLines = 20

// BuildError is a failed build step: the compiler or the engine reported an
// error. Output holds the last lines the step printed, for display above the
// error.
type BuildError struct {
	Step    string   // StepGoBuild or StepImageBuild
	Message string   // the compiler's exit status or the engine's error message
	Output  []string // last lines of output, oldest first
}

func (e *BuildError) Error() string {
	return e.Step + " failed: " + e.Message
}

// lineWriter splits what is written into lines, forwards each complete line
// (with its newline) to out and keeps the last tailLines lines.
type lineWriter struct {
	out  io.Writer
	buf  []byte
	tail []string
}

func newLineWriter(out io.Writer) *lineWriter {
	if out == nil {
		out = io.Discard
	}
	return &lineWriter{out: out}
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			return len(p), nil
		}
		w.line(string(w.buf[:i]))
		w.buf = w.buf[i+1:]
	}
}

// Flush emits a final unterminated line.
func (w *lineWriter) Flush() {
	if len(w.buf) > 0 {
		w.line(string(w.buf))
		w.buf = nil
	}
}

func (w *lineWriter) line(s string) {
	s = strings.TrimRight(s, "\r")
	// Output is best effort: a broken log writer must not fail the build.
	_, _ = io.WriteString(w.out, s+"\n")
	w.tail = append(w.tail, s)
	if len(w.tail) > tailLines {
		w.tail = w.tail[len(w.tail)-tailLines:]
	}
}

func (w *lineWriter) Tail() []string {
	return append([]string(nil), w.tail...)
}

// buildAux is the aux message the engine sends with the built image's ID.
type buildAux struct {
	ID string `json:"ID"`
}

// readBuildStream decodes the engine's JSON message stream into plain lines on
// lw and returns the built image ID (empty if the engine did not report one).
// An error message in the stream becomes a *BuildError.
func readBuildStream(r io.Reader, lw *lineWriter) (string, error) {
	dec := json.NewDecoder(r)
	var id string
	for {
		var m jsonstream.Message
		if err := dec.Decode(&m); err != nil {
			lw.Flush()
			if errors.Is(err, io.EOF) {
				return id, nil
			}
			return id, fmt.Errorf("read build output: %w", err)
		}
		switch {
		case m.Error != nil:
			lw.Flush()
			return id, &BuildError{Step: StepImageBuild, Message: strings.TrimSpace(m.Error.Message), Output: lw.Tail()}
		case m.Stream != "":
			fmt.Fprint(lw, m.Stream)
		case m.Status != "":
			lw.Flush()
			if m.ID != "" {
				fmt.Fprint(lw, m.ID+": ")
			}
			fmt.Fprintln(lw, m.Status)
		case m.Aux != nil:
			var aux buildAux
			if json.Unmarshal(*m.Aux, &aux) == nil && aux.ID != "" {
				id = aux.ID
			}
		}
	}
}
