//go:build integration

package serve

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gitpoli/gitpoli/internal/pgtest"
	"github.com/gitpoli/gitpoli/workbench/fixture"
)

// replicaN is how many deliveries the replica test sends
// (GITPOLI_REPLICA_N).
func replicaN() int { return envCount("GITPOLI_REPLICA_N", 5000) }

// deployment is the staging fixture's delivery i: its own workflow run and
// delivery id.
func deployment(t *testing.T, payload []byte, prefix string, i int) (id string, body []byte) {
	var m map[string]any
	if err := json.Unmarshal(payload, &m); err != nil {
		t.Fatal(err)
	}
	m["deployment_callback_url"] = fmt.Sprintf("https://api.github.com/repos/product-os/deploynaut/actions/runs/%d/deployment_protection_rule", 1000000+i)
	body, _ = json.Marshal(m)
	return fmt.Sprintf("%s-%d", prefix, i), body
}

func postDelivery(client *http.Client, addr, id string, body []byte) (int, error) {
	req, _ := http.NewRequest(http.MethodPost, "http://"+addr+"/webhook", bytes.NewReader(body))
	req.Header.Set("X-GitHub-Event", "deployment_protection_rule")
	req.Header.Set("X-GitHub-Delivery", id)
	req.Header.Set("X-Hub-Signature-256", sign(body))
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

// TestIntegrationReplicas runs two gitpoli serve processes on one
// PostgreSQL database, spreads a burst of signed deliveries over both,
// kills one with SIGKILL mid-burst (its share then goes to the other, as
// a load balancer would send it) and restarts it. Every acknowledged
// delivery is decided exactly once and answered; only a delivery whose
// answer had reached GitHub when its replica died, but was not yet
// recorded, can be answered a second time — with the same decision.
func TestIntegrationReplicas(t *testing.T) {
	dsn := pgtest.DSN(t)
	bin := buildBinary(t)
	gh, f := fakeGitHubFor(t, "deployment_protection_rule.staging-allowed.json")
	payload := withInstallation(t, f.Payload)
	addrs := []string{freePort(t), freePort(t)}
	lease := []string{"--lease", "2s"}
	replicas := []*process{
		startProcess(t, bin, addrs[0], dsn, gh.srv.URL, lease...),
		startProcess(t, bin, addrs[1], dsn, gh.srv.URL, lease...),
	}

	n := replicaN()
	var acked sync.Map // run -> true
	var ackedN atomic.Int64
	var killOnce sync.Once
	killed := make(chan struct{})
	kill := func() {
		killOnce.Do(func() {
			replicas[0].cmd.Process.Signal(syscall.SIGKILL)
			replicas[0].cmd.Wait()
			close(killed)
		})
	}
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 16}}
	jobs := make(chan int)
	var wg sync.WaitGroup
	start := time.Now()
	for range 16 {
		wg.Go(func() {
			for i := range jobs {
				id, body := deployment(t, payload, "replica", i)
				status, err := postDelivery(client, addrs[i%2], id, body)
				if err != nil || status/100 != 2 {
					// The replica is down: the load balancer sends the
					// delivery to the other.
					status, err = postDelivery(client, addrs[1], id, body)
				}
				if err == nil && status/100 == 2 {
					acked.Store(1000000+i, true)
					if ackedN.Add(1) == int64(n/3) {
						go kill()
					}
				}
			}
		})
	}
	for i := range n {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	kill()
	<-killed
	ackTime := time.Since(start)
	replicas[0] = startProcess(t, bin, addrs[0], dsn, gh.srv.URL, lease...)

	var missing int
	deadline := time.Now().Add(5 * time.Minute)
	for {
		got := callbacksByRun(gh)
		missing = 0
		acked.Range(func(k, _ any) bool {
			if got[k.(int)] == 0 {
				missing++
			}
			return true
		})
		if missing == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	elapsed := time.Since(start)

	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var decided, decidedTwice, unfinished, reclaimed int
	db.QueryRow(`SELECT COUNT(DISTINCT delivery_id) FROM decisions`).Scan(&decided)
	db.QueryRow(`SELECT COUNT(*) FROM (SELECT delivery_id FROM decisions GROUP BY delivery_id HAVING COUNT(*) > 1) d`).Scan(&decidedTwice)
	db.QueryRow(`SELECT COUNT(*) FROM deliveries WHERE state NOT IN ('done', 'error')`).Scan(&unfinished)
	db.QueryRow(`SELECT COUNT(*) FROM deliveries WHERE attempts > 1`).Scan(&reclaimed)

	calls := callbacksByRun(gh)
	states := map[int]map[any]bool{}
	gh.mu.Lock()
	for _, p := range gh.posts {
		var run int
		if _, err := fmt.Sscanf(p.path, "/repos/product-os/deploynaut/actions/runs/%d/deployment_protection_rule", &run); err == nil {
			if states[run] == nil {
				states[run] = map[any]bool{}
			}
			states[run][fmt.Sprint(p.body["state"], p.body["comment"])] = true
		}
	}
	gh.mu.Unlock()
	twice, differently := 0, 0
	for run, c := range calls {
		if c > 1 {
			twice++
		}
		if len(states[run]) > 1 {
			differently++
		}
	}
	t.Logf("%d deliveries over 2 replicas, one killed at %d acknowledged: %d acknowledged in %s; %d decided, %d answered (%d twice, at the kill) in %s; %d taken over after the killed replica's lease",
		n, n/3, ackedN.Load(), ackTime.Round(time.Millisecond), decided, len(calls), twice, elapsed.Round(time.Millisecond), reclaimed)
	if missing > 0 {
		t.Errorf("%d acknowledged deliveries never answered", missing)
	}
	if int(ackedN.Load()) != n {
		t.Errorf("%d of %d deliveries acknowledged: with one replica up every delivery should be", ackedN.Load(), n)
	}
	if decidedTwice > 0 {
		t.Errorf("%d deliveries decided more than once", decidedTwice)
	}
	if unfinished > 0 {
		t.Errorf("%d deliveries left unfinished", unfinished)
	}
	if differently > 0 {
		t.Errorf("%d runs answered with two different decisions", differently)
	}
	// The killed replica had at most its two workers' deliveries between
	// an answer and its record.
	if twice > 2 {
		t.Errorf("%d runs answered twice; at most the killed replica's 2 in-flight deliveries may be", twice)
	}
}

// TestIntegrationReplicasDailyLimit: 20 deployments to an environment
// with max_deployments_per_day: 3 arrive at once, spread over two
// replicas: exactly 3 are approved.
func TestIntegrationReplicasDailyLimit(t *testing.T) {
	dsn := pgtest.DSN(t)
	bin := buildBinary(t)
	gh, f := fakeGitHubFor(t, "deployment_protection_rule.staging-allowed.json")
	cfg := "policy:\n  version: \"1\"\n  environments:\n    staging:\n      enabled: true\n      rules:\n        approvals_required: 0\n        allowed_branches: [\"develop\"]\n        tests_passed: false\n        signed_off: false\n        max_deployments_per_day: 3\n"
	gh.add(map[string]fixture.Response{"GET /repos/product-os/deploynaut/contents/.repol/deploy.yaml?ref=main": {Status: 200,
		Body: json.RawMessage(fmt.Sprintf(`{"type":"file","encoding":"base64","name":"deploy.yaml","path":".repol/deploy.yaml","content":%q}`, base64.StdEncoding.EncodeToString([]byte(cfg))))}})
	payload := withInstallation(t, f.Payload)
	addrs := []string{freePort(t), freePort(t)}
	for _, addr := range addrs {
		startProcess(t, bin, addr, dsn, gh.srv.URL, "--workers", "4")
	}
	client := &http.Client{Timeout: 10 * time.Second}
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() {
			id, body := deployment(t, payload, "limit", i)
			if status, err := postDelivery(client, addrs[i%2], id, body); err != nil || status != http.StatusAccepted {
				t.Errorf("delivery %d: %d, %v", i, status, err)
			}
		})
	}
	wg.Wait()
	deadline := time.Now().Add(time.Minute)
	for len(callbacksByRun(gh)) < 20 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	approved := 0
	gh.mu.Lock()
	for _, p := range gh.posts {
		if p.body["state"] == "approved" {
			approved++
		}
	}
	gh.mu.Unlock()
	if got := len(callbacksByRun(gh)); got != 20 || approved != 3 {
		t.Errorf("%d deployments answered, %d approved; want 20 and 3", got, approved)
	}
	var recorded int
	db, _ := sql.Open("pgx", dsn)
	defer db.Close()
	db.QueryRowContext(context.Background(), `SELECT COUNT(*) FROM decisions WHERE decision = 'allow' AND environment = 'staging'`).Scan(&recorded)
	if recorded != 3 {
		t.Errorf("%d approvals in the audit log, want 3", recorded)
	}
}
