package policy

import (
	"errors"
	"fmt"
	"strings"
)

// Severity ranks a finding. The zero value is Info.
type Severity int

// Severities, lowest first.
const (
	Info Severity = iota
	Low
	Medium
	High
	Critical
)

// ErrUnknownSeverity is returned by ParseSeverity for a name it does not know.
var ErrUnknownSeverity = errors.New("unknown severity (use info, low, medium, high or critical)")

var severityNames = [...]string{"info", "low", "medium", "high", "critical"}

func (s Severity) String() string {
	if s < Info || s > Critical {
		return fmt.Sprintf("severity(%d)", int(s))
	}
	return severityNames[s]
}

// ParseSeverity parses info, low, medium, high or critical (any case).
// "warning" and "error" are accepted as aliases of medium and high.
func ParseSeverity(s string) (Severity, error) {
	switch v := strings.ToLower(strings.TrimSpace(s)); v {
	case "warning", "warn":
		return Medium, nil
	case "error":
		return High, nil
	default:
		for i, n := range severityNames {
			if v == n {
				return Severity(i), nil
			}
		}
	}
	return Info, fmt.Errorf("parse severity %q: %w", s, ErrUnknownSeverity)
}

// MarshalText implements encoding.TextMarshaler.
func (s Severity) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (s *Severity) UnmarshalText(b []byte) error {
	v, err := ParseSeverity(string(b))
	if err != nil {
		return err
	}
	*s = v
	return nil
}
