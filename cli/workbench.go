package cli

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	tea "github.com/charmbracelet/bubbletea"

	"github.com/gitpoli/gitpoli/backtest"

	"github.com/gitpoli/gitpoli/serve/audit"
	"github.com/gitpoli/gitpoli/tui"
	"github.com/gitpoli/gitpoli/workbench/session"
)

// shadowRows bounds the shadow disagreements the workbench lists; gitpoli
// backtest --disagree reads them all.
const shadowRows = 500

func runWorkbenchCmd(ctx context.Context, args []string, env Env) error {
	fs := newFlagSet("workbench", env)
	format := addFormatFlag(fs)
	db := fs.String("db", "", "audit database of gitpoli serve: S shows what its shadow policies disagreed with")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), `Usage: gitpoli [workbench [DIR]]

Opens the workbench on DIR (default: the current directory): it watches
policies/, .repol/, schemas/ and fixtures/ and on every save recompiles,
re-runs the OPA tests and replays the fixtures. Without a terminal it runs
everything once and prints a summary, with the exit codes of gitpoli test.
With --db, S lists the newest decisions the shadow policies of gitpoli serve
(--shadow-policies) disagreed with; the database is opened read-only.`)
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
		dir = env.path(dir)
	default:
		return usagef("unexpected argument %q", rest[1])
	}
	if dir == "" {
		dir = "."
	}
	if info, err := os.Stat(dir); err != nil || !info.IsDir() {
		return usagef("%s is not a directory", dir)
	}
	ws := session.Workspace{Root: dir, Defaults: env.Defaults, EngineOptions: env.engineOptions()}
	opts := tui.Options{
		Workspace:    ws,
		GitHubToken:  env.Getenv("GITHUB_TOKEN"),
		GitHubAPIURL: env.Getenv("GITHUB_API_URL"),
		Editor:       cmp.Or(env.Getenv("VISUAL"), env.Getenv("EDITOR")),
		Output:       env.Stdout,
		NoColor:      env.Getenv("NO_COLOR") != "",
	}
	if *db != "" {
		store, err := openAudit(ctx, env, *db)
		if err != nil {
			return err
		}
		defer store.Close()
		opts.Shadow = func(ctx context.Context) ([]session.Change, error) {
			return backtest.ShadowChanges(ctx, store, shadowRows)
		}
		opts.ShadowSource = *db
		if audit.IsPostgres(*db) {
			opts.ShadowSource = store.Name() // without its password
		}
	}
	if !env.Terminal || *format == "json" {
		return runSummary(ctx, ws, *format, env)
	}
	w, err := session.Watch(dir, session.DefaultDebounce)
	if err != nil {
		return err
	}
	defer w.Close()
	opts.Watcher = w
	m := tui.New(opts)
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
