package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/charmbracelet/x/exp/golden"

	"github.com/gitpoli/gitpoli/internal/testrepo"
)

// TestWritingAPolicy walks README's "Writing a policy" with no Go: a
// repository gains a third policy (examples/wip: a package, its tests,
// its config and schema) and a fixture of a real pull_request.opened
// payload with a WIP title, and every command sees it. Then the
// pull-request starter policy is deleted, and the WIP policy alone still
// works in every command.
func TestWritingAPolicy(t *testing.T) {
	repo := testrepo.Copy(t, "..")
	if err := os.CopyFS(repo, os.DirFS("../examples/wip")); err != nil {
		t.Fatal(err)
	}
	// A real payload (octokit's pull_request.opened example), retitled.
	var f map[string]any
	data, err := os.ReadFile(filepath.Join(repo, "fixtures/pull_request.opened.octokit.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &f); err != nil {
		t.Fatal(err)
	}
	payload := f["payload"].(map[string]any)
	payload["pull_request"].(map[string]any)["title"] = "WIP: Update the README with new information."
	raw, _ := json.Marshal(payload)
	writeFile(t, filepath.Join(repo, "wip-payload.json"), string(raw))
	f["description"] = "A pull request whose title starts with WIP: the PR policy decides it as before, the WIP policy denies it."
	f["delivery_id"] = "fixture-pull_request.opened.wip"
	f["expect"] = []any{
		map[string]any{"policy": "pullrequest", "allow": false, "codes": []string{"approvals.insufficient", "branch_naming.denied", "target_branch.denied"}},
		map[string]any{"policy": "wip", "allow": false, "codes": []string{"pr.wip"}},
	}
	out, _ := json.MarshalIndent(f, "", "  ")
	writeFile(t, filepath.Join(repo, "fixtures/pull_request.opened.wip.json"), string(out))
	writeFile(t, filepath.Join(repo, "wip-input.json"), `{"pull_request": {"title": "Draft: new login page"}}`)

	steps := []struct {
		name     string
		args     []string
		wantCode int
	}{
		{"check", []string{"check"}, 0},
		{"policies", []string{"policies"}, 0},
		{"test", []string{"test", "--run", "wip"}, 0},
		{"test_all", []string{"test"}, 0},
		{"eval", []string{"eval", "wip", "--input", "wip-input.json"}, 1},
		{"replay_payload", []string{"replay", "wip-payload.json", "--event", "pull_request"}, 1},
		{"replay_fixture", []string{"replay", "fixtures/pull_request.opened.wip.json"}, 0},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) { runStep(t, repo, st.args, st.wantCode) })
	}

	// Without the pull-request policy: its files, its config and the
	// fixtures that expect its decisions go.
	for _, name := range []string{"policies/pullrequest.rego", "policies/pullrequest_test.rego", ".repol/pullrequest.yaml", "schemas/pullrequest.schema.json"} {
		if err := os.Remove(filepath.Join(repo, name)); err != nil {
			t.Fatal(err)
		}
	}
	fixtures, _ := filepath.Glob(filepath.Join(repo, "fixtures/*.json"))
	for _, name := range fixtures {
		data, _ := os.ReadFile(name)
		if strings.Contains(string(data), `"policy": "pullrequest"`) {
			os.Remove(name)
		}
	}
	f["expect"] = map[string]any{"policy": "wip", "allow": false, "codes": []string{"pr.wip"}}
	out, _ = json.MarshalIndent(f, "", "  ")
	writeFile(t, filepath.Join(repo, "fixtures/pull_request.opened.wip.json"), string(out))
	for _, st := range []struct {
		name     string
		args     []string
		wantCode int
	}{
		{"alone_check", []string{"check"}, 0},
		{"alone_policies", []string{"policies"}, 0},
		{"alone_test", []string{"test", "--run", "wip"}, 0},
		{"alone_eval", []string{"eval", "wip", "--input", "wip-input.json"}, 1},
		{"alone_replay_payload", []string{"replay", "wip-payload.json", "--event", "pull_request"}, 1},
		{"alone_replay_fixture", []string{"replay", "fixtures/pull_request.opened.wip.json"}, 0},
	} {
		t.Run(st.name, func(t *testing.T) { runStep(t, repo, st.args, st.wantCode) })
	}
}

// runStep runs one command in dir and holds its output to a golden file.
func runStep(t *testing.T, dir string, args []string, wantCode int) {
	t.Helper()
	stdout, stderr, code := run(t, dir, "", args...)
	if code != wantCode {
		t.Errorf("exit code %d, want %d\nstdout:\n%s\nstderr:\n%s", code, wantCode, stdout, stderr)
	}
	out := "$ gitpoli " + strings.Join(args, " ") + "\n" + stdout
	if stderr != "" {
		out += "--- stderr\n" + stderr
	}
	golden.RequireEqual(t, durations.ReplaceAllString(strings.ReplaceAll(out, dir, "REPO"), "(DURATION)"))
}
