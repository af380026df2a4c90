package cli

import (
	"github.com/gitpoli/gitpoli/internal/testrepo"

	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/charmbracelet/x/exp/golden"
)

func gitRun(t *testing.T, dir string, args ...string) {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(cmd.Environ(), "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.com", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@example.com")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("git %v: %v\n%s", args, err, out)
	}
}

// TestDiffAcrossBranches: a policy change on a branch of a real git
// repository flips the decisions it should, and only those.
func TestDiffAcrossBranches(t *testing.T) {
	repo := testrepo.Copy(t, "..")
	gitRun(t, repo, "init", "-q", "-b", "main")
	gitRun(t, repo, "add", "-A")
	gitRun(t, repo, "commit", "-q", "-m", "base")
	gitRun(t, repo, "checkout", "-q", "-b", "raise-approvals")
	testrepo.Edit(t, filepath.Join(repo, ".repol/pullrequest.yaml"), "approvals_required: 1", "approvals_required: 2")
	gitRun(t, repo, "commit", "-q", "-am", "two approvals")

	// Committed branch against main, and the working tree against main.
	for _, args := range [][]string{{"diff", "main", "raise-approvals"}, {"diff"}} {
		stdout, stderr, code := run(t, repo, "", append(args, "--fail-on-change")...)
		if code != 1 {
			t.Errorf("%v: exit %d\n%s\n%s", args, code, stdout, stderr)
		}
		for _, want := range []string{
			"! fixture fixtures/pull_request.opened.feature-approved.json: allow → deny [approvals.insufficient]",
			"! fixture fixtures/pull_request.synchronize.changes-then-approved.json: allow → deny [approvals.insufficient]",
		} {
			if !strings.Contains(stdout, want) {
				t.Errorf("%v: missing %q in\n%s", args, want, stdout)
			}
		}
		if strings.Contains(stdout, "deployment_protection_rule") {
			t.Errorf("%v: a deployment fixture changed:\n%s", args, stdout)
		}
	}
	// The whole output, in each human format, is a golden file.
	for _, format := range []string{"text", "markdown"} {
		t.Run(format, func(t *testing.T) {
			stdout, stderr, _ := run(t, repo, "", "diff", "main", "raise-approvals", "--format", format)
			if stderr != "" {
				t.Errorf("stderr: %s", stderr)
			}
			golden.RequireEqual(t, stdout)
		})
	}
	// The same revision on both sides: nothing changes.
	stdout, _, code := run(t, repo, "", "diff", "main", "main", "--fail-on-change")
	if code != 0 || !strings.Contains(stdout, ": 0 changed") {
		t.Errorf("main vs main: exit %d\n%s", code, stdout)
	}
	if _, stderr, code := run(t, repo, "", "diff", "no-such-ref"); code != 2 || !strings.Contains(stderr, "no-such-ref") {
		t.Errorf("unknown ref: exit %d %s", code, stderr)
	}
}
