package cli

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gitpoli/gitpoli/internal/pgtest"
	"github.com/gitpoli/gitpoli/internal/testrepo"
	"github.com/gitpoli/gitpoli/serve/audit"
)

func TestBacktestCommand(t *testing.T) {
	repo := testrepo.Copy(t, "..")
	testBacktestCommand(t, repo, filepath.Join(repo, "audit.db"), "audit.db")
	if _, stderr, code := run(t, repo, "", "backtest", "--db", "missing.db"); code != 2 || !strings.Contains(stderr, "missing.db") {
		t.Errorf("missing db: exit %d %s", code, stderr)
	}
}

// TestBacktestCommandOnPostgres: the same, from a PostgreSQL audit log.
func TestBacktestCommandOnPostgres(t *testing.T) {
	dsn := pgtest.DSN(t)
	testBacktestCommand(t, testrepo.Copy(t, ".."), dsn, dsn)
}

func testBacktestCommand(t *testing.T, repo, db, arg string) {
	s, err := audit.Open(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	// Recorded as allowed with one approver; the repository's config needs two.
	input := `{"environment":"production","ref":"refs/heads/main","repo_environments":["production"],"workflow_meta":{"approvers":["alice"],"checks":{"tests":true},"signed_off":true,"deployments_today":0}}`
	if err := s.Insert(context.Background(), &audit.Record{ID: "a1", Policy: "deploy", Decision: "allow", Source: "webhook",
		Input: json.RawMessage(input), Repo: "octo/service", Environment: "production"}); err != nil {
		t.Fatal(err)
	}
	if err := s.Insert(context.Background(), &audit.Record{ID: "a2", Policy: "deploy", Decision: "allow", Source: "webhook",
		Input: json.RawMessage(input), Repo: "octo/other", Environment: "production",
		Shadow: &audit.Shadow{Decision: "deny", Disagree: true}}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	stdout, _, _ := run(t, repo, "", "backtest", "--db", arg, "--disagree")
	if !strings.Contains(stdout, "a2  octo/other") || strings.Contains(stdout, "a1 ") || !strings.Contains(stdout, "1 decided again") {
		t.Errorf("--disagree:\n%s", stdout)
	}
	stdout, stderr, code := run(t, repo, "", "backtest", "--db", arg, "--repo", "octo/service", "--fail-on-flip")
	if code != 1 || !strings.Contains(stdout, "a1  octo/service  deploy production  allow→deny: [] → [approvals.insufficient]") ||
		!strings.Contains(stdout, "1 decided again, 1 flipped, 0 skipped") {
		t.Errorf("backtest: exit %d\n%s\n%s", code, stdout, stderr)
	}
}

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }
