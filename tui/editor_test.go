package tui

import (
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/x/exp/teatest"

	"github.com/gitpoli/gitpoli/internal/testrepo"
	"github.com/gitpoli/gitpoli/workbench/session"
)

func TestEditorArgs(t *testing.T) {
	tests := []struct {
		editor string
		want   []string
	}{
		{"", []string{"vi", "+12", "p.rego"}},
		{"nvim", []string{"nvim", "+12", "p.rego"}},
		{"emacs -nw", []string{"emacs", "-nw", "+12", "p.rego"}},
		{"code --wait", []string{"code", "--wait", "--goto", "p.rego:12"}},
		{"/usr/local/bin/subl -w", []string{"/usr/local/bin/subl", "-w", "p.rego:12"}},
		{"hx", []string{"hx", "p.rego:12"}},
		{"goland", []string{"goland", "--line", "12", "p.rego"}},
	}
	for _, tt := range tests {
		if got := editorArgs(tt.editor, "p.rego", 12); !slices.Equal(got, tt.want) {
			t.Errorf("editorArgs(%q) = %q, want %q", tt.editor, got, tt.want)
		}
	}
	if got := editorArgs("vim", "p.rego", 0); !slices.Equal(got, []string{"vim", "p.rego"}) {
		t.Errorf("no line: %q", got)
	}
}

// TestEditSelectedTest runs the real program: e on a test hands the
// terminal to $EDITOR at the test's file and line (here a script that
// breaks the policy the test covers, as a person would), and the
// workbench picks up the save.
func TestEditSelectedTest(t *testing.T) {
	root := testrepo.Copy(t, "..")
	args := filepath.Join(t.TempDir(), "args")
	editor := filepath.Join(t.TempDir(), "editor")
	script := "#!/bin/sh\necho \"$@\" > " + args + "\nsed -i 's/done >= max/done > max/' " + filepath.Join(root, "policies/deploy.rego") + "\n"
	if err := os.WriteFile(editor, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	w, err := session.Watch(root, 20*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	tm, waitFor := startProgram(t, New(Options{Workspace: session.Workspace{Root: root}, Watcher: w, Output: io.Discard, NoColor: true, Editor: editor}))
	waitFor("all green")
	tm.Send(tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune("e")})
	waitFor("tests 66/68")
	tm.Send(tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune("q")})
	tm.WaitFinished(t, teatest.WithFinalTimeout(10*time.Second))
	got, err := os.ReadFile(args)
	if err != nil {
		t.Fatal(err)
	}
	// The first test listed (all pass: the first of the run).
	if want := "+61 " + filepath.Join(root, "policies/deploy_test.rego"); strings.TrimSpace(string(got)) != want {
		t.Errorf("editor ran with %q, want %q", got, want)
	}
}
