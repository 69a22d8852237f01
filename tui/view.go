package tui

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"

	"github.com/devctl/devctl/internal/api"
)

// View renders the screen: a title line, the view tabs, the page and a
// footer with the input, a message or key hints.
func (m *Model) View() tea.View {
	v := tea.NewView(m.Render())
	v.AltScreen = true
	v.WindowTitle = "devctl"
	if m.selected != "" {
		v.WindowTitle = "devctl: " + m.selected
	}
	return v
}

// Render returns the screen as text, exactly height lines of at most width
// cells.
func (m *Model) Render() string {
	if m.quit {
		return ""
	}
	lines := make([]string, 0, m.height)
	lines = append(lines, m.titleLine(), m.tabsLine())
	var body []string
	if m.help {
		body = m.helpBody()
	} else {
		switch m.page {
		case pageEnvs:
			body = m.envsBody()
		case pageResources:
			body = m.resourcesBody()
		case pageLogs:
			body = m.logsBody()
		case pageFindings:
			body = m.scrolled(m.findingLines())
		case pageRebuilds:
			body = m.scrolled(m.rebuildLines())
		case numPages:
		}
	}
	if !m.connected && m.connErr != "" {
		body = append([]string{m.st.bad.Render(fmt.Sprintf("daemon unreachable: %s; reconnecting (attempt %d)", m.connErr, m.attempts))}, body...)
	}
	h := m.bodyHeight()
	if len(body) > h {
		body = body[:h]
	}
	lines = append(lines, body...)
	for len(lines) < m.height-1 {
		lines = append(lines, "")
	}
	lines = append(lines, m.footerLine())
	if len(lines) > m.height {
		lines = lines[:m.height]
	}
	var b strings.Builder
	b.Grow(m.width * m.height)
	for i, l := range lines {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(ansi.Truncate(l, m.width, "…"))
	}
	return b.String()
}

func (m *Model) bodyHeight() int { return max(1, m.height-3) }

func (m *Model) titleLine() string {
	s := m.st.title.Render("devctl")
	if e := m.env(); e != nil {
		s += "  " + m.st.header.Render(e.Name) + "  " + m.phase(e.Status.Phase)
		if run := e.Status.Run; run.Active() {
			for _, st := range run.Steps {
				if st.Status == api.StepRunning {
					s += m.st.dim.Render("  " + string(run.Request.Kind) + ": " + st.Name + "…")
					break
				}
			}
		}
	}
	switch {
	case m.connected && m.health != nil:
		s += m.st.dim.Render(fmt.Sprintf("  │ daemon %s, %d env(s)", m.health.Version, len(m.envs)))
	case m.connErr != "":
		s += "  " + m.st.bad.Render("│ no daemon, reconnecting…")
	default:
		s += m.st.dim.Render("  │ connecting to the daemon…")
	}
	return s
}

func (m *Model) tabsLine() string {
	parts := make([]string, 0, numPages)
	for i, n := range pageNames {
		label := fmt.Sprintf(" %d %s ", i+1, n)
		if page(i) == m.page && !m.help {
			parts = append(parts, m.st.activeTab.Render(label))
		} else {
			parts = append(parts, m.st.tab.Render(label))
		}
	}
	return strings.Join(parts, "")
}

func (m *Model) footerLine() string {
	switch m.mode {
	case inputFilter, inputCommand:
		return m.input.View()
	case inputConfirm:
		return m.st.warn.Render(m.confirm)
	case inputNone:
	}
	if m.flash != "" {
		return m.flash
	}
	hint := "?:help  ::command  tab:views  q:quit"
	switch m.page {
	case pageEnvs:
		hint = "enter:select  u:up  d:down  o:open  " + hint
	case pageResources:
		hint = "enter:logs of the service  " + hint
	case pageLogs:
		hint = "f:follow/pause  /:filter  n/N:errors  s:source  w:wrap  t:time  c:copy  " + hint
	case pageFindings, pageRebuilds, numPages:
	}
	return m.st.dim.Render(hint)
}

func (m *Model) phase(p api.Phase) string {
	switch p {
	case api.PhaseReady:
		return m.st.ok.Render(string(p))
	case api.PhaseFailed:
		return m.st.bad.Render(string(p))
	case api.PhaseUnknown, api.PhaseStopped:
		return m.st.warn.Render(string(p))
	case api.PhasePending, api.PhaseCreating, api.PhaseBuilding, api.PhaseDelivering, api.PhaseDeploying, api.PhaseWaiting, api.PhaseDeleting:
	}
	return m.st.warn.Render(string(p))
}

// table lays out rows in columns; the first row is the header.
func table(rows [][]string) []string {
	var w []int
	for _, r := range rows {
		for i, c := range r {
			if i >= len(w) {
				w = append(w, 0)
			}
			w[i] = max(w[i], ansi.StringWidth(c))
		}
	}
	out := make([]string, len(rows))
	for j, r := range rows {
		var b strings.Builder
		for i, c := range r {
			b.WriteString(c)
			if i < len(r)-1 {
				b.WriteString(strings.Repeat(" ", w[i]-ansi.StringWidth(c)+2))
			}
		}
		out[j] = strings.TrimRight(b.String(), " ")
	}
	return out
}

func (m *Model) highlight(line string, on bool) string {
	if !on {
		return line
	}
	pad := max(0, m.width-ansi.StringWidth(line))
	return m.st.selected.Render(line + strings.Repeat(" ", pad))
}

func age(now, t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	d := now.Sub(t)
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", max(0, int(d.Seconds())))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh", int(d.Hours()))
	}
	return fmt.Sprintf("%dd", int(d.Hours()/24))
}

func dur(d time.Duration) string {
	switch {
	case d <= 0:
		return "-"
	case d < time.Second:
		return fmt.Sprintf("%dms", d.Milliseconds())
	case d < time.Minute:
		return fmt.Sprintf("%.1fs", d.Seconds())
	}
	return d.Round(time.Second).String()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func (m *Model) envsBody() []string {
	if len(m.envs) == 0 {
		if !m.connected {
			return []string{"", "  waiting for the daemon…"}
		}
		return []string{"", "  no environments yet: run `devctl up` in a project (it starts one per git branch)"}
	}
	rows := [][]string{{"  NAME", "BRANCH", "PHASE", "URL", "AGE", "WATCH", "LAST REBUILD", "PROVIDER"}}
	for _, e := range m.envs {
		mark := "  "
		if e.Name == m.opts.Current {
			mark = "* "
		}
		watch := "no"
		if e.Status.Watching {
			watch = "yes"
		}
		last := "-"
		if n := len(e.Status.Rebuilds); n > 0 {
			rb := e.Status.Rebuilds[n-1]
			last = age(m.now, rb.Started) + " ago"
			if rb.Error != "" {
				last += " FAILED"
			} else if rb.SaveToServing > 0 {
				last += " " + dur(rb.SaveToServing)
			}
		}
		url := "-"
		for _, s := range e.Status.Services {
			if s.URL != "" {
				url = s.URL
				break
			}
		}
		rows = append(rows, []string{mark + e.Name, dash(e.Spec.Branch), string(e.Status.Phase), url, age(m.now, e.Status.CreatedAt), watch, last, dash(e.Spec.Provider)})
	}
	if m.width < 100 {
		// Narrow: name, phase and URL first, the rest as far as it fits.
		for i, r := range rows {
			rows[i] = []string{r[0], r[2], r[3], r[4], r[1], r[6]}
		}
	}
	lines := table(rows)
	out := []string{m.st.header.Render(lines[0])}
	for i, l := range lines[1:] {
		e := &m.envs[i]
		if e.Name == m.opts.Current && e.Name != m.selected {
			l = m.st.mark.Render(l)
		}
		out = append(out, m.highlight(l, e.Name == m.selected))
	}
	out = append(out, "")
	if m.opts.Current != "" {
		out = append(out, m.st.dim.Render("  * this directory's branch"))
	}
	if e := m.env(); e != nil {
		out = append(out, m.envDetail(e)...)
	}
	return out
}

func (m *Model) envDetail(e *api.Environment) []string {
	var out []string
	out = append(out, m.st.header.Render(e.Name)+"  "+m.phase(e.Status.Phase)+"  "+dash(e.Status.Message))
	out = append(out, "  project "+dash(e.Spec.Project)+"   dir "+dash(e.Spec.Dir)+"   namespace "+dash(e.Status.Namespace))
	for _, s := range e.Status.Services {
		ready := m.st.warn.Render("not ready")
		if s.Ready {
			ready = m.st.ok.Render("ready")
		}
		line := fmt.Sprintf("  service %s  %s  %s  rev %d", s.Name, ready, dash(s.URL), s.Revision)
		if s.RED != nil {
			red := m.redText(s.RED)
			if ansi.StringWidth(line)+2+ansi.StringWidth(red) > m.width {
				// Narrow: the figures on a line of their own.
				out = append(out, line)
				line = "    " + red
			} else {
				line += "  " + red
			}
		}
		out = append(out, line)
		if len(s.Secrets) > 0 {
			// Wrapped between Secrets, not cut: every name is worth seeing.
			line := "    " + m.st.dim.Render("secrets injected: ")
			parts := secretRefs(s.Secrets)
			for i, p := range parts {
				if i < len(parts)-1 {
					p += ","
				}
				if i > 0 && ansi.StringWidth(line)+1+ansi.StringWidth(p) > m.width {
					out = append(out, line)
					line = "      " + p
					continue
				}
				if i > 0 {
					line += " "
				}
				line += p
			}
			out = append(out, line)
		}
	}
	open, waived := countFindings(e.Status.Findings)
	out = append(out, fmt.Sprintf("  policy: %d finding(s), %d waived (4: findings)", open, waived))
	if run := e.Status.Run; run != nil {
		state := "running"
		if !run.Active() {
			state = "done in " + dur(run.Ended.Sub(run.Started))
		}
		out = append(out, fmt.Sprintf("  run #%d %s (%s): %s", run.ID, run.Request.Kind, dash(run.Request.Reason), state))
		if run.Error != "" {
			out = append(out, m.st.bad.Render("  error: ")+firstLine(run.Error))
		}
	}
	if q := e.Status.Queued; q != nil {
		out = append(out, fmt.Sprintf("  queued: %s (%s)", q.Kind, dash(q.Reason)))
	}
	return out
}

// secretRefs names the Secrets a service reads and how: every key, or
// some env vars (names only; the TUI never sees a value).
func secretRefs(refs []api.SecretRef) []string {
	parts := make([]string, 0, len(refs))
	for _, r := range refs {
		var how []string
		if r.AllKeys {
			how = append(how, "every key")
		}
		switch n := len(r.Env); {
		case n == 1:
			how = append(how, r.Env[0])
		case n > 1:
			how = append(how, fmt.Sprintf("%d env vars", n))
		}
		parts = append(parts, r.Name+" ("+strings.Join(how, ", ")+")")
	}
	return parts
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i] + " …"
	}
	return s
}

func countFindings(fs []api.Finding) (open, waived int) {
	for _, f := range fs {
		if f.Waived {
			waived++
		} else {
			open++
		}
	}
	return open, waived
}

func (m *Model) resourcesBody() []string {
	e := m.env()
	if e == nil {
		return []string{"", "  no environment selected (1: environments)"}
	}
	r := m.res[m.selected]
	var out []string
	if m.resErr != "" {
		out = append(out, m.st.bad.Render("  "+m.resErr))
	}
	if r == nil {
		return append(out, "", "  loading the resources of "+e.Name+"…")
	}
	if len(r.Items) == 0 {
		return append(out, "", "  nothing deployed in "+e.Name+" yet ("+string(e.Status.Phase)+")")
	}
	rows := [][]string{{"  KIND", "NAME", "SERVICE", "READY", "STATUS", "RESTARTS", "AGE", "REASON"}}
	for _, it := range r.Items {
		restarts := "-"
		if it.Kind == api.KindPod {
			restarts = fmt.Sprint(it.Restarts)
		}
		rows = append(rows, []string{"  " + string(it.Kind), it.Name, dash(it.Service), it.Ready, it.Status, restarts, age(m.now, it.Created), firstLine(it.Reason)})
	}
	lines := table(rows)
	out = append(out, m.st.header.Render(lines[0]))
	h := m.bodyHeight() - len(out) - 4
	start := scrollStart(m.cursor[pageResources], len(r.Items), max(1, h))
	for i := start; i < len(r.Items) && i < start+max(1, h); i++ {
		l := lines[i+1]
		if !r.Items[i].OK {
			l = m.st.warn.Render(l)
		}
		out = append(out, m.highlight(l, i == m.cursor[pageResources]))
	}
	out = append(out, m.redLines(e)...)
	if c := m.cursor[pageResources]; c < len(r.Items) {
		it := r.Items[c]
		out = append(out, "")
		if it.OK {
			out = append(out, m.st.ok.Render(fmt.Sprintf("  %s %s is ready (%s)", strings.ToLower(string(it.Kind)), it.Name, it.Ready)))
		} else {
			head := m.st.bad.Render(fmt.Sprintf("  %s %s is not ready:", strings.ToLower(string(it.Kind)), it.Name))
			out = append(out, head)
			for _, l := range strings.Split(ansi.Wordwrap(it.Reason, max(10, m.width-4), " ;,"), "\n") {
				out = append(out, "    "+l)
			}
		}
	}
	return out
}

// redText is a service's RED figures on one line: rate, error ratio and
// latency percentiles.
func (m *Model) redText(r *api.RED) string {
	if r.Requests == 0 {
		return m.st.dim.Render(fmt.Sprintf("no requests in the last %s", window(r.Window)))
	}
	s := fmt.Sprintf("%s req/s  ", rate(r.RatePerSecond)) + m.errRatio(r.ErrorRatio)
	if r.P50 != nil || r.P95 != nil || r.P99 != nil {
		s += fmt.Sprintf("  p50 %s p95 %s p99 %s", latency(r.P50), latency(r.P95), latency(r.P99))
	}
	return s
}

// errRatio is the error ratio in percent, red from 5 %, yellow above 0.
func (m *Model) errRatio(e float64) string {
	s := fmt.Sprintf("%.1f%% errors", e*100)
	switch {
	case e >= 0.05:
		return m.st.bad.Render(s)
	case e > 0:
		return m.st.warn.Render(s)
	}
	return s
}

// redLines is the resources view's traffic table: the RED figures of every
// service that has them (the project's and the platform mocks').
func (m *Model) redLines(e *api.Environment) []string {
	rows := [][]string{{"  SERVICE", "REQ/S", "ERRORS", "P50", "P95", "P99", "REQUESTS", "WINDOW", "SCRAPED"}}
	var errs []float64
	for _, s := range e.Status.Services {
		r := s.RED
		if r == nil {
			continue
		}
		rows = append(rows, []string{"  " + s.Name, rate(r.RatePerSecond), fmt.Sprintf("%.1f%%", r.ErrorRatio*100),
			latency(r.P50), latency(r.P95), latency(r.P99), fmt.Sprintf("%.0f", r.Requests), window(r.Window), age(m.now, r.At) + " ago"})
		errs = append(errs, r.ErrorRatio)
	}
	if len(rows) == 1 {
		return nil
	}
	lines := table(rows)
	out := []string{"", m.st.header.Render("  traffic (RED from each service's /metrics)"), m.st.header.Render(lines[0])}
	for i, l := range lines[1:] {
		switch {
		case errs[i] >= 0.05:
			l = m.st.bad.Render(l)
		case errs[i] > 0:
			l = m.st.warn.Render(l)
		}
		out = append(out, l)
	}
	return out
}

func rate(r float64) string {
	if r >= 100 {
		return fmt.Sprintf("%.0f", r)
	}
	return fmt.Sprintf("%.1f", r)
}

func window(d time.Duration) string {
	d = d.Round(time.Second)
	switch {
	case d <= 0:
		return "-"
	case d%time.Minute == 0:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	}
	return d.String()
}

// latency formats a percentile: "-" when absent, µs below a millisecond.
func latency(d *time.Duration) string {
	switch {
	case d == nil:
		return "-"
	case *d < time.Millisecond:
		return fmt.Sprintf("%dµs", d.Microseconds())
	case *d < 10*time.Millisecond:
		return fmt.Sprintf("%.1fms", float64(*d)/float64(time.Millisecond))
	case *d < time.Second:
		return fmt.Sprintf("%dms", d.Milliseconds())
	}
	return fmt.Sprintf("%.2fs", d.Seconds())
}

func scrollStart(cursor, n, h int) int {
	if n <= h || cursor < h/2 {
		return 0
	}
	return min(cursor-h/2, n-h)
}

func (m *Model) logsBody() []string {
	v := m.view()
	var head strings.Builder
	for i, n := range sourceNames {
		label := n
		if logSource(i) == srcPods && m.logs.service != "" {
			label = "pods of " + m.logs.service
		}
		if logSource(i) == m.logs.source {
			head.WriteString(m.st.activeTab.Render("[" + label + "]"))
		} else {
			head.WriteString(m.st.dim.Render(" " + label + " "))
		}
		head.WriteString(" ")
	}
	if m.logs.follow {
		head.WriteString(m.st.ok.Render(" following"))
	} else {
		head.WriteString(m.st.warn.Render(" paused"))
	}
	if m.logs.filter != nil {
		head.WriteString("  filter /" + m.logs.filterText + "/")
	}
	if m.logs.wrap {
		head.WriteString("  wrap")
	}
	fmt.Fprintf(&head, "  %d/%d lines", v.Len(), m.cur().Cap())
	out := []string{head.String()}
	if m.logs.source == srcPods && m.logs.streamErr != "" {
		out = append(out, m.st.bad.Render("  "+m.logs.streamErr))
	}
	h := m.bodyHeight() - len(out)
	if v.Len() == 0 {
		msg := "  no lines yet"
		switch {
		case m.logs.filter != nil:
			msg = "  no line matches /" + m.logs.filterText + "/ (esc clears the filter)"
		case m.logs.source == srcPods && m.logs.service == "":
			msg = "  the environment has no service running yet"
		}
		return append(out, msg)
	}
	// Walk back from the bottom line until the page is full: only the
	// lines shown are rendered, however many the ring holds.
	var rev []string
	for s := int64(m.bottomSeq()); s >= int64(v.First()) && len(rev) < h; s-- {
		l := v.BySeq(uint64(s))
		parts := m.renderLine(l)
		for i := len(parts) - 1; i >= 0 && len(rev) < h; i-- {
			rev = append(rev, parts[i])
		}
	}
	slices.Reverse(rev)
	return append(out, rev...)
}

// renderLine renders one log line: one row, or several when wrapping.
func (m *Model) renderLine(l *Line) []string {
	var prefix string
	if m.logs.stamps && !l.Time.IsZero() {
		prefix = m.st.dim.Render(l.Time.Format("15:04:05.000")) + " "
	}
	if m.logs.source == srcPods && l.Pod != "" {
		prefix += m.st.pods[m.logs.podColor[l.Pod]].Render(l.Pod) + " │ "
	}
	text := strings.ReplaceAll(l.Text, "\t", "    ")
	switch l.Level {
	case api.LevelError:
		text = m.st.bad.Render(text)
	case api.LevelWarn:
		text = m.st.warn.Render(text)
	case api.LevelDebug, api.LevelInfo:
	}
	line := prefix + text
	if !m.logs.wrap || ansi.StringWidth(line) <= m.width {
		return []string{line}
	}
	return strings.Split(ansi.Hardwrap(line, m.width, true), "\n")
}

// scrolled shows lines from the page's cursor.
func (m *Model) scrolled(lines []string) []string {
	c := m.cursor[m.page]
	h := m.bodyHeight()
	if len(lines) <= h {
		return lines
	}
	c = min(c, len(lines)-h)
	return lines[c:]
}

var severityOrder = []string{"critical", "high", "medium", "low", "info"}

func (m *Model) findingLines() []string {
	e := m.env()
	if e == nil {
		return []string{"", "  no environment selected (1: environments)"}
	}
	if e.Status.Run == nil && len(e.Status.Findings) == 0 {
		return []string{"", "  no render yet: findings appear when " + e.Name + " is rendered"}
	}
	open, waived := countFindings(e.Status.Findings)
	if open+waived == 0 {
		return []string{"", m.st.ok.Render("  ✓ no findings: the last render of " + e.Name + " passes every policy rule"), "",
			m.st.dim.Render("  a new finding after a save shows here by itself")}
	}
	out := []string{fmt.Sprintf("  %d finding(s), %d waived, in the last render of %s", open, waived, e.Name)}
	groups := map[string][]api.Finding{}
	var waivedList []api.Finding
	for _, f := range e.Status.Findings {
		if f.Waived {
			waivedList = append(waivedList, f)
			continue
		}
		groups[strings.ToLower(f.Severity)] = append(groups[strings.ToLower(f.Severity)], f)
	}
	order := slices.Clone(severityOrder)
	for s := range groups {
		if !slices.Contains(order, s) {
			order = append(order, s)
		}
	}
	for _, sev := range order {
		fs := groups[sev]
		if len(fs) == 0 {
			continue
		}
		style := m.st.warn
		if sev == "critical" || sev == "high" {
			style = m.st.bad
		}
		out = append(out, "", style.Render(fmt.Sprintf("%s (%d)", strings.ToUpper(sev), len(fs))))
		for _, f := range fs {
			out = append(out, m.findingRows(e.Spec.Dir, f)...)
		}
	}
	if len(waivedList) > 0 {
		out = append(out, "", m.st.dim.Render(fmt.Sprintf("WAIVED (%d)", len(waivedList))))
		for _, f := range waivedList {
			out = append(out, m.findingRows(e.Spec.Dir, f)...)
			who, until := "-", "no expiry"
			if w := f.Waiver; w != nil {
				who = dash(w.Approver)
				if !w.Expires.IsZero() {
					until = "until " + w.Expires.Format(time.DateOnly)
				}
				if w.Reason != "" {
					until += ": " + w.Reason
				}
			}
			out = append(out, m.st.dim.Render("      waived by "+who+", "+until))
		}
	}
	return out
}

// findingRows renders a finding: rule and object, file:line (relative to
// the project) and field, message, fix.
func (m *Model) findingRows(dir string, f api.Finding) []string {
	out := []string{fmt.Sprintf("  %s  %s", m.st.header.Render(f.Rule), f.Object)}
	loc := dash(f.Source)
	if dir != "" {
		loc = strings.TrimPrefix(loc, strings.TrimSuffix(dir, "/")+"/")
	}
	if f.Path != "" {
		loc += "  " + f.Path
	}
	out = append(out, "      "+loc, "      "+f.Message)
	if f.Fix != "" {
		out = append(out, m.st.ok.Render("      fix: ")+f.Fix)
	}
	return out
}

// percentile is the p-th percentile (0..100) of ds, nearest rank.
func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	i := int(float64(len(s))*p/100+0.999999) - 1
	return s[max(0, min(i, len(s)-1))]
}

func (m *Model) rebuildLines() []string {
	e := m.env()
	if e == nil {
		return []string{"", "  no environment selected (1: environments)"}
	}
	var out []string
	rbs := e.Status.Rebuilds
	var ok []time.Duration
	var lastErr *api.Rebuild
	for i := range rbs {
		if rbs[i].Error == "" && rbs[i].SaveToServing > 0 {
			ok = append(ok, rbs[i].SaveToServing)
		}
		if rbs[i].Error != "" {
			lastErr = &rbs[i]
		}
	}
	if len(rbs) == 0 {
		w := "not watched: `devctl up --watch` rebuilds on save"
		if e.Status.Watching {
			w = "watching " + e.Spec.Dir + ": save a file to rebuild"
		}
		out = append(out, "  no rebuilds yet ("+w+")")
	} else {
		out = append(out, fmt.Sprintf("  %d rebuild(s); save → serving p50 %s  p95 %s (of %d that served)",
			len(rbs), dur(percentile(ok, 50)), dur(percentile(ok, 95)), len(ok)))
		rows := [][]string{{"  RUN", "AGO", "SERVICES", "MODE", "SAVE→SERVING", "PHASES", "REASON"}}
		for i := len(rbs) - 1; i >= 0; i-- {
			rb := rbs[i]
			var ph []string
			for _, p := range rb.Phases {
				ph = append(ph, p.Name+" "+dur(p.Duration))
			}
			sts := dur(rb.SaveToServing)
			if rb.Error != "" {
				sts = "FAILED"
			}
			rows = append(rows, []string{fmt.Sprintf("  #%d", rb.Run), age(m.now, rb.Started), strings.Join(rb.Services, ","), rb.Mode, sts, strings.Join(ph, " "), dash(rb.Reason)})
		}
		lines := table(rows)
		out = append(out, m.st.header.Render(lines[0]))
		for i, l := range lines[1:] {
			if rbs[len(rbs)-1-i].Error != "" {
				l = m.st.bad.Render(l)
			}
			out = append(out, l)
		}
	}
	if lastErr != nil {
		out = append(out, "", m.st.bad.Render(fmt.Sprintf("last build error (run #%d, %s ago; the previous version kept serving):", lastErr.Run, age(m.now, lastErr.Started))))
		for _, l := range strings.Split(strings.TrimRight(lastErr.Error, "\n"), "\n") {
			out = append(out, "  "+l)
		}
	}
	if run := e.Status.Run; run != nil {
		state := "running"
		if !run.Active() {
			state = "took " + dur(run.Ended.Sub(run.Started))
		}
		out = append(out, "", m.st.header.Render(fmt.Sprintf("last run #%d: %s (%s), %s", run.ID, run.Request.Kind, dash(run.Request.Reason), state)))
		for _, st := range run.Steps {
			mark := map[api.StepStatus]string{api.StepDone: m.st.ok.Render("✓"), api.StepFailed: m.st.bad.Render("✗"), api.StepSkipped: m.st.dim.Render("–"), api.StepRunning: m.st.warn.Render("…")}[st.Status]
			d := dur(st.Duration)
			if st.Status == api.StepRunning {
				d = dur(m.now.Sub(st.Started))
			}
			out = append(out, fmt.Sprintf("  %s %-8s %7s  %s", mark, st.Name, d, st.Detail))
		}
		if run.Error != "" {
			out = append(out, m.st.bad.Render("  error:"))
			for _, l := range strings.Split(strings.TrimRight(run.Error, "\n"), "\n") {
				out = append(out, "    "+l)
			}
		}
	}
	return out
}

func (m *Model) helpBody() []string {
	out := []string{m.st.header.Render("  keys") + m.st.dim.Render("  (any key closes this)")}
	rows := [][]string{}
	for _, b := range m.keys.all() {
		h := b.Help()
		rows = append(rows, []string{"  " + h.Key, h.Desc})
	}
	lines := table(rows)
	h := m.bodyHeight() - 1
	if len(lines) <= h {
		return append(out, lines...)
	}
	// Two columns when one does not fit.
	half := (len(lines) + 1) / 2
	colW := m.width / 2
	for i := 0; i < half; i++ {
		l := ansi.Truncate(lines[i], colW-1, "…")
		l += strings.Repeat(" ", max(0, colW-ansi.StringWidth(l)))
		if i+half < len(lines) {
			l += ansi.Truncate(lines[i+half], colW, "…")
		}
		out = append(out, l)
	}
	return out
}
