package tui

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"

	tea "github.com/charmbracelet/bubbletea"

	"github.com/gitpoli/gitpoli/workbench"
)

// editedMsg says the editor the workbench handed the terminal to has
// exited; the save it made arrives through the watcher.
type editedMsg struct{ err error }

// editorArgs is the command that opens file at line in editor (the value
// of $VISUAL or $EDITOR, which may carry arguments), as lazygit's
// editAtLine presets do for the editors that take a line.
func editorArgs(editor, file string, line int) []string {
	args := strings.Fields(editor)
	if len(args) == 0 {
		args = []string{"vi"}
	}
	if line < 1 {
		return append(args, file)
	}
	switch filepath.Base(args[0]) {
	case "code", "code-insiders", "codium", "cursor":
		return append(args, "--goto", fmt.Sprintf("%s:%d", file, line))
	case "subl", "hx", "helix", "zed", "micro":
		return append(args, fmt.Sprintf("%s:%d", file, line))
	case "idea", "goland":
		return append(args, "--line", fmt.Sprint(line), file)
	}
	// vi, vim, nvim, nano, emacs, kak, joe and most others.
	return append(args, fmt.Sprintf("+%d", line), file)
}

// selectedPos is where the selected item is written: a test, the rule
// of a decision's first violation (else its config line), a problem, a
// policy's annotation.
func (m *Model) selectedPos() (workbench.Pos, bool) {
	i := m.views[m.active].Selected()
	if m.snap == nil || i < 0 {
		return workbench.Pos{}, false
	}
	return m.views[m.active].pos(m, i)
}

// edit hands the terminal to the editor at the selected item's line.
func (m *Model) edit() tea.Cmd {
	pos, ok := m.selectedPos()
	if !ok {
		m.flash = "nothing here to open in an editor"
		return nil
	}
	if m.isBuiltIn(pos.File) {
		m.flash = pos.File + " is built into gitpoli: there is no file to edit here (gitpoli init writes one)"
		return nil
	}
	path := pos.File
	if !filepath.IsAbs(path) {
		path = filepath.Join(m.opts.Workspace.Root, path)
	}
	args := editorArgs(m.opts.Editor, path, pos.Line)
	cmd := exec.Command(args[0], args[1:]...)
	return tea.ExecProcess(cmd, func(err error) tea.Msg { return editedMsg{err} })
}

// isBuiltIn reports whether a file comes from the copy built into
// gitpoli rather than from the workspace.
func (m *Model) isBuiltIn(file string) bool {
	s := m.snap
	if s == nil {
		return false
	}
	for _, d := range []workbench.Dir{s.Sources.Policies, s.Sources.Config, s.Sources.Schemas} {
		if d.Embedded && strings.HasPrefix(file, d.Name+"/") {
			return true
		}
	}
	return false
}
