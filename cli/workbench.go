package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	tea "github.com/charmbracelet/bubbletea"

	"github.com/gitpoli/gitpoli/tui"
	"github.com/gitpoli/gitpoli/workbench/session"
)

func runWorkbenchCmd(ctx context.Context, args []string, env Env) error {
	fs := newFlagSet("workbench", env)
	format := addFormatFlag(fs)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), `Usage: gitpoli [workbench [DIR]]

Opens the workbench on DIR (default: the current directory): it watches
policies/, .repol/, schemas/ and fixtures/ and on every save recompiles,
re-runs the OPA tests and replays the fixtures. Without a terminal it runs
everything once and prints a summary, with the exit codes of gitpoli test.`)
		fs.PrintDefaults()
	}
	rest, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	dir := env.Dir
	switch len(rest) {
	case 0:
	case 1:
		dir = rest[0]
		if !filepath.IsAbs(dir) && env.Dir != "" {
			dir = filepath.Join(env.Dir, dir)
		}
	default:
		return usagef("unexpected argument %q", rest[1])
	}
	if dir == "" {
		dir = "."
	}
	if info, err := os.Stat(dir); err != nil || !info.IsDir() {
		return usagef("%s is not a directory", dir)
	}
	ws := session.Workspace{Root: dir, Defaults: env.Defaults}
	if !env.Terminal || *format == "json" {
		return runSummary(ctx, ws, *format, env)
	}
	w, err := session.Watch(dir, session.DefaultDebounce)
	if err != nil {
		return err
	}
	defer w.Close()
	m := tui.New(tui.Options{
		Workspace: ws,
		Watcher:   w,
		Getenv:    env.Getenv,
		Output:    env.Stdout,
		NoColor:   env.Getenv("NO_COLOR") != "",
	})
	p := tea.NewProgram(m, tea.WithAltScreen(), tea.WithContext(ctx), tea.WithInput(env.Stdin), tea.WithOutput(env.Stdout))
	if _, err := p.Run(); err != nil && !errors.Is(err, tea.ErrProgramKilled) && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}

// runSummary is the workbench without a terminal: one run, printed.
func runSummary(ctx context.Context, ws session.Workspace, f format, env Env) error {
	snap, err := session.New(ws).Run(ctx)
	if err != nil {
		return err
	}
	if f == "json" {
		if err := writeJSON(env.Stdout, snap); err != nil {
			return err
		}
	} else {
		writeSummary(env.Stdout, snap)
	}
	if !snap.OK() {
		return errDeny
	}
	return nil
}

func writeSummary(w io.Writer, s *session.Snapshot) {
	for _, p := range s.Problems {
		fmt.Fprintln(w, p.String())
	}
	if s.Stale {
		fmt.Fprintln(w, "the policies do not compile: no test or fixture was run")
	}
	for _, t := range s.Tests {
		if t.Status == "fail" || t.Status == "error" {
			fmt.Fprintf(w, "FAIL  %s  %s\n", t.FullName(), t.Pos)
			if t.FailedAt != nil {
				fmt.Fprintf(w, "      failed at %s: %s\n", t.FailedAt, t.FailedExpr)
			}
			if t.Error != "" {
				fmt.Fprintf(w, "      %s\n", t.Error)
			}
		}
	}
	for _, r := range s.Fixtures {
		if !r.Pass {
			fmt.Fprintf(w, "FAIL  fixture %s  %s\n      %s\n", r.Fixture, session.Outcome(r), r.Mismatch)
		}
	}
	tp, tf := s.TestCounts()
	fm, fx := s.FixtureCounts()
	fmt.Fprintf(w, "tests %d/%d, fixtures %d/%d, %s\n", tp, tp+tf, fm, fm+fx, plural(len(s.Problems), "problem", "problems"))
	fmt.Fprintf(w, "%d passed, %d failed\n", tp+fm, tf+fx+len(s.Problems))
}
