package harness

import (
	"fmt"
	"strings"
	"testing"

	"sigs.k8s.io/kind/pkg/log"
)

// KindLogger returns a kind logger that writes to the test log; messages of
// verbosity above v are dropped.
func KindLogger(t testing.TB, v log.Level) log.Logger {
	return &kindLogger{t: t, v: v, enabled: true}
}

type kindLogger struct {
	t       testing.TB
	v       log.Level
	enabled bool
}

func (l *kindLogger) print(s string) {
	if l.enabled {
		l.t.Log("kind: " + strings.TrimSpace(s))
	}
}

func (l *kindLogger) Warn(message string)               { l.print(message) }
func (l *kindLogger) Warnf(format string, args ...any)  { l.print(fmt.Sprintf(format, args...)) }
func (l *kindLogger) Error(message string)              { l.print(message) }
func (l *kindLogger) Errorf(format string, args ...any) { l.print(fmt.Sprintf(format, args...)) }
func (l *kindLogger) Info(message string)               { l.print(message) }
func (l *kindLogger) Infof(format string, args ...any)  { l.print(fmt.Sprintf(format, args...)) }
func (l *kindLogger) Enabled() bool                     { return l.enabled }
func (l *kindLogger) V(level log.Level) log.InfoLogger {
	return &kindLogger{t: l.t, v: l.v, enabled: level <= l.v}
}
