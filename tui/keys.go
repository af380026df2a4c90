package tui

import "github.com/charmbracelet/bubbles/key"

// KeyMap is every key the workbench answers to.
type KeyMap struct {
	Up, Down, PageUp, PageDown key.Binding
	NextTab, PrevTab           key.Binding
	Tests, Fixtures, Changed   key.Binding
	Problems                   key.Binding
	Filter, ClearFilter        key.Binding
	Detail                     key.Binding
	LivePR, SaveFixture        key.Binding
	DiffRef, Shadow            key.Binding
	Rerun, Help, Quit          key.Binding
	Edit                       key.Binding
}

// DefaultKeyMap returns the workbench's key bindings.
func DefaultKeyMap() KeyMap {
	return KeyMap{
		Up:          key.NewBinding(key.WithKeys("up", "k"), key.WithHelp("↑/k", "up")),
		Down:        key.NewBinding(key.WithKeys("down", "j"), key.WithHelp("↓/j", "down")),
		PageUp:      key.NewBinding(key.WithKeys("pgup"), key.WithHelp("pgup", "page up")),
		PageDown:    key.NewBinding(key.WithKeys("pgdown"), key.WithHelp("pgdn", "page down")),
		NextTab:     key.NewBinding(key.WithKeys("tab"), key.WithHelp("tab", "next view")),
		PrevTab:     key.NewBinding(key.WithKeys("shift+tab"), key.WithHelp("shift+tab", "previous view")),
		Tests:       key.NewBinding(key.WithKeys("1"), key.WithHelp("1", "tests")),
		Fixtures:    key.NewBinding(key.WithKeys("2"), key.WithHelp("2", "fixtures")),
		Changed:     key.NewBinding(key.WithKeys("3"), key.WithHelp("3", "changed")),
		Problems:    key.NewBinding(key.WithKeys("4"), key.WithHelp("4", "problems & policies")),
		Filter:      key.NewBinding(key.WithKeys("/"), key.WithHelp("/", "filter")),
		ClearFilter: key.NewBinding(key.WithKeys("esc"), key.WithHelp("esc", "clear filter / close")),
		Detail:      key.NewBinding(key.WithKeys("enter"), key.WithHelp("enter", "scroll detail")),
		LivePR:      key.NewBinding(key.WithKeys("p"), key.WithHelp("p", "live pull request")),
		SaveFixture: key.NewBinding(key.WithKeys("s"), key.WithHelp("s", "save live PR as fixture")),
		DiffRef:     key.NewBinding(key.WithKeys("d"), key.WithHelp("d", "diff against a git revision")),
		Shadow:      key.NewBinding(key.WithKeys("S"), key.WithHelp("S", "shadow disagreements (--db)")),
		Rerun:       key.NewBinding(key.WithKeys("r"), key.WithHelp("r", "run again")),
		Edit:        key.NewBinding(key.WithKeys("e"), key.WithHelp("e", "open in $EDITOR at the line")),
		Help:        key.NewBinding(key.WithKeys("?"), key.WithHelp("?", "help")),
		Quit:        key.NewBinding(key.WithKeys("q", "ctrl+c"), key.WithHelp("q", "quit")),
	}
}

// ShortHelp is the one-line help at the bottom.
func (k KeyMap) ShortHelp() []key.Binding {
	return []key.Binding{k.NextTab, k.Filter, k.Detail, k.Edit, k.Help, k.Quit}
}

// FullHelp is the help overlay.
func (k KeyMap) FullHelp() [][]key.Binding {
	return [][]key.Binding{
		{k.Up, k.Down, k.PageUp, k.PageDown, k.Detail},
		{k.NextTab, k.PrevTab, k.Tests, k.Fixtures, k.Changed, k.Problems},
		{k.Filter, k.ClearFilter, k.Edit, k.LivePR, k.SaveFixture, k.DiffRef, k.Shadow, k.Rerun, k.Help, k.Quit},
	}
}
