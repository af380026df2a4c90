package workbench

import (
	"context"
	"os"
	"testing"

	"github.com/open-policy-agent/opa/v1/rego"
)

// repoSources reads the repository's own policies, config and schemas.
func repoSources() Sources {
	return Sources{
		Policies: Dir{FS: os.DirFS("../internal/testrepo/testdata/policies"), Name: "policies"},
		Config:   Dir{FS: os.DirFS("../internal/testrepo/testdata/.repol"), Name: ".repol"},
		Schemas:  Dir{FS: os.DirFS("../internal/testrepo/testdata/schemas"), Name: "schemas"},
	}
}

func mustEngine(tb testing.TB, src Sources) *Engine {
	tb.Helper()
	e, err := New(context.Background(), src)
	if err != nil {
		tb.Fatalf("New: %v", err)
	}
	return e
}

func mustInput(tb testing.TB, file string) Input {
	tb.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		tb.Fatal(err)
	}
	in, err := ParseInput(data)
	if err != nil {
		tb.Fatalf("ParseInput(%s): %v", file, err)
	}
	return in
}

func benchDecide(b *testing.B, p Policy, file string) {
	e := mustEngine(b, repoSources())
	in := mustInput(b, file)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := e.Decide(ctx, p, in); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecisionDeploy decides a production deployment with the
// repository's .repol config (two approvals, tests, sign-off, rate limit).
func BenchmarkDecisionDeploy(b *testing.B) {
	benchDecide(b, Deploy, "testdata/input/deploy-production.json")
}

// BenchmarkDecisionPullRequest decides a feature branch into develop
// against the eight branch rules of the repository's config.
func BenchmarkDecisionPullRequest(b *testing.B) {
	benchDecide(b, PullRequest, "testdata/input/pullrequest-feature.json")
}

// BenchmarkOPAPreparedDeploy is the reference: plain OPA with a prepared
// query and the same policies and input, without gitpoli's work around it.
func BenchmarkOPAPreparedDeploy(b *testing.B) {
	benchOPA(b, Deploy, "testdata/input/deploy-production.json")
}

// BenchmarkOPAPreparedPullRequest is the reference for the PR decision.
func BenchmarkOPAPreparedPullRequest(b *testing.B) {
	benchOPA(b, PullRequest, "testdata/input/pullrequest-feature.json")
}

func benchOPA(b *testing.B, p Policy, file string) {
	e := mustEngine(b, repoSources())
	in := mustInput(b, file)
	doc := in.with(e.config.Files[string(p)].value, "repo_policy", "config")
	ctx := context.Background()
	pq, err := rego.New(
		rego.Compiler(e.compiler),
		rego.Query("data."+p.Package()),
	).PrepareForEval(ctx)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := pq.Eval(ctx, rego.EvalParsedInput(doc)); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkLoadEngine loads, compiles and prepares the default policies
// and validates the default config.
func BenchmarkLoadEngine(b *testing.B) {
	src := repoSources()
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := New(ctx, src); err != nil {
			b.Fatal(err)
		}
	}
}
