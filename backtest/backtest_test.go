package backtest

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/charmbracelet/x/exp/golden"

	"github.com/gitpoli/gitpoli/internal/pgtest"
	"github.com/gitpoli/gitpoli/serve/audit"
	"github.com/gitpoli/gitpoli/workbench"
)

func sources(tb testing.TB, deployYAML string) workbench.Sources {
	tb.Helper()
	src := workbench.Sources{
		Policies: workbench.Dir{FS: os.DirFS("../internal/testrepo/testdata/policies"), Name: "policies"},
		Config:   workbench.Dir{FS: os.DirFS("../internal/testrepo/testdata/.repol"), Name: ".repol"},
		Schemas:  workbench.Dir{FS: os.DirFS("../internal/testrepo/testdata/schemas"), Name: "schemas"},
	}
	if deployYAML != "" {
		pr, _ := os.ReadFile("../internal/testrepo/testdata/.repol/pullrequest.yaml")
		src.Config = workbench.Dir{Name: ".repol", FS: fstest.MapFS{"deploy.yaml": {Data: []byte(deployYAML)}, "pullrequest.yaml": {Data: pr}}}
	}
	return src
}

func engine(tb testing.TB, deployYAML string) *workbench.Engine {
	tb.Helper()
	e, err := workbench.New(context.Background(), sources(tb, deployYAML))
	if err != nil {
		tb.Fatal(err)
	}
	return e
}

// recordDB writes n decisions of production deployments with 0, 1 or 2
// approvers, decided by e, to a new audit database.
func recordDB(tb testing.TB, e *workbench.Engine, n int) string {
	tb.Helper()
	return recordAt(tb, filepath.Join(tb.TempDir(), "audit.db"), e, n)
}

// recordAt is recordDB on the database at path (a file or a URL).
func recordAt(tb testing.TB, path string, e *workbench.Engine, n int) string {
	tb.Helper()
	s, err := audit.Open(context.Background(), path)
	if err != nil {
		tb.Fatal(err)
	}
	defer s.Close()
	approvers := [][]string{{}, {"alice"}, {"alice", "bob"}}
	for i := range n {
		doc := map[string]any{
			"environment": "production", "ref": "refs/heads/main", "repo_environments": []any{"production"},
			"workflow_meta": map[string]any{"approvers": approvers[i%3], "checks": map[string]any{"tests": true}, "signed_off": true, "deployments_today": 0},
		}
		in, err := workbench.NewInput(doc)
		if err != nil {
			tb.Fatal(err)
		}
		d, _ := e.Decide(context.Background(), workbench.Policy("deploy"), in)
		violations, _ := json.Marshal(d.Violations)
		input, _ := json.Marshal(in)
		decision := "deny"
		if d.Allow {
			decision = "allow"
		}
		err = s.InsertBatched(context.Background(), &audit.Record{ID: fmt.Sprintf("rec-%05d", i), Policy: "deploy", Decision: decision,
			Violations: violations, Input: input, Source: "webhook", Repo: "octo/service", Environment: "production", Ref: "refs/heads/main"})
		if err != nil {
			tb.Fatal(err)
		}
	}
	return path
}

func fileSum(tb testing.TB, path string) [32]byte {
	tb.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	return sha256.Sum256(data)
}

func TestBacktest(t *testing.T) {
	ctx := context.Background()
	current := engine(t, "")
	db := recordDB(t, current, 9)
	before := fileSum(t, db)

	store, err := audit.OpenReadOnly(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	rep, err := Run(ctx, current, store, Options{})
	if err != nil || rep.Decided != 9 || len(rep.Flips) != 0 {
		t.Fatalf("same policies: %+v, %v", rep, err)
	}

	// One approval for production instead of two: the single-approver
	// deployments flip to allow.
	cfg, _ := os.ReadFile("../internal/testrepo/testdata/.repol/deploy.yaml")
	relaxed := engine(t, strings.Replace(string(cfg), "approvals_required: 2", "approvals_required: 1", 1))
	rep, err = Run(ctx, relaxed, store, Options{Workers: 2})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Flips) != 3 || rep.Summary["deploy"]["deny→allow"] != 3 {
		t.Fatalf("relaxed approvals: %+v", rep.Flips)
	}
	golden.RequireEqual(t, rep.Markdown())

	if fileSum(t, db) != before {
		t.Error("the backtest changed the audit database")
	}
	seen := 0
	if err := store.Each(ctx, audit.Filter{Repo: "nope"}, func(audit.Record) error { seen++; return nil }); err != nil || seen != 0 {
		t.Errorf("filtered by another repository: %d records, %v", seen, err)
	}
}

func TestOpenReadOnlyRejectsOtherFiles(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.db")
	os.WriteFile(path, []byte("not sqlite"), 0o644)
	if _, err := audit.OpenReadOnly(context.Background(), path); err == nil {
		t.Error("opened a file that is not an audit database")
	}
	if _, err := audit.OpenReadOnly(context.Background(), filepath.Join(t.TempDir(), "missing.db")); err == nil {
		t.Error("opened a missing database")
	}
}

// BenchmarkBacktest replays a generated audit log with changed config,
// on every core, and reports decisions per second.
func BenchmarkBacktest(b *testing.B) {
	current := engine(b, "")
	n := 3000 // GITPOLI_BACKTEST_ROWS=100000 for the full-size run
	if v, err := strconv.Atoi(os.Getenv("GITPOLI_BACKTEST_ROWS")); err == nil && v > 0 {
		n = v
	}
	db := recordDB(b, current, n)
	cfg, _ := os.ReadFile("../internal/testrepo/testdata/.repol/deploy.yaml")
	relaxed := engine(b, strings.Replace(string(cfg), "approvals_required: 2", "approvals_required: 1", 1))
	store, err := audit.OpenReadOnly(context.Background(), db)
	if err != nil {
		b.Fatal(err)
	}
	defer store.Close()
	total := 0
	for b.Loop() {
		rep, err := Run(context.Background(), relaxed, store, Options{})
		if err != nil {
			b.Fatal(err)
		}
		total += rep.Decided
	}
	b.ReportMetric(float64(total)/b.Elapsed().Seconds(), "decisions/s")
}

// TestBacktestOnPostgres: the same backtest reads a PostgreSQL audit
// log, through a connection on which every write is refused.
func TestBacktestOnPostgres(t *testing.T) {
	ctx := context.Background()
	current := engine(t, "")
	dsn := recordAt(t, pgtest.DSN(t), current, 9)
	store, err := audit.OpenReadOnly(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	cfg, _ := os.ReadFile("../internal/testrepo/testdata/.repol/deploy.yaml")
	relaxed := engine(t, strings.Replace(string(cfg), "approvals_required: 2", "approvals_required: 1", 1))
	rep, err := Run(ctx, relaxed, store, Options{Workers: 2})
	if err != nil || rep.Decided != 9 || len(rep.Flips) != 3 {
		t.Fatalf("relaxed policies on PostgreSQL: %d decided, %d flips, %v; want 9 and 3", rep.Decided, len(rep.Flips), err)
	}
	if err := store.Insert(ctx, &audit.Record{Policy: "deploy", Decision: "allow", Source: "api"}); err == nil || !strings.Contains(err.Error(), "read-only") {
		t.Errorf("a write through the read-only store: %v", err)
	}
}

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// TestBacktestLeavesOutRecordsWithoutTheFacts backtests a deploy policy
// that now also reads input.commits on records made before it did: none
// of them is decided again, none counts as a flip, and the report says
// how many and for want of which fact.
func TestBacktestLeavesOutRecordsWithoutTheFacts(t *testing.T) {
	db := recordDB(t, engine(t, ""), 30)
	src := sources(t, "")
	deploy, err := os.ReadFile("../internal/testrepo/testdata/policies/deploy.rego")
	if err != nil {
		t.Fatal(err)
	}
	policies := fstest.MapFS{"deploy.rego": {Data: append(deploy, []byte(`
violations contains {"code": "commit.unverified", "msg": "A commit is not verified"} if {
	some c in input.commits
	not c.verified
}
`)...)}}
	for _, name := range []string{"lib/helpers.rego", "pullrequest.rego"} {
		data, err := os.ReadFile("../internal/testrepo/testdata/policies/" + name)
		if err != nil {
			t.Fatal(err)
		}
		policies[name] = &fstest.MapFile{Data: data}
	}
	src.Policies = workbench.Dir{FS: policies, Name: "policies"}
	e, err := workbench.New(context.Background(), src)
	if err != nil {
		t.Fatal(err)
	}
	store, err := audit.OpenReadOnly(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	rep, err := Run(context.Background(), e, store, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Unfit != 30 || rep.UnfitFacts["commits"] != 30 || rep.Decided != 0 || len(rep.Flips) != 0 {
		t.Errorf("unfit %d %v, decided %d, flips %d; want all 30 left out for want of commits", rep.Unfit, rep.UnfitFacts, rep.Decided, len(rep.Flips))
	}
	if !strings.Contains(rep.Markdown(), "30 records not decided again") {
		t.Errorf("markdown does not say so:\n%s", rep.Markdown())
	}
}
