//go:build integration

package serve

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gitpoli/gitpoli/serve/audit"
)

// faultN is how many deliveries the fault tests send (GITPOLI_FAULT_N).
func faultN() int { return envCount("GITPOLI_FAULT_N", 10000) }

// envCount is the positive number in the environment variable name, or
// def.
func envCount(name string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil && n > 0 {
		return n
	}
	return def
}

// burst sends n signed deployment deliveries, each naming its own
// workflow run, with c concurrent senders, and returns how many were
// acknowledged. idPrefix makes the delivery ids.
func burst(t *testing.T, h *harness, payload []byte, n, c int, idPrefix string) int {
	t.Helper()
	var m map[string]any
	json.Unmarshal(payload, &m)
	var acked atomic.Int64
	var wg sync.WaitGroup
	jobs := make(chan int)
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: c}}
	for range c {
		wg.Go(func() {
			for i := range jobs {
				mm := map[string]any{}
				for k, v := range m {
					mm[k] = v
				}
				mm["deployment_callback_url"] = fmt.Sprintf("https://api.github.com/repos/product-os/deploynaut/actions/runs/%d/deployment_protection_rule", 1000000+i)
				body, _ := json.Marshal(mm)
				req, _ := http.NewRequest(http.MethodPost, h.url+"/webhook", bytes.NewReader(body))
				req.Header.Set("X-GitHub-Event", "deployment_protection_rule")
				req.Header.Set("X-GitHub-Delivery", fmt.Sprintf("%s-%d", idPrefix, i))
				req.Header.Set("X-Hub-Signature-256", sign(body))
				resp, err := client.Do(req)
				if err != nil {
					continue
				}
				resp.Body.Close()
				if resp.StatusCode == http.StatusAccepted {
					acked.Add(1)
				}
			}
		})
	}
	for i := range n {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	return int(acked.Load())
}

func waitDrained(t *testing.T, h *harness, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		n, _ := h.srv.Store().QueueDepth(context.Background())
		w, _, _ := h.srv.Store().Waiting(context.Background())
		if n == 0 && w == 0 {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	n, _ := h.srv.Store().QueueDepth(context.Background())
	w, _, _ := h.srv.Store().Waiting(context.Background())
	t.Fatalf("%d deliveries still queued and %d answers waiting after %s", n, w, timeout)
}

func callbacksByRun(gh *fakeGitHub) map[int]int {
	gh.mu.Lock()
	defer gh.mu.Unlock()
	out := map[int]int{}
	for _, p := range gh.posts {
		var run int
		if _, err := fmt.Sscanf(p.path, "/repos/product-os/deploynaut/actions/runs/%d/deployment_protection_rule", &run); err == nil {
			out[run]++
		}
	}
	return out
}

// TestIntegrationBurstAndRedelivery: n deliveries at once give exactly n
// audit rows and n callbacks; redelivering all of them changes nothing.
func TestIntegrationBurstAndRedelivery(t *testing.T) {
	n := faultN()
	gh, f := fakeGitHubFor(t, "deployment_protection_rule.staging-allowed.json")
	h := start(t, gh, "")
	payload := withInstallation(t, f.Payload)
	start := time.Now()
	if acked := burst(t, h, payload, n, 32, "burst"); acked != n {
		t.Fatalf("%d of %d acknowledged", acked, n)
	}
	ackTime := time.Since(start)
	waitDrained(t, h, 10*time.Minute)
	if acked := burst(t, h, payload, n, 32, "burst"); acked != n {
		t.Fatalf("redelivery: %d of %d acknowledged", acked, n)
	}
	waitDrained(t, h, time.Minute)
	time.Sleep(200 * time.Millisecond)
	sum, err := h.srv.Store().Summarize(context.Background())
	if err != nil || sum.Total != n {
		t.Errorf("%d audit rows, want %d (%v)", sum.Total, n, err)
	}
	calls := callbacksByRun(gh)
	twice := 0
	for _, c := range calls {
		if c > 1 {
			twice++
		}
	}
	if len(calls) != n || twice != 0 {
		t.Errorf("%d runs answered (%d more than once), want %d once each", len(calls), twice, n)
	}
	t.Logf("%d deliveries acknowledged in %s, all processed in %s", n, ackTime.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
}

// TestIntegrationDatabaseLocked: another process holds the database's
// write lock. A delivery is answered 503 within GitHub's time, in about
// 2 s (GitHub records it as failed, for the reconciler); /health says so
// within a second; once the lock is gone, the delivery redelivered is
// taken and decided once.
func TestIntegrationDatabaseLocked(t *testing.T) {
	gh, f := fakeGitHubFor(t, "deployment_protection_rule.staging-allowed.json")
	h := start(t, gh, "")
	other, err := sql.Open("sqlite", "file:"+h.db+"?_pragma=busy_timeout(10000)&_txlock=immediate")
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	tx, err := other.Begin()
	if err != nil {
		t.Fatal(err)
	}
	payload := withInstallation(t, f.Payload)
	start := time.Now()
	code, _ := h.deliver("deployment_protection_rule", "locked-1", payload, "")
	took := time.Since(start)
	if code != http.StatusServiceUnavailable || took > 2500*time.Millisecond {
		t.Errorf("while locked: %d after %s; want 503 within 2 s", code, took.Round(time.Millisecond))
	}
	t.Logf("locked: delivery answered %d in %s", code, took.Round(time.Millisecond))
	start = time.Now()
	code, body := h.get("/health", "")
	took = time.Since(start)
	if code != http.StatusServiceUnavailable || took > 1200*time.Millisecond || !strings.Contains(string(body), `"db_writable":false`) {
		t.Errorf("/health while locked: %d after %s: %s", code, took.Round(time.Millisecond), body)
	}
	t.Logf("locked: /health answered %d in %s", code, took.Round(time.Millisecond))
	tx.Rollback()
	time.Sleep(100 * time.Millisecond)
	if code, _ := h.get("/health", ""); code != http.StatusOK {
		t.Errorf("/health after the lock: %d", code)
	}
	if code, _ := h.deliver("deployment_protection_rule", "locked-1", payload, ""); code != http.StatusAccepted {
		t.Errorf("redelivered after the lock: %d", code)
	}
	waitDrained(t, h, time.Minute)
	if calls := callbacksByRun(gh); len(calls) != 1 {
		t.Errorf("answered %v; want once", calls)
	}
}

// TestIntegrationGitHubFailsForAWhile: the API answers 502 to the first
// 40 callbacks of a burst; every deployment is still answered, exactly
// once: those GitHub did not take wait and are tried again.
func TestIntegrationGitHubFailsForAWhile(t *testing.T) {
	gh, f := fakeGitHubFor(t, "deployment_protection_rule.staging-allowed.json")
	gh.fail["/deployment_protection_rule"] = 40
	h := start(t, gh, "")
	n := 100
	if acked := burst(t, h, withInstallation(t, f.Payload), n, 8, "flaky"); acked != n {
		t.Fatalf("%d of %d acknowledged", acked, n)
	}
	waitDrained(t, h, 2*time.Minute)
	calls := callbacksByRun(gh)
	page, _ := h.srv.Store().Query(context.Background(), audit.Filter{Limit: 500, Decision: "error"})
	twice := 0
	for _, c := range calls {
		if c > 1 {
			twice++
		}
	}
	if len(calls) != n || twice > 0 || len(page.Records) > 0 {
		t.Errorf("%d of %d deployments answered, %d more than once, %d recorded as errors", len(calls), n, twice, len(page.Records))
	}
}

// TestIntegrationReloadUnderLoad: policies reloaded again and again while
// deliveries and API decisions arrive: no request fails.
func TestIntegrationReloadUnderLoad(t *testing.T) {
	gh, f := fakeGitHubFor(t, "deployment_protection_rule.staging-allowed.json")
	h := start(t, gh, "")
	stop := make(chan struct{})
	var reloads atomic.Int64
	go func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			if err := h.srv.Reload(context.Background()); err != nil {
				t.Error(err)
			}
			reloads.Add(1)
		}
	}()
	acked := burst(t, h, withInstallation(t, f.Payload), 300, 8, "reload")
	close(stop)
	if acked != 300 {
		t.Errorf("%d of 300 acknowledged during reloads", acked)
	}
	waitDrained(t, h, time.Minute)
	if sum, _ := h.srv.Store().Summarize(context.Background()); sum.Total != 300 {
		t.Errorf("%d decisions, want 300", sum.Total)
	}
	t.Logf("%d reloads during the burst", reloads.Load())
}
