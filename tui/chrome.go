package tui

import (
	"fmt"
	"strings"
	"time"

	"github.com/charmbracelet/lipgloss"
	"github.com/charmbracelet/x/ansi"
)

// The frame around the panes: the header's figures, the banner, the
// tabs, kept within the window.

// clip keeps the frame within the window, so a narrow terminal never
// scrolls.
func clip(s string, w, h int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > h {
		lines = lines[:h]
	}
	for i, l := range lines {
		if ansi.StringWidth(l) > w {
			lines[i] = ansi.Truncate(l, w, "")
		}
	}
	return strings.Join(lines, "\n")
}

func (m Model) headerView() string {
	st := m.styles
	title := st.Title.Render("gitpoli workbench")
	if m.snap == nil {
		return title + "  " + st.Muted.Render("running…")
	}
	s := m.snap
	tp, tf := s.TestCounts()
	fm, fx := s.FixtureCounts()
	cp := len(s.ConfigProblems())
	// Narrower, the words go before the figures: every figure stays whole.
	// The width is judged with the run's figures at their widest, so that
	// the header does not change shape from one run to the next.
	took := s.Took.Round(time.Millisecond).String()
	for short := 0; ; short++ {
		name, config, run := title, "config valid", fmt.Sprintf("run #%d · %s", s.Gen, took)
		if cp > 0 {
			config = "config: " + plural(cp, "problem", "problems")
		}
		if short >= 1 {
			name = st.Title.Render("gitpoli")
			run = fmt.Sprintf("#%d · %s", s.Gen, took)
		}
		if short >= 2 {
			config = "config"
			if cp > 0 {
				config = fmt.Sprintf("config %d", cp)
			}
		}
		switch {
		case s.TestsPending:
			run = m.spinner.View() + " tests running · " + run
		case m.running:
			run = m.spinner.View() + " running · " + run
		}
		header := strings.Join([]string{
			name,
			mark(st, tf == 0) + fmt.Sprintf(" tests %d/%d", tp, tp+tf),
			mark(st, fx == 0) + fmt.Sprintf(" fixtures %d/%d", fm, fm+fx),
			mark(st, cp == 0) + " " + config,
			st.Muted.Render(run),
		}, "  ")
		widest := lipgloss.Width(header) - len(took) + len("999ms") + 3 // "#9999"
		if short == 2 || m.width == 0 || widest <= m.width {
			return header
		}
	}
}

// plural is "1 problem", "2 problems".
func plural(n int, one, many string) string {
	if n == 1 {
		return fmt.Sprintf("%d %s", n, one)
	}
	return fmt.Sprintf("%d %s", n, many)
}

func (m Model) bannerView() string {
	st := m.styles
	s := m.snap
	switch {
	case m.runErr != nil:
		return st.ErrorBanner.Render("run failed: " + m.runErr.Error())
	case s == nil:
		return ""
	case s.Stale:
		first := ""
		for _, p := range s.Problems {
			if p.Code == "rego" {
				first = ": " + p.String()
				break
			}
		}
		return st.ErrorBanner.Render("STALE — the policies do not compile" + first + " (showing the last good results)")
	case len(s.Problems) > 0:
		return st.ErrorBanner.Render(plural(len(s.Problems), "problem", "problems") + ": " + s.Problems[0].String())
	case len(m.changes) > 0:
		flips := 0
		for _, c := range m.changes {
			if c.Flipped {
				flips++
			}
		}
		return st.Banner.Render(fmt.Sprintf("%d changed since the previous run, %d flipped (view 3)", len(m.changes), flips))
	case s.OK():
		return st.Pass.Render("all green: every test passes, every fixture decides as expected")
	}
	return st.Fail.Render("failures: see tests and fixtures")
}

func (m Model) tabsView() string {
	st := m.styles
	var tabs []string
	for v := view(0); v < m.numTabs(); v++ {
		label := fmt.Sprintf("%d %s", v+1, v.title())
		if v == viewDiff && m.diffShadow {
			label += " vs shadow"
		} else if v == viewDiff && m.diffRef != "" {
			label += " vs " + shortRev(m.diffRef)
		}
		switch {
		case v == viewChanged:
			label += fmt.Sprintf(" (%d)", len(m.views[v].rows))
		case v == viewProblems && m.snap != nil:
			label += fmt.Sprintf(" (%d)", len(m.snap.Problems))
		case v == viewProblems:
			label += " (0)"
		}
		if f := m.views[v].filter; f != "" {
			label += " /" + f
		}
		if v == m.active {
			tabs = append(tabs, st.ActiveTab.Render(label))
		} else {
			tabs = append(tabs, st.Tab.Render(label))
		}
	}
	return strings.Join(tabs, "")
}
