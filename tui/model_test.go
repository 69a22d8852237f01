package tui

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"

	"github.com/devctl/devctl/internal/api"
)

var update = flag.Bool("update", false, "rewrite the golden files of the views")

func newTestModel(t testing.TB, w, h int) (*Model, *fakeDaemon) {
	t.Helper()
	f := &fakeDaemon{resources: map[string]*api.Resources{"hello-main": sampleResources()}}
	m := New(context.Background(), f, Options{Current: "hello-main", NoColor: true, RingSize: 1000, Now: func() time.Time { return t0 }})
	m.Update(tea.WindowSizeMsg{Width: w, Height: h})
	m.Update(connectedMsg{health: &api.Health{Version: "v0.test"}, events: make(chan api.Event), end: func() error { return nil }})
	var evs []api.Event
	for _, e := range sampleEnvs() {
		e := e
		evs = append(evs, api.Event{Type: api.EventSnapshot, Env: e.Name, Environment: &e})
	}
	m.Update(eventsMsg{events: evs, stream: m.stream})
	return m, f
}

// key turns "j", "enter", "shift+tab" into a key press.
func keyMsg(s string) tea.KeyPressMsg {
	switch s {
	case "enter":
		return tea.KeyPressMsg{Code: tea.KeyEnter}
	case "esc":
		return tea.KeyPressMsg{Code: tea.KeyEscape}
	case "tab":
		return tea.KeyPressMsg{Code: tea.KeyTab}
	case "shift+tab":
		return tea.KeyPressMsg{Code: tea.KeyTab, Mod: tea.ModShift}
	case "ctrl+c":
		return tea.KeyPressMsg{Code: 'c', Mod: tea.ModCtrl}
	}
	r := []rune(s)[0]
	return tea.KeyPressMsg{Code: r, Text: s}
}

func press(m *Model, keys ...string) tea.Cmd {
	var cmd tea.Cmd
	for _, k := range keys {
		_, cmd = m.Update(keyMsg(k))
	}
	return cmd
}

func typeText(m *Model, s string) {
	for _, r := range s {
		m.Update(tea.KeyPressMsg{Code: r, Text: string(r)})
	}
}

// run runs a command and the commands it batches, returning their
// messages, except ticks and stream reads that would block.
func run(cmd tea.Cmd) []tea.Msg {
	if cmd == nil {
		return nil
	}
	done := make(chan tea.Msg, 1)
	go func() { done <- cmd() }()
	select {
	case msg := <-done:
		if b, ok := msg.(tea.BatchMsg); ok {
			var out []tea.Msg
			for _, c := range b {
				out = append(out, run(c)...)
			}
			return out
		}
		return []tea.Msg{msg}
	case <-time.After(200 * time.Millisecond):
		return nil
	}
}

func screen(m *Model) string { return ansi.Strip(m.Render()) }

func TestSnapshotsFillEnvironmentsAndSelectThisBranch(t *testing.T) {
	t.Parallel()
	m, _ := newTestModel(t, 120, 40)
	if len(m.envs) != 2 || m.selected != "hello-main" {
		t.Fatalf("envs %d, selected %q; want 2 and this directory's hello-main", len(m.envs), m.selected)
	}
	if s := screen(m); !strings.Contains(s, "* hello-main") {
		t.Errorf("this directory's branch is not marked:\n%s", s)
	}
	m.Update(eventsMsg{events: []api.Event{{Type: api.EventDeleted, Env: "hello-main"}}, stream: m.stream})
	if len(m.envs) != 1 || m.selected != "shop-feature-x" {
		t.Errorf("after hello-main is deleted: envs %d, selected %q", len(m.envs), m.selected)
	}
}

func TestNavigationSelectsAndSwitchesViews(t *testing.T) {
	t.Parallel()
	m, _ := newTestModel(t, 120, 40)
	press(m, "j")
	if m.selected != "shop-feature-x" {
		t.Fatalf("j selected %q", m.selected)
	}
	press(m, "k")
	if m.selected != "hello-main" {
		t.Fatalf("k selected %q", m.selected)
	}
	cmd := press(m, "enter")
	if m.page != pageResources {
		t.Fatalf("enter on an environment shows page %d, want resources", m.page)
	}
	// The resources are asked for in a command, not in Update.
	if m.res["hello-main"] != nil {
		t.Fatal("resources were fetched inside Update")
	}
	for _, msg := range run(cmd) {
		m.Update(msg)
	}
	if r := m.res["hello-main"]; r == nil || len(r.Items) != 5 {
		t.Fatalf("resources after the command: %+v", r)
	}
	press(m, "j", "j", "j", "j")
	if s := screen(m); !strings.Contains(s, "pod s3-5c6d-xyz is not ready:\n    container s3: back-off 40s") {
		t.Errorf("the selected pod's reason is not shown in full:\n%s", s)
	}
	press(m, "tab")
	if m.page != pageLogs {
		t.Errorf("tab from resources went to page %d", m.page)
	}
	press(m, "shift+tab", "shift+tab")
	if m.page != pageEnvs {
		t.Errorf("shift+tab twice went to page %d", m.page)
	}
	for i, want := range []page{pageEnvs, pageResources, pageLogs, pageFindings, pageRebuilds} {
		press(m, fmt.Sprint(i+1))
		if m.page != want {
			t.Errorf("key %d shows page %d, want %d", i+1, m.page, want)
		}
	}
}

func TestDownAsksFirstAndRunsInACommand(t *testing.T) {
	t.Parallel()
	m, f := newTestModel(t, 120, 40)
	press(m, "d")
	if m.mode != inputConfirm || !strings.Contains(screen(m), "delete environment hello-main and its cluster? (y/N)") {
		t.Fatalf("d did not ask:\n%s", screen(m))
	}
	press(m, "n")
	if m.mode != inputNone || len(f.downs) != 0 {
		t.Fatalf("n did not cancel: mode %d, downs %v", m.mode, f.downs)
	}
	cmd := press(m, "d", "y")
	if len(f.downs) != 0 {
		t.Fatal("the daemon was called inside Update")
	}
	for _, msg := range run(cmd) {
		m.Update(msg)
	}
	if len(f.downs) != 1 || f.downs[0] != "hello-main" {
		t.Fatalf("downs = %v", f.downs)
	}
	if !strings.Contains(m.flash, "down hello-main") {
		t.Errorf("flash = %q", m.flash)
	}
	for _, msg := range run(press(m, "u")) {
		m.Update(msg)
	}
	if len(f.ups) != 1 || f.ups[0].Name != "hello-main" || f.ups[0].Dir != "/src/hello" {
		t.Errorf("ups = %+v", f.ups)
	}
}

func feedPods(m *Model, lines ...string) {
	m.Update(logLinesMsg{id: m.logs.streamID, lines: lines, at: t0})
}

func TestLogsFollowPauseFilterAndErrors(t *testing.T) {
	t.Parallel()
	m, _ := newTestModel(t, 100, 12)
	press(m, "3")
	if m.logs.service != "hello" || !m.logs.streaming {
		t.Fatalf("the logs of hello are not streaming: service %q streaming %v", m.logs.service, m.logs.streaming)
	}
	for i := range 50 {
		if i == 20 || i == 40 {
			feedPods(m, fmt.Sprintf("hello-1 | line %d: ERROR connection refused", i))
			continue
		}
		feedPods(m, fmt.Sprintf("hello-1 | line %d", i))
	}
	if s := screen(m); !strings.Contains(s, "line 49") || !strings.Contains(s, "following") {
		t.Fatalf("following does not show the newest line:\n%s", s)
	}
	press(m, "f")
	feedPods(m, "hello-1 | line 50")
	if s := screen(m); strings.Contains(s, "line 50") || !strings.Contains(s, "paused") {
		t.Fatalf("paused view moved:\n%s", s)
	}
	press(m, "N")
	if l := m.view().BySeq(m.bottomSeq()); l == nil || !strings.Contains(l.Text, "line 40") {
		t.Fatalf("N went to %+v, want line 40", l)
	}
	press(m, "N")
	if l := m.view().BySeq(m.bottomSeq()); l == nil || !strings.Contains(l.Text, "line 20") {
		t.Fatalf("second N went to %+v, want line 20", l)
	}
	press(m, "n")
	if l := m.view().BySeq(m.bottomSeq()); l == nil || !strings.Contains(l.Text, "line 40") {
		t.Fatalf("n went to %+v, want line 40", l)
	}
	if cmd := press(m, "c"); cmd == nil || !strings.Contains(m.flash, "line 40") {
		t.Errorf("c copied nothing: flash %q", m.flash)
	}
	press(m, "G")
	press(m, "/")
	typeText(m, `line [24]0\b`)
	press(m, "enter")
	if m.logs.filter == nil || m.view().Len() != 2 {
		t.Fatalf("filter holds %d lines, want 2", m.view().Len())
	}
	feedPods(m, "hello-1 | line 40 again")
	if m.view().Len() != 3 {
		t.Errorf("a new matching line is not in the filtered view")
	}
	press(m, "esc")
	if m.logs.filter != nil || m.view().Len() != 52 {
		t.Errorf("esc left filter %v, %d lines", m.logs.filter, m.view().Len())
	}
	press(m, "/")
	typeText(m, "(")
	press(m, "enter")
	if m.logs.filter != nil || !strings.Contains(m.flash, "filter:") {
		t.Errorf("a bad regexp: filter %v flash %q", m.logs.filter, m.flash)
	}
	press(m, "s")
	if m.logs.source != srcBuild {
		t.Errorf("s shows source %d", m.logs.source)
	}
	m.Update(eventsMsg{stream: m.stream, events: []api.Event{{Type: api.EventLog, Env: "hello-main", Source: api.SourceBuild, Service: "hello", Level: api.LevelError, Message: "./main.go:14:2: undefined: fmt.Printn"}}})
	if s := screen(m); !strings.Contains(s, "hello: ./main.go:14:2: undefined: fmt.Printn") {
		t.Errorf("build output not shown:\n%s", s)
	}
	press(m, "w", "t")
	if !m.logs.wrap || !m.logs.stamps {
		t.Errorf("w and t do not toggle wrap and timestamps")
	}
}

func TestLogRingIsBounded(t *testing.T) {
	t.Parallel()
	r := NewRing(100)
	for i := range 250 {
		r.Push(Line{Text: fmt.Sprint(i)})
	}
	if r.Len() != 100 || r.First() != 150 || r.Next() != 250 {
		t.Fatalf("len %d first %d next %d", r.Len(), r.First(), r.Next())
	}
	if r.At(0).Text != "150" || r.BySeq(249).Text != "249" || r.BySeq(149) != nil || r.BySeq(250) != nil {
		t.Fatal("lines out of order")
	}
}

func TestReconnectsWhenTheDaemonGoesAway(t *testing.T) {
	t.Parallel()
	m, _ := newTestModel(t, 120, 40)
	_, cmd := m.Update(disconnectedMsg{err: errors.New("the daemon closed the event stream")})
	if m.connected || cmd == nil {
		t.Fatalf("connected %v, retry %v", m.connected, cmd != nil)
	}
	if s := screen(m); !strings.Contains(s, "daemon unreachable: the daemon closed the event stream; reconnecting (attempt 1)") {
		t.Errorf("the loss is not shown:\n%s", s)
	}
	m.Update(disconnectedMsg{err: errors.New("connection refused")})
	if m.attempts != 2 || backoff(1) <= backoff(0) {
		t.Errorf("attempts %d, backoff %v then %v", m.attempts, backoff(0), backoff(1))
	}
	_, cmd = m.Update(reconnectMsg{})
	msgs := run(cmd)
	if len(msgs) != 1 {
		t.Fatalf("reconnect gave %v", msgs)
	}
	m.Update(msgs[0])
	if !m.connected || m.attempts != 0 || m.flash != "reconnected to the daemon" {
		t.Errorf("not connected again: %+v, flash %q", msgs[0], m.flash)
	}
}

func TestCommandsAndHelp(t *testing.T) {
	t.Parallel()
	m, _ := newTestModel(t, 120, 40)
	press(m, ":")
	typeText(m, "logs hello")
	press(m, "enter")
	if m.page != pageLogs || m.logs.service != "hello" {
		t.Errorf(":logs hello shows page %d service %q", m.page, m.logs.service)
	}
	press(m, ":")
	typeText(m, "findings")
	press(m, "enter")
	if m.page != pageFindings {
		t.Errorf(":findings shows page %d", m.page)
	}
	press(m, ":")
	typeText(m, "nope")
	press(m, "enter")
	if !strings.Contains(m.flash, `unknown command "nope"`) {
		t.Errorf("flash = %q", m.flash)
	}
	press(m, "?")
	s := screen(m)
	for _, b := range m.keys.all() {
		if !strings.Contains(s, b.Help().Key) {
			t.Errorf("help does not list %q", b.Help().Key)
		}
	}
	press(m, "x")
	if m.help {
		t.Error("a key did not close the help")
	}
	if cmd := press(m, "q"); cmd == nil || !m.quit {
		t.Error("q does not quit")
	}
	if g := m.Goodbye(); !strings.Contains(g, "hello-main keeps running") || !strings.Contains(g, "devctl tui hello-main") || !strings.Contains(g, "devctl down hello-main") {
		t.Errorf("goodbye = %q", g)
	}
	empty := New(context.Background(), &fakeDaemon{}, Options{Current: "not-there"})
	if g := empty.Goodbye(); strings.Contains(g, "not-there") {
		t.Errorf("goodbye names an environment that does not exist: %q", g)
	}
}

func TestNewFindingShowsWithoutAKeypress(t *testing.T) {
	t.Parallel()
	m, _ := newTestModel(t, 120, 40)
	press(m, "4")
	e := sampleEnvs()[0]
	e.Status.Findings = nil
	m.Update(eventsMsg{stream: m.stream, events: []api.Event{{Type: api.EventEnv, Env: e.Name, Environment: &e}}})
	if s := screen(m); !strings.Contains(s, "no findings") {
		t.Fatalf("no 'no findings' state:\n%s", s)
	}
	e.Status.Findings = []api.Finding{{Rule: "no-host-network", Severity: "critical", Object: "Deployment hello/hello", Source: "k8s/extra.yaml:9", Message: "hostNetwork is true", Fix: "remove hostNetwork"}}
	m.Update(eventsMsg{stream: m.stream, events: []api.Event{{Type: api.EventEnv, Env: e.Name, Environment: &e}}})
	if s := screen(m); !strings.Contains(s, "CRITICAL (1)") || !strings.Contains(s, "k8s/extra.yaml:9") {
		t.Fatalf("the new finding is not shown:\n%s", s)
	}
}

func TestREDShowsPerServiceWhenScraped(t *testing.T) {
	m, _ := newTestModel(t, 120, 40)
	scr := screen(m)
	for _, want := range []string{"12.4 req/s", "1.2% errors", "p50 4.2ms p95 38ms p99 120ms"} {
		if !strings.Contains(scr, want) {
			t.Errorf("environment detail lacks %q:\n%s", want, scr)
		}
	}
	press(m, "2")
	m.Update(resourcesMsg{env: m.selected, res: sampleResources()})
	scr = screen(m)
	if !regexp.MustCompile(`hello\s+12\.4\s+1\.2%\s+4\.2ms\s+38ms\s+120ms\s+744\s+1m\s+3s ago`).MatchString(scr) {
		t.Errorf("resources view lacks the traffic row of hello:\n%s", scr)
	}

	// A new scrape replaces the figures; a service without requests says so;
	// one without metrics shows no row.
	e := sampleEnvs()[0]
	e.Status.Services[0].RED = &api.RED{At: t0, Window: time.Minute}
	e.Status.Services = append(e.Status.Services, api.ServiceStatus{Name: "vault", Ready: true,
		RED: &api.RED{At: t0, Window: time.Minute, Requests: 60, RatePerSecond: 1, ErrorRatio: 0.5, P50: ptr(800 * time.Microsecond)}},
		api.ServiceStatus{Name: "postgres", Ready: true})
	m.Update(eventsMsg{events: []api.Event{{Type: api.EventSnapshot, Env: e.Name, Environment: &e}}, stream: m.stream})
	scr = screen(m)
	if !regexp.MustCompile(`vault\s+1\.0\s+50\.0%\s+800µs\s+-\s+-\s+60`).MatchString(scr) {
		t.Errorf("resources view lacks the traffic row of vault:\n%s", scr)
	}
	if regexp.MustCompile(`(?m)^\s+postgres\s+[0-9]`).MatchString(scr) {
		t.Errorf("postgres has no metrics but has a traffic row:\n%s", scr)
	}
	press(m, "1")
	if scr = screen(m); !strings.Contains(scr, "no requests in the last 1m") || strings.Contains(scr, "12.4 req/s") {
		t.Errorf("environment detail does not show the new scrape:\n%s", scr)
	}
}

func TestSecretNamesShowInTheDetail(t *testing.T) {
	m, _ := newTestModel(t, 120, 40)
	want := "secrets injected: hello-live-token (DEVCTL_AGENT_TOKEN), hello-secrets (every key), postgres (7 env vars)"
	if scr := screen(m); !strings.Contains(scr, want) {
		t.Errorf("environment detail lacks %q:\n%s", want, scr)
	}
	// Narrow: wrapped between Secrets, none cut.
	m.Update(tea.WindowSizeMsg{Width: 60, Height: 24})
	scr := screen(m)
	for _, want := range []string{"hello-live-token (DEVCTL_AGENT_TOKEN),", "hello-secrets (every key),", "postgres (7 env vars)"} {
		if !strings.Contains(scr, want) {
			t.Errorf("at 60 columns the detail lacks %q:\n%s", want, scr)
		}
	}
	m.Update(tea.WindowSizeMsg{Width: 120, Height: 40})
	// A service without injected Secrets has no such line.
	e := sampleEnvs()[0]
	e.Status.Services[0].Secrets = nil
	m.Update(eventsMsg{events: []api.Event{{Type: api.EventSnapshot, Env: e.Name, Environment: &e}}, stream: m.stream})
	if scr := screen(m); strings.Contains(scr, "secrets injected") {
		t.Errorf("a service without Secrets shows some:\n%s", scr)
	}
}

func TestResizeKeepsTheScreenInBounds(t *testing.T) {
	t.Parallel()
	m, _ := newTestModel(t, 120, 40)
	for _, size := range [][2]int{{80, 24}, {40, 10}, {200, 60}} {
		m.Update(tea.WindowSizeMsg{Width: size[0], Height: size[1]})
		for p := range numPages {
			m.page = p
			lines := strings.Split(screen(m), "\n")
			if len(lines) != size[1] {
				t.Errorf("%dx%d page %d: %d lines", size[0], size[1], p, len(lines))
			}
			for _, l := range lines {
				if w := ansi.StringWidth(l); w > size[0] {
					t.Errorf("%dx%d page %d: a line is %d wide: %q", size[0], size[1], p, w, l)
				}
			}
		}
	}
}

func TestPercentile(t *testing.T) {
	t.Parallel()
	var ds []time.Duration
	for i := 1; i <= 100; i++ {
		ds = append(ds, time.Duration(i)*time.Millisecond)
	}
	if p := percentile(ds, 50); p != 50*time.Millisecond {
		t.Errorf("p50 = %v", p)
	}
	if p := percentile(ds, 95); p != 95*time.Millisecond {
		t.Errorf("p95 = %v", p)
	}
	if p := percentile(nil, 95); p != 0 {
		t.Errorf("p95 of nothing = %v", p)
	}
}

// TestGolden compares each view's settled screen, colour off, with
// testdata/TestGolden/<case>.golden (go test ./tui -run TestGolden -update
// rewrites them).
func TestGolden(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		w, h int
		keys []string
		prep func(m *Model)
	}{
		{name: "envs-120x40", w: 120, h: 40},
		{name: "envs-80x24", w: 80, h: 24},
		{name: "resources-120x40", w: 120, h: 40, keys: []string{"2", "j", "j", "j", "j"}},
		{name: "logs-120x40", w: 120, h: 40, keys: []string{"3"}, prep: func(m *Model) {
			for i := range 60 {
				pod := []string{"hello-7d9f-abcde", "hello-7d9f-fghij"}[i%2]
				msg := fmt.Sprintf("%s | GET /healthz 200 %dms", pod, i)
				if i == 45 {
					msg = pod + " | ERROR: dial tcp 10.96.0.12:5432: connection refused"
				}
				feedPods(m, msg)
			}
		}},
		{name: "logs-filter-120x40", w: 120, h: 40, keys: []string{"3", "/", "E", "R", "R", "O", "R", "enter"}, prep: func(m *Model) {
			feedPods(m, "a | ok", "a | ERROR one", "a | fine", "a | ERROR two")
		}},
		{name: "logs-devctl-120x40", w: 120, h: 40, keys: []string{"3", "s", "s"}},
		{name: "findings-120x40", w: 120, h: 40, keys: []string{"4"}},
		{name: "findings-none-120x40", w: 120, h: 40, keys: []string{"j", "4"}},
		{name: "rebuilds-120x40", w: 120, h: 40, keys: []string{"5"}},
		{name: "help-120x40", w: 120, h: 40, keys: []string{"?"}},
		{name: "help-80x24", w: 80, h: 24, keys: []string{"?"}},
		{name: "disconnected-80x24", w: 80, h: 24, prep: func(m *Model) {
			m.Update(disconnectedMsg{err: errors.New("the daemon closed the event stream")})
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			m, _ := newTestModel(t, tc.w, tc.h)
			for _, k := range tc.keys {
				m.Update(keyMsg(k))
				if k == "2" {
					m.Update(resourcesMsg{env: m.selected, res: sampleResources()})
				}
			}
			if tc.prep != nil {
				tc.prep(m)
			}
			got := screen(m) + "\n"
			path := filepath.Join("testdata", "TestGolden", tc.name+".golden")
			if *update {
				if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (go test ./tui -run TestGolden -update writes it)", err)
			}
			if got != string(want) {
				t.Errorf("%s differs from the golden file:\n--- got\n%s\n--- want\n%s", tc.name, got, want)
			}
		})
	}
}

func TestDevctlSourceTellsTheRunAfterAttaching(t *testing.T) {
	t.Parallel()
	m, _ := newTestModel(t, 120, 40)
	press(m, "3", "s", "s")
	s := screen(m)
	for _, want := range []string{"run #7 rebuild (main.go changed) started", "build: done in 900ms: hello: go build", "deploy: done in 300ms: revision 3", "run #7 ended in 1.5s: Ready"} {
		if !strings.Contains(s, want) {
			t.Errorf("the devctl source has no %q:\n%s", want, s)
		}
	}
	// The same snapshot again adds nothing; a new run adds its lines.
	e := sampleEnvs()[0]
	n := m.view().Len()
	m.Update(eventsMsg{stream: m.stream, events: []api.Event{{Type: api.EventEnv, Env: e.Name, Environment: &e}}})
	if m.view().Len() != n {
		t.Errorf("a repeated snapshot added %d lines", m.view().Len()-n)
	}
	e.Status.Run = &api.Run{ID: 8, Request: api.Request{Kind: api.RunRebuild, Reason: "main.go changed"}, Started: t0,
		Steps: []api.Step{{Name: "build", Status: api.StepFailed, Duration: time.Second}}, Ended: t0.Add(time.Second), Error: "build: ./main.go:3:1: syntax error"}
	m.Update(eventsMsg{stream: m.stream, events: []api.Event{{Type: api.EventEnv, Env: e.Name, Environment: &e}}})
	if s := screen(m); !strings.Contains(s, "build: failed in 1.0s") || !strings.Contains(s, "run #8 failed after 1.0s: build: ./main.go:3:1: syntax error") {
		t.Errorf("the failed run is not told:\n%s", s)
	}
	// Steps running side by side are told once each.
	par := sampleEnvs()[0]
	par.Status.Run = &api.Run{ID: 9, Request: api.Request{Kind: api.RunUp}, Started: t0, Steps: []api.Step{
		{Name: "cluster", Status: api.StepRunning, Started: t0}, {Name: "build", Status: api.StepRunning, Started: t0}}}
	for range 3 {
		m.Update(eventsMsg{stream: m.stream, events: []api.Event{{Type: api.EventEnv, Env: par.Name, Environment: &par}}})
	}
	if s := screen(m); strings.Count(s, "build: started") != 1 || strings.Count(s, "cluster: started") != 1 {
		t.Errorf("parallel steps told more than once:\n%s", s)
	}
}

func TestPodLogStreamReopensAfterARollout(t *testing.T) {
	t.Parallel()
	m, _ := newTestModel(t, 120, 40)
	press(m, "3")
	first := m.logs.streamID
	if !m.logs.streaming {
		t.Fatal("no pod log stream")
	}
	// The old pod went away: the stream ends with its last lines.
	_, cmd := m.Update(logLinesMsg{id: first, lines: []string{"shutting down"}, done: true, at: t0})
	if m.logs.streaming || cmd == nil {
		t.Fatalf("streaming %v after the end, retry %v", m.logs.streaming, cmd != nil)
	}
	_, cmd = m.Update(logRetryMsg{id: first})
	if !m.logs.streaming || m.logs.streamID == first || cmd == nil {
		t.Fatalf("the stream was not opened again: streaming %v id %d (was %d)", m.logs.streaming, m.logs.streamID, first)
	}
	// Lines of the old stream are dropped.
	n := m.logs.pods.Len()
	m.Update(logLinesMsg{id: first, lines: []string{"stale"}, at: t0})
	if m.logs.pods.Len() != n {
		t.Error("a line of a closed stream was added")
	}
}

// TestNoColor checks NO_COLOR: no colour codes at all, while the selection
// stays visible in reverse video.
func TestNoColor(t *testing.T) {
	t.Parallel()
	colour := regexp.MustCompile(`\x1b\[[0-9;]*(3[0-9]|9[0-7]|38;)`)
	for _, noColor := range []bool{true, false} {
		f := &fakeDaemon{}
		m := New(context.Background(), f, Options{NoColor: noColor, Now: func() time.Time { return t0 }})
		m.Update(tea.WindowSizeMsg{Width: 120, Height: 40})
		m.Update(connectedMsg{health: &api.Health{Version: "v0.test"}, events: make(chan api.Event), end: func() error { return nil }})
		var evs []api.Event
		for _, e := range sampleEnvs() {
			e := e
			evs = append(evs, api.Event{Type: api.EventSnapshot, Env: e.Name, Environment: &e})
		}
		m.Update(eventsMsg{events: evs, stream: m.stream})
		out := m.Render()
		if got := colour.MatchString(out); got == noColor {
			t.Errorf("NoColor %v: colour codes present = %v", noColor, got)
		}
		if !strings.Contains(out, "\x1b[7m") && !strings.Contains(out, ";7m") && !strings.Contains(out, "[7;") {
			t.Errorf("NoColor %v: no reverse video for the selection", noColor)
		}
	}
}

func TestSwitchingEnvironmentsSwitchesThePodLogs(t *testing.T) {
	t.Parallel()
	m, _ := newTestModel(t, 120, 40)
	press(m, "3")
	feedPods(m, "hello-1 | from hello-main")
	if m.logs.pods.Len() != 1 {
		t.Fatal("no line")
	}
	m.Update(eventsMsg{stream: m.stream, events: []api.Event{{Type: api.EventDeleted, Env: "hello-main"}}})
	if m.selected != "shop-feature-x" || m.logs.pods.Len() != 0 || m.logs.envRings["hello-main"] != nil {
		t.Errorf("after the switch: selected %q, %d pod lines, rings of the deleted env kept: %v", m.selected, m.logs.pods.Len(), m.logs.envRings["hello-main"] != nil)
	}
	if s := screen(m); strings.Contains(s, "from hello-main") {
		t.Errorf("another environment's lines are shown:\n%s", s)
	}
}
