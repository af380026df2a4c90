package workbench

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/cover"
	"github.com/open-policy-agent/opa/v1/storage/inmem"
	"github.com/open-policy-agent/opa/v1/tester"
	"github.com/open-policy-agent/opa/v1/topdown"
)

// TestOptions selects and bounds a test run.
type TestOptions struct {
	// Run, when set, runs only tests whose package-qualified name
	// (e.g. data.github.deploy_test.test_ref_denied) matches it.
	Run *regexp.Regexp
	// Coverage adds per-file line coverage to the report.
	Coverage bool
	// Timeout bounds each test; zero means DefaultTestTimeout.
	Timeout time.Duration
}

// DefaultTestTimeout bounds a single OPA unit test.
const DefaultTestTimeout = 10 * time.Second

// TestResult is the outcome of one OPA unit test.
type TestResult struct {
	Package string `json:"package"`
	Name    string `json:"name"`
	// Pos is where the test is written.
	Pos      Pos           `json:"location"`
	Status   TestStatus    `json:"status"`
	Duration time.Duration `json:"duration_ns"`
	// FailedAt is the test's last expression that failed, for a failure.
	FailedAt *Pos `json:"failed_at,omitempty"`
	// FailedExpr is the source text of that expression.
	FailedExpr string `json:"failed_expr,omitempty"`
	// Error is the evaluation error, for status "error".
	Error string `json:"error,omitempty"`
	// Output is what the test printed with print().
	Output string `json:"output,omitempty"`
}

// FullName is the test's package-qualified name.
func (r TestResult) FullName() string { return r.Package + "." + r.Name }

// TestStatus is pass, fail, error or skip.
type TestStatus string

// Test statuses.
const (
	TestPass  TestStatus = "pass"
	TestFail  TestStatus = "fail"
	TestError TestStatus = "error"
	TestSkip  TestStatus = "skip"
)

// TestReport is the outcome of a test run.
type TestReport struct {
	Results  []TestResult    `json:"results"`
	Coverage *CoverageReport `json:"coverage,omitempty"`
}

// Counts returns how many tests passed, failed (or errored) and were skipped.
func (r TestReport) Counts() (pass, fail, skip int) {
	for _, t := range r.Results {
		switch t.Status {
		case TestPass:
			pass++
		case TestSkip:
			skip++
		default:
			fail++
		}
	}
	return pass, fail, skip
}

// Failed reports whether any test failed or errored.
func (r TestReport) Failed() bool {
	_, fail, _ := r.Counts()
	return fail > 0
}

// CoverageReport is line coverage per policy file (tests excluded).
type CoverageReport struct {
	Files    []FileCoverage `json:"files"`
	Coverage float64        `json:"coverage"`
}

// FileCoverage is the line coverage of one file.
type FileCoverage struct {
	File       string  `json:"file"`
	Covered    int     `json:"covered_lines"`
	NotCovered int     `json:"not_covered_lines"`
	Coverage   float64 `json:"coverage"`
	// Uncovered lists the lines no test reached, as ranges "12-14".
	Uncovered []string `json:"uncovered,omitempty"`
}

// TestDir runs the OPA unit tests (rules named test_*) of the .rego files
// in dir, the same tests `opa test` runs. It needs no engine — it parses
// and compiles the files itself, so it runs while an engine is being built,
// and the engine a server runs never pays for test files. Files that do
// not parse or compile are returned as Problems.
func TestDir(ctx context.Context, dir Dir, opts TestOptions) (TestReport, error) {
	modules, _, problems, err := parseModules(dir, func(string) bool { return true })
	if err != nil {
		return TestReport{}, err
	}
	if len(problems) > 0 {
		return TestReport{}, problems
	}
	policies := map[string]*ast.Module{}
	for name, m := range modules {
		if !IsTestFile(name) {
			policies[name] = m
		}
	}
	return runTests(ctx, modules, policies, opts)
}

// runTests runs the tests among modules; coverage is reported for the
// policy modules.
func runTests(ctx context.Context, modules, policies map[string]*ast.Module, opts TestOptions) (TestReport, error) {
	timeout := cmp.Or(opts.Timeout, DefaultTestTimeout)
	var cov *cover.Cover
	runner := tester.NewRunner().
		SetCompiler(newCompiler().WithEnablePrintStatements(true)).
		SetStore(inmem.New()).
		SetModules(modules).
		SetTimeout(timeout).
		CapturePrintOutput(true).
		SetCoverageRuns(nil)
	if opts.Run != nil {
		runner = runner.Filter(opts.Run.String())
	}
	if opts.Coverage {
		cov = cover.New()
		runner = runner.SetCoverageQueryTracer(cov)
	}
	ch, err := runner.RunTests(ctx, nil)
	var errs ast.Errors
	if errors.As(err, &errs) {
		return TestReport{}, regoProblems(errs)
	}
	if err != nil {
		return TestReport{}, fmt.Errorf("run policy tests: %w", err)
	}
	var report TestReport
	var failed []string
	for r := range ch {
		tr := testResult(r)
		if tr.Status == TestFail {
			failed = append(failed, tr.FullName())
		}
		report.Results = append(report.Results, tr)
	}
	if err := ctx.Err(); err != nil {
		return report, fmt.Errorf("run policy tests: %w", err)
	}
	if len(failed) > 0 {
		locateFailures(ctx, modules, report.Results, timeout)
	}
	slices.SortFunc(report.Results, func(a, b TestResult) int {
		return cmp.Or(comparePos(a.Pos, b.Pos), cmp.Compare(a.FullName(), b.FullName()))
	})
	if cov != nil {
		report.Coverage = coverageReport(cov.Report(policies))
	}
	return report, nil
}

// testModules returns the policy modules together with the parsed test
// files.
func (e *Engine) testModules() (map[string]*ast.Module, error) {
	tests, _, problems, err := parseModules(e.src.Policies, IsTestFile)
	if err != nil {
		return nil, err
	}
	if len(problems) > 0 && !(len(tests) == 0 && len(problems) == 1 && problems[0].Msg == noRegoFiles) {
		return nil, problems
	}
	modules := make(map[string]*ast.Module, len(e.modules)+len(tests))
	maps.Copy(modules, e.modules)
	maps.Copy(modules, tests)
	return modules, nil
}

func testResult(r *tester.Result) TestResult {
	tr := TestResult{
		Package:  strings.TrimPrefix(r.Package, "data."),
		Name:     r.Name,
		Duration: r.Duration,
		Output:   string(r.Output),
	}
	if r.Location != nil {
		tr.Pos = Pos{File: r.Location.File, Line: r.Location.Row}
	}
	switch {
	case r.Skip:
		tr.Status = TestSkip
	case r.Error != nil:
		tr.Status = TestError
		tr.Error = r.Error.Error()
	case r.Fail:
		tr.Status = TestFail
	default:
		tr.Status = TestPass
	}
	return tr
}

// locateFailures re-runs each failed test with tracing to find the
// expression it failed on. Tracing is costly, so only failures pay for it.
func locateFailures(ctx context.Context, modules map[string]*ast.Module, results []TestResult, timeout time.Duration) {
	for i := range results {
		r := &results[i]
		if r.Status != TestFail {
			continue
		}
		runner := tester.NewRunner().
			SetCompiler(newCompiler()).
			SetStore(inmem.New()).
			SetModules(modules).
			SetTimeout(timeout).
			SetCoverageRuns(nil).
			EnableTracing(true).
			Filter("^" + regexp.QuoteMeta("data."+r.FullName()) + "$")
		ch, err := runner.RunTests(ctx, nil)
		if err != nil {
			continue
		}
		for res := range ch {
			if pos, text, ok := failedExpr(res.Trace, r.Pos.File); ok {
				r.FailedAt, r.FailedExpr = &pos, text
			}
		}
	}
}

// failedExpr returns the last expression in the test's own file that
// failed: the assertion that did not hold.
func failedExpr(trace []*topdown.Event, file string) (Pos, string, bool) {
	for i := len(trace) - 1; i >= 0; i-- {
		ev := trace[i]
		if ev.Op != topdown.FailOp || ev.Location == nil || ev.Location.File != file {
			continue
		}
		if _, ok := ev.Node.(*ast.Expr); !ok {
			continue
		}
		text := strings.TrimSpace(string(ev.Location.Text))
		return Pos{File: file, Line: ev.Location.Row, Col: ev.Location.Col}, text, true
	}
	return Pos{}, "", false
}

// lineRanges merges overlapping and adjacent ranges into "12-14" strings.
func lineRanges(rs []cover.Range) []string {
	var lines []int
	for _, r := range rs {
		for l := r.Start.Row; l <= r.End.Row; l++ {
			lines = append(lines, l)
		}
	}
	slices.Sort(lines)
	lines = slices.Compact(lines)
	var out []string
	for i := 0; i < len(lines); {
		j := i
		for j+1 < len(lines) && lines[j+1] == lines[j]+1 {
			j++
		}
		if i == j {
			out = append(out, fmt.Sprint(lines[i]))
		} else {
			out = append(out, fmt.Sprintf("%d-%d", lines[i], lines[j]))
		}
		i = j + 1
	}
	return out
}

func coverageReport(r cover.Report) *CoverageReport {
	out := &CoverageReport{}
	covered, total := 0, 0
	for file, fr := range r.Files {
		if strings.HasSuffix(file, "_test.rego") {
			continue
		}
		fc := FileCoverage{File: file, Covered: fr.CoveredLines, NotCovered: fr.NotCoveredLines, Coverage: fr.Coverage}
		fc.Uncovered = lineRanges(fr.NotCovered)
		covered += fc.Covered
		total += fc.Covered + fc.NotCovered
		out.Files = append(out.Files, fc)
	}
	slices.SortFunc(out.Files, func(a, b FileCoverage) int { return cmp.Compare(a.File, b.File) })
	if total > 0 {
		out.Coverage = 100 * float64(covered) / float64(total)
	}
	return out
}
