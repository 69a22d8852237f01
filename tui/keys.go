package tui

import "charm.land/bubbles/v2/key"

// keyMap is every key the TUI answers to; the help overlay lists them all.
type keyMap struct {
	Quit, Help, Command, Filter, NextPage, PrevPage    key.Binding
	Envs, Resources, Logs, Findings, Rebuilds          key.Binding
	Up, Down, Top, Bottom, PageUp, PageDown, Select    key.Binding
	EnvUp, EnvDown, Open                               key.Binding
	Follow, Source, NextErr, PrevErr, Wrap, Time, Copy key.Binding
	Clear                                              key.Binding
}

func newKeyMap() keyMap {
	b := func(help, desc string, keys ...string) key.Binding {
		return key.NewBinding(key.WithKeys(keys...), key.WithHelp(help, desc))
	}
	return keyMap{
		Quit:      b("q", "quit (environments keep running)", "q", "ctrl+c"),
		Help:      b("?", "this help", "?"),
		Command:   b(":", "command: envs [name], res, logs [svc], findings, rebuilds, up, down, open, source pods|build|devctl, q", ":"),
		Filter:    b("/", "filter the logs (regexp); esc clears", "/"),
		NextPage:  b("tab", "next view", "tab"),
		PrevPage:  b("shift+tab", "previous view", "shift+tab"),
		Envs:      b("1", "environments", "1"),
		Resources: b("2", "resources", "2"),
		Logs:      b("3", "logs", "3"),
		Findings:  b("4", "policy findings", "4"),
		Rebuilds:  b("5", "rebuilds and the last run", "5"),
		Up:        b("↑/k", "up / scroll back", "up", "k"),
		Down:      b("↓/j", "down / scroll on", "down", "j"),
		Top:       b("g", "first / oldest", "g", "home"),
		Bottom:    b("G", "last / newest (follows the logs)", "G", "end"),
		PageUp:    b("pgup", "page up", "pgup", "ctrl+b"),
		PageDown:  b("pgdn", "page down", "pgdown", "ctrl+f"),
		Select:    b("enter", "select: environment → resources, resource → its logs", "enter"),
		EnvUp:     b("u", "up: bring the environment up again", "u"),
		EnvDown:   b("d", "down: delete the environment (asks first)", "d"),
		Open:      b("o", "open the service's URL", "o"),
		Follow:    b("f", "logs: follow / pause", "f", "space"),
		Source:    b("s", "logs: source (pods → build → devctl)", "s"),
		NextErr:   b("n", "logs: next error", "n"),
		PrevErr:   b("N", "logs: previous error", "N"),
		Wrap:      b("w", "logs: wrap long lines", "w"),
		Time:      b("t", "logs: timestamps", "t"),
		Copy:      b("c", "logs: copy the line at the bottom (OSC 52)", "c", "y"),
		Clear:     b("esc", "close, cancel, clear the filter", "esc"),
	}
}

func (k keyMap) all() []key.Binding {
	return []key.Binding{
		k.Envs, k.Resources, k.Logs, k.Findings, k.Rebuilds, k.NextPage, k.PrevPage,
		k.Up, k.Down, k.Top, k.Bottom, k.PageUp, k.PageDown, k.Select,
		k.EnvUp, k.EnvDown, k.Open,
		k.Follow, k.Source, k.Filter, k.NextErr, k.PrevErr, k.Wrap, k.Time, k.Copy,
		k.Command, k.Clear, k.Help, k.Quit,
	}
}
