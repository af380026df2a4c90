package tui

import (
	"io"

	"github.com/charmbracelet/lipgloss"
	"github.com/muesli/termenv"
)

// Styles is every style the workbench draws with; nothing else makes a
// style, so restyling touches this file only.
type Styles struct {
	Title, Muted, Bold    lipgloss.Style
	Pass, Fail, Warn      lipgloss.Style
	Tab, ActiveTab        lipgloss.Style
	Selected, Filter      lipgloss.Style
	Banner, ErrorBanner   lipgloss.Style
	Pane, FocusedPane     lipgloss.Style
	HelpKey, HelpDesc     lipgloss.Style
	Code, Location, Fact  lipgloss.Style
	Changed, ChangedFlips lipgloss.Style
}

// NewStyles builds the styles for output w. With noColor (NO_COLOR set,
// or tests) everything is plain text.
func NewStyles(w io.Writer, noColor bool) Styles {
	opts := []termenv.OutputOption{}
	if noColor {
		opts = append(opts, termenv.WithProfile(termenv.Ascii))
	}
	r := lipgloss.NewRenderer(w, opts...)
	if noColor {
		r.SetColorProfile(termenv.Ascii)
	}
	border := lipgloss.RoundedBorder()
	return Styles{
		Title:        r.NewStyle().Bold(true).Foreground(lipgloss.Color("12")),
		Muted:        r.NewStyle().Foreground(lipgloss.Color("8")),
		Bold:         r.NewStyle().Bold(true),
		Pass:         r.NewStyle().Foreground(lipgloss.Color("2")),
		Fail:         r.NewStyle().Foreground(lipgloss.Color("1")).Bold(true),
		Warn:         r.NewStyle().Foreground(lipgloss.Color("3")),
		Tab:          r.NewStyle().Padding(0, 1).Foreground(lipgloss.Color("8")),
		ActiveTab:    r.NewStyle().Padding(0, 1).Bold(true).Underline(true),
		Selected:     r.NewStyle().Reverse(true),
		Filter:       r.NewStyle().Foreground(lipgloss.Color("6")),
		Banner:       r.NewStyle().Foreground(lipgloss.Color("3")).Bold(true),
		ErrorBanner:  r.NewStyle().Foreground(lipgloss.Color("1")).Bold(true),
		Pane:         r.NewStyle().Border(border).BorderForeground(lipgloss.Color("8")),
		FocusedPane:  r.NewStyle().Border(border).BorderForeground(lipgloss.Color("12")),
		HelpKey:      r.NewStyle().Bold(true),
		HelpDesc:     r.NewStyle().Foreground(lipgloss.Color("8")),
		Code:         r.NewStyle().Bold(true),
		Location:     r.NewStyle().Foreground(lipgloss.Color("6")),
		Fact:         r.NewStyle().Foreground(lipgloss.Color("5")),
		Changed:      r.NewStyle().Foreground(lipgloss.Color("3")),
		ChangedFlips: r.NewStyle().Foreground(lipgloss.Color("1")).Bold(true),
	}
}
