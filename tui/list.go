package tui

import (
	"strings"

	"github.com/charmbracelet/x/ansi"
)

// row is one line of a list: what is shown, and the text a filter
// matches.
type row struct {
	key   string // stable identity, to keep the selection across runs
	text  string // rendered (may carry styles)
	plain string // for filtering
}

// listPane is a scrollable, filterable list of rows.
type listPane struct {
	rows    []row
	visible []int // indices into rows that match the filter
	cursor  int   // index into visible
	offset  int   // first visible row shown
	filter  string
	width   int
	height  int
}

// SetRows replaces the rows, keeping the selected row when it still
// exists.
func (l *listPane) SetRows(rows []row) {
	selected := l.SelectedKey()
	l.rows = rows
	l.applyFilter()
	for i, idx := range l.visible {
		if l.rows[idx].key == selected {
			l.cursor = i
		}
	}
	l.clamp()
}

// SetFilter keeps only rows containing every word of f, case-insensitively.
func (l *listPane) SetFilter(f string) {
	l.filter = f
	l.applyFilter()
	l.cursor, l.offset = 0, 0
	l.clamp()
}

func (l *listPane) applyFilter() {
	l.visible = l.visible[:0]
	words := strings.Fields(strings.ToLower(l.filter))
	for i, r := range l.rows {
		text := strings.ToLower(r.plain)
		ok := true
		for _, w := range words {
			ok = ok && strings.Contains(text, w)
		}
		if ok {
			l.visible = append(l.visible, i)
		}
	}
}

// SetSize sets the inner size of the list.
func (l *listPane) SetSize(w, h int) {
	l.width, l.height = w, max(h, 1)
	l.clamp()
}

// Move moves the cursor by n rows.
func (l *listPane) Move(n int) {
	l.cursor += n
	l.clamp()
}

func (l *listPane) clamp() {
	l.cursor = min(max(l.cursor, 0), max(len(l.visible)-1, 0))
	if l.cursor < l.offset {
		l.offset = l.cursor
	}
	if l.cursor >= l.offset+l.height {
		l.offset = l.cursor - l.height + 1
	}
	l.offset = max(min(l.offset, len(l.visible)-l.height), 0)
}

// Selected returns the index into rows of the selected row, or -1.
func (l *listPane) Selected() int {
	if len(l.visible) == 0 {
		return -1
	}
	return l.visible[l.cursor]
}

// SelectedKey returns the selected row's key, or "".
func (l *listPane) SelectedKey() string {
	if i := l.Selected(); i >= 0 && i < len(l.rows) {
		return l.rows[i].key
	}
	return ""
}

// View renders the visible rows, the selected one highlighted.
func (l *listPane) View(st Styles, focused bool) string {
	var b strings.Builder
	if len(l.visible) == 0 {
		msg := "nothing here"
		if l.filter != "" {
			msg = "nothing matches " + l.filter
		}
		return st.Muted.Render(ansi.Truncate(msg, l.width, "…"))
	}
	end := min(l.offset+l.height, len(l.visible))
	for i := l.offset; i < end; i++ {
		r := l.rows[l.visible[i]]
		// A one-column gutter marks the selection even without color.
		var line string
		switch {
		case i == l.cursor && focused:
			plain := "›" + ansi.Truncate(r.plain, l.width-1, "…")
			line = st.Selected.Render(plain + strings.Repeat(" ", max(l.width-ansi.StringWidth(plain), 0)))
		case i == l.cursor:
			line = st.Bold.Render("›") + ansi.Truncate(r.text, l.width-1, "…")
		default:
			line = " " + ansi.Truncate(r.text, l.width-1, "…")
		}
		b.WriteString(line)
		if i < end-1 {
			b.WriteByte('\n')
		}
	}
	return b.String()
}
