package serve

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gitpoli/gitpoli/serve/audit"
	"github.com/gitpoli/gitpoli/workbench/fixture"
)

// hookDelivery is one entry of GitHub's list of an App's webhook
// deliveries (GET /app/hook/deliveries), in the shape of GitHub's
// example (apps-list-webhook-deliveries in the REST description).
func hookDelivery(id int64, guid, event, action, status string, code int, at time.Time, redelivery bool) map[string]any {
	return map[string]any{"id": id, "guid": guid, "delivered_at": at.UTC().Format(time.RFC3339), "redelivery": redelivery,
		"duration": 0.27, "status": status, "status_code": code, "event": event, "action": action,
		"installation_id": 57923423, "repository_id": 456}
}

// TestReconcileTakesWhatGitHubCouldNotHandOver: GitHub lists a
// deployment it could not deliver (serve answered 503), one serve has,
// one of an event no policy decides, a redelivery, and one a few seconds
// old. The reconciler fetches and queues the missing one alone, which is
// then decided and answered; a second run takes nothing; and while
// another replica holds the reconciler's lease, a run does nothing.
func TestReconcileTakesWhatGitHubCouldNotHandOver(t *testing.T) {
	dep := loadFixture(t, "deployment_protection_rule.staging-allowed.json")
	pr := loadFixture(t, "pull_request.opened.dco-missing.json")
	gh := newFakeGitHub(t)
	gh.add(dep.Responses)
	gh.add(pr.Responses)
	h := start(t, gh, "")
	h.deliver("pull_request", "have-it", withInstallation(t, pr.Payload), "")
	gh.waitPost(t)

	now := time.Now()
	list := []map[string]any{
		hookDelivery(3, "fresh", "deployment_protection_rule", "requested", "OK", 202, now.Add(-10*time.Second), false),
		hookDelivery(2, "missed", "deployment_protection_rule", "requested", "Service Unavailable", 503, now.Add(-4*time.Minute), true),
		hookDelivery(1, "missed", "deployment_protection_rule", "requested", "Service Unavailable", 503, now.Add(-5*time.Minute), false),
		hookDelivery(4, "have-it", "pull_request", "opened", "Accepted", 202, now.Add(-6*time.Minute), false),
		hookDelivery(5, "other", "issues", "opened", "OK", 200, now.Add(-7*time.Minute), false),
		hookDelivery(6, "too-old", "deployment_protection_rule", "requested", "Service Unavailable", 503, now.Add(-80*time.Hour), false),
	}
	body, _ := json.Marshal(list)
	var payload json.RawMessage = withInstallation(t, dep.Payload)
	full, _ := json.Marshal(map[string]any{"id": 1, "guid": "missed", "event": "deployment_protection_rule", "action": "requested",
		"status": "Service Unavailable", "status_code": 503, "delivered_at": now.Add(-5 * time.Minute).UTC().Format(time.RFC3339),
		"request":  map[string]any{"headers": map[string]string{"X-GitHub-Event": "deployment_protection_rule", "X-GitHub-Delivery": "missed"}, "payload": payload},
		"response": map[string]any{"headers": map[string]string{}, "payload": "could not store the delivery"}})
	gh.add(map[string]fixture.Response{
		"GET /app/hook/deliveries?per_page=100": {Status: 200, Body: body},
		"GET /app/hook/deliveries/1":            {Status: 200, Body: full},
		"GET /app/hook/deliveries/2":            {Status: 200, Body: full},
	})

	rep, err := h.srv.Reconcile(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(rep.Taken, []string{"missed"}) || rep.Known != 1 || rep.Ignored != 1 || rep.Left != 1 || rep.Listed != 4 {
		t.Errorf("report %+v", rep)
	}
	p := gh.waitPost(t)
	if !strings.HasSuffix(p.path, "/deployment_protection_rule") || p.body["state"] != "approved" {
		t.Errorf("the reconciled deployment was answered %s %v", p.path, p.body)
	}
	h.waitState("missed", "done")
	gh.mu.Lock()
	fetched := 0
	for _, r := range gh.requests {
		if strings.HasPrefix(r, "GET /app/hook/deliveries/") {
			fetched++
		}
	}
	gh.mu.Unlock()
	if fetched != 1 {
		t.Errorf("fetched %d deliveries, want the one missing", fetched)
	}

	if rep, err := h.srv.Reconcile(context.Background()); err != nil || len(rep.Taken) != 0 || rep.Known != 2 {
		t.Errorf("second run: %+v, %v", rep, err)
	}

	// Another replica holds the reconciler.
	other, err := audit.Open(context.Background(), h.db, audit.Options{Owner: "replica-2"})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	release, err := other.TryLease(context.Background(), "reconciler", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.srv.Reconcile(context.Background()); !errors.Is(err, audit.ErrLeased) {
		t.Errorf("while another replica reconciles: %v", err)
	}
	req, _ := http.NewRequest(http.MethodPost, h.url+"/reconcile", nil)
	req.Header.Set("Authorization", "Bearer audit-token")
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusConflict {
		t.Errorf("POST /reconcile while another replica reconciles: %v %v", resp, err)
	}
	release()
	// gitpoli reconcile asks the server over HTTP, with the audit token.
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var got ReconcileReport
	json.NewDecoder(resp.Body).Decode(&got)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || got.Known != 2 {
		t.Errorf("POST /reconcile: %d %+v", resp.StatusCode, got)
	}
	anon, _ := http.NewRequest(http.MethodPost, h.url+"/reconcile", nil)
	if resp, err := http.DefaultClient.Do(anon); err != nil || resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("POST /reconcile without the token: %v %v", resp, err)
	}
	_, metrics := h.get("/metrics", "")
	if !strings.Contains(string(metrics), fmt.Sprintf("gitpoli_reconciled_deliveries_total %d", 1)) {
		t.Errorf("metrics: %s", grepLines(string(metrics), "reconciled"))
	}
}
