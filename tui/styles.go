package tui

import (
	"image/color"

	"charm.land/lipgloss/v2"
)

// styles are the TUI's looks. Colour is downsampled by the renderer to what
// the terminal supports, and dropped with NO_COLOR; selection and headings
// also use reverse and bold, so they stay visible without colour.
type styles struct {
	title, tab, activeTab, header, selected, dim, ok, warn, bad, mark, key lipgloss.Style
	pods                                                                   []lipgloss.Style
}

func newStyles(noColor bool) styles {
	c := func(s string) color.Color {
		if noColor {
			return lipgloss.NoColor{}
		}
		return lipgloss.Color(s)
	}
	s := styles{
		title:     lipgloss.NewStyle().Bold(true).Foreground(c("12")),
		tab:       lipgloss.NewStyle().Foreground(c("8")),
		activeTab: lipgloss.NewStyle().Bold(true).Reverse(true),
		header:    lipgloss.NewStyle().Bold(true),
		selected:  lipgloss.NewStyle().Reverse(true),
		dim:       lipgloss.NewStyle().Foreground(c("8")),
		ok:        lipgloss.NewStyle().Foreground(c("2")),
		warn:      lipgloss.NewStyle().Foreground(c("3")),
		bad:       lipgloss.NewStyle().Foreground(c("1")).Bold(true),
		mark:      lipgloss.NewStyle().Foreground(c("14")).Bold(true),
		key:       lipgloss.NewStyle().Foreground(c("12")).Bold(true),
	}
	for _, col := range []string{"6", "5", "4", "3", "2", "13", "14", "11"} {
		s.pods = append(s.pods, lipgloss.NewStyle().Foreground(c(col)))
	}
	return s
}
