package cli

import (
	"github.com/gitpoli/gitpoli/internal/testrepo"

	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/charmbracelet/x/exp/golden"
)

// run runs gitpoli in-process in dir, with the repository's files as the
// built-in defaults.
func run(t *testing.T, dir, stdin string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	return runEnv(t, dir, stdin, nil, args...)
}

func runEnv(t *testing.T, dir, stdin string, vars map[string]string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = Run(context.Background(), args, Env{
		Getenv:   func(k string) string { return vars[k] },
		Stdin:    strings.NewReader(stdin),
		Stdout:   &out,
		Stderr:   &errOut,
		Defaults: os.DirFS(testrepo.Root("..")),
		Dir:      dir,
	})
	return out.String(), errOut.String(), code
}

var durations = regexp.MustCompile(`\(\d[\d.]*(µs|ms|s|ns)\)|"duration_ns": \d+`)

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

const (
	deployInput = `{"environment":"production","ref":"refs/heads/feature/x","repo_environments":["production"],
 "workflow_meta":{"approvers":["alice","ALICE"],"checks":{"tests":true},"signed_off":true,"deployments_today":5}}`
	deployAllowInput = `{"environment":"production","ref":"refs/heads/main","repo_environments":["production"],
 "workflow_meta":{"approvers":["alice","bob"],"checks":{"tests":true},"signed_off":true,"deployments_today":0}}`
)

func TestCommands(t *testing.T) {
	repo := testrepo.Copy(t, "..")
	broken := testrepo.Copy(t, "..")
	testrepo.Edit(t, filepath.Join(broken, ".repol/deploy.yaml"), "approvals_required: 2", "approvals_required: 11")
	testrepo.Edit(t, filepath.Join(broken, ".repol/deploy.yaml"), "signed_off: true", "signed_of: true")
	testrepo.Edit(t, filepath.Join(broken, "policies/deploy.rego"), "allow if count(violations) == 0", "allow if {\n\tunused := 1\n\tcount(violations) == 0\n}")
	failing := testrepo.Copy(t, "..")
	testrepo.Edit(t, filepath.Join(failing, "policies/deploy.rego"), "done >= max", "done > max")
	typo := testrepo.Copy(t, "..")
	testrepo.Edit(t, filepath.Join(typo, "policies/pullrequest.rego"), `["workflow_meta", "signed_off"]`, `["workflow_meta", "signedoff"]`)
	empty := t.TempDir()
	writeFile(t, filepath.Join(repo, "deny.json"), deployInput)

	tests := []struct {
		name     string
		dir      string
		stdin    string
		args     []string
		wantCode int
	}{
		{"check_ok", repo, "", []string{"check"}, 0},
		{"check_builtin_defaults", empty, "", []string{"check"}, 0},
		{"check_json", repo, "", []string{"check", "--format", "json"}, 0},
		{"check_broken", broken, "", []string{"check"}, 1},
		{"check_warns", typo, "", []string{"check"}, 0},
		{"check_broken_json", broken, "", []string{"check", "--format=json"}, 1},
		{"test_run", repo, "", []string{"test", "--run", "rate_limit"}, 0},
		{"test_failing", failing, "", []string{"test", "--run", "deploy_test"}, 1},
		{"test_broken_policy", broken, "", []string{"test"}, 2},
		{"test_no_match", repo, "", []string{"test", "--run", "no_such_test"}, 2},
		{"test_coverage", repo, "", []string{"test", "--coverage", "--run", "helpers"}, 0},
		{"eval_allow", repo, deployAllowInput, []string{"eval", "deploy", "--input", "-"}, 0},
		{"eval_deny", repo, "", []string{"eval", "deploy", "--input", "deny.json"}, 1},
		{"eval_deny_json", repo, "", []string{"eval", "--format", "json", "deploy", "--input", "deny.json"}, 1},
		{"eval_explain", repo, "", []string{"eval", "deploy", "--input", "deny.json", "--explain"}, 1},
		{"eval_inline_repo_policy", repo, `{"head_ref":"feature/x","base_ref":"main","repo_policy":{"policy":{"version":"1","rules":{"approvals_required":0}}}}`, []string{"eval", "pullrequest", "--input", "-"}, 0},
		{"eval_broken_config", broken, deployAllowInput, []string{"eval", "deploy", "--input", "-", "--policies", filepath.Join(repo, "policies")}, 1},
		{"eval_not_json", repo, "{\n  \"environment\": production\n}", []string{"eval", "deploy", "--input", "-"}, 2},
		{"eval_not_object", repo, "[]", []string{"eval", "deploy", "--input", "-"}, 2},
		{"eval_unknown_policy", repo, "{}", []string{"eval", "deployment-gate", "--input", "-"}, 2},
		{"eval_missing_file", repo, "", []string{"eval", "deploy", "--input", "nope.json"}, 2},
		{"eval_no_input", repo, "", []string{"eval", "deploy"}, 2},
		{"eval_bad_format", repo, "{}", []string{"eval", "deploy", "--input", "-", "--format", "yaml"}, 2},
		{"unknown_command", repo, "", []string{"deploy"}, 2},
		{"missing_policies_dir", repo, "", []string{"check", "--policies", "nowhere"}, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stdout, stderr, code := run(t, tt.dir, tt.stdin, tt.args...)
			if code != tt.wantCode {
				t.Errorf("exit code %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tt.wantCode, stdout, stderr)
			}
			out := "$ gitpoli " + strings.Join(tt.args, " ") + "\n" + stdout
			if stderr != "" {
				out += "--- stderr\n" + stderr
			}
			out = strings.ReplaceAll(out, repo, "REPO")
			golden.RequireEqual(t, durations.ReplaceAllString(out, "(DURATION)"))
		})
	}
}

func TestHelp(t *testing.T) {
	stdout, _, code := run(t, "", "", "help")
	if code != 0 || !strings.Contains(stdout, "eval") {
		t.Errorf("help: exit %d, %q", code, stdout)
	}
	_, _, code = run(t, "", "", "eval", "-h")
	if code != 0 {
		t.Errorf("eval -h: exit %d", code)
	}
	// Without a terminal, a bare gitpoli runs everything once and prints
	// a summary (here on the built-in policies and fixtures).
	stdout, _, code = run(t, t.TempDir(), "")
	if code != 0 || !strings.Contains(stdout, "tests 68/68, fixtures 53/53, 0 problems") {
		t.Errorf("no command: exit %d, %q", code, stdout)
	}
	// Flags and no command are the workbench's.
	stdout, _, code = run(t, t.TempDir(), "", "--format", "json")
	if code != 0 || !strings.Contains(stdout, `"generation": 1`) {
		t.Errorf("--format json: exit %d, %.200q", code, stdout)
	}
}

// TestEvalEngineErrorSaidOnce: a decision that cannot be evaluated (a
// config glob that does not parse) denies with engine.error and says why
// on stderr, once.
func TestEvalEngineErrorSaidOnce(t *testing.T) {
	repo := testrepo.Copy(t, "..")
	testrepo.Edit(t, filepath.Join(repo, ".repol/deploy.yaml"), `allowed_branches: ["main"]`, `allowed_branches: ["ma[in"]`)
	stdout, stderr, code := run(t, repo, deployAllowInput, "eval", "deploy", "--input", "-")
	if code != 1 || !strings.Contains(stdout, "engine.error") || strings.Count(stderr, "gitpoli eval:") != 1 {
		t.Errorf("exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
}
