package serve

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
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

// BenchmarkWebhookAck is the acknowledgement path of a delivery: read the
// body, check the signature, normalize, store durably, answer 202.
func BenchmarkWebhookAck(b *testing.B) {
	// No workers: only the acknowledgement is measured.
	srv, err := New(context.Background(), Config{DB: filepath.Join(b.TempDir(), "gitpoli.db"), Sources: repoSources(), WebhookSecret: []byte(secret)})
	if err != nil {
		b.Fatal(err)
	}
	defer srv.Close()
	body, err := os.ReadFile("../internal/testrepo/testdata/fixtures/pull_request.opened.octokit.json")
	if err != nil {
		b.Fatal(err)
	}
	var f struct {
		Payload json.RawMessage `json:"payload"`
	}
	json.Unmarshal(body, &f)
	sig := sign(f.Payload)
	handler := srv.Handler()
	i := 0
	b.ReportAllocs()
	for b.Loop() {
		i++
		req := httptest.NewRequest(http.MethodPost, "/webhook", bytes.NewReader(f.Payload))
		req.Header.Set("X-GitHub-Event", "pull_request")
		req.Header.Set("X-GitHub-Delivery", fmt.Sprintf("bench-%d", i))
		req.Header.Set("X-Hub-Signature-256", sig)
		rec := httptest.NewRecorder()
		handler.ServeHTTP(rec, req)
		if rec.Code != http.StatusAccepted {
			b.Fatalf("status %d: %s", rec.Code, rec.Body)
		}
	}
}
