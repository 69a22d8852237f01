package policy

import (
	"errors"
	"testing"
)

func TestParseSeverity(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      string
		want    Severity
		wantErr bool
	}{
		{"info", Info, false}, {"LOW", Low, false}, {" medium ", Medium, false}, {"warning", Medium, false},
		{"high", High, false}, {"error", High, false}, {"critical", Critical, false}, {"severe", Info, true},
	}
	for _, tt := range tests {
		got, err := ParseSeverity(tt.in)
		if got != tt.want || (err != nil) != tt.wantErr {
			t.Errorf("ParseSeverity(%q) = %v, %v", tt.in, got, err)
		}
		if tt.wantErr && !errors.Is(err, ErrUnknownSeverity) {
			t.Errorf("ParseSeverity(%q) error %v is not ErrUnknownSeverity", tt.in, err)
		}
		if !tt.wantErr && got.String() != map[Severity]string{Info: "info", Low: "low", Medium: "medium", High: "high", Critical: "critical"}[tt.want] {
			t.Errorf("%v.String() = %q", got, got.String())
		}
	}
}
