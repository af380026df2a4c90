package serve

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gitpoli/gitpoli/workbench"
	"github.com/gitpoli/gitpoli/workbench/fixture"
)

// policyBotSources are examples/policy-bot's policies, config and
// schemas; with only set, the other policies are left out.
func policyBotSources(t *testing.T, only ...string) workbench.Sources {
	t.Helper()
	dir := t.TempDir()
	if err := os.CopyFS(dir, os.DirFS("../examples/policy-bot")); err != nil {
		t.Fatal(err)
	}
	if len(only) > 0 {
		names, _ := filepath.Glob(filepath.Join(dir, "policies", "*.rego"))
		for _, name := range names {
			policy := strings.TrimSuffix(strings.TrimSuffix(filepath.Base(name), ".rego"), "_test")
			if !strings.Contains(" "+strings.Join(only, " ")+" ", " "+policy+" ") {
				os.Remove(name)
			}
		}
	}
	return workbench.Sources{
		Policies: workbench.Dir{FS: os.DirFS(filepath.Join(dir, "policies")), Name: "policies"},
		Config:   workbench.Dir{FS: os.DirFS(filepath.Join(dir, ".repol")), Name: ".repol"},
		Schemas:  workbench.Dir{FS: os.DirFS(filepath.Join(dir, "schemas")), Name: "schemas"},
	}
}

func policyBotFixture(t *testing.T, name string) *fixture.Fixture {
	t.Helper()
	return parseFixture(t, filepath.Join("../examples/policy-bot/fixtures", name))
}

// checkRuns waits for n check runs and returns each one's conclusion by
// name, and the commit each was posted on.
func checkRuns(t *testing.T, gh *fakeGitHub, n int) (map[string]string, map[string]string) {
	t.Helper()
	conclusions, shas := map[string]string{}, map[string]string{}
	for range n {
		p := gh.waitPost(t)
		name, _ := p.body["name"].(string)
		conclusions[name], _ = p.body["conclusion"].(string)
		shas[name], _ = p.body["head_sha"].(string)
	}
	return conclusions, shas
}

// TestPolicyBotRulesThroughServe runs examples/policy-bot's five policies
// in gitpoli serve against a fake GitHub fed with their recorded
// responses: a push after an approval makes the approval stale and the
// fresh-approval check fails; a code owner's approval turns the
// code-owners check green; a merge queue's group gets every check on its
// head.
func TestPolicyBotRulesThroughServe(t *testing.T) {
	src := policyBotSources(t)
	start := func(t *testing.T, responses map[string]fixture.Response) (*fakeGitHub, *harness) {
		gh := newFakeGitHub(t)
		gh.add(responses)
		return gh, startConfig(t, gh, "", func(c *Config) { c.Sources = src })
	}

	t.Run("a push makes an approval stale", func(t *testing.T) {
		f := policyBotFixture(t, "pull_request.synchronize.approval-stale.json")
		gh, h := start(t, f.Responses)
		// Before the push, the approved commit is the head.
		var payload map[string]any
		json.Unmarshal(withInstallation(t, f.Payload), &payload)
		var reviews []map[string]any
		for k, r := range f.Responses {
			if strings.HasSuffix(strings.Split(k, "?")[0], "/reviews") {
				json.Unmarshal(r.Body, &reviews)
			}
		}
		head := payload["pull_request"].(map[string]any)["head"].(map[string]any)
		pushed := head["sha"]
		head["sha"] = reviews[len(reviews)-1]["commit_id"]
		payload["action"] = "opened"
		before, _ := json.Marshal(payload)
		h.deliver("pull_request", "before-push", before, "")
		got, _ := checkRuns(t, gh, 5)
		if got["gitpoli / Fresh approval"] != "success" {
			t.Errorf("before the push: fresh approval %q", got["gitpoli / Fresh approval"])
		}
		head["sha"], payload["action"] = pushed, "synchronize"
		after, _ := json.Marshal(payload)
		h.deliver("pull_request", "after-push", after, "")
		got, _ = checkRuns(t, gh, 5)
		if got["gitpoli / Fresh approval"] != "failure" || got["gitpoli / Team approval"] != "success" {
			t.Errorf("after the push: %v; want fresh approval failing, team approval (which counts any approval) passing", got)
		}
	})

	t.Run("a code owner's approval turns the check green", func(t *testing.T) {
		missing := policyBotFixture(t, "pull_request.opened.codeowners-missing.json")
		gh, h := start(t, missing.Responses)
		h.deliver("pull_request", "owners-1", withInstallation(t, missing.Payload), "")
		got, _ := checkRuns(t, gh, 5)
		if got["gitpoli / Code owners"] != "failure" {
			t.Errorf("before the owner approved: %q", got["gitpoli / Code owners"])
		}
		approved := policyBotFixture(t, "pull_request_review.submitted.codeowner-approved.json")
		gh.add(approved.Responses)
		h.deliver("pull_request_review", "owners-2", withInstallation(t, approved.Payload), "")
		got, _ = checkRuns(t, gh, 5)
		if got["gitpoli / Code owners"] != "success" {
			t.Errorf("after the owner approved: %q", got["gitpoli / Code owners"])
		}
	})

	t.Run("a merge group gets its checks", func(t *testing.T) {
		f := policyBotFixture(t, "merge_group.checks_requested.queued.json")
		gh, h := start(t, f.Responses)
		h.deliver("merge_group", "queue-1", withInstallation(t, f.Payload), "")
		got, shas := checkRuns(t, gh, 5)
		for name, conclusion := range got {
			if conclusion != "success" || shas[name] != "2ffea6db159f6b6c47a24e778fb9ef40cf6b1c7d" {
				t.Errorf("%s: %s on %s; want success on the group's head", name, conclusion, shas[name])
			}
		}
	})
}

// TestNoRequestForFactsNoPolicyReads serves team_approval alone, which
// reads reviews and teams: deciding a pull request asks GitHub for
// nothing else (no files, commits, checks or CODEOWNERS), though the
// recordings would answer them.
func TestNoRequestForFactsNoPolicyReads(t *testing.T) {
	f := policyBotFixture(t, "pull_request.opened.infra-change.json")
	gh := newFakeGitHub(t)
	gh.add(f.Responses)
	h := startConfig(t, gh, "", func(c *Config) { c.Sources = policyBotSources(t, "team_approval") })
	h.deliver("pull_request", "lazy-1", withInstallation(t, f.Payload), "")
	gh.waitPost(t)
	h.waitState("lazy-1", "done")
	time.Sleep(10 * time.Millisecond)
	gh.mu.Lock()
	defer gh.mu.Unlock()
	var asked []string
	for _, r := range gh.keys {
		if !strings.HasPrefix(r, "GET ") {
			continue
		}
		asked = append(asked, r)
		if strings.Contains(r, "/check-runs?app_id=") {
			continue // the check's own run, looked up to be updated: the answer, not a fact
		}
		for _, unread := range []string{"/files", "/commits", "CODEOWNERS", "/status"} {
			if strings.Contains(r, unread) {
				t.Errorf("asked GitHub for a fact no policy reads: %s", r)
			}
		}
	}
	if len(asked) == 0 {
		t.Error("asked GitHub nothing at all")
	}
	t.Logf("requests: %v", asked)
}

// TestStatusIgnoredWhenNoPolicyReadsChecks: a commit status (a busy
// repository sends one for every CI step) is neither queued nor looked
// up when no policy reads checks.
func TestStatusIgnoredWhenNoPolicyReadsChecks(t *testing.T) {
	gh := newFakeGitHub(t)
	h := start(t, gh, "")
	body := withInstallation(t, []byte(`{"sha":"ec26c3e57ca3a959ca5aad62de7213c562f8c821","state":"success","context":"ci/test","repository":{"full_name":"Codertocat/Hello-World"}}`))
	code, out := h.deliver("status", "status-1", body, "")
	if code != 200 || out["ignored"] != "no policy decides status" {
		t.Errorf("status: %d %v", code, out)
	}
	gh.mu.Lock()
	defer gh.mu.Unlock()
	if len(gh.requests) != 0 {
		t.Errorf("asked GitHub %v", gh.requests)
	}
}
