package tui

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/charmbracelet/bubbles/key"
	tea "github.com/charmbracelet/bubbletea"

	"github.com/gitpoli/gitpoli/workbench"
)

// pane is one view of the workbench: what its list shows of the
// workbench's state, what a selected row shows in the detail pane, and
// where the row's item is written (for e). The Model holds the state and
// the keys; each view's own knowledge is here, one type per view.
type pane interface {
	// content is the rows of the view's list.
	content(m *Model) []row
	// detail is the detail pane's text for row i of the list.
	detail(m *Model, i int) string
	// empty is the detail pane's text when no row is selected.
	empty(m *Model) string
	// pos is where row i's item is written, if anywhere.
	pos(m *Model, i int) (workbench.Pos, bool)
}

// panes are the views' panes, in view order.
var panes = [numViews]pane{testsPane{}, fixturesPane{}, changedPane{}, problemsPane{}, livePane{}, diffPane{}}

// viewPane is one view as a component, as soft-serve's panes are: it
// starts, takes the keys that move within it, sizes and draws its own
// list (listPane's SetSize and View), and its pane knows what the list
// holds.
type viewPane struct {
	pane
	listPane
}

// Init starts nothing: a view shows what the workbench already holds.
func (v *viewPane) Init() tea.Cmd { return nil }

// Update moves within the list for the keys that do so, and reports
// whether it took the key.
func (v *viewPane) Update(msg tea.Msg, k KeyMap) bool {
	km, ok := msg.(tea.KeyMsg)
	if !ok {
		return false
	}
	switch {
	case key.Matches(km, k.Up):
		v.Move(-1)
	case key.Matches(km, k.Down):
		v.Move(1)
	case key.Matches(km, k.PageUp):
		v.Move(-v.height)
	case key.Matches(km, k.PageDown):
		v.Move(v.height)
	default:
		return false
	}
	return true
}

// Refresh remakes the list's rows from the workbench's state.
func (v *viewPane) Refresh(m *Model) { v.SetRows(v.content(m)) }

// noPos is pos for a pane whose rows are written nowhere.
type noPos struct{}

func (noPos) pos(*Model, int) (workbench.Pos, bool) { return workbench.Pos{}, false }

func emptyDefault(m *Model, text string) string {
	if m.snap == nil {
		return "running…"
	}
	return text
}

type testsPane struct{}

func (testsPane) content(m *Model) []row {
	if m.snap == nil {
		return nil
	}
	m.testOrder = testOrder(m.snap.Tests)
	return testRows(m.styles, m.snap.Tests, m.testOrder)
}
func (testsPane) detail(m *Model, i int) string {
	return testDetail(m.styles, m.snap.Tests[m.testOrder[i]])
}
func (testsPane) empty(m *Model) string {
	return m.styles.Muted.Render(emptyDefault(m, "nothing to show"))
}
func (testsPane) pos(m *Model, i int) (workbench.Pos, bool) {
	return m.snap.Tests[m.testOrder[i]].Pos, true
}

type fixturesPane struct{}

func (fixturesPane) content(m *Model) []row {
	if m.snap == nil {
		return nil
	}
	return fixtureRows(m.styles, m.snap.Fixtures)
}
func (fixturesPane) detail(m *Model, i int) string {
	return fixtureDetail(m.styles, m.engine(), m.snap.Fixtures[i])
}
func (fixturesPane) empty(m *Model) string {
	return m.styles.Muted.Render(emptyDefault(m, "nothing to show"))
}

// pos is the rule of the first violation, else its config line (one in
// this workspace, not a repository's).
func (fixturesPane) pos(m *Model, i int) (workbench.Pos, bool) {
	for _, o := range m.snap.Fixtures[i].Outcomes {
		for _, v := range o.Decision.Violations {
			switch {
			case v.Rule != nil:
				return *v.Rule, true
			case v.Config != nil && !strings.Contains(v.Config.File, "@"):
				return *v.Config, true
			}
		}
	}
	return workbench.Pos{}, false
}

type changedPane struct{ noPos }

func (changedPane) content(m *Model) []row { return changeRows(m.styles, m.changes) }
func (changedPane) detail(m *Model, i int) string {
	return changeDetail(m.styles, m.changes[i], saveLabels)
}
func (changedPane) empty(m *Model) string {
	return m.styles.Muted.Render(emptyDefault(m, "nothing changed since the previous run"))
}

// problemsPane lists the problems, then the warnings, then the policies.
type problemsPane struct{}

func (problemsPane) content(m *Model) []row {
	s := m.snap
	if s == nil {
		return nil
	}
	return append(problemRows(m.styles, s.Problems, s.Warnings), policyRows(m.styles, s.Engine)...)
}
func (problemsPane) detail(m *Model, i int) string {
	s := m.snap
	if findings := s.Findings(); i < len(findings) {
		return problemDetail(m.styles, findings[i])
	}
	return policyDetail(m.styles, s.Engine, s.Engine.Policies()[i-len(s.Findings())])
}
func (problemsPane) empty(m *Model) string {
	return m.styles.Muted.Render(emptyDefault(m, "no problems: policies compile, config is valid"))
}
func (problemsPane) pos(m *Model, i int) (workbench.Pos, bool) {
	findings := m.snap.Findings()
	if i < len(findings) {
		return findings[i].Pos, findings[i].File != ""
	}
	return m.snap.Engine.Policies()[i-len(findings)].Pos, true
}

// livePane is a live pull request's decisions.
type livePane struct{ noPos }

func (livePane) content(m *Model) []row {
	if m.live == nil {
		return nil
	}
	var out []row
	for i, o := range m.live.Outcomes {
		text := fmt.Sprintf("%s %s", m.live.PR.PR, strings.TrimSpace(outcomeSummary(o)))
		out = append(out, row{key: strconv.Itoa(i), text: mark(m.styles, o.Decision.Allow) + " " + text, plain: text})
	}
	return out
}
func (livePane) detail(m *Model, i int) string {
	st := m.styles
	if m.liveErr != nil || m.live == nil {
		return livePane{}.empty(m)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s  %s\n", st.Bold.Render(m.live.PR.PR.String()), st.Muted.Render(m.live.PR.HeadRef+" → "+m.live.PR.BaseRef))
	writeOutcome(&b, st, m.engine(), m.live.Outcomes[i])
	b.WriteString("\n" + st.Muted.Render("s saves this pull request as a fixture"))
	return b.String()
}
func (livePane) empty(m *Model) string {
	if m.liveErr != nil {
		return m.styles.Fail.Render("live pull request: ") + m.liveErr.Error()
	}
	return m.styles.Muted.Render(emptyDefault(m, "nothing to show"))
}

// diffPane is what a diff against a revision (or the shadow policies)
// decides differently.
type diffPane struct{ noPos }

func (diffPane) content(m *Model) []row { return changeRows(m.styles, m.diffChanges) }
func (diffPane) detail(m *Model, i int) string {
	if m.diffErr != nil {
		return diffPane{}.empty(m)
	}
	labels := diffLabels
	if m.diffShadow {
		labels = shadowLabels
	}
	return changeDetail(m.styles, m.diffChanges[i], labels) + "\n" + m.styles.Muted.Render("compared with "+m.diffRef)
}
func (diffPane) empty(m *Model) string {
	if m.diffErr != nil {
		return m.styles.Fail.Render("diff: ") + m.diffErr.Error()
	}
	return m.styles.Muted.Render("nothing differs from " + m.diffRef)
}
