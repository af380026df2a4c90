package cli

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/charmbracelet/x/exp/golden"

	"github.com/gitpoli/gitpoli/internal/testrepo"
	"github.com/gitpoli/gitpoli/workbench/fixture"
)

func TestReplayCommands(t *testing.T) {
	repo := testrepo.Copy(t, "..")
	wrong := filepath.Join(repo, "wrong.json")
	data, err := os.ReadFile(filepath.Join(repo, "fixtures/pull_request.opened.octokit.json"))
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, wrong, strings.Replace(string(data), `"target_branch.denied"`, `"target_branch.denied", "signoff.missing"`, 1))
	writeFile(t, filepath.Join(repo, "broken.json"), "{\n  \"event\": \"ping\",\n  \"payload\": {\"zen\": \"x\",}\n}\n")
	payload, err := json.Marshal(mustFixture(t, filepath.Join(repo, "fixtures/pull_request.opened.feature-approved.json")).Payload)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(repo, "payload.json"), string(payload))
	writeFile(t, filepath.Join(repo, "ping.json"), `{"zen": "Keep it logically awesome.", "hook_id": 1}`)
	writeFile(t, filepath.Join(repo, "array.json"), `[1]`)

	tests := []struct {
		name     string
		args     []string
		vars     map[string]string
		wantCode int
	}{
		{"corpus", []string{"replay"}, nil, 0},
		{"one_fixture_json", []string{"replay", "--format", "json", "fixtures/pull_request.opened.dco-missing.json"}, nil, 0},
		{"wrong_expectation", []string{"replay", "wrong.json"}, nil, 1},
		{"malformed_fixture", []string{"replay", "broken.json"}, nil, 2},
		{"raw_payload", []string{"replay", "payload.json", "--event", "pull_request"}, nil, 1},
		{"raw_ping", []string{"replay", "ping.json", "--event", "ping"}, nil, 1},
		{"raw_fixture", []string{"replay", "fixtures/pull_request.opened.octokit.json", "--event", "pull_request"}, nil, 2},
		{"raw_array", []string{"replay", "array.json", "--event", "pull_request"}, nil, 2},
		{"raw_not_json", []string{"replay", "broken.json", "--event", "pull_request"}, nil, 2},
		{"live_without_token", []string{"replay", "octo/repo#7"}, nil, 2},
		{"test_includes_fixtures", []string{"test", "--fixtures", "fixtures"}, nil, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stdout, stderr, code := runEnv(t, repo, "", tt.vars, tt.args...)
			if code != tt.wantCode {
				t.Errorf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tt.wantCode, stdout, stderr)
			}
			out := "$ gitpoli " + strings.Join(tt.args, " ") + "\n" + stdout
			if stderr != "" {
				out += "--- stderr\n" + stderr
			}
			if tt.name == "test_includes_fixtures" {
				// The OPA test lines are covered elsewhere; keep the fixtures.
				var keep []string
				for _, l := range strings.Split(out, "\n") {
					if !strings.Contains(l, "_test.") {
						keep = append(keep, l)
					}
				}
				out = strings.Join(keep, "\n")
			}
			golden.RequireEqual(t, durations.ReplaceAllString(out, "(DURATION)"))
		})
	}
}

func mustFixture(t *testing.T, path string) *fixture.Fixture {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	f, err := fixture.Parse(path, data)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// TestReplayLiveRecordRoundTrip replays a "live" pull request from a fake
// GitHub API, records it as a fixture, and replays the fixture: same
// decision, and no token in the file.
func TestReplayLiveRecordRoundTrip(t *testing.T) {
	repo := testrepo.Copy(t, "..")
	source := mustFixture(t, filepath.Join(repo, "fixtures/pull_request.opened.dco-missing.json"))
	prBody := `{"number": 2, "state": "open", "user": {"login": "Codertocat"},
		"head": {"ref": "feature/dco", "label": "Codertocat:feature/dco", "sha": "ec26c3e57ca3a959ca5aad62de7213c562f8c821", "repo": {"full_name": "Codertocat/Hello-World"}},
		"base": {"ref": "main", "repo": {"full_name": "Codertocat/Hello-World"}}}`
	responses := map[string]fixture.Response{"GET /repos/Codertocat/Hello-World/pulls/2": {Status: 200, Body: json.RawMessage(prBody)}}
	for k, v := range source.Responses {
		responses[k] = v
	}
	// A recording keeps every fact, those no policy reads yet included.
	const sha = "ec26c3e57ca3a959ca5aad62de7213c562f8c821"
	for k, body := range map[string]string{
		"GET /repos/Codertocat/Hello-World/pulls/2/files?page=1&per_page=100":                                `[{"filename": "README.md", "status": "modified", "additions": 1, "deletions": 1, "changes": 2}]`,
		"GET /repos/Codertocat/Hello-World/commits/" + sha + "/check-runs?filter=latest&page=1&per_page=100": `{"total_count": 0, "check_runs": []}`,
		"GET /repos/Codertocat/Hello-World/commits/" + sha + "/status?page=1&per_page=100":                   `{"state": "pending", "statuses": []}`,
	} {
		responses[k] = fixture.Response{Status: 200, Body: json.RawMessage(body)}
	}
	for _, path := range []string{".github/CODEOWNERS", "CODEOWNERS", "docs/CODEOWNERS"} {
		responses["GET /repos/Codertocat/Hello-World/contents/"+path+"?ref=main"] = fixture.Response{Status: 404, Body: json.RawMessage(`{"message": "Not Found"}`)}
	}
	var mu sync.Mutex
	var auth []string
	strict := true
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		auth = append(auth, r.Header.Get("Authorization"))
		mu.Unlock()
		r.URL.Path = strings.TrimPrefix(r.URL.Path, "/api/v3")
		resp, ok := responses[fixture.Key(r)]
		mu.Lock()
		complain := strict
		mu.Unlock()
		if !ok {
			if complain {
				t.Errorf("unexpected request %s", fixture.Key(r))
			}
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(resp.Status)
		w.Write(resp.Body)
	}))
	defer srv.Close()

	vars := map[string]string{"GITHUB_TOKEN": "ghp_test_secret", "GITHUB_API_URL": srv.URL + "/api/v3"}
	stdout, stderr, code := runEnv(t, repo, "", vars, "replay", "Codertocat/Hello-World#2", "--record", "recorded.json")
	if code != 1 || !strings.Contains(stdout, "signoff.missing") {
		t.Fatalf("live replay: exit %d\n%s\n%s", code, stdout, stderr)
	}
	for _, a := range auth {
		if a != "Bearer ghp_test_secret" {
			t.Errorf("request sent with Authorization %q", a)
		}
	}
	recorded, err := os.ReadFile(filepath.Join(repo, "recorded.json"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(recorded), "ghp_test_secret") || strings.Contains(string(recorded), srv.URL) {
		t.Error("the recorded fixture holds the token or the API host")
	}
	for _, fact := range []string{"/pulls/2/files?", "/check-runs?", "/contents/docs/CODEOWNERS?"} {
		if !strings.Contains(string(recorded), fact) {
			t.Errorf("the recording lacks %s, a fact no starter policy reads", fact)
		}
	}
	stdout, stderr, code = run(t, repo, "", "replay", "recorded.json")
	if code != 0 || !strings.Contains(stdout, "PASS  recorded.json  pull_request.synchronize  pullrequest deny [signoff.missing]") {
		t.Errorf("replaying the recording: exit %d\n%s\n%s", code, stdout, stderr)
	}
	// A pull request the API does not know is reported plainly.
	mu.Lock()
	strict = false
	mu.Unlock()
	_, stderr, code = runEnv(t, repo, "", vars, "replay", "Codertocat/Hello-World#404")
	if code != 2 || !strings.Contains(stderr, "fetch Codertocat/Hello-World#404: not found: GET /api/v3/repos/Codertocat/Hello-World/pulls/404: 404 not found") {
		t.Errorf("unknown pull request: exit %d, %s", code, stderr)
	}
	// And the deployment view of the same pull request, for which the fake
	// API knows nothing more: every missing fact is reported.
	mu.Lock()
	strict = false
	mu.Unlock()
	stdout, _, code = runEnv(t, repo, "", vars, "replay", "https://github.com/Codertocat/Hello-World/pull/2", "--environment", "staging", "--deployments-today", "0")
	if code != 1 || !strings.Contains(stdout, "fact.unavailable") {
		t.Errorf("live deployment replay: exit %d\n%s", code, stdout)
	}
}

// TestBrokenFixtureFailsAlone: a fixture file that does not parse fails
// with its file, line and column, and every other fixture still runs, in
// gitpoli test and gitpoli replay alike.
func TestBrokenFixtureFailsAlone(t *testing.T) {
	repo := testrepo.Copy(t, "..")
	writeFile(t, filepath.Join(repo, "fixtures/zz.broken.json"), "{\n  \"event\": \"ping\",\n  \"payload\": {,}\n}\n")
	for _, args := range [][]string{{"test"}, {"replay"}, {"replay", "fixtures"}} {
		stdout, stderr, code := run(t, repo, "", args...)
		if code != 1 || !strings.Contains(stdout, "fixtures/zz.broken.json:3:15: invalid character ','") ||
			!strings.Contains(stdout, "PASS") || !strings.Contains(stdout, "fixtures/push.ignored.json") {
			t.Errorf("%s: exit %d\nstdout:\n%s\nstderr:\n%s", args[0], code, stdout, stderr)
		}
	}
}
