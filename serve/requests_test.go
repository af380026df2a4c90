package serve

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/gitpoli/gitpoli/workbench/fixture"
)

// TestETagsSaveRequests delivers 100 pull_request deliveries, ten on
// each of ten pull requests whose facts do not change, to a server whose
// GitHub answers with ETags, with the response cache and without. With
// it, each pull request's facts are fetched in full once and every later
// request is a 304, which costs no rate limit. The figures are in
// bench/README.md.
func TestETagsSaveRequests(t *testing.T) {
	for _, tc := range []struct {
		name  string
		cache int
	}{{"with the cache", 0}, {"without", -1}} {
		t.Run(tc.name, func(t *testing.T) {
			src := loadFixture(t, "pull_request.opened.dco-missing.json")
			gh := newFakeGitHub(t)
			gh.etags = true
			var payload map[string]any
			if err := json.Unmarshal(withInstallation(t, src.Payload), &payload); err != nil {
				t.Fatal(err)
			}
			payload["action"] = "synchronize"
			for pr := 1; pr <= 10; pr++ {
				responses := map[string]fixture.Response{}
				for k, v := range src.Responses {
					responses[strings.Replace(k, "/pulls/2/", fmt.Sprintf("/pulls/%d/", pr), 1)] = v
				}
				gh.add(responses)
			}
			h := startConfig(t, gh, "", func(c *Config) { c.APICacheBytes = tc.cache })
			for i := range 100 {
				pr := i%10 + 1
				payload["number"] = pr
				payload["pull_request"].(map[string]any)["number"] = pr
				body, _ := json.Marshal(payload)
				id := fmt.Sprintf("etag-%d", i)
				h.deliver("pull_request", id, body, "")
				h.waitState(id, "done")
			}
			gh.mu.Lock()
			full, notModified := gh.full, gh.notModified
			gh.mu.Unlock()
			t.Logf("%s: %d requests in full, %d answered 304", tc.name, full, notModified)
			// Each pull request's reviews and commits, and the one config
			// file of the base branch they share, are fetched in full once.
			perDelivery, distinct := len(src.Responses), 0
			for k := range src.Responses {
				if strings.Contains(k, "/pulls/") {
					distinct += 10
				} else {
					distinct++
				}
			}
			switch {
			case tc.cache == 0 && (full != distinct || notModified != 100*perDelivery-distinct):
				t.Errorf("with the cache: %d in full, %d not modified; want %d and %d", full, notModified, distinct, 100*perDelivery-distinct)
			case tc.cache < 0 && (full != 100*perDelivery || notModified != 0):
				t.Errorf("without the cache: %d in full, %d not modified; want %d and 0", full, notModified, 100*perDelivery)
			}
			_, raw := h.get("/metrics", "")
			metrics := string(raw)
			want := fmt.Sprintf("gitpoli_github_fact_requests_total{result=\"not_modified\"} %d", notModified)
			if !strings.Contains(metrics, want) {
				t.Errorf("metrics lack %q", want)
			}
		})
	}
}
