package workbench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"slices"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/format"
)

// Check compiles the policies in strict mode, reports every file that
// `opa fmt` would change, and validates every config file against its
// schema. It returns the engine when the policies compile (even if other
// problems were found), and every problem found, sorted.
func Check(ctx context.Context, src Sources) (*Engine, Problems, error) {
	var problems Problems
	fmtProblems, err := FormatProblems(src.Policies)
	if err != nil {
		return nil, nil, err
	}
	problems = append(problems, fmtProblems...)

	e, err := New(ctx, src)
	var ps Problems
	switch {
	case errors.As(err, &ps):
		problems = append(problems, ps...)
		cfg, cerr := LoadConfig(src)
		if cerr != nil {
			return nil, nil, cerr
		}
		problems = append(problems, cfg.Problems()...)
	case err != nil:
		return nil, nil, err
	default:
		if len(e.Policies()) == 0 {
			problems = append(problems, Problem{Pos: Pos{File: src.Policies.Name}, Code: "policy",
				Msg: "no policy: no package under github. has a METADATA annotation with custom.gitpoli (see README, Writing a policy)"})
		}
		problems = append(problems, e.Config().Problems()...)
		// Test files are compiled only for tests; compile them here too, so
		// that check catches what opa check would.
		tps, err := e.compileWithTests()
		if err != nil {
			return nil, nil, err
		}
		problems = append(problems, tps...)
	}
	problems.Sort()
	return e, slices.Clip(problems), nil
}

// parsedPolicies discovers the policies of files that parse, whether or
// not they compile; false when some file does not parse.
func parsedPolicies(dir Dir) ([]*PolicySpec, bool) {
	modules, _, problems, err := parseModules(dir, isPolicyFile)
	if err != nil || len(problems) > 0 {
		return nil, false
	}
	specs, _ := discoverPolicies(modules)
	return specs, true
}

// compileWithTests compiles the policies with their tests in strict mode
// and returns what is wrong with the test files.
func (e *Engine) compileWithTests() (Problems, error) {
	modules, err := e.testModules()
	var ps Problems
	if errors.As(err, &ps) {
		return ps, nil
	}
	if err != nil {
		return nil, err
	}
	c := newCompiler()
	c.Compile(modules)
	if c.Failed() {
		return regoProblems(c.Errors), nil
	}
	return nil, nil
}

// FormatProblems lists the .rego files in dir that `opa fmt` would change,
// each at its first line that differs. Files that do not parse are left to
// the compiler to report.
func FormatProblems(dir Dir) (Problems, error) {
	var problems Problems
	err := fs.WalkDir(dir.FS, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() || path.Ext(p) != ".rego" {
			return nil
		}
		src, err := fs.ReadFile(dir.FS, p)
		if err != nil {
			return fmt.Errorf("read policy %s: %w", dir.file(p), err)
		}
		if p, ok := FormatProblem(dir.file(p), src); ok {
			problems = append(problems, p)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("check formatting of %s: %w", dir.Name, err)
	}
	return problems, nil
}

// FormatProblem reports whether opa fmt would change the Rego source src
// of file name, as a problem at the first line it would change. Source
// that does not parse is left to the compiler to report.
func FormatProblem(name string, src []byte) (Problem, bool) {
	formatted, err := format.SourceWithOpts(name, src, format.Opts{RegoVersion: ast.RegoV1})
	if err != nil || bytes.Equal(formatted, src) {
		return Problem{}, false
	}
	return Problem{
		Pos:  Pos{File: name, Line: firstDifference(src, formatted)},
		Code: "fmt",
		Msg:  "not formatted as opa fmt would format it (run: gitpoli fmt -w " + name + ")",
	}, true
}

// firstDifference returns the 1-based number of the first line that
// differs between a and b.
func firstDifference(a, b []byte) int {
	al, bl := bytes.Split(a, []byte("\n")), bytes.Split(b, []byte("\n"))
	for i := range min(len(al), len(bl)) {
		if !bytes.Equal(al[i], bl[i]) {
			return i + 1
		}
	}
	return min(len(al), len(bl)) + 1
}
