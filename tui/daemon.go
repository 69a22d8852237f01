package tui

import (
	"context"
	"errors"
	"os/exec"
	"runtime"
	"time"

	tea "charm.land/bubbletea/v2"

	"github.com/devctl/devctl/internal/api"
)

// Daemon is what the TUI asks of the devctl daemon; *api.Client is one.
type Daemon interface {
	Health(ctx context.Context) (*api.Health, error)
	Events(ctx context.Context, env string) (<-chan api.Event, func() error, error)
	Resources(ctx context.Context, env string) (*api.Resources, error)
	LogLines(ctx context.Context, env string, o api.LogOptions) (<-chan string, func() error, error)
	Up(ctx context.Context, req api.UpRequest) (*api.Environment, error)
	Down(ctx context.Context, name string) (*api.Environment, error)
}

// Messages carrying the results of commands. Update does no I/O: every
// call to the daemon runs in a tea.Cmd and comes back as one of these.
type (
	// connectedMsg says the event stream is open.
	connectedMsg struct {
		health *api.Health
		events <-chan api.Event
		end    func() error
	}
	// disconnectedMsg says the stream could not open or ended.
	disconnectedMsg struct{ err error }
	// reconnectMsg asks for another connection attempt.
	reconnectMsg struct{}
	// eventsMsg carries events read from the stream, in order.
	eventsMsg struct {
		events []api.Event
		stream <-chan api.Event
	}
	resourcesMsg struct {
		env string
		res *api.Resources
		err error
	}
	resourcesTickMsg struct{}
	// logStreamMsg says a pod log stream opened (or why not).
	logStreamMsg struct {
		id    int
		lines <-chan string
		err   error
	}
	// logLinesMsg carries lines read from the pod log stream.
	logLinesMsg struct {
		id    int
		lines []string
		at    time.Time
		done  bool
	}
	// actionMsg is the answer to an up, a down or an open.
	actionMsg struct {
		what string
		err  error
	}
	// clockMsg refreshes ages and durations.
	clockMsg time.Time
)

// maxBatch is the most lines or events one message carries: the model
// takes a burst in one Update and renders once.
const maxBatch = 2048

func connect(ctx context.Context, d Daemon) tea.Cmd {
	return func() tea.Msg {
		hctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		h, err := d.Health(hctx)
		cancel()
		if err != nil {
			return disconnectedMsg{err: err}
		}
		ch, end, err := d.Events(ctx, "")
		if err != nil {
			return disconnectedMsg{err: err}
		}
		return connectedMsg{health: h, events: ch, end: end}
	}
}

// waitEvents reads the next events: it blocks for one, then takes what
// else is already there.
func waitEvents(ch <-chan api.Event, end func() error) tea.Cmd {
	return func() tea.Msg {
		ev, ok := <-ch
		if !ok {
			err := end()
			if err == nil {
				err = errors.New("the daemon closed the event stream")
			}
			return disconnectedMsg{err: err}
		}
		batch := []api.Event{ev}
		for len(batch) < maxBatch {
			select {
			case ev, ok := <-ch:
				if !ok {
					return eventsMsg{events: batch, stream: ch}
				}
				batch = append(batch, ev)
			default:
				return eventsMsg{events: batch, stream: ch}
			}
		}
		return eventsMsg{events: batch, stream: ch}
	}
}

func fetchResources(ctx context.Context, d Daemon, env string) tea.Cmd {
	return func() tea.Msg {
		ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		r, err := d.Resources(ctx, env)
		return resourcesMsg{env: env, res: r, err: err}
	}
}

func openLogs(ctx context.Context, d Daemon, id int, env, service string) tea.Cmd {
	return func() tea.Msg {
		ch, _, err := d.LogLines(ctx, env, api.LogOptions{Service: service, Follow: true, Tail: 200})
		return logStreamMsg{id: id, lines: ch, err: err}
	}
}

func waitLogs(id int, ch <-chan string) tea.Cmd {
	return func() tea.Msg {
		l, ok := <-ch
		if !ok {
			return logLinesMsg{id: id, done: true, at: time.Now()}
		}
		batch := []string{l}
		for len(batch) < maxBatch {
			select {
			case l, ok := <-ch:
				if !ok {
					return logLinesMsg{id: id, lines: batch, done: true, at: time.Now()}
				}
				batch = append(batch, l)
			default:
				return logLinesMsg{id: id, lines: batch, at: time.Now()}
			}
		}
		return logLinesMsg{id: id, lines: batch, at: time.Now()}
	}
}

func upEnv(ctx context.Context, d Daemon, e api.Environment) tea.Cmd {
	return func() tea.Msg {
		_, err := d.Up(ctx, api.UpRequest{ProjectRef: api.ProjectRef{
			Dir: e.Spec.Dir, Config: e.Spec.Config, Name: e.Name, Branch: e.Spec.Branch,
		}})
		return actionMsg{what: "up " + e.Name, err: err}
	}
}

func downEnv(ctx context.Context, d Daemon, name string) tea.Cmd {
	return func() tea.Msg {
		_, err := d.Down(ctx, name)
		return actionMsg{what: "down " + name, err: err}
	}
}

// openURL opens a URL in the desktop's browser.
func openURL(url string) tea.Cmd {
	return func() tea.Msg {
		name := "xdg-open"
		if runtime.GOOS == "darwin" {
			name = "open"
		}
		if _, err := exec.LookPath(name); err != nil {
			return actionMsg{what: "open " + url, err: errors.New("no " + name + " on this machine; the URL is copied to the clipboard")}
		}
		err := exec.Command(name, url).Start()
		return actionMsg{what: "open " + url, err: err}
	}
}

func reconnectAfter(d time.Duration) tea.Cmd {
	return tea.Tick(d, func(time.Time) tea.Msg { return reconnectMsg{} })
}

func tickResources() tea.Cmd {
	return tea.Tick(2*time.Second, func(time.Time) tea.Msg { return resourcesTickMsg{} })
}

func tickClock() tea.Cmd {
	return tea.Tick(time.Second, func(t time.Time) tea.Msg { return clockMsg(t) })
}

// backoff is the wait before reconnection attempt n (1, 2, 4 ... 10 s).
func backoff(n int) time.Duration {
	d := 500 * time.Millisecond
	for i := 0; i < n && d < 10*time.Second; i++ {
		d *= 2
	}
	return min(d, 10*time.Second)
}
