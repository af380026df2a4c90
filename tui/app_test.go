package tui

import (
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/x/exp/golden"
	"github.com/charmbracelet/x/exp/teatest"

	"github.com/gitpoli/gitpoli/internal/testrepo"
	"github.com/gitpoli/gitpoli/workbench/fixture"
	"github.com/gitpoli/gitpoli/workbench/session"
)

func newModel(t *testing.T, root string, w, h int, env map[string]string) Model {
	t.Helper()
	m := New(Options{
		Workspace:    session.Workspace{Root: root},
		Output:       io.Discard,
		NoColor:      true,
		GitHubToken:  env["GITHUB_TOKEN"],
		GitHubAPIURL: env["GITHUB_API_URL"],
	})
	next, _ := m.Update(tea.WindowSizeMsg{Width: w, Height: h})
	return next.(Model)
}

// run performs one run the way the program would and feeds its result
// back into the model.
func run(t *testing.T, m Model) Model {
	t.Helper()
	cmd := m.startRunCmd()
	if cmd == nil {
		t.Fatal("no run started")
	}
	for {
		msg := cmd()
		next, rest := m.Update(msg)
		m = next.(Model)
		if _, early := msg.(earlyMsg); !early {
			return m
		}
		if !m.Snapshot().TestsPending {
			t.Fatal("an early snapshot without pending tests")
		}
		cmd = rest
	}
}

func press(m Model, keys ...string) Model {
	for _, k := range keys {
		var msg tea.KeyMsg
		switch k {
		case "esc":
			msg = tea.KeyMsg{Type: tea.KeyEsc}
		case "enter":
			msg = tea.KeyMsg{Type: tea.KeyEnter}
		case "tab":
			msg = tea.KeyMsg{Type: tea.KeyTab}
		case "down":
			msg = tea.KeyMsg{Type: tea.KeyDown}
		default:
			msg = tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune(k)}
		}
		next, _ := m.Update(msg)
		m = next.(Model)
	}
	return m
}

var timing = regexp.MustCompile(`(?m)(run )?#\d+ · .*$`)

func screen(m Model) string {
	return timing.ReplaceAllString(m.View(), "${1}#N") + "\n"
}

// TestScreens drives the model through a session of edits and compares
// what it draws with golden screens, colors off.
func TestScreens(t *testing.T) {
	for _, size := range []struct {
		name string
		w, h int
	}{{"80x24", 80, 24}, {"120x40", 120, 40}, {"narrow_60x18", 60, 18}} {
		t.Run(size.name, func(t *testing.T) {
			root := testrepo.Copy(t, "..")
			m := run(t, newModel(t, root, size.w, size.h, nil))
			t.Run("first_load", func(t *testing.T) { golden.RequireEqual(t, screen(m)) })

			t.Run("help", func(t *testing.T) { golden.RequireEqual(t, screen(press(m, "?"))) })

			t.Run("filter", func(t *testing.T) {
				golden.RequireEqual(t, screen(press(m, "2", "/", "d", "c", "o", "enter")))
			})

			testrepo.Edit(t, filepath.Join(root, "policies/deploy.rego"), "done >= max", "done > max")
			m = run(t, m)
			t.Run("failing_test_changed_view", func(t *testing.T) { golden.RequireEqual(t, screen(m)) })
			t.Run("failing_test_detail", func(t *testing.T) {
				golden.RequireEqual(t, screen(press(m, "1", "/", "r", "a", "t", "e", "_", "l", "i", "m", "i", "t", "_", "e", "x", "enter")))
			})

			testrepo.Edit(t, filepath.Join(root, ".repol/deploy.yaml"), "approvals_required: 2", "approvals_required: 11")
			m = run(t, m)
			t.Run("config_error", func(t *testing.T) { golden.RequireEqual(t, screen(press(m, "4"))) })

			testrepo.Edit(t, filepath.Join(root, "policies/deploy.rego"), "allow if count(violations) == 0", "allow if count(violations) ==")
			m = run(t, m)
			t.Run("stale", func(t *testing.T) { golden.RequireEqual(t, screen(m)) })
		})
	}
}

func TestModelState(t *testing.T) {
	root := testrepo.Copy(t, "..")
	m := run(t, newModel(t, root, 100, 30, nil))
	if s := m.Snapshot(); s == nil || !s.OK() {
		t.Fatalf("first run not green: %+v", s)
	}
	if m.Active() != "Tests" {
		t.Errorf("first view %q, want Tests", m.Active())
	}
	// A save that flips decisions shows the changed view.
	testrepo.Edit(t, filepath.Join(root, ".repol/pullrequest.yaml"), "approvals_required: 1", "approvals_required: 3")
	m = run(t, m)
	if m.Active() != "Changed" || len(m.changes) == 0 {
		t.Fatalf("after a flipping save: view %q, %d changes", m.Active(), len(m.changes))
	}
	// Filtering narrows the list; esc clears it.
	m = press(m, "2", "/", "o", "w", "n", "e", "r", "s")
	if got := len(m.views[viewFixtures].visible); got != 2 {
		t.Errorf("filter owners: %d rows, want 2", got)
	}
	m = press(m, "esc")
	if got := len(m.views[viewFixtures].visible); got != len(m.views[viewFixtures].rows) {
		t.Errorf("after esc: %d of %d rows", got, len(m.views[viewFixtures].rows))
	}
	// A run that finishes after a newer one started is dropped.
	stale := m.startRunCmd()
	m.gen++ // a newer run has started
	next, _ := m.Update(stale())
	m = next.(Model)
	if m.Snapshot().TestsPending {
		t.Error("an early snapshot of a superseded run was shown")
	}
	if m.runErr != nil {
		t.Errorf("stale result: %v", m.runErr)
	}
	// The live prompt without a token says how to set one.
	m = press(m, "p", "o", "/", "r", "#", "1", "enter")
	if m.Active() != "Live PR" || m.liveErr == nil || !strings.Contains(m.liveErr.Error(), "GITHUB_TOKEN") {
		t.Errorf("live prompt without a token: view %q, err %v", m.Active(), m.liveErr)
	}
}

// TestProgramWithWatcher runs the real program with the real watcher on a
// temporary workspace: a breaking edit shows a failing test, the revert
// shows all green again.
func TestProgramWithWatcher(t *testing.T) {
	root := testrepo.Copy(t, "..")
	w, err := session.Watch(root, 20*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	tm, waitFor := startProgram(t, New(Options{Workspace: session.Workspace{Root: root}, Watcher: w, Output: io.Discard, NoColor: true}))
	waitFor("all green")
	path := filepath.Join(root, "policies/deploy.rego")
	original, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	testrepo.Edit(t, path, "done >= max", "done > max")
	waitFor("tests 66/68")
	if err := os.WriteFile(path, original, 0o644); err != nil {
		t.Fatal(err)
	}
	waitFor("tests 68/68")
	tm.Send(tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune("q")})
	final := tm.FinalModel(t, teatest.WithFinalTimeout(10*time.Second)).(Model)
	if s := final.Snapshot(); s == nil || !s.OK() {
		t.Errorf("after the revert the workbench is not green: %+v", s)
	}
}

// TestLivePullRequest fetches a pull request from recorded API responses
// (the same code as against GitHub), shows it, and saves it as a fixture.
func TestLivePullRequest(t *testing.T) {
	root := testrepo.Copy(t, "..")
	data, err := os.ReadFile(filepath.Join(root, "fixtures/pull_request.opened.dco-missing.json"))
	if err != nil {
		t.Fatal(err)
	}
	source, err := fixture.Parse("dco-missing.json", data)
	if err != nil {
		t.Fatal(err)
	}
	responses := map[string]fixture.Response{"GET /repos/Codertocat/Hello-World/pulls/2": {Status: 200, Body: []byte(`{
		"number": 2, "state": "open", "user": {"login": "Codertocat"},
		"head": {"ref": "feature/dco", "label": "Codertocat:feature/dco", "sha": "ec26c3e57ca3a959ca5aad62de7213c562f8c821", "repo": {"full_name": "Codertocat/Hello-World"}},
		"base": {"ref": "main", "repo": {"full_name": "Codertocat/Hello-World"}}}`)}}
	for k, v := range source.Responses {
		responses[k] = v
	}
	m := New(Options{
		Workspace:   session.Workspace{Root: root},
		Output:      io.Discard,
		NoColor:     true,
		GitHubToken: "t0ken",
		Transport:   fixture.NewPlayer(responses),
		Now:         func() time.Time { return time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC) },
	})
	next, _ := m.Update(tea.WindowSizeMsg{Width: 100, Height: 30})
	m = run(t, next.(Model))
	m = press(m, "p")
	for _, r := range "Codertocat/Hello-World#2" {
		m = press(m, string(r))
	}
	next, cmd := m.Update(tea.KeyMsg{Type: tea.KeyEnter})
	m = next.(Model)
	if !m.fetching || cmd == nil {
		t.Fatal("enter did not start fetching")
	}
	// The command batches the spinner and the fetch; run the fetch.
	var live tea.Msg
	for _, c := range cmd().(tea.BatchMsg) {
		if msg, ok := c().(liveMsg); ok {
			live = msg
		}
	}
	next, _ = m.Update(live)
	m = next.(Model)
	if m.liveErr != nil || m.live == nil || m.Active() != "Live PR" {
		t.Fatalf("live: view %q, err %v", m.Active(), m.liveErr)
	}
	if !strings.Contains(m.View(), "signoff.missing") {
		t.Errorf("the live view does not show the decision:\n%s", m.View())
	}
	next, cmd = m.Update(tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune("s")})
	m = next.(Model)
	next, _ = m.Update(cmd())
	m = next.(Model)
	saved := filepath.Join(root, "fixtures/live.codertocat.hello-world.2.json")
	data, err = os.ReadFile(saved)
	if err != nil {
		t.Fatalf("saved fixture: %v (flash %q)", err, m.flash)
	}
	if strings.Contains(string(data), "t0ken") {
		t.Error("the saved fixture holds the token")
	}
	// The next run replays the new fixture, and it passes.
	m = run(t, m)
	for _, r := range m.Snapshot().Fixtures {
		if r.Fixture == "fixtures/live.codertocat.hello-world.2.json" && !r.Pass {
			t.Errorf("the saved fixture does not replay: %s", r.Mismatch)
		}
	}
}

// TestDiffView compares the working tree with a committed revision: the
// decisions an uncommitted config change flips are listed.
func TestDiffView(t *testing.T) {
	root := testrepo.Copy(t, "..")
	for _, args := range [][]string{{"init", "-q", "-b", "main"}, {"add", "-A"}, {"-c", "user.email=t@example.com", "-c", "user.name=t", "commit", "-q", "-m", "base"}} {
		cmd := exec.Command("git", args...)
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v %s", args, err, out)
		}
	}
	testrepo.Edit(t, filepath.Join(root, ".repol/pullrequest.yaml"), "approvals_required: 1", "approvals_required: 2")
	m := run(t, newModel(t, root, 100, 30, nil))
	m = press(m, "d")
	for _, r := range "main" {
		m = press(m, string(r))
	}
	next, cmd := m.Update(tea.KeyMsg{Type: tea.KeyEnter})
	m = next.(Model)
	var diff tea.Msg
	for _, c := range cmd().(tea.BatchMsg) {
		if msg, ok := c().(diffMsg); ok {
			diff = msg
		}
	}
	next, _ = m.Update(diff)
	m = next.(Model)
	if m.Active() != "Diff" || m.diffErr != nil || len(m.diffChanges) == 0 {
		t.Fatalf("diff view: %q, %v, %d changes", m.Active(), m.diffErr, len(m.diffChanges))
	}
	flipped := false
	for _, c := range m.diffChanges {
		flipped = flipped || (c.Flipped && c.Name == "fixtures/pull_request.opened.feature-approved.json" && c.Before == "allow" && c.After == "deny [approvals.insufficient]")
	}
	if !flipped || !strings.Contains(m.View(), "6 Diff vs main") {
		t.Errorf("the diff view does not show the flip:\n%s", m.View())
	}
}

func TestShadowView(t *testing.T) {
	m := run(t, newModel(t, testrepo.Copy(t, ".."), 100, 30, nil))
	if m = press(m, "S"); !strings.Contains(m.View(), "--db FILE") {
		t.Errorf("S without a database does not say how to get one:\n%s", m.View())
	}
	m.opts.Shadow = func(context.Context) ([]session.Change, error) {
		return []session.Change{{Kind: "decision", Name: "dec-1 deploy octo/service", Before: "allow", After: "deny [approvals.insufficient]", Flipped: true}}, nil
	}
	m.opts.ShadowSource = "gitpoli.db"
	next, cmd := m.Update(tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune("S")})
	m = next.(Model)
	for _, c := range cmd().(tea.BatchMsg) {
		if msg, ok := c().(diffMsg); ok {
			next, _ = m.Update(msg)
			m = next.(Model)
		}
	}
	view := m.View()
	for _, want := range []string{"6 Diff vs shadow", "decision dec-1 deploy octo/service", "enforced  allow", "shadow    deny [approvals.insufficient]", "the shadow policies decide the other way"} {
		if !strings.Contains(view, want) {
			t.Errorf("the shadow view lacks %q:\n%s", want, view)
		}
	}
}

// startProgram runs m as the real program does, at 100×30, and returns
// it with a wait for text on its screen.
func startProgram(t *testing.T, m Model) (*teatest.TestModel, func(string)) {
	tm := teatest.NewTestModel(t, m, teatest.WithInitialTermSize(100, 30))
	return tm, func(what string) {
		t.Helper()
		teatest.WaitFor(t, tm.Output(), func(b []byte) bool { return bytes.Contains(b, []byte(what)) },
			teatest.WithDuration(20*time.Second), teatest.WithCheckInterval(20*time.Millisecond))
	}
}
