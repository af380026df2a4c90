package tui

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"

	"github.com/gitpoli/gitpoli/internal/testrepo"
	"github.com/gitpoli/gitpoli/workbench/session"
)

// BenchmarkSaveToScreen measures what an author waits for: from writing
// a file to the refreshed model and screen, through the real watcher. It
// alternates a .repol threshold and a Rego message, and reports p50/p95.
func BenchmarkSaveToScreen(b *testing.B) {
	root := testrepo.Copy(b, "..")
	w, err := session.Watch(root, session.DefaultDebounce)
	if err != nil {
		b.Fatal(err)
	}
	defer w.Close()
	m := New(Options{Workspace: session.Workspace{Root: root}, Watcher: w, Output: io.Discard, NoColor: true})
	next, _ := m.Update(tea.WindowSizeMsg{Width: 120, Height: 40})
	m = next.(Model)
	m = settle(m, m.startRunCmd())

	type file struct {
		path     string
		variants [2][]byte
	}
	var files []file
	for _, e := range []struct{ path, old, new string }{
		{".repol/pullrequest.yaml", "approvals_required: 1", "approvals_required: 2"},
		{"policies/deploy.rego", `"Missing input.environment"`, `"Missing input.environment."`},
	} {
		p := filepath.Join(root, e.path)
		data, err := os.ReadFile(p)
		if err != nil {
			b.Fatal(err)
		}
		files = append(files, file{p, [2][]byte{data, []byte(strings.Replace(string(data), e.old, e.new, 1))}})
	}
	ctx := context.Background()
	var first, done []time.Duration
	i := 0
	for b.Loop() {
		f := files[i%len(files)]
		start := time.Now()
		if err := os.WriteFile(f.path, f.variants[(i/len(files)+1)%2], 0o644); err != nil {
			b.Fatal(err)
		}
		i++
		if err := w.WaitChange(ctx); err != nil {
			b.Fatal(err)
		}
		cmd := m.startRunCmd()
		msg := cmd()
		next, rest := m.Update(msg)
		m = next.(Model)
		_ = m.View()
		first = append(first, time.Since(start))
		if _, early := msg.(earlyMsg); early {
			m = settle(m, rest)
			_ = m.View()
		}
		done = append(done, time.Since(start))
	}
	report := func(ds []time.Duration, name string) {
		slices.Sort(ds)
		b.ReportMetric(float64(ds[len(ds)/2].Microseconds())/1000, name+"-p50-ms")
		b.ReportMetric(float64(ds[len(ds)*95/100].Microseconds())/1000, name+"-p95-ms")
	}
	report(first, "screen")
	report(done, "tests")
}

// settle runs cmd and the commands it leads to until the run is complete.
func settle(m Model, cmd tea.Cmd) Model {
	for cmd != nil {
		msg := cmd()
		next, rest := m.Update(msg)
		m = next.(Model)
		if _, early := msg.(earlyMsg); !early {
			return m
		}
		cmd = rest
	}
	return m
}
