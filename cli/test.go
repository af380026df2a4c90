package cli

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/gitpoli/gitpoli/workbench"
	"github.com/gitpoli/gitpoli/workbench/fixture"
)

type testOptions struct {
	sources  *sourceFlags
	format   *format
	run      string
	coverage bool
	timeout  time.Duration
}

func runTestCmd(ctx context.Context, args []string, env Env) error {
	fs := newFlagSet("test", env)
	opts := testOptions{sources: addSourceFlags(fs), format: addFormatFlag(fs)}
	opts.sources.addFixturesFlag(fs)
	fs.StringVar(&opts.run, "run", "", "run only tests whose name (e.g. github.deploy_test.test_ref_denied) matches this regular expression")
	fs.BoolVar(&opts.coverage, "coverage", false, "report line coverage of each policy file")
	fs.DurationVar(&opts.timeout, "timeout", workbench.DefaultTestTimeout, "time limit for each test")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "Usage: gitpoli test [--run REGEX] [--coverage] [--policies DIR] [--format text|json]")
		fmt.Fprintln(fs.Output(), "\nRuns the OPA unit tests (rules named test_*) beside the policies, as opa test\ndoes, then replays the fixtures and checks their expectations. Exit 1 when a\ntest or fixture fails, 2 when the policies do not compile.")
		fs.PrintDefaults()
	}
	if err := parseNoArgs(fs, args); err != nil {
		return err
	}
	return runTest(ctx, opts, env)
}

func runTest(ctx context.Context, opts testOptions, env Env) error {
	to := workbench.TestOptions{Coverage: opts.coverage, Timeout: opts.timeout}
	if opts.run != "" {
		re, err := regexp.Compile(opts.run)
		if err != nil {
			return usagef("--run: %v", err)
		}
		to.Run = re
	}
	src, err := opts.sources.resolve(env)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx) // the side runs stop if New fails
	defer cancel()
	// The OPA tests compile the policies themselves, the longest step on
	// one core: the engine is built beside it, and only then are the
	// fixtures read and replayed on every core, so that neither compile
	// waits for a core (figures in docs/performance.md). Fixtures are
	// checked unless --run picks tests by name.
	type testRun struct {
		report workbench.TestReport
		err    error
	}
	tests := make(chan testRun, 1)
	go func() {
		report, err := workbench.TestDir(ctx, src.Policies, to)
		tests <- testRun{report, err}
	}()
	e, err := workbench.New(ctx, src, env.engineOptions()...)
	if err != nil {
		return compileError(err)
	}
	var results, broken []fixture.Result
	var fixtureErr error
	if opts.run == "" {
		var fixtures []*fixture.Fixture
		if fixtures, broken, fixtureErr = opts.sources.loadFixtureDir(env); fixtureErr == nil {
			results, fixtureErr = fixture.RunAll(ctx, e, fixtures)
			// A fixture that does not parse fails; the others still run.
			results = append(results, broken...)
			slices.SortFunc(results, func(a, b fixture.Result) int { return cmp.Compare(a.Fixture, b.Fixture) })
		}
	}
	tr := <-tests
	report := tr.report
	if tr.err != nil {
		return compileError(tr.err)
	}
	if fixtureErr != nil {
		return fixtureErr
	}
	fixturesFailed := false
	for _, r := range results {
		fixturesFailed = fixturesFailed || !r.Pass
	}
	if *opts.format == "json" {
		if report.Results == nil {
			report.Results = []workbench.TestResult{}
		}
		if results == nil {
			results = []fixture.Result{}
		}
		out := struct {
			workbench.TestReport
			Fixtures []fixture.Result `json:"fixtures"`
		}{report, results}
		if err := writeJSON(env.Stdout, out); err != nil {
			return err
		}
	} else {
		writeTestText(env.Stdout, report, results)
	}
	if report.Failed() || fixturesFailed {
		return errDeny
	}
	if len(report.Results) == 0 && opts.run != "" {
		return usagef("no test matches --run %q", opts.run)
	}
	return nil
}

// compileError turns policy problems into an input error (exit 2) whose
// message lists each problem with its position.
func compileError(err error) error {
	var ps workbench.Problems
	if errors.As(err, &ps) {
		return usagef("policies do not compile:\n%s", indent(ps.Error(), "  "))
	}
	return err
}

func writeTestText(w io.Writer, r workbench.TestReport, fixtures []fixture.Result) {
	for _, t := range r.Results {
		status := strings.ToUpper(string(t.Status))
		fmt.Fprintf(w, "%-5s %s  %s (%s)\n", status, t.FullName(), t.Pos, t.Duration.Round(time.Microsecond))
		if t.FailedAt != nil {
			fmt.Fprintf(w, "      failed at %s: %s\n", t.FailedAt, t.FailedExpr)
		}
		if t.Error != "" {
			fmt.Fprintf(w, "%s\n", indent(t.Error, "      "))
		}
		if t.Status != workbench.TestPass && t.Output != "" {
			fmt.Fprintf(w, "      output:\n%s\n", indent(t.Output, "        "))
		}
	}
	if c := r.Coverage; c != nil {
		fmt.Fprintln(w)
		fmt.Fprintln(w, "coverage:")
		for _, f := range c.Files {
			fmt.Fprintf(w, "  %-36s %6.1f%%", f.File, f.Coverage)
			if len(f.Uncovered) > 0 {
				fmt.Fprintf(w, "  not covered: lines %s", strings.Join(f.Uncovered, ", "))
			}
			fmt.Fprintln(w)
		}
		fmt.Fprintf(w, "  %-36s %6.1f%%\n", "total", c.Coverage)
	}
	pass, fail, skip := r.Counts()
	for _, f := range fixtures {
		status := "PASS"
		if f.Pass {
			pass++
		} else {
			status = "FAIL"
			fail++
		}
		fmt.Fprintf(w, "%-5s fixture %s  %s\n", status, f.Fixture, resultSummary(f))
		if f.Mismatch != "" {
			fmt.Fprintf(w, "      %s\n", f.Mismatch)
		}
	}
	line := fmt.Sprintf("%d passed, %d failed", pass, fail)
	if skip > 0 {
		line += fmt.Sprintf(", %d skipped", skip)
	}
	fmt.Fprintln(w, line)
}
