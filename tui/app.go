// Package tui is the workbench: a terminal UI that re-runs everything on
// save. It renders what workbench/session builds and holds no policy logic.
package tui

import (
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/charmbracelet/bubbles/help"
	"github.com/charmbracelet/bubbles/key"
	"github.com/charmbracelet/bubbles/spinner"
	"github.com/charmbracelet/bubbles/textinput"
	"github.com/charmbracelet/bubbles/viewport"
	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"

	"github.com/gitpoli/gitpoli/workbench"
	"github.com/gitpoli/gitpoli/workbench/fixture"
	"github.com/gitpoli/gitpoli/workbench/session"
)

// view is one of the workbench's lists.
type view int

const (
	viewTests view = iota
	viewFixtures
	viewChanged
	viewProblems
	viewLive
	viewDiff
	numViews
)

func (v view) title() string {
	return [...]string{"Tests", "Fixtures", "Changed", "Problems & policies", "Live PR", "Diff"}[v]
}

// Options configure the workbench.
type Options struct {
	Workspace session.Workspace
	// Watcher, when set, delivers saves; nil runs once (and on r).
	Watcher *session.Watcher
	// GitHubToken and GitHubAPIURL fetch live pull requests (the CLI
	// reads them from GITHUB_TOKEN and GITHUB_API_URL); no token, no live
	// pull requests.
	GitHubToken  string
	GitHubAPIURL string
	// Editor opens a file at a line (e): the CLI passes $VISUAL or
	// $EDITOR; empty means vi.
	Editor string
	// Output is where the workbench draws (for color detection).
	Output  io.Writer
	NoColor bool
	// Transport carries live pull-request requests (nil: the default).
	Transport http.RoundTripper
	Now       func() time.Time
	// Shadow, when set, reads the decisions the shadow policies of
	// gitpoli serve disagreed with; ShadowSource names where from.
	Shadow       func(context.Context) ([]session.Change, error)
	ShadowSource string
}

// Model is the workbench.
type Model struct {
	opts   Options
	styles Styles
	keys   KeyMap
	sess   *session.Session
	// testOrder maps the tests view's rows to the snapshot's tests.
	testOrder []int

	width, height int

	snap *session.Snapshot
	// base is the last complete snapshot: changes are counted from it, so
	// an early snapshot and the final one of a run report the same save.
	base    *session.Snapshot
	changes []session.Change
	runErr  error
	// Runs are serialized: a save during a run cancels it and queues one
	// more. gen numbers runs; a stale result is dropped.
	running bool
	pending bool
	gen     int
	cancel  context.CancelFunc

	active view
	// views are the views, each a component of its own.
	views [numViews]viewPane
	// mode is what the keys go to: the lists, or one of the inputs and
	// overlays drawn over them.
	mode     mode
	filter   textinput.Model
	detail   viewport.Model
	inDetail bool
	help     help.Model

	// promptDiff says the prompt asks for a git revision, not a PR.
	promptDiff bool
	prompt     textinput.Model
	// diffRef and diffChanges are the last diff against a revision.
	diffRef     string
	diffChanges []session.Change
	diffErr     error
	diffShadow  bool
	fetching    bool
	spinner     spinner.Model
	live        *fixture.Live
	liveErr     error
	flash       string
}

// New returns the workbench model.
func New(opts Options) Model {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Output == nil {
		opts.Output = os.Stdout
	}
	st := NewStyles(opts.Output, opts.NoColor)
	m := Model{
		opts:    opts,
		styles:  st,
		keys:    DefaultKeyMap(),
		sess:    session.New(opts.Workspace),
		filter:  textinput.New(),
		prompt:  textinput.New(),
		help:    help.New(),
		spinner: spinner.New(spinner.WithSpinner(spinner.Line)),
		detail:  viewport.New(40, 10),
		width:   80,
		height:  24,
	}
	for v := range m.views {
		m.views[v].pane = panes[v]
	}
	m.filter.Prompt = "/"
	m.help.Styles.ShortKey, m.help.Styles.FullKey = st.HelpKey, st.HelpKey
	m.help.Styles.ShortDesc, m.help.Styles.FullDesc = st.HelpDesc, st.HelpDesc
	m.layout()
	return m
}

// Init starts the first run and the watch.
func (m Model) Init() tea.Cmd {
	return tea.Batch(m.startRunCmd(), m.waitChange())
}

// Snapshot returns the snapshot on screen (for tests).
func (m Model) Snapshot() *session.Snapshot { return m.snap }

// Active returns the view on screen (for tests).
func (m Model) Active() string { return m.active.title() }

func (m *Model) startRunCmd() tea.Cmd {
	if m.running {
		m.pending = true
		if m.cancel != nil {
			m.cancel()
		}
		return nil
	}
	m.running, m.pending = true, false
	m.gen++
	gen := m.gen
	ctx, cancel := context.WithCancel(context.Background())
	m.cancel = cancel
	sess := m.sess
	return func() tea.Msg {
		early := make(chan *session.Snapshot, 1)
		rest := make(chan snapshotMsg, 1)
		go func() {
			defer cancel()
			snap, err := sess.RunProgressive(ctx, func(s *session.Snapshot) { early <- s })
			rest <- snapshotMsg{gen: gen, snap: snap, err: err}
		}()
		select {
		case s := <-early:
			return earlyMsg{gen: gen, snap: s, rest: rest}
		case msg := <-rest:
			return msg
		}
	}
}

// waitRest waits for the end of a run whose early snapshot is on screen.
func waitRest(rest <-chan snapshotMsg) tea.Cmd {
	return func() tea.Msg { return <-rest }
}

func (m Model) waitChange() tea.Cmd {
	w := m.opts.Watcher
	if w == nil {
		return nil
	}
	return func() tea.Msg {
		select {
		case <-w.Changes:
			return changeMsg{}
		case err := <-w.Errors:
			return watchErrMsg{err}
		}
	}
}

// Update handles a message.
func (m Model) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	switch msg := msg.(type) {
	case tea.WindowSizeMsg:
		m.width, m.height = msg.Width, msg.Height
		m.layout()
		return m, nil
	case changeMsg:
		return m, tea.Batch(m.startRunCmd(), m.waitChange())
	case watchErrMsg:
		m.flash = "watch: " + msg.err.Error()
		return m, m.waitChange()
	case earlyMsg:
		if msg.gen == m.gen && !m.pending {
			m.show(msg.snap)
		}
		return m, waitRest(msg.rest)
	case snapshotMsg:
		return m.applySnapshot(msg)
	case diffMsg:
		m.fetching = false
		m.diffRef, m.diffChanges, m.diffErr, m.diffShadow = msg.ref, msg.changes, msg.err, msg.shadow
		m.active = viewDiff
		m.refreshRows()
		return m, nil
	case liveMsg:
		m.fetching = false
		m.live, m.liveErr = msg.live, msg.err
		m.active = viewLive
		m.refreshRows()
		return m, nil
	case editedMsg:
		if msg.err != nil {
			m.flash = "editor: " + msg.err.Error()
		}
		return m, nil
	case savedMsg:
		if msg.err != nil {
			m.flash = "save fixture: " + msg.err.Error()
		} else {
			m.flash = "saved " + msg.path
		}
		return m, nil
	case spinner.TickMsg:
		if !m.fetching && !m.running {
			return m, nil
		}
		var cmd tea.Cmd
		m.spinner, cmd = m.spinner.Update(msg)
		return m, cmd
	case tea.KeyMsg:
		return m.handleKey(msg)
	}
	return m, nil
}

func (m Model) applySnapshot(msg snapshotMsg) (tea.Model, tea.Cmd) {
	m.running = false
	var cmd tea.Cmd
	if m.pending {
		cmd = m.startRunCmd()
	}
	if msg.gen != m.gen && m.running {
		return m, cmd // superseded by the run just started
	}
	if msg.err != nil {
		if !errors.Is(msg.err, context.Canceled) {
			m.runErr = msg.err
		}
		return m, cmd
	}
	m.runErr = nil
	m.show(msg.snap)
	m.base = msg.snap
	return m, cmd
}

// show puts a snapshot on screen with what changed since the last
// complete one.
func (m *Model) show(snap *session.Snapshot) {
	m.snap = snap
	m.changes = session.Diff(m.base, snap)
	// What a save changed, or broke, is what the author wants to see
	// first.
	switch {
	case m.mode == modeFilter:
	case snap.Stale:
		m.active = viewProblems
	case len(m.changes) > 0:
		m.active = viewChanged
	}
	m.refreshRows()
}

// mode says where keys go.
type mode int

const (
	modeList   mode = iota // the lists and the detail pane
	modeFilter             // the filter line of the list
	modePrompt             // the prompt for a pull request or a revision
	modeHelp               // the keys' help, over the lists
)

// handleKey gives a key to the input or overlay that has it, else to
// the lists.
func (m Model) handleKey(msg tea.KeyMsg) (tea.Model, tea.Cmd) {
	switch m.mode {
	case modePrompt:
		return m.promptKey(msg)
	case modeFilter:
		return m.filterKey(msg)
	case modeHelp:
		if key.Matches(msg, m.keys.Quit) {
			return m, tea.Quit
		}
		m.mode = modeList
		return m, nil
	}
	return m.listKey(msg)
}

// promptKey edits the prompt; Enter asks for what it names.
func (m Model) promptKey(msg tea.KeyMsg) (tea.Model, tea.Cmd) {
	switch msg.Type {
	case tea.KeyEsc:
		m.mode = modeList
		m.prompt.Blur()
		return m, nil
	case tea.KeyEnter:
		m.mode = modeList
		m.prompt.Blur()
		if m.promptDiff {
			return m, m.diffAgainst(strings.TrimSpace(m.prompt.Value()))
		}
		return m, m.fetchLive(strings.TrimSpace(m.prompt.Value()))
	}
	var cmd tea.Cmd
	m.prompt, cmd = m.prompt.Update(msg)
	return m, cmd
}

// filterKey edits the list's filter as it is typed; Esc clears it, Enter
// keeps it, and the arrows keep it and move.
func (m Model) filterKey(msg tea.KeyMsg) (tea.Model, tea.Cmd) {
	switch msg.Type {
	case tea.KeyEsc:
		m.mode = modeList
		m.filter.SetValue("")
		m.filter.Blur()
		m.views[m.active].SetFilter("")
		m.updateDetail()
		return m, nil
	case tea.KeyEnter, tea.KeyUp, tea.KeyDown:
		m.mode = modeList
		m.filter.Blur()
		if msg.Type != tea.KeyEnter {
			return m.listKey(msg)
		}
		return m, nil
	}
	var cmd tea.Cmd
	m.filter, cmd = m.filter.Update(msg)
	m.views[m.active].SetFilter(m.filter.Value())
	m.updateDetail()
	return m, cmd
}

// listKey is a key of the lists and the detail pane.
func (m Model) listKey(msg tea.KeyMsg) (tea.Model, tea.Cmd) {
	k := m.keys
	switch {
	case key.Matches(msg, k.Quit):
		if m.cancel != nil {
			m.cancel()
		}
		return m, tea.Quit
	case key.Matches(msg, k.Help):
		m.mode = modeHelp
	case key.Matches(msg, k.ClearFilter):
		if m.inDetail {
			m.inDetail = false
		} else {
			m.views[m.active].SetFilter("")
			m.filter.SetValue("")
			m.updateDetail()
		}
	case key.Matches(msg, k.Filter):
		m.mode = modeFilter
		m.inDetail = false
		m.filter.SetValue(m.views[m.active].filter)
		return m, m.filter.Focus()
	case key.Matches(msg, k.Detail):
		m.inDetail = !m.inDetail
	case !m.inDetail && m.views[m.active].Update(msg, k):
		m.updateDetail()
	case key.Matches(msg, k.Up):
		m.scrollDetail(-1)
	case key.Matches(msg, k.Down):
		m.scrollDetail(1)
	case key.Matches(msg, k.PageUp):
		m.scrollDetail(-m.views[m.active].height)
	case key.Matches(msg, k.PageDown):
		m.scrollDetail(m.views[m.active].height)
	case key.Matches(msg, k.NextTab):
		m.switchTo((m.active + 1) % m.numTabs())
	case key.Matches(msg, k.PrevTab):
		m.switchTo((m.active + m.numTabs() - 1) % m.numTabs())
	case key.Matches(msg, k.Tests):
		m.switchTo(viewTests)
	case key.Matches(msg, k.Fixtures):
		m.switchTo(viewFixtures)
	case key.Matches(msg, k.Changed):
		m.switchTo(viewChanged)
	case key.Matches(msg, k.Problems):
		m.switchTo(viewProblems)
	case key.Matches(msg, k.Rerun):
		return m, m.startRunCmd()
	case key.Matches(msg, k.LivePR):
		return m, m.ask(false, "pull request (owner/repo#N): ", "octo-org/service#42")
	case key.Matches(msg, k.DiffRef):
		return m, m.ask(true, "diff against git revision (empty: merge-base with the default branch): ", "main")
	case key.Matches(msg, k.SaveFixture):
		return m, m.saveLive()
	case key.Matches(msg, k.Shadow):
		return m, m.shadow()
	case key.Matches(msg, k.Edit):
		return m, m.edit()
	}
	return m, nil
}

// ask opens the prompt, for a git revision (diff) or a pull request.
func (m *Model) ask(diff bool, prompt, placeholder string) tea.Cmd {
	m.mode, m.promptDiff = modePrompt, diff
	m.prompt.Prompt, m.prompt.Placeholder = prompt, placeholder
	m.prompt.SetValue("")
	return m.prompt.Focus()
}

func (m *Model) numTabs() view {
	switch {
	case m.diffRef != "" || m.diffErr != nil:
		return numViews
	case m.live != nil || m.liveErr != nil:
		return viewDiff
	}
	return viewLive
}

func (m *Model) switchTo(v view) {
	m.active = v
	m.inDetail = false
	m.updateDetail()
}

// scrollDetail scrolls the detail pane, when it has the keys.
func (m *Model) scrollDetail(n int) {
	if n < 0 {
		m.detail.ScrollUp(-n)
	} else {
		m.detail.ScrollDown(n)
	}
}

// refreshRows rebuilds every list from the workbench's state.
func (m *Model) refreshRows() {
	problems := &m.views[viewProblems]
	before := problems.problemCount()
	for v := range m.views {
		m.views[v].Refresh(m)
	}
	if m.snap != nil && len(m.snap.Problems) > before {
		// A new problem is what the view is for: show it, not the policy
		// that was selected.
		problems.cursor, problems.offset = 0, 0
		problems.clamp()
	}
	m.updateDetail()
}

func outcomeSummary(o workbench.Outcome) string {
	if o.Decision.Allow {
		return string(o.Decision.Policy) + " allow"
	}
	return string(o.Decision.Policy) + " deny " + strings.Join(o.Decision.Codes(), " ")
}

// updateDetail shows the selected item in the detail pane.
func (m *Model) updateDetail() {
	m.detail.SetContent(m.detailText())
	m.detail.GotoTop()
}

func (m *Model) detailText() string {
	p := m.views[m.active]
	text := p.empty(m)
	if i := m.views[m.active].Selected(); i >= 0 && (m.snap != nil || m.active >= viewLive) {
		text = p.detail(m, i)
	}
	return lipgloss.NewStyle().Width(max(m.detail.Width, 10)).Render(text)
}

func (m *Model) engine() *workbench.Engine {
	if m.snap == nil {
		return nil
	}
	return m.snap.Engine
}

// layout sizes the panes for the window.
func (m *Model) layout() {
	bodyH := max(m.height-5, 3) // header, banner, tabs, help; borders below
	leftW := max(m.width*2/5, 24)
	rightW := max(m.width-leftW, 20)
	for i := range m.views {
		m.views[i].SetSize(leftW-2, bodyH-2)
	}
	m.detail.Width, m.detail.Height = rightW-2, bodyH-2
	m.help.Width = m.width
	m.updateDetail()
}

// View draws the workbench.
func (m Model) View() string {
	st := m.styles
	header := m.headerView()
	banner := m.bannerView()
	tabs := m.tabsView()
	leftW := max(m.width*2/5, 24)
	rightW := max(m.width-leftW, 20)
	bodyH := max(m.height-5, 3)
	listStyle, detailStyle := st.FocusedPane, st.Pane
	if m.inDetail {
		listStyle, detailStyle = st.Pane, st.FocusedPane
	}
	left := listStyle.Width(leftW - 2).Height(bodyH - 2).Render(m.views[m.active].View(st, !m.inDetail))
	right := detailStyle.Width(rightW - 2).Height(bodyH - 2).Render(m.detail.View())
	body := lipgloss.JoinHorizontal(lipgloss.Top, left, right)
	if m.mode == modeHelp {
		body = st.FocusedPane.Width(m.width - 2).Height(bodyH - 2).Render(
			st.Title.Render("keys") + "\n\n" + m.help.FullHelpView(m.keys.FullHelp()) + "\n\n" + st.Muted.Render("any key closes this help"))
	}
	footer := m.help.ShortHelpView(m.keys.ShortHelp())
	switch {
	case m.mode == modePrompt:
		footer = m.prompt.View()
	case m.mode == modeFilter:
		footer = st.Filter.Render(m.filter.View())
	case m.fetching:
		footer = m.spinner.View() + " working…"
	case m.flash != "":
		footer = st.Banner.Render(m.flash)
	}
	out := lipgloss.JoinVertical(lipgloss.Left, header, banner, tabs, body, footer)
	return clip(out, m.width, m.height)
}
