// Package tui is devctl's terminal UI: environments of every project the
// daemon knows, the resources, logs, policy findings and rebuilds of the
// selected one. It is a client of the daemon's HTTP API and event stream
// and nothing else: every call to the daemon runs in a tea.Cmd, Update only
// changes state.
package tui

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"charm.land/bubbles/v2/key"
	"charm.land/bubbles/v2/textinput"
	tea "charm.land/bubbletea/v2"

	"github.com/devctl/devctl/internal/api"
)

type page int

const (
	pageEnvs page = iota
	pageResources
	pageLogs
	pageFindings
	pageRebuilds
	numPages
)

var pageNames = [numPages]string{"Environments", "Resources", "Logs", "Findings", "Rebuilds"}

type logSource int

const (
	srcPods logSource = iota
	srcBuild
	srcDevctl
	numSources
)

var sourceNames = [numSources]string{"pods", "build", "devctl"}

type inputMode int

const (
	inputNone inputMode = iota
	inputFilter
	inputCommand
	inputConfirm
)

// Options configure a Model.
type Options struct {
	// Env is the environment to select first.
	Env string
	// Current is the environment of the directory the TUI started in; it
	// is marked in the list.
	Current string
	// NoColor renders without colour (NO_COLOR).
	NoColor bool
	// RingSize is how many lines each log source keeps (default 10,000).
	RingSize int
	// Now is the clock (tests fix it).
	Now func() time.Time
}

// envLogs are the daemon's own lines of one environment.
type envLogs struct{ build, devctl *Ring }

type logState struct {
	source  logSource
	service string
	env     string // the environment the pod stream is for
	// streamID numbers pod log streams; lines of an older one are dropped.
	streamID  int
	streaming bool
	cancel    context.CancelFunc
	streamErr string
	lines     <-chan string

	pods     *Ring
	envRings map[string]*envLogs

	follow bool
	anchor uint64 // the line at the bottom when paused (a number in view())

	filter     *regexp.Regexp
	filterText string
	matched    *Ring

	wrap, stamps bool
	podColor     map[string]int
}

// Model is the TUI's state. Create it with New.
type Model struct {
	ctx  context.Context
	d    Daemon
	opts Options
	keys keyMap
	st   styles

	width, height int
	page          page

	connected bool
	health    *api.Health
	connErr   string
	attempts  int
	stream    <-chan api.Event
	streamEnd func() error

	envs     []api.Environment
	selected string
	cursor   [numPages]int

	runs map[string]*runMark // per environment

	res        map[string]*api.Resources
	resErr     string
	resTicking bool

	logs logState

	mode       inputMode
	input      textinput.Model
	confirm    string
	confirmCmd tea.Cmd

	help  bool
	flash string
	now   time.Time
	quit  bool
}

// New returns the TUI's model for a daemon.
func New(ctx context.Context, d Daemon, o Options) *Model {
	if o.RingSize <= 0 {
		o.RingSize = 10000
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	in := textinput.New()
	in.CharLimit = 256
	m := &Model{
		ctx: ctx, d: d, opts: o, keys: newKeyMap(), st: newStyles(o.NoColor),
		width: 80, height: 24, res: map[string]*api.Resources{}, input: in,
		selected: o.Env, now: o.Now(),
	}
	m.logs = logState{
		pods: NewRing(o.RingSize), envRings: map[string]*envLogs{}, follow: true,
		podColor: map[string]int{},
	}
	return m
}

// Init connects to the daemon.
func (m *Model) Init() tea.Cmd {
	return tea.Batch(connect(m.ctx, m.d), tickClock())
}

// Goodbye is what to print when the TUI has quit.
func (m *Model) Goodbye() string {
	if e := m.env(); e != nil {
		return fmt.Sprintf("Left the TUI; %s keeps running.\n  back:    devctl tui %s\n  stop it: devctl down %s\n", e.Name, e.Name, e.Name)
	}
	return "Left the TUI; nothing was stopped.\n  back: devctl tui\n"
}

// Update applies a message. It does no I/O.
func (m *Model) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	switch msg := msg.(type) {
	case tea.WindowSizeMsg:
		m.width, m.height = msg.Width, msg.Height
		return m, nil
	case tea.KeyPressMsg:
		return m, m.handleKey(msg)
	case tea.PasteMsg:
		if m.mode == inputFilter || m.mode == inputCommand {
			var cmd tea.Cmd
			m.input, cmd = m.input.Update(msg)
			return m, cmd
		}
		return m, nil
	case clockMsg:
		m.now = time.Time(msg)
		return m, tickClock()
	case connectedMsg:
		m.connected, m.health, m.connErr, m.attempts = true, msg.health, "", 0
		m.stream, m.streamEnd = msg.events, msg.end
		// The snapshots that open the stream bring every environment again.
		m.envs = nil
		m.logs.streaming = false
		if m.flash == flashGone {
			m.flash = "reconnected to the daemon"
		}
		return m, waitEvents(msg.events, msg.end)
	case disconnectedMsg:
		wasConnected := m.connected || m.attempts == 0
		m.connected = false
		m.connErr = msg.err.Error()
		m.attempts++
		m.stopLogs()
		if wasConnected && m.health != nil {
			m.flash = flashGone
		}
		return m, reconnectAfter(backoff(m.attempts - 1))
	case reconnectMsg:
		return m, connect(m.ctx, m.d)
	case eventsMsg:
		for i := range msg.events {
			m.apply(&msg.events[i])
		}
		m.settleSelection()
		cmds := []tea.Cmd{waitEvents(msg.stream, m.streamEnd), m.ensureLogs()}
		return m, tea.Batch(cmds...)
	case resourcesMsg:
		if msg.err != nil {
			m.resErr = msg.err.Error()
		} else {
			m.resErr = ""
			m.res[msg.env] = msg.res
		}
		return m, nil
	case resourcesTickMsg:
		if m.page != pageResources || !m.connected || m.selected == "" {
			m.resTicking = false
			return m, nil
		}
		return m, tea.Batch(fetchResources(m.ctx, m.d, m.selected), tickResources())
	case logStreamMsg:
		if msg.id != m.logs.streamID {
			return m, nil
		}
		if msg.err != nil {
			m.logs.streaming = false
			m.logs.streamErr = msg.err.Error()
			return m, tea.Tick(2*time.Second, func(time.Time) tea.Msg { return logRetryMsg{id: msg.id} })
		}
		m.logs.streamErr = ""
		m.logs.lines = msg.lines
		return m, waitLogs(msg.id, msg.lines)
	case logLinesMsg:
		if msg.id != m.logs.streamID {
			return m, nil
		}
		m.addPodLines(msg.lines, msg.at)
		if msg.done {
			// The pods went away (a rollout, a restart): open the stream
			// again for the new ones.
			m.logs.streaming = false
			return m, tea.Tick(time.Second, func(time.Time) tea.Msg { return logRetryMsg{id: msg.id} })
		}
		return m, m.continueLogs(msg.id)
	case logRetryMsg:
		if msg.id != m.logs.streamID {
			return m, nil
		}
		return m, m.ensureLogs()
	case actionMsg:
		if msg.err != nil {
			m.flash = msg.what + ": " + msg.err.Error()
		} else {
			m.flash = msg.what + ": asked; the list shows how it goes"
		}
		return m, nil
	}
	if m.mode == inputFilter || m.mode == inputCommand {
		var cmd tea.Cmd
		m.input, cmd = m.input.Update(msg)
		return m, cmd
	}
	return m, nil
}

type logRetryMsg struct{ id int }

const flashGone = "the daemon went away; reconnecting"

// continueLogs re-arms the reader of the open pod stream.
func (m *Model) continueLogs(id int) tea.Cmd {
	ch := m.logs.lines
	if ch == nil {
		return nil
	}
	return waitLogs(id, ch)
}

// apply folds one event into the state.
func (m *Model) apply(ev *api.Event) {
	switch ev.Type {
	case api.EventSnapshot, api.EventEnv:
		if ev.Environment == nil {
			return
		}
		i, found := slices.BinarySearchFunc(m.envs, ev.Environment.Name, func(e api.Environment, n string) int { return strings.Compare(e.Name, n) })
		if found {
			m.envs[i] = *ev.Environment
		} else {
			m.envs = slices.Insert(m.envs, i, *ev.Environment)
		}
		m.noteSteps(ev.Environment)
	case api.EventDeleted:
		m.envs = slices.DeleteFunc(m.envs, func(e api.Environment) bool { return e.Name == ev.Env })
		delete(m.res, ev.Env)
		delete(m.runs, ev.Env)
		delete(m.logs.envRings, ev.Env)
	case api.EventLog:
		m.addEventLine(ev)
	}
}

// runMark is what the devctl log source has said about an environment's run.
type runMark struct {
	run     int64
	started map[string]bool
	steps   map[string]bool
	ended   bool
}

// noteSteps adds devctl's own lines for the steps of the environment's run
// that started or ended since the last event: the devctl source tells a
// run's story even when the TUI attached after it began.
func (m *Model) noteSteps(e *api.Environment) {
	run := e.Status.Run
	if run == nil {
		return
	}
	if m.runs == nil {
		m.runs = map[string]*runMark{}
	}
	mk := m.runs[e.Name]
	el := m.envLogs(e.Name)
	push := func(t time.Time, lvl api.Level, text string) {
		l := Line{Time: t, Level: lvl, Text: text}
		el.devctl.Push(l)
		if e.Name == m.selected && m.logs.source == srcDevctl && m.logs.filter != nil && m.logs.filter.MatchString(text) {
			m.logs.matched.Push(l)
		}
	}
	if mk == nil || mk.run != run.ID {
		mk = &runMark{run: run.ID, started: map[string]bool{}, steps: map[string]bool{}}
		m.runs[e.Name] = mk
		push(run.Started, api.LevelInfo, fmt.Sprintf("run #%d %s (%s) started", run.ID, run.Request.Kind, dash(run.Request.Reason)))
	}
	for _, st := range run.Steps {
		switch st.Status {
		case api.StepRunning:
			if !mk.started[st.Name] && !mk.steps[st.Name] {
				mk.started[st.Name] = true
				push(st.Started, api.LevelInfo, st.Name+": started")
			}
		case api.StepDone, api.StepSkipped, api.StepFailed:
			if mk.steps[st.Name] {
				continue
			}
			mk.steps[st.Name] = true
			lvl, what := api.LevelInfo, string(st.Status)
			if st.Status == api.StepFailed {
				lvl = api.LevelError
			}
			text := fmt.Sprintf("%s: %s in %s", st.Name, what, dur(st.Duration))
			if st.Detail != "" {
				text += ": " + st.Detail
			}
			push(st.Started.Add(st.Duration), lvl, text)
		}
	}
	if !run.Active() && !mk.ended {
		mk.ended = true
		if run.Error != "" {
			push(run.Ended, api.LevelError, fmt.Sprintf("run #%d failed after %s: %s", run.ID, dur(run.Ended.Sub(run.Started)), run.Error))
		} else {
			push(run.Ended, api.LevelInfo, fmt.Sprintf("run #%d ended in %s: %s", run.ID, dur(run.Ended.Sub(run.Started)), e.Status.Phase))
		}
	}
}

func (m *Model) envLogs(env string) *envLogs {
	el := m.logs.envRings[env]
	if el == nil {
		size := min(m.opts.RingSize, 5000)
		el = &envLogs{build: NewRing(size), devctl: NewRing(size)}
		m.logs.envRings[env] = el
	}
	return el
}

func (m *Model) addEventLine(ev *api.Event) {
	el := m.envLogs(ev.Env)
	text := ev.Message
	if ev.Step != "" {
		text = ev.Step + ": " + text
	}
	if ev.Service != "" && ev.Source == api.SourceBuild {
		text = ev.Service + ": " + ev.Message
	}
	l := Line{Time: ev.Time, Level: ev.Level, Text: text}
	src := srcDevctl
	switch ev.Source {
	case api.SourceBuild:
		el.build.Push(l)
		src = srcBuild
	case api.SourcePod:
		l.Pod = ev.Service
		if ev.Env == m.selected {
			m.pushPod(l)
		}
		return
	case api.SourceProgress, api.SourcePolicy, api.SourceConfig:
		el.devctl.Push(l)
	default:
		el.devctl.Push(l)
	}
	if ev.Env == m.selected && m.logs.source == src && m.logs.filter != nil && m.logs.filter.MatchString(l.Text) {
		m.logs.matched.Push(l)
	}
}

var errLine = regexp.MustCompile(`(?i)\b(error|err|panic|fatal|exception|fail(ed|ure)?)\b`)

// addPodLines adds lines of the pod stream ("pod | text" when the service
// has several pods).
func (m *Model) addPodLines(lines []string, at time.Time) {
	for _, s := range lines {
		pod, text := m.logs.service, s
		if i := strings.Index(s, " | "); i > 0 && !strings.ContainsAny(s[:i], " \t") {
			pod, text = s[:i], s[i+3:]
		}
		l := Line{Time: at, Pod: pod, Text: text, Level: api.LevelInfo}
		if errLine.MatchString(text) {
			l.Level = api.LevelError
		}
		m.pushPod(l)
	}
}

func (m *Model) pushPod(l Line) {
	if _, ok := m.logs.podColor[l.Pod]; !ok {
		m.logs.podColor[l.Pod] = len(m.logs.podColor) % len(m.st.pods)
	}
	m.logs.pods.Push(l)
	if m.logs.source == srcPods && m.logs.filter != nil && m.logs.filter.MatchString(l.Text) {
		m.logs.matched.Push(l)
	}
}

// settleSelection keeps the selection on an environment that exists.
func (m *Model) settleSelection() {
	if len(m.envs) == 0 {
		return
	}
	if m.env() != nil {
		m.cursor[pageEnvs] = m.envIndex(m.selected)
		return
	}
	pick := m.envs[0].Name
	for _, want := range []string{m.opts.Env, m.opts.Current} {
		if want != "" && m.envIndex(want) >= 0 {
			pick = want
			break
		}
	}
	m.selectEnv(pick)
}

func (m *Model) envIndex(name string) int {
	for i := range m.envs {
		if m.envs[i].Name == name {
			return i
		}
	}
	return -1
}

// env is the selected environment, or nil.
func (m *Model) env() *api.Environment {
	if i := m.envIndex(m.selected); i >= 0 {
		return &m.envs[i]
	}
	return nil
}

func (m *Model) selectEnv(name string) {
	if name == m.selected && m.logs.env == name {
		return
	}
	m.selected = name
	m.cursor[pageEnvs] = max(0, m.envIndex(name))
	m.cursor[pageResources] = 0
	m.cursor[pageFindings] = 0
	m.cursor[pageRebuilds] = 0
	m.logs.service = ""
	m.stopLogs()
	m.logs.pods.Reset()
	m.logs.podColor = map[string]int{}
	m.resetLogView()
}

// stopLogs ends the pod log stream, if any.
func (m *Model) stopLogs() {
	if m.logs.cancel != nil {
		m.logs.cancel()
		m.logs.cancel = nil
	}
	m.logs.streamID++
	m.logs.streaming = false
	m.logs.lines = nil
}

// ensureLogs opens the pod log stream of the selected service when the
// environment has one ready and no stream is open.
func (m *Model) ensureLogs() tea.Cmd {
	e := m.env()
	if e == nil || !m.connected || len(e.Status.Services) == 0 {
		return nil
	}
	if m.logs.service == "" || e.Status.Service(m.logs.service) == nil {
		if m.logs.service != "" {
			m.stopLogs()
		}
		m.logs.service = e.Status.Services[0].Name
	}
	if m.logs.streaming && m.logs.env == e.Name {
		return nil
	}
	switch e.Status.Phase {
	case api.PhasePending, api.PhaseCreating, api.PhaseDeleting, api.PhaseStopped:
		// No pods to follow yet, or not any more (or the cluster is stopped).
		return nil
	case api.PhaseBuilding, api.PhaseDelivering, api.PhaseDeploying, api.PhaseWaiting, api.PhaseReady, api.PhaseFailed, api.PhaseUnknown:
		// A failed environment's crashing pod is what the logs are for.
	}
	m.stopLogs()
	ctx, cancel := context.WithCancel(m.ctx)
	m.logs.cancel = cancel
	m.logs.streaming = true
	m.logs.env = e.Name
	return openLogs(ctx, m.d, m.logs.streamID, e.Name, m.logs.service)
}

// cur is the ring of the log source shown.
func (m *Model) cur() *Ring {
	switch m.logs.source {
	case srcBuild, srcDevctl:
		el := m.envLogs(m.selected)
		if m.logs.source == srcBuild {
			return el.build
		}
		return el.devctl
	case srcPods, numSources:
	}
	return m.logs.pods
}

// view is the ring the log view pages through: the matching lines when
// filtering.
func (m *Model) view() *Ring {
	if m.logs.filter != nil {
		return m.logs.matched
	}
	return m.cur()
}

func (m *Model) resetLogView() {
	m.logs.follow = true
	m.rebuildMatches()
}

func (m *Model) rebuildMatches() {
	if m.logs.filter == nil {
		m.logs.matched = nil
		return
	}
	r := m.cur()
	m.logs.matched = NewRing(r.Cap())
	for i := 0; i < r.Len(); i++ {
		if l := r.At(i); m.logs.filter.MatchString(l.Text) {
			m.logs.matched.Push(*l)
		}
	}
}

func (m *Model) setPage(p page) tea.Cmd {
	m.page = (p + numPages) % numPages
	m.flash = ""
	switch m.page {
	case pageResources:
		if !m.resTicking && m.selected != "" && m.connected {
			m.resTicking = true
			return tea.Batch(fetchResources(m.ctx, m.d, m.selected), tickResources())
		}
	case pageLogs:
		return m.ensureLogs()
	case pageEnvs, pageFindings, pageRebuilds, numPages:
	}
	return nil
}

func (m *Model) handleKey(msg tea.KeyPressMsg) tea.Cmd {
	k := m.keys
	if msg.String() == "ctrl+c" {
		return m.quitCmd()
	}
	switch m.mode {
	case inputConfirm:
		m.mode = inputNone
		if msg.String() == "y" || msg.String() == "Y" {
			cmd := m.confirmCmd
			m.confirmCmd, m.confirm = nil, ""
			return cmd
		}
		m.confirmCmd, m.confirm = nil, ""
		m.flash = "cancelled"
		return nil
	case inputFilter, inputCommand:
		switch msg.String() {
		case "esc":
			if m.mode == inputFilter {
				m.setFilter("")
			}
			m.mode = inputNone
			m.input.Blur()
			return nil
		case "enter":
			mode, val := m.mode, strings.TrimSpace(m.input.Value())
			m.mode = inputNone
			m.input.Blur()
			if mode == inputFilter {
				m.setFilter(val)
				return nil
			}
			return m.runCommand(val)
		}
		var cmd tea.Cmd
		m.input, cmd = m.input.Update(msg)
		if m.mode == inputFilter {
			// Filter as the user types; a half-typed expression that does
			// not compile keeps the last one.
			m.setFilterLive(m.input.Value())
		}
		return cmd
	case inputNone:
	}
	if m.help {
		m.help = false
		if key.Matches(msg, k.Quit) && msg.String() != "q" {
			return m.quitCmd()
		}
		return nil
	}
	switch {
	case key.Matches(msg, k.Quit):
		return m.quitCmd()
	case key.Matches(msg, k.Help):
		m.help = true
		return nil
	case key.Matches(msg, k.Command):
		return m.startInput(inputCommand, ":", "")
	case key.Matches(msg, k.Filter):
		if m.page != pageLogs {
			cmd := m.setPage(pageLogs)
			return tea.Batch(cmd, m.startInput(inputFilter, "/", m.logs.filterText))
		}
		return m.startInput(inputFilter, "/", m.logs.filterText)
	case key.Matches(msg, k.Clear):
		m.flash = ""
		if m.logs.filter != nil && m.page == pageLogs {
			m.setFilter("")
		}
		return nil
	case key.Matches(msg, k.NextPage):
		return m.setPage(m.page + 1)
	case key.Matches(msg, k.PrevPage):
		return m.setPage(m.page - 1)
	case key.Matches(msg, k.Envs):
		return m.setPage(pageEnvs)
	case key.Matches(msg, k.Resources):
		return m.setPage(pageResources)
	case key.Matches(msg, k.Logs):
		return m.setPage(pageLogs)
	case key.Matches(msg, k.Findings):
		return m.setPage(pageFindings)
	case key.Matches(msg, k.Rebuilds):
		return m.setPage(pageRebuilds)
	}
	if m.page == pageLogs {
		return m.logKey(msg)
	}
	switch {
	case key.Matches(msg, k.Up):
		m.move(-1)
	case key.Matches(msg, k.Down):
		m.move(1)
	case key.Matches(msg, k.PageUp):
		m.move(-m.bodyHeight())
	case key.Matches(msg, k.PageDown):
		m.move(m.bodyHeight())
	case key.Matches(msg, k.Top):
		m.move(-1 << 30)
	case key.Matches(msg, k.Bottom):
		m.move(1 << 30)
	case key.Matches(msg, k.Select):
		return m.choose()
	case key.Matches(msg, k.EnvUp):
		return m.askUp()
	case key.Matches(msg, k.EnvDown):
		return m.askDown()
	case key.Matches(msg, k.Open):
		return m.open()
	}
	return nil
}

func (m *Model) quitCmd() tea.Cmd {
	m.quit = true
	m.stopLogs()
	return tea.Quit
}

func (m *Model) startInput(mode inputMode, prompt, value string) tea.Cmd {
	m.mode = mode
	m.input.Prompt = prompt
	m.input.SetValue(value)
	m.input.CursorEnd()
	return m.input.Focus()
}

// move moves the cursor of the page.
func (m *Model) move(delta int) {
	n := m.rows()
	c := m.cursor[m.page] + delta
	c = max(0, min(c, n-1))
	m.cursor[m.page] = c
	if m.page == pageEnvs && c >= 0 && c < len(m.envs) {
		m.selectEnv(m.envs[c].Name)
	}
}

// rows is how many rows the page's cursor moves over.
func (m *Model) rows() int {
	switch m.page {
	case pageEnvs:
		return len(m.envs)
	case pageResources:
		if r := m.res[m.selected]; r != nil {
			return len(r.Items)
		}
	case pageFindings:
		return len(m.findingLines())
	case pageRebuilds:
		return len(m.rebuildLines())
	case pageLogs, numPages:
	}
	return 0
}

func (m *Model) choose() tea.Cmd {
	switch m.page {
	case pageEnvs:
		if len(m.envs) == 0 {
			return nil
		}
		return m.setPage(pageResources)
	case pageResources:
		r := m.res[m.selected]
		e := m.env()
		if r == nil || e == nil || m.cursor[pageResources] >= len(r.Items) {
			return nil
		}
		svc := r.Items[m.cursor[pageResources]].Service
		if e.Status.Service(svc) == nil {
			m.flash = fmt.Sprintf("%s is not a service of the project: its logs are in `kubectl logs`", svc)
			return nil
		}
		return m.showServiceLogs(svc)
	case pageLogs, pageFindings, pageRebuilds, numPages:
	}
	return nil
}

func (m *Model) showServiceLogs(svc string) tea.Cmd {
	if svc != m.logs.service {
		m.stopLogs()
		m.logs.service = svc
		m.logs.pods.Reset()
		m.logs.podColor = map[string]int{}
	}
	m.logs.source = srcPods
	m.resetLogView()
	return m.setPage(pageLogs)
}

func (m *Model) askUp() tea.Cmd {
	e := m.env()
	if e == nil {
		return nil
	}
	env := *e
	m.flash = "up " + env.Name + " ..."
	return upEnv(m.ctx, m.d, env)
}

func (m *Model) askDown() tea.Cmd {
	e := m.env()
	if e == nil {
		return nil
	}
	m.mode = inputConfirm
	m.confirm = fmt.Sprintf("delete environment %s and its cluster? (y/N)", e.Name)
	m.confirmCmd = downEnv(m.ctx, m.d, e.Name)
	return nil
}

func (m *Model) open() tea.Cmd {
	e := m.env()
	if e == nil {
		return nil
	}
	for _, s := range e.Status.Services {
		if s.URL != "" {
			m.flash = "opening " + s.URL
			return tea.Batch(tea.SetClipboard(s.URL), openURL(s.URL))
		}
	}
	m.flash = e.Name + " has no URL yet"
	return nil
}

// runCommand runs a `:` command.
func (m *Model) runCommand(line string) tea.Cmd {
	f := strings.Fields(line)
	if len(f) == 0 {
		return nil
	}
	arg := ""
	if len(f) > 1 {
		arg = f[1]
	}
	switch f[0] {
	case "q", "quit", "exit":
		return m.quitCmd()
	case "e", "env", "envs", "environments":
		if arg != "" {
			if m.envIndex(arg) < 0 {
				m.flash = fmt.Sprintf("no environment %q", arg)
				return nil
			}
			m.selectEnv(arg)
		}
		return m.setPage(pageEnvs)
	case "r", "res", "resources", "pods":
		return m.setPage(pageResources)
	case "l", "log", "logs":
		if arg != "" {
			if e := m.env(); e == nil || e.Status.Service(arg) == nil {
				m.flash = fmt.Sprintf("no service %q in %s", arg, m.selected)
				return nil
			}
			return m.showServiceLogs(arg)
		}
		return m.setPage(pageLogs)
	case "source", "src":
		for i, n := range sourceNames {
			if n == arg {
				m.logs.source = logSource(i)
				m.resetLogView()
				return m.setPage(pageLogs)
			}
		}
		m.flash = "sources: pods, build, devctl"
		return nil
	case "f", "findings", "policy":
		return m.setPage(pageFindings)
	case "b", "rebuilds", "builds", "runs":
		return m.setPage(pageRebuilds)
	case "up":
		return m.askUp()
	case "down", "delete":
		return m.askDown()
	case "open":
		return m.open()
	case "help", "h":
		m.help = true
		return nil
	}
	m.flash = fmt.Sprintf("unknown command %q (? lists them)", f[0])
	return nil
}

// logKey handles the keys of the log view.
func (m *Model) logKey(msg tea.KeyPressMsg) tea.Cmd {
	k := m.keys
	switch {
	case key.Matches(msg, k.Follow):
		if m.logs.follow {
			m.pause()
		} else {
			m.logs.follow = true
		}
	case key.Matches(msg, k.Up):
		m.scroll(-1)
	case key.Matches(msg, k.Down):
		m.scroll(1)
	case key.Matches(msg, k.PageUp):
		m.scroll(-m.bodyHeight() + 1)
	case key.Matches(msg, k.PageDown):
		m.scroll(m.bodyHeight() - 1)
	case key.Matches(msg, k.Top):
		m.pause()
		m.logs.anchor = m.view().First()
	case key.Matches(msg, k.Bottom):
		m.logs.follow = true
	case key.Matches(msg, k.Source):
		m.logs.source = (m.logs.source + 1) % numSources
		m.resetLogView()
		if m.logs.source == srcPods {
			return m.ensureLogs()
		}
	case key.Matches(msg, k.NextErr):
		m.findError(1)
	case key.Matches(msg, k.PrevErr):
		m.findError(-1)
	case key.Matches(msg, k.Wrap):
		m.logs.wrap = !m.logs.wrap
	case key.Matches(msg, k.Time):
		m.logs.stamps = !m.logs.stamps
	case key.Matches(msg, k.Copy):
		if l := m.view().BySeq(m.bottomSeq()); l != nil {
			m.flash = "copied: " + l.Text
			return tea.SetClipboard(l.Text)
		}
	case key.Matches(msg, k.EnvUp):
		return m.askUp()
	case key.Matches(msg, k.EnvDown):
		return m.askDown()
	case key.Matches(msg, k.Open):
		return m.open()
	}
	return nil
}

// bottomSeq is the number of the line at the bottom of the log view.
func (m *Model) bottomSeq() uint64 {
	v := m.view()
	if m.logs.follow || v.Len() == 0 {
		return v.Next() - 1
	}
	return max(m.logs.anchor, v.First())
}

func (m *Model) pause() {
	if m.logs.follow {
		m.logs.anchor = m.view().Next() - 1
		m.logs.follow = false
	}
}

func (m *Model) scroll(delta int) {
	v := m.view()
	if v.Len() == 0 {
		return
	}
	m.pause()
	a := int64(max(m.logs.anchor, v.First())) + int64(delta)
	a = max(a, int64(v.First()))
	if a >= int64(v.Next()-1) {
		m.logs.follow = true
		return
	}
	m.logs.anchor = uint64(a)
}

// findError moves the bottom of the view to the next (dir 1) or previous
// (-1) error line.
func (m *Model) findError(dir int) {
	v := m.view()
	if v.Len() == 0 {
		return
	}
	from := m.bottomSeq()
	for s := int64(from) + int64(dir); s >= int64(v.First()) && s < int64(v.Next()); s += int64(dir) {
		if l := v.BySeq(uint64(s)); l != nil && l.Level == api.LevelError {
			m.logs.follow = false
			m.logs.anchor = uint64(s)
			return
		}
	}
	m.flash = "no more errors that way"
}

func (m *Model) setFilter(expr string) {
	if expr == "" {
		m.logs.filter, m.logs.filterText = nil, ""
		m.resetLogView()
		return
	}
	re, err := regexp.Compile(expr)
	if err != nil {
		m.flash = "filter: " + err.Error()
		return
	}
	m.logs.filter, m.logs.filterText = re, expr
	m.resetLogView()
}

func (m *Model) setFilterLive(expr string) {
	if expr == "" {
		m.setFilter("")
		return
	}
	if re, err := regexp.Compile(expr); err == nil {
		m.logs.filter, m.logs.filterText = re, expr
		m.resetLogView()
	}
}
