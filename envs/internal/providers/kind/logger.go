package kind

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	kindlog "sigs.k8s.io/kind/pkg/log"

	"github.com/devctl/devctl/envs/internal/providers"
)

// logger adapts kind's logger onto slog. kind's status lines become Steps for
// the progress callback; everything else is logged: V(0) at Info, V(1+) at
// Debug, warnings and errors at their levels.
type logger struct {
	ctx      context.Context
	l        *slog.Logger
	progress func(providers.Step)
}

var _ kindlog.Logger = logger{}

func newLogger(ctx context.Context, l *slog.Logger, progress func(providers.Step)) logger {
	return logger{ctx: ctx, l: l, progress: progress}
}

func (g logger) Warn(message string) { g.l.WarnContext(g.ctx, clean(message)) }

func (g logger) Warnf(format string, args ...any) { g.Warn(fmt.Sprintf(format, args...)) }

func (g logger) Error(message string) { g.l.ErrorContext(g.ctx, clean(message)) }

func (g logger) Errorf(format string, args ...any) { g.Error(fmt.Sprintf(format, args...)) }

func (g logger) V(level kindlog.Level) kindlog.InfoLogger { return infoLogger{g: g, level: level} }

type infoLogger struct {
	g     logger
	level kindlog.Level
}

func (i infoLogger) slogLevel() slog.Level {
	if i.level <= 0 {
		return slog.LevelInfo
	}
	return slog.LevelDebug
}

func (i infoLogger) Info(message string) {
	if i.level <= 0 && i.g.progress != nil {
		if s, ok := statusLine(message); ok {
			i.g.progress(s)
		}
	}
	i.g.l.Log(i.g.ctx, i.slogLevel(), clean(message))
}

func (i infoLogger) Infof(format string, args ...any) { i.Info(fmt.Sprintf(format, args...)) }

// Enabled is always true at V(0) so status lines reach the progress callback
// even when the slog logger discards.
func (i infoLogger) Enabled() bool {
	return (i.level <= 0 && i.g.progress != nil) || i.g.l.Enabled(i.g.ctx, i.slogLevel())
}

func clean(message string) string { return strings.TrimSpace(message) }
