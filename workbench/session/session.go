// Package session is the save loop shared by the terminal workbench and
// the plain summary: it builds a Snapshot of a workspace (compile, config,
// OPA tests, fixture replays), says what changed since the last one, and
// watches the workspace for saves.
package session

import (
	"cmp"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io/fs"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/gitpoli/gitpoli/workbench"
	"github.com/gitpoli/gitpoli/workbench/fixture"
)

// Workspace is a directory whose policies/, .repol/, schemas/ and
// fixtures/ a session reads. Where the directory has no policies of its
// own, the built-in copies in Defaults stand in for what is missing (the
// demo of gitpoli's own repository); a repository with its own policies
// gets none of them.
type Workspace struct {
	Root     string
	Defaults fs.FS
	// EngineOptions build the engines the session decides with.
	EngineOptions []workbench.Option
}

// dirNames are the workspace directories, in a fixed order.
var dirNames = [...]string{"policies", ".repol", "schemas", "fixtures"}

// Dirs returns the directories a session reads, and watches those on disk.
func (w Workspace) Dirs() (policies, config, schemas, fixtures workbench.Dir, err error) {
	var ds [len(dirNames)]workbench.Dir
	own := workbench.HasPolicies(w.Root)
	for i, name := range dirNames {
		if ds[i], err = workbench.WorkspaceDir(w.Root, name, w.Defaults, own); err != nil {
			return ds[0], ds[1], ds[2], ds[3], err
		}
	}
	return ds[0], ds[1], ds[2], ds[3], nil
}

// Snapshot is everything the workbench shows for one state of the files.
type Snapshot struct {
	Gen  int           `json:"generation"`
	At   time.Time     `json:"at"`
	Took time.Duration `json:"took_ns"`
	// Problems lists every problem with the files: Rego that does not
	// compile, formatting, config that breaks its schema, fixtures that do
	// not parse.
	Problems workbench.Problems `json:"problems"`
	// Warnings are rules that read an input key no delivery or fact has
	// (Engine.InputWarnings): they never apply, though nothing fails.
	Warnings workbench.Problems `json:"warnings,omitempty"`
	// Stale is set when the policies do not compile: Tests and Fixtures
	// are then the last good snapshot's.
	Stale bool `json:"stale,omitempty"`
	// TestsPending is set on the early snapshot of a progressive run: the
	// decisions are new, the OPA tests are still running and Tests are the
	// previous results.
	TestsPending bool                   `json:"tests_pending,omitempty"`
	Tests        []workbench.TestResult `json:"tests"`
	Fixtures     []fixture.Result       `json:"fixtures"`
	// Sources says where each directory came from.
	Sources workbench.Sources `json:"-"`
	// Engine decided this snapshot (nil when stale); the live pull-request
	// view decides with it.
	Engine *workbench.Engine `json:"-"`
}

// TestCounts returns passed and failed tests.
func (s *Snapshot) TestCounts() (pass, fail int) {
	for _, t := range s.Tests {
		switch t.Status {
		case workbench.TestPass, workbench.TestSkip:
			pass++
		default:
			fail++
		}
	}
	return pass, fail
}

// FixtureCounts returns matched and mismatched fixtures.
func (s *Snapshot) FixtureCounts() (match, mismatch int) {
	for _, f := range s.Fixtures {
		if f.Pass {
			match++
		} else {
			mismatch++
		}
	}
	return match, mismatch
}

// Findings are the problems, then the warnings: the rows of the
// workbench's problems view.
func (s *Snapshot) Findings() workbench.Problems {
	return append(slices.Clone(s.Problems), s.Warnings...)
}

// ConfigProblems are the problems of .repol files.
func (s *Snapshot) ConfigProblems() workbench.Problems {
	var out workbench.Problems
	for _, p := range s.Problems {
		if p.Code == "schema" || p.Code == "yaml" {
			out = append(out, p)
		}
	}
	return out
}

// OK reports whether everything passed: no problems, no failing test, no
// mismatched fixture.
func (s *Snapshot) OK() bool {
	_, tf := s.TestCounts()
	_, fm := s.FixtureCounts()
	return len(s.Problems) == 0 && tf == 0 && fm == 0 && !s.Stale
}

// Session builds snapshots of one workspace. It is not safe for
// concurrent use: one run at a time.
//
// A run redoes only what a change can affect: the formatting of files that
// changed; the compile when a policy file changed (a config or schema save
// only reloads config); the OPA tests when a .rego file changed (they do not
// read .repol); the facts of fixtures whose file changed. Every decision is
// made again.
type Session struct {
	ws       Workspace
	gen      int
	last     *Snapshot
	fixtures map[string]cachedFixture
	format   map[string]formatResult
	now      func() time.Time

	engine    *workbench.Engine // last good engine
	policySum [32]byte          // the policy files it was compiled from
	testSum   [32]byte          // the policy and test files the results are for
	tests     []workbench.TestResult
	testErr   workbench.Problems
	tested    bool
}

// cachedFixture keeps a parsed fixture, and so its gathered facts, until
// its file changes.
type cachedFixture struct {
	sum [32]byte
	f   *fixture.Fixture
}

type formatResult struct {
	sum     [32]byte
	problem *workbench.Problem
}

// New returns a session for ws.
func New(ws Workspace) *Session {
	return &Session{ws: ws, fixtures: map[string]cachedFixture{}, format: map[string]formatResult{}, now: time.Now}
}

// Last returns the latest snapshot, or nil before the first run.
func (s *Session) Last() *Snapshot { return s.last }

// Run builds the next snapshot. A cancelled ctx abandons the run: the
// error is returned and the session's last snapshot stays as it was.
func (s *Session) Run(ctx context.Context) (*Snapshot, error) {
	return s.RunProgressive(ctx, nil)
}

// RunProgressive is Run that, when the OPA tests must run again, first
// calls early with a snapshot of everything else (compile, config, every
// fixture decided), so that a screen can show a save's decisions before
// the tests finish.
func (s *Session) RunProgressive(ctx context.Context, early func(*Snapshot)) (*Snapshot, error) {
	start := s.now()
	s.gen++
	snap := &Snapshot{Gen: s.gen, At: start}
	policies, config, schemas, fixturesDir, err := s.ws.Dirs()
	if err != nil {
		return nil, err
	}
	src := workbench.Sources{Policies: policies, Config: config, Schemas: schemas}
	snap.Sources = src

	rego, err := readRego(policies)
	if err != nil {
		return nil, err
	}
	snap.Problems = append(snap.Problems, s.formatProblems(rego)...)
	policySum, testSum := sums(rego)

	// The OPA tests compile and run on their own, so they run beside the
	// engine build and the fixture replays: on two cores that is most of
	// a policy save's time saved.
	type testRun struct {
		report workbench.TestReport
		err    error
	}
	var tests chan testRun
	if !s.tested || testSum != s.testSum {
		tests = make(chan testRun, 1)
		go func() {
			r, err := workbench.TestDir(ctx, policies, workbench.TestOptions{})
			tests <- testRun{r, err}
		}()
	}
	// Whatever happens below, the test goroutine is waited for: a run
	// leaves nothing behind.
	collectTests := func() error {
		if tests == nil {
			return nil
		}
		t := <-tests
		tests = nil
		var ps workbench.Problems
		switch {
		case errors.As(t.err, &ps):
			s.tests, s.testErr = nil, ps
		case t.err != nil:
			return t.err
		default:
			s.tests, s.testErr = t.report.Results, nil
		}
		s.testSum, s.tested = testSum, true
		return nil
	}
	defer func() { _ = collectTests() }()

	e, problems, err := s.buildEngine(ctx, src, policySum)
	if err != nil {
		return nil, err
	}
	snap.Problems = append(snap.Problems, problems...)
	fixtures, fixtureProblems := s.loadFixtures(fixturesDir)
	snap.Problems = append(snap.Problems, fixtureProblems...)

	if e == nil {
		// Keep the last good results on screen, marked stale. (A policy
		// that does not compile fails the tests' compile too.)
		snap.Stale = true
		if s.last != nil {
			snap.Tests, snap.Fixtures = s.last.Tests, s.last.Fixtures
		}
	} else {
		snap.Engine = e
		snap.Problems = append(snap.Problems, e.Config().Problems()...)
		snap.Warnings = e.InputWarnings()
		results, err := fixture.RunAll(ctx, e, fixtures)
		if err != nil {
			return nil, err
		}
		snap.Fixtures = append(snap.Fixtures, results...)
		if tests != nil && early != nil {
			partial := *snap
			partial.Tests, partial.TestsPending = s.tests, true
			partial.Problems = slices.Clone(snap.Problems)
			partial.Problems.Sort()
			partial.Took = s.now().Sub(start)
			early(&partial)
		}
		if err := collectTests(); err != nil {
			return nil, err
		}
		snap.Tests = s.tests
		snap.Problems = append(snap.Problems, s.testErr...)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	snap.Problems.Sort()
	snap.Took = s.now().Sub(start)
	s.last = snap
	return snap, nil
}

// buildEngine compiles the policies, or when they have not changed since
// the last good engine, reloads only config and schemas into it. When the
// policies do not compile it returns a nil engine and the problems of the
// policies and config both.
func (s *Session) buildEngine(ctx context.Context, src workbench.Sources, policySum [32]byte) (*workbench.Engine, workbench.Problems, error) {
	if s.engine != nil && policySum == s.policySum {
		e, err := s.engine.Reconfigure(src)
		return e, nil, err
	}
	e, err := workbench.New(ctx, src, s.ws.EngineOptions...)
	var ps workbench.Problems
	switch {
	case errors.As(err, &ps):
		cfg, cerr := workbench.LoadConfig(src)
		if cerr != nil {
			return nil, nil, cerr
		}
		return nil, append(ps, cfg.Problems()...), nil
	case err != nil:
		return nil, nil, err
	}
	s.engine, s.policySum = e, policySum
	return e, nil, nil
}

// regoFile is one .rego file's display name and content.
type regoFile struct {
	name string
	src  []byte
}

func readRego(dir workbench.Dir) ([]regoFile, error) {
	var out []regoFile
	err := fs.WalkDir(dir.FS, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || path.Ext(p) != ".rego" {
			return err
		}
		src, err := fs.ReadFile(dir.FS, p)
		if err != nil {
			return err
		}
		out = append(out, regoFile{name: path.Join(dir.Name, p), src: src})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", dir.Name, err)
	}
	return out, nil
}

// sums hashes the policy files, and the policy and test files together.
func sums(files []regoFile) (policy, all [32]byte) {
	ph, ah := sha256.New(), sha256.New()
	for _, f := range files {
		for _, h := range []hash.Hash{ph, ah} {
			if h == ph && workbench.IsTestFile(f.name) {
				continue
			}
			fmt.Fprintf(h, "%s\x00%d\x00", f.name, len(f.src))
			h.Write(f.src)
		}
	}
	copy(policy[:], ph.Sum(nil))
	copy(all[:], ah.Sum(nil))
	return policy, all
}

// formatProblems checks the formatting of files that changed since the
// last run, and remembers the rest.
func (s *Session) formatProblems(files []regoFile) workbench.Problems {
	var out workbench.Problems
	seen := map[string]bool{}
	for _, f := range files {
		seen[f.name] = true
		sum := sha256.Sum256(f.src)
		r, ok := s.format[f.name]
		if !ok || r.sum != sum {
			r = formatResult{sum: sum}
			if p, bad := workbench.FormatProblem(f.name, f.src); bad {
				r.problem = &p
			}
			s.format[f.name] = r
		}
		if r.problem != nil {
			out = append(out, *r.problem)
		}
	}
	for name := range s.format {
		if !seen[name] {
			delete(s.format, name)
		}
	}
	return out
}

// loadFixtures reads every fixture file, parsing only those that changed
// since the last run, so that unchanged fixtures keep their gathered facts.
func (s *Session) loadFixtures(dir workbench.Dir) ([]*fixture.Fixture, workbench.Problems) {
	var out []*fixture.Fixture
	var problems workbench.Problems
	seen := map[string]bool{}
	_ = fs.WalkDir(dir.FS, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || path.Ext(p) != ".json" {
			return nil
		}
		name := path.Join(dir.Name, p)
		data, err := fs.ReadFile(dir.FS, p)
		if err != nil {
			problems = append(problems, workbench.Problem{Pos: workbench.Pos{File: name}, Code: "fixture", Msg: err.Error()})
			return nil
		}
		seen[name] = true
		sum := sha256.Sum256(data)
		if c, ok := s.fixtures[name]; ok && c.sum == sum {
			out = append(out, c.f)
			return nil
		}
		f, err := fixture.Parse(name, data)
		if err != nil {
			delete(s.fixtures, name)
			problems = append(problems, fixtureProblem(name, err))
			return nil
		}
		s.fixtures[name] = cachedFixture{sum: sum, f: f}
		out = append(out, f)
		return nil
	})
	for name := range s.fixtures {
		if !seen[name] {
			delete(s.fixtures, name)
		}
	}
	slices.SortFunc(out, func(a, b *fixture.Fixture) int { return cmp.Compare(a.Name, b.Name) })
	return out, problems
}

// fixtureProblem turns "file:line:col: msg" into a located problem.
func fixtureProblem(name string, err error) workbench.Problem {
	p := workbench.Problem{Pos: workbench.Pos{File: name}, Code: "fixture", Msg: err.Error()}
	rest, ok := strings.CutPrefix(err.Error(), name+":")
	if !ok {
		return p
	}
	var line, col int
	if n, _ := fmt.Sscanf(rest, "%d:%d:", &line, &col); n == 2 {
		p.Line, p.Col = line, col
		p.Msg = strings.TrimSpace(rest[strings.Index(rest, ": ")+1:])
	} else {
		p.Msg = strings.TrimSpace(rest)
	}
	return p
}
