package policy

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// ErrInvalidWaivers is returned for a waivers file that cannot be used.
var ErrInvalidWaivers = errors.New("invalid waivers file")

// ExpiryWarning is how close to its expiry a waiver starts to warn.
const ExpiryWarning = 14 * 24 * time.Hour

// Waiver accepts a rule's findings on one target for a while, with an
// owner and a reason. Waivers live in a file in the repository (reviewed
// like code), not in annotations on the objects.
type Waiver struct {
	Rule     string       `yaml:"rule" json:"rule"`
	Target   WaiverTarget `yaml:"target" json:"target"`
	Reason   string       `yaml:"reason" json:"reason"`
	Ticket   string       `yaml:"ticket" json:"ticket,omitempty"`
	Approver string       `yaml:"approver" json:"approver"`
	// Expires is a date (2026-12-31) or an RFC 3339 time; a date waives
	// through the end of that day (UTC).
	Expires string `yaml:"expires" json:"expires"`

	expires time.Time
}

// WaiverTarget selects the objects a waiver applies to; empty fields
// match anything.
type WaiverTarget struct {
	Kind      string `yaml:"kind" json:"kind,omitempty"`
	Namespace string `yaml:"namespace" json:"namespace,omitempty"`
	Name      string `yaml:"name" json:"name,omitempty"`
	Container string `yaml:"container" json:"container,omitempty"`
}

// WaiverStatus says what a waiver did for a finding.
type WaiverStatus string

// Waiver statuses.
const (
	WaiverActive   WaiverStatus = "active"   // the finding is waived
	WaiverExpiring WaiverStatus = "expiring" // waived, expires within ExpiryWarning
	WaiverExpired  WaiverStatus = "expired"  // no longer waives
	WaiverRejected WaiverStatus = "rejected" // the rule is strict and cannot be waived locally
)

// WaiverRef is attached to a finding a waiver matched.
type WaiverRef struct {
	Status   WaiverStatus `json:"status"`
	Reason   string       `json:"reason"`
	Ticket   string       `json:"ticket,omitempty"`
	Approver string       `json:"approver"`
	Expires  time.Time    `json:"expires"`
	// Note explains expired, expiring and rejected waivers.
	Note string `json:"note,omitempty"`
}

type waiverFile struct {
	Waivers []Waiver `yaml:"waivers"`
}

// LoadWaivers reads a waivers file:
//
//	waivers:
//	- rule: read-only-root-filesystem
//	  target: {kind: Deployment, name: web, container: app}
//	  reason: the JVM writes to /app/tmp until PLAT-42 lands
//	  ticket: PLAT-42
//	  approver: alice@example.com
//	  expires: 2026-12-31
func LoadWaivers(path string) ([]Waiver, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read waivers %q: %w", path, err)
	}
	return ParseWaivers(path, b)
}

// ParseWaivers parses the content of a waivers file (see LoadWaivers).
func ParseWaivers(name string, b []byte) ([]Waiver, error) {
	var f waiverFile
	dec := yaml.NewDecoder(strings.NewReader(string(b)))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil && err.Error() != "EOF" {
		return nil, fmt.Errorf("parse waivers %q: %w: %w", name, ErrInvalidWaivers, err)
	}
	for i := range f.Waivers {
		w := &f.Waivers[i]
		var missing []string
		for _, kv := range [][2]string{{"rule", w.Rule}, {"reason", w.Reason}, {"approver", w.Approver}, {"expires", w.Expires}} {
			if strings.TrimSpace(kv[1]) == "" {
				missing = append(missing, kv[0])
			}
		}
		if len(missing) > 0 {
			return nil, fmt.Errorf("parse waivers %q: waiver %d (rule %q): %w: set %s", name, i+1, w.Rule, ErrInvalidWaivers, strings.Join(missing, ", "))
		}
		t, err := parseExpiry(w.Expires)
		if err != nil {
			return nil, fmt.Errorf("parse waivers %q: waiver %d (rule %q): %w: expires %q: use YYYY-MM-DD or RFC 3339", name, i+1, w.Rule, ErrInvalidWaivers, w.Expires)
		}
		w.expires = t
	}
	return f.Waivers, nil
}

func parseExpiry(s string) (time.Time, error) {
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t.Add(24*time.Hour - time.Nanosecond), nil
	}
	return time.Parse(time.RFC3339, s)
}

func (w *Waiver) matches(f *Finding) bool {
	t := w.Target
	return w.Rule == f.Rule &&
		(t.Kind == "" || strings.EqualFold(t.Kind, f.Object.Kind)) &&
		(t.Namespace == "" || t.Namespace == f.Object.Namespace) &&
		(t.Name == "" || t.Name == f.Object.Name) &&
		(t.Container == "" || t.Container == f.Container)
}

// applyWaivers splits findings into the ones that still count and the
// waived ones; every finding a waiver touched carries a WaiverRef.
func applyWaivers(findings []Finding, waivers []Waiver, strict func(rule string) bool, now time.Time) (active, waived []Finding) {
	if len(waivers) == 0 {
		return findings, nil
	}
	active = make([]Finding, 0, len(findings))
	for _, f := range findings {
		var w *Waiver
		for i := range waivers {
			if waivers[i].matches(&f) {
				w = &waivers[i]
				break
			}
		}
		if w == nil {
			active = append(active, f)
			continue
		}
		ref := &WaiverRef{Status: WaiverActive, Reason: w.Reason, Ticket: w.Ticket, Approver: w.Approver, Expires: w.expires}
		f.Waiver = ref
		switch {
		case strict(f.Rule):
			ref.Status = WaiverRejected
			ref.Note = fmt.Sprintf("waiver rejected: rule %s is enforced by the platform and cannot be waived locally; ask the platform team for an exception", f.Rule)
			active = append(active, f)
		case !now.Before(w.expires):
			ref.Status = WaiverExpired
			ref.Note = fmt.Sprintf("waiver expired on %s; renew it (new expiry and approver) or fix the finding", w.expires.Format(time.DateOnly))
			active = append(active, f)
		case w.expires.Sub(now) <= ExpiryWarning:
			ref.Status = WaiverExpiring
			ref.Note = fmt.Sprintf("waiver expires on %s (in %d days)", w.expires.Format(time.DateOnly), int(w.expires.Sub(now).Hours()/24))
			waived = append(waived, f)
		default:
			waived = append(waived, f)
		}
	}
	return active, waived
}
