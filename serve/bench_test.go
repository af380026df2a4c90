package serve

import (
	"bytes"
	"io"
	"net/http"
	"testing"
)

// BenchmarkEvaluateWithAudit drives POST /evaluate/deploy on a real
// server on loopback: decision plus durable audit insert per request.
func BenchmarkEvaluateWithAudit(b *testing.B) {


	gh := newFakeGitHubB(b)
	h := startB(b, gh)
	input := []byte(`{"environment":"production","ref":"refs/heads/main","repo_environments":["production"],"workflow_meta":{"approvers":["a","b"],"checks":{"tests":true},"signed_off":true,"deployments_today":0}}`)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	b.SetParallelism(8)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req, _ := http.NewRequest(http.MethodPost, h.url+"/evaluate/deploy", bytes.NewReader(input))
			req.Header.Set("Authorization", "Bearer audit-token")
			resp, err := client.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				b.Errorf("status %d", resp.StatusCode)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "decisions/s")
}
