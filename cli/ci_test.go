package cli

import (
	"github.com/gitpoli/gitpoli/internal/testrepo"

	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/charmbracelet/x/exp/golden"
)

// TestCI runs gitpoli ci as a GitHub Actions job would, on a pull request
// that raises approvals on a branch of a real git repository, without a
// token (so the API facts are unavailable and the decision fails closed).
func TestCI(t *testing.T) {
	repo := testrepo.Copy(t, "..")
	gitRun(t, repo, "init", "-q", "-b", "main")
	gitRun(t, repo, "add", "-A")
	gitRun(t, repo, "commit", "-q", "-m", "base")
	gitRun(t, repo, "update-ref", "refs/remotes/origin/main", "HEAD")
	gitRun(t, repo, "checkout", "-q", "-b", "feature/approvals")
	testrepo.Edit(t, filepath.Join(repo, ".repol/pullrequest.yaml"), "approvals_required: 1", "approvals_required: 2")
	testrepo.Edit(t, filepath.Join(repo, ".repol/deploy.yaml"), "max_deployments_per_day: 5", "max_deployments_per_day: 5000")
	gitRun(t, repo, "commit", "-q", "-am", "stricter")

	f := mustFixture(t, filepath.Join(repo, "fixtures/pull_request.opened.feature-approved.json"))
	var payload map[string]any
	json.Unmarshal(f.Payload, &payload)
	eventPath := filepath.Join(repo, "event.json")
	data, _ := json.Marshal(payload)
	writeFile(t, eventPath, string(data))
	summary := filepath.Join(repo, "summary.md")
	stdout, stderr, code := runEnv(t, repo, "", map[string]string{
		"GITHUB_EVENT_NAME": "pull_request", "GITHUB_EVENT_PATH": eventPath, "GITHUB_STEP_SUMMARY": summary,
	}, "ci")
	if code != 1 {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	if !strings.Contains(stdout, "::error file=.repol/deploy.yaml,line=13,col=34::.repol/deploy.yaml:13:34: policy.environments.production.rules.max_deployments_per_day: must be <= 1000 (got 5000)") {
		t.Errorf("no annotation on the config line:\n%s", stdout)
	}
	md, err := os.ReadFile(summary)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"**pullrequest** Codertocat/Hello-World#2: ❌ deny",
		"| `fact.unavailable` |",
		"| ⚠️ | fixture | `fixtures/pull_request.opened.feature-approved.json` | allow | deny [approvals.insufficient] |",
	} {
		if !strings.Contains(string(md), want) {
			t.Errorf("summary lacks %q:\n%s", want, md)
		}
	}
	t.Run("summary", func(t *testing.T) { golden.RequireEqual(t, md) })
	t.Run("workflow-commands", func(t *testing.T) { golden.RequireEqual(t, stdout) })
	if _, stderr, code := run(t, repo, "", "ci"); code != 2 || !strings.Contains(stderr, "GITHUB_EVENT_NAME") {
		t.Errorf("outside Actions: exit %d %s", code, stderr)
	}
}
