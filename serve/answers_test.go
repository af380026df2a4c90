package serve

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gitpoli/gitpoli/internal/syncbuf"
	"github.com/gitpoli/gitpoli/serve/audit"
	"github.com/gitpoli/gitpoli/workbench/fixture"
)

// waitFor polls cond until it holds, or fails the test after 20 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("never: %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (h *harness) state(id string) string {
	st, _ := h.srv.Store().DeliveryState(context.Background(), id)
	return st
}

// gitHubDown is a fake GitHub with a deployment's and a pull request's
// recordings that fails every answer until a test clears gh.fail.
func gitHubDown(t *testing.T) (dep, pr *fixture.Fixture, gh *fakeGitHub) {
	t.Helper()
	dep = loadFixture(t, "deployment_protection_rule.staging-allowed.json")
	pr = loadFixture(t, "pull_request.opened.dco-missing.json")
	gh = newFakeGitHub(t)
	gh.add(dep.Responses)
	gh.add(pr.Responses)
	gh.fail["/deployment_protection_rule"] = 1 << 30
	gh.fail["/check-runs"] = 1 << 30
	return dep, pr, gh
}

// TestAnswersWaitForGitHub: GitHub fails every answer (502) for a while.
// A deployment's answer and a pull request's check run are not lost:
// their deliveries wait and are tried again, with backoff, and once
// GitHub is back each answer reaches it exactly once, with the decision
// first made. Each try is counted in its audit record.
func TestAnswersWaitForGitHub(t *testing.T) {
	dep, pr, gh := gitHubDown(t)
	h := startConfig(t, gh, "", func(c *Config) { c.AnswerRetryBase = 20 * time.Millisecond })
	h.deliver("deployment_protection_rule", "down-dep", withInstallation(t, dep.Payload), "")
	h.deliver("pull_request", "down-pr", withInstallation(t, pr.Payload), "")
	tries := func(id string) int {
		recs, _ := h.srv.Store().ForDelivery(context.Background(), id)
		if len(recs) == 0 {
			return 0
		}
		return decidedIn(recs[0].Detail).Tries
	}
	waitFor(t, "both answers tried three times", func() bool { return tries("down-dep") >= 3 && tries("down-pr") >= 3 })
	if st := h.state("down-dep"); st != "waiting" && st != "working" {
		t.Errorf("deployment delivery %s while GitHub is down", st)
	}
	_, metrics := h.get("/metrics", "")
	if !strings.Contains(string(metrics), "gitpoli_answers_waiting ") || !strings.Contains(string(metrics), "gitpoli_answer_retries_total ") {
		t.Errorf("metrics lack the waiting answers:\n%s", grepLines(string(metrics), "answer"))
	}

	gh.mu.Lock()
	gh.fail = map[string]int{}
	gh.mu.Unlock()
	waitFor(t, "both deliveries done", func() bool { return h.state("down-dep") == "done" && h.state("down-pr") == "done" })

	gh.mu.Lock()
	counts := map[string]int{}
	for _, p := range gh.posts {
		switch {
		case strings.HasSuffix(p.path, "/deployment_protection_rule"):
			counts["deployment"]++
			if p.body["state"] != "approved" {
				t.Errorf("deployment answered %v", p.body["state"])
			}
		case strings.Contains(p.path, "/check-runs"):
			counts["check"]++
			if p.body["conclusion"] != "failure" {
				t.Errorf("check run %v", p.body["conclusion"])
			}
		}
	}
	gh.mu.Unlock()
	if counts["deployment"] != 1 || counts["check"] != 1 {
		t.Errorf("answers GitHub took: %v; want each exactly once", counts)
	}
	for id, want := range map[string]string{"down-dep": "allow", "down-pr": "deny"} {
		recs, _ := h.srv.Store().ForDelivery(context.Background(), id)
		if len(recs) != 1 {
			t.Fatalf("%s: %d records", id, len(recs))
		}
		how := decidedIn(recs[0].Detail)
		if recs[0].Decision != want || how.Tries < 4 || strings.Contains(string(recs[0].Detail), `"pending"`) {
			t.Errorf("%s recorded %s %s; want %s after four tries or more, not pending", id, recs[0].Decision, recs[0].Detail, want)
		}
	}
	_, metrics = h.get("/metrics", "")
	if !strings.Contains(string(metrics), "gitpoli_answers_waiting 0") {
		t.Errorf("answers still waiting:\n%s", grepLines(string(metrics), "answers_waiting"))
	}
}

// fakeClock is a clock a test moves.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// TestAnswerGivenUpAfterItsWindow: a deployment's answer that GitHub
// never takes is tried for as long as GitHub keeps a deployment waiting
// (30 days, on the server's clock, here moved by the test); then the
// delivery fails, and its decision is recorded as an error: the
// deployment was never approved, and does not count against the daily
// limit.
func TestAnswerGivenUpAfterItsWindow(t *testing.T) {
	if testBackend == "postgres" {
		t.Skip("PostgreSQL's waits run on the database's clock")
	}
	dep := loadFixture(t, "deployment_protection_rule.staging-allowed.json")
	gh := newFakeGitHub(t)
	gh.add(dep.Responses)
	gh.fail["/deployment_protection_rule"] = 1 << 30
	clock := &fakeClock{t: time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)}
	logs := &syncbuf.Buffer{}
	h := startConfig(t, gh, "", func(c *Config) { c.Now = clock.Now; c.Logger = slog.New(slog.NewTextHandler(logs, nil)) })
	h.deliver("deployment_protection_rule", "gone", withInstallation(t, dep.Payload), "")
	waitFor(t, "the answer waiting", func() bool { return h.state("gone") == "waiting" })
	tries := func() int {
		recs, _ := h.srv.Store().ForDelivery(context.Background(), "gone")
		if len(recs) == 0 {
			return 0
		}
		return decidedIn(recs[0].Detail).Tries
	}
	days := 0
	for ; h.state("gone") != "error"; days++ {
		if days > 40 {
			t.Fatalf("still %s after 40 days", h.state("gone"))
		}
		before := tries()
		clock.Advance(24 * time.Hour)
		h.srv.wakeWorkers()
		waitFor(t, fmt.Sprintf("day %d tried", days), func() bool { return tries() > before || h.state("gone") == "error" })
		waitFor(t, "the try ended", func() bool { st := h.state("gone"); return st == "waiting" || st == "error" })
	}
	if days != 30 {
		t.Errorf("given up after %d days, want 30", days)
	}
	recs, _ := h.srv.Store().ForDelivery(context.Background(), "gone")
	if len(recs) != 1 || recs[0].Decision != "error" || !strings.Contains(string(recs[0].Detail), "502") {
		t.Fatalf("records %+v", recs)
	}
	if !strings.Contains(logs.String(), "an answer GitHub has not taken for over an hour") {
		t.Error("no warning of an answer waiting for over an hour")
	}
	page, _ := h.srv.Store().Query(context.Background(), audit.Filter{Limit: 10})
	for _, r := range page.Records {
		if r.Decision == "allow" {
			t.Errorf("an approval GitHub never got is recorded as allowed: %s", r.ID)
		}
	}
}

// TestGitHubDownForTwoMinutes: GitHub fails every answer for two minutes
// of the server's clock (moved by the test, ten seconds at a time), with
// the default backoff (30 s doubling). Both answers reach GitHub exactly
// once within a few minutes of its return.
func TestGitHubDownForTwoMinutes(t *testing.T) {
	if testBackend == "postgres" {
		t.Skip("PostgreSQL's waits run on the database's clock")
	}
	dep, pr, gh := gitHubDown(t)
	start := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	clock := &fakeClock{t: start}
	h := startConfig(t, gh, "", func(c *Config) { c.Now = clock.Now; c.AnswerRetryBase = 30 * time.Second })
	h.deliver("deployment_protection_rule", "two-min-dep", withInstallation(t, dep.Payload), "")
	h.deliver("pull_request", "two-min-pr", withInstallation(t, pr.Payload), "")
	waitFor(t, "both waiting", func() bool { return h.state("two-min-dep") == "waiting" && h.state("two-min-pr") == "waiting" })
	back := start.Add(2 * time.Minute)
	for h.state("two-min-dep") != "done" || h.state("two-min-pr") != "done" {
		if clock.Now().Sub(back) > 15*time.Minute {
			t.Fatalf("not answered %s after GitHub came back: %s, %s", clock.Now().Sub(back), h.state("two-min-dep"), h.state("two-min-pr"))
		}
		clock.Advance(10 * time.Second)
		if !clock.Now().Before(back) {
			gh.mu.Lock()
			gh.fail = map[string]int{}
			gh.mu.Unlock()
		}
		h.srv.wakeWorkers()
		time.Sleep(20 * time.Millisecond)
		waitFor(t, "no claim in hand", func() bool {
			a, b := h.state("two-min-dep"), h.state("two-min-pr")
			return a != "working" && b != "working"
		})
	}
	gh.mu.Lock()
	answers := 0
	for _, p := range gh.posts {
		if strings.HasSuffix(p.path, "/deployment_protection_rule") || strings.HasSuffix(p.path, "/check-runs") {
			answers++
		}
	}
	gh.mu.Unlock()
	if answers != 2 {
		t.Errorf("GitHub took %d answers, want the two once each", answers)
	}
	t.Logf("both answered %s after GitHub came back", clock.Now().Sub(back))
}

// TestLaterDecisionWinsOverARetry: a pull request's check answer waits
// (GitHub failed it); meanwhile a later delivery on the same commit is
// decided and posted. The waiting answer is then not sent over it: it is
// superseded, and GitHub keeps the later one.
func TestLaterDecisionWinsOverARetry(t *testing.T) {
	pr := loadFixture(t, "pull_request.opened.dco-missing.json")
	gh := newFakeGitHub(t)
	gh.add(pr.Responses)
	gh.fail["/check-runs"] = 4 // the first delivery's post, with its four quick tries
	h := startConfig(t, gh, "", func(c *Config) { c.AnswerRetryBase = 300 * time.Millisecond })
	payload := withInstallation(t, pr.Payload)
	h.deliver("pull_request", "earlier", payload, "")
	waitFor(t, "the first answer waiting", func() bool { return h.state("earlier") == "waiting" })
	h.deliver("pull_request", "later", payload, "")
	h.waitState("later", "done")
	waitFor(t, "the first delivery done", func() bool { return h.state("earlier") == "done" })
	gh.mu.Lock()
	posts := len(gh.posts)
	gh.mu.Unlock()
	if posts != 1 {
		t.Errorf("%d check runs posted; want the later one alone", posts)
	}
	recs, _ := h.srv.Store().ForDelivery(context.Background(), "earlier")
	if len(recs) != 1 || recs[0].Decision != "error" || !decidedIn(recs[0].Detail).Superseded {
		t.Errorf("the earlier decision: %+v", recs)
	}
}

// TestOwnCheckRerequestedIsDecided: "Re-run" on one of gitpoli's own
// check runs (GitHub sends it to the App that owns the run, so its app id
// is this App's) decides that policy again and posts its run.
func TestOwnCheckRerequestedIsDecided(t *testing.T) {
	f := loadFixture(t, "check_run.rerequested.gitpoli.json")
	gh := newFakeGitHub(t)
	gh.add(f.Responses)
	h := start(t, gh, "")
	var payload map[string]any
	json.Unmarshal(withInstallation(t, f.Payload), &payload)
	payload["check_run"].(map[string]any)["app"] = map[string]any{"id": 42} // the harness's App
	body, _ := json.Marshal(payload)
	h.deliver("check_run", "rerun", body, "")
	p := gh.waitPost(t)
	if !strings.Contains(p.path, "/check-runs") {
		t.Errorf("answered %s", p.path)
	}
}

// TestNotAnsweredAgainOnceTheRunWentOn: a worker dies between GitHub
// taking a deployment's answer and recording it. Claimed again, the
// delivery finds its workflow run no longer waiting (GitHub went on with
// the answer it had) and sends nothing: GitHub is answered once.
func TestNotAnsweredAgainOnceTheRunWentOn(t *testing.T) {
	gh, f := fakeGitHubFor(t, "deployment_protection_rule.staging-allowed.json")
	h := startConfig(t, gh, "", func(c *Config) { c.Lease = 300 * time.Millisecond })
	h.deliver("deployment_protection_rule", "went-on", withInstallation(t, f.Payload), "")
	gh.waitPost(t)
	h.waitState("went-on", "done")
	gh.add(map[string]fixture.Response{
		"GET /repos/product-os/deploynaut/actions/runs/12201231746": {Status: 200, Body: json.RawMessage(`{"id": 12201231746, "status": "in_progress", "conclusion": null}`)},
	})
	rewind(t, h, "went-on", true) // died between the answer and its record
	h.waitState("went-on", "done")
	time.Sleep(100 * time.Millisecond)
	gh.mu.Lock()
	posts := len(gh.posts)
	gh.mu.Unlock()
	if posts != 1 {
		t.Errorf("%d answers; want the first alone", posts)
	}
	recs, _ := h.srv.Store().ForDelivery(context.Background(), "went-on")
	if len(recs) != 1 || recs[0].Decision != "allow" || !strings.Contains(string(recs[0].Detail), "no longer waits (in_progress)") {
		t.Errorf("records %+v", recs)
	}
}
