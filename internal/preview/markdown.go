package preview

import (
	"fmt"
	"strings"
	"time"
)

// Phase is one timed phase of a preview up, as the summary lists it.
type Phase struct {
	Name     string        `json:"name"`
	Duration time.Duration `json:"duration"`
	// Status is done, skipped or failed.
	Status string `json:"status"`
	Detail string `json:"detail,omitempty"`
}

// ServiceURL is where one service of a preview answers.
type ServiceURL struct {
	Service string `json:"service"`
	URL     string `json:"url"`
}

// Report is the outcome of a preview up: what `-o json` prints and what the
// step summary and the PR comment are made of.
type Report struct {
	Env       string        `json:"env"`
	Namespace string        `json:"namespace,omitempty"`
	Repo      string        `json:"repo"`
	PR        int           `json:"pr"`
	SHA       string        `json:"sha,omitempty"`
	Host      string        `json:"host,omitempty"`
	URLs      []ServiceURL  `json:"urls,omitempty"`
	Phases    []Phase       `json:"phases,omitempty"`
	Total     time.Duration `json:"total"`
	ExpiresAt time.Time     `json:"expiresAt,omitzero"`
	// OK is false when the preview did not come up; Error says why and
	// ExitCode is the command's exit code.
	OK       bool   `json:"ok"`
	Error    string `json:"error,omitempty"`
	ExitCode int    `json:"exitCode"`
}

// CommentMarker is the first line of every PR comment body for env: a
// workflow finds its earlier comment by it and edits that one instead of
// adding another on each push.
func CommentMarker(env string) string { return "<!-- devctl-preview:" + env + " -->" }

// Summary is the Markdown for a GitHub step summary ($GITHUB_STEP_SUMMARY).
func (r *Report) Summary() string {
	var b strings.Builder
	r.heading(&b, "###")
	r.urls(&b)
	r.phases(&b)
	r.footer(&b)
	return b.String()
}

// Comment is the Markdown body of a PR comment; its first line is
// CommentMarker(r.Env).
func (r *Report) Comment() string {
	var b strings.Builder
	b.WriteString(CommentMarker(r.Env) + "\n")
	r.heading(&b, "####")
	r.urls(&b)
	b.WriteString("<details><summary>Phases</summary>\n\n")
	r.phases(&b)
	b.WriteString("</details>\n\n")
	r.footer(&b)
	return b.String()
}

func (r *Report) heading(b *strings.Builder, level string) {
	commit := ""
	if r.SHA != "" {
		commit = " at `" + short(r.SHA) + "`"
	}
	if r.OK {
		fmt.Fprintf(b, "%s ✅ Preview `%s` is ready%s (%s)\n\n", level, r.Env, commit, seconds(r.Total))
		return
	}
	fmt.Fprintf(b, "%s ❌ Preview `%s` did not come up%s\n\n", level, r.Env, commit)
	if r.Error != "" {
		fmt.Fprintf(b, "```\n%s\n```\n\n", strings.TrimRight(r.Error, "\n"))
	}
}

func (r *Report) urls(b *strings.Builder) {
	if len(r.URLs) == 0 {
		return
	}
	b.WriteString("| Service | URL |\n|---|---|\n")
	for _, u := range r.URLs {
		fmt.Fprintf(b, "| %s | %s |\n", cell(u.Service), cell(u.URL))
	}
	b.WriteString("\n")
}

func (r *Report) phases(b *strings.Builder) {
	if len(r.Phases) == 0 {
		return
	}
	b.WriteString("| Phase | Time | Result |\n|---|---:|---|\n")
	for _, p := range r.Phases {
		result := p.Status
		if p.Detail != "" {
			result += ": " + p.Detail
		}
		fmt.Fprintf(b, "| %s | %s | %s |\n", cell(p.Name), seconds(p.Duration), cell(result))
	}
	fmt.Fprintf(b, "| **total** | **%s** | |\n\n", seconds(r.Total))
}

func (r *Report) footer(b *strings.Builder) {
	if !r.OK && r.Namespace == "" {
		return // nothing was made: no expiry, nothing to pause
	}
	var parts []string
	if r.OK && !r.ExpiresAt.IsZero() {
		parts = append(parts, "Expires "+r.ExpiresAt.UTC().Format("2006-01-02 15:04 MST")+" (each push extends it)")
	}
	if r.Namespace != "" {
		where := "namespace `" + r.Namespace + "`"
		if r.Host != "" {
			where += " on `" + r.Host + "`"
		}
		parts = append(parts, where)
	}
	if len(parts) > 0 {
		b.WriteString(strings.Join(parts, " · ") + "\n\n")
	}
	fmt.Fprintf(b, "`devctl preview pause --pr %d` stops it until the next push; `devctl preview down --pr %d` deletes it.\n", r.PR, r.PR)
}

func short(sha string) string {
	if len(sha) > 12 {
		return sha[:12]
	}
	return sha
}

func seconds(d time.Duration) string { return fmt.Sprintf("%.1fs", d.Seconds()) }

// cell keeps a value inside one Markdown table cell.
func cell(s string) string {
	s = strings.ReplaceAll(s, "|", `\|`)
	return strings.ReplaceAll(strings.ReplaceAll(s, "\r", ""), "\n", " ")
}
