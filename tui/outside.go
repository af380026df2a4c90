package tui

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"time"

	tea "github.com/charmbracelet/bubbletea"

	"github.com/gitpoli/gitpoli/workbench"
	"github.com/gitpoli/gitpoli/workbench/fixture"
	"github.com/gitpoli/gitpoli/workbench/session"
)

// What the workbench asks of the world outside the workspace: a live pull
// request from GitHub, the workspace at another git revision, the
// shadow policies' disagreements in gitpoli serve's audit log.

var prRef = regexp.MustCompile(`^([A-Za-z0-9_.-]+)/([A-Za-z0-9_.-]+)#([0-9]+)$`)

func (m *Model) fetchLive(ref string) tea.Cmd {
	mm := prRef.FindStringSubmatch(ref)
	if mm == nil {
		m.liveErr, m.live = fmt.Errorf("%q is not owner/repo#N", ref), nil
		m.active = viewLive
		m.refreshRows()
		return nil
	}
	token := m.opts.GitHubToken
	if token == "" {
		m.liveErr, m.live = errors.New("set GITHUB_TOKEN to a token that can read the repository (export GITHUB_TOKEN=...), then start gitpoli again"), nil
		m.active = viewLive
		m.refreshRows()
		return nil
	}
	e := m.engine()
	if e == nil {
		m.flash = "the policies do not compile: fix them first"
		return nil
	}
	n, _ := strconv.Atoi(mm[3])
	pr := workbench.PR{Repo: workbench.Repo{Owner: mm[1], Name: mm[2]}, Number: n}
	opts := fixture.LiveOptions{Token: token, APIURL: m.opts.GitHubAPIURL, Transport: m.opts.Transport}
	m.fetching = true
	return tea.Batch(m.spinner.Tick, func() tea.Msg {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		live, err := fixture.FetchLive(ctx, e, pr, opts)
		return liveMsg{live: live, err: err}
	})
}

// diffAgainst runs everything at a git revision (read from git objects)
// and compares it with what is on screen.
func (m *Model) diffAgainst(ref string) tea.Cmd {
	current := m.snap
	if current == nil {
		m.flash = "wait for the first run to finish"
		return nil
	}
	root, defaults := m.opts.Workspace.Root, m.opts.Workspace.Defaults
	m.fetching = true
	return tea.Batch(m.spinner.Tick, func() tea.Msg {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		rev := ref
		if rev == "" {
			var err error
			if rev, err = session.MergeBase(ctx, root); err != nil {
				return diffMsg{ref: "the default branch", err: err}
			}
		}
		base, err := session.AtRevision(ctx, root, rev, defaults, m.opts.Workspace.EngineOptions...)
		if err != nil {
			return diffMsg{ref: rev, err: err}
		}
		return diffMsg{ref: rev, changes: session.Diff(base, current)}
	})
}

// shadow shows the shadow policies' disagreements with the enforced
// decisions in the diff view: before is what was enforced, now what the
// shadow policies decided.
func (m *Model) shadow() tea.Cmd {
	if m.opts.Shadow == nil {
		m.flash = "start the workbench with --db FILE or --db postgres://... (the audit database of gitpoli serve) to read shadow disagreements"
		return nil
	}
	read, ref := m.opts.Shadow, "the shadow policies in "+m.opts.ShadowSource
	m.fetching = true
	return tea.Batch(m.spinner.Tick, func() tea.Msg {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		changes, err := read(ctx)
		return diffMsg{ref: ref, changes: changes, err: err, shadow: true}
	})
}

func (m *Model) saveLive() tea.Cmd {
	if m.live == nil {
		m.flash = "no live pull request to save: press p first"
		return nil
	}
	live := m.live
	dir := filepath.Join(m.opts.Workspace.Root, "fixtures")
	now := m.opts.Now()
	return func() tea.Msg {
		data, err := live.Fixture(now).Marshal()
		if err != nil {
			return savedMsg{err: err}
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return savedMsg{err: err}
		}
		path := filepath.Join(dir, live.FileName())
		if err := os.WriteFile(path, data, 0o644); err != nil {
			return savedMsg{err: err}
		}
		return savedMsg{path: filepath.Join("fixtures", live.FileName())}
	}
}

func shortRev(rev string) string {
	if len(rev) == 40 {
		return rev[:8]
	}
	return rev
}
