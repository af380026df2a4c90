package audit

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
)

func mustOpen(tb testing.TB, path string) *Store {
	tb.Helper()
	s, err := Open(context.Background(), path)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { s.Close() })
	return s
}

func TestQueue(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "gitpoli.db")
	s := mustOpen(t, path)
	for _, id := range []string{"a", "b", "a"} {
		if _, err := s.Enqueue(ctx, Delivery{ID: id, Event: "ping", Payload: []byte(`{}`)}); err != nil {
			t.Fatal(err)
		}
	}
	if n, _ := s.QueueDepth(ctx); n != 2 {
		t.Fatalf("queue depth %d, want 2 (a redelivery is not queued again)", n)
	}
	d, err := s.Claim(ctx)
	if err != nil || d == nil || d.ID != "a" || d.Attempts != 1 {
		t.Fatalf("claim: %+v, %v", d, err)
	}
	// A crash now: reopening requeues the claimed delivery.
	s.Close()
	s = mustOpen(t, path)
	d, err = s.Claim(ctx)
	if err != nil || d == nil || d.ID != "a" || d.Attempts != 2 {
		t.Fatalf("claim after restart: %+v, %v", d, err)
	}
	if err := s.Finish(ctx, d.Seq, ""); err != nil {
		t.Fatal(err)
	}
	d, _ = s.Claim(ctx)
	if d == nil || d.ID != "b" {
		t.Fatalf("second claim: %+v", d)
	}
	if err := s.Finish(ctx, d.Seq, "boom"); err != nil {
		t.Fatal(err)
	}
	if d, _ := s.Claim(ctx); d != nil {
		t.Errorf("claim on an empty queue: %+v", d)
	}
	if st, _ := s.DeliveryState(ctx, "b"); st != "error" {
		t.Errorf("state of b: %q", st)
	}
}

func TestRecordsQuerySummary(t *testing.T) {
	ctx := context.Background()
	s := mustOpen(t, filepath.Join(t.TempDir(), "gitpoli.db"))
	for i := range 7 {
		decision := "allow"
		if i%2 == 1 {
			decision = "deny"
		}
		r := &Record{Policy: "deploy", Decision: decision, Source: "webhook", Repo: "o/r", Environment: "prod",
			Input: json.RawMessage(fmt.Sprintf(`{"i": %d}`, i))}
		if i == 6 {
			r.Policy, r.Environment = "pullrequest", ""
		}
		if err := s.Insert(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	page, err := s.Query(ctx, Filter{Limit: 3})
	if err != nil || len(page.Records) != 3 || page.NextCursor == "" {
		t.Fatalf("page 1: %d records, cursor %q, %v", len(page.Records), page.NextCursor, err)
	}
	seen := map[string]bool{}
	for c := page.NextCursor; ; {
		for _, r := range page.Records {
			if seen[r.ID] {
				t.Fatalf("record %s on two pages", r.ID)
			}
			seen[r.ID] = true
		}
		if c == "" {
			break
		}
		page, err = s.Query(ctx, Filter{Limit: 3, Cursor: c})
		if err != nil {
			t.Fatal(err)
		}
		c = page.NextCursor
	}
	if len(seen) != 7 {
		t.Errorf("paged through %d records, want 7", len(seen))
	}
	page, _ = s.Query(ctx, Filter{Limit: 50, Policy: "deploy", Decision: "deny"})
	if len(page.Records) != 3 {
		t.Errorf("deploy denies: %d", len(page.Records))
	}
	if _, err := s.Query(ctx, Filter{Limit: 5, Cursor: "nonsense"}); err != ErrBadCursor {
		t.Errorf("bad cursor: %v", err)
	}
	got, err := s.Get(ctx, page.Records[0].ID)
	if err != nil || got.InputHash == "" || string(got.Input) == "" {
		t.Errorf("get: %+v, %v", got, err)
	}
	if _, err := s.Get(ctx, "missing"); err != ErrNotFound {
		t.Errorf("get missing: %v", err)
	}
	sum, err := s.Summarize(ctx)
	if err != nil || sum.Total != 7 || sum.ByDecision["allow"] != 4 || sum.ByPolicy["pullrequest"] != 1 || sum.ByEnvironment["prod"] != 6 {
		t.Errorf("summary %+v, %v", sum, err)
	}
}

// TestDeployGateSerializes decides 20 concurrent deployments against a
// limit of 3: exactly 3 are approved.
func TestDeployGateSerializes(t *testing.T) {
	ctx := context.Background()
	s := mustOpen(t, filepath.Join(t.TempDir(), "gitpoli.db"))
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for range 20 {
		wg.Go(func() {
			g, err := s.BeginDeploy(ctx)
			if err != nil {
				errs <- err
				return
			}
			n, err := g.ApprovedToday(ctx, "o/r", "prod")
			if err != nil {
				g.Rollback()
				errs <- err
				return
			}
			decision := "deny"
			if n < 3 {
				decision = "allow"
			}
			if err := g.Insert(ctx, &Record{Policy: "deploy", Decision: decision, Source: "webhook", Repo: "o/r", Environment: "prod"}); err != nil {
				g.Rollback()
				errs <- err
				return
			}
			errs <- g.Commit()
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	page, _ := s.Query(ctx, Filter{Limit: 100, Decision: "allow"})
	if len(page.Records) != 3 {
		t.Errorf("%d deployments approved, want 3", len(page.Records))
	}
}

func TestInsertBatchedConcurrent(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "gitpoli.db")
	s, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := range 200 {
		wg.Go(func() {
			if err := s.InsertBatched(ctx, &Record{Policy: "deploy", Decision: "allow", Source: "api", Input: json.RawMessage(fmt.Sprintf(`{"i":%d}`, i))}); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	s.Close()
	s = mustOpen(t, path)
	sum, err := s.Summarize(ctx)
	if err != nil || sum.Total != 200 {
		t.Errorf("after reopening: %d records, %v", sum.Total, err)
	}
}

// TestBatchFailureStaysWithItsWrite: a write that fails in a group commit
// fails alone; the others in its batch are stored.
func TestBatchFailureStaysWithItsWrite(t *testing.T) {
	ctx := context.Background()
	s := mustOpen(t, filepath.Join(t.TempDir(), "gitpoli.db"))
	if err := s.Insert(ctx, &Record{ID: "taken", Policy: "deploy", Decision: "allow", Source: "api"}); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make([]error, 50)
	for i := range 50 {
		wg.Go(func() {
			r := &Record{Policy: "deploy", Decision: "deny", Source: "api"}
			if i == 25 {
				r.ID = "taken"
			}
			errs[i] = s.InsertBatched(ctx, r)
		})
	}
	wg.Wait()
	for i, err := range errs {
		if (err != nil) != (i == 25) {
			t.Errorf("write %d: %v", i, err)
		}
	}
	if sum, _ := s.Summarize(ctx); sum.Total != 50 {
		t.Errorf("%d records, want 50", sum.Total)
	}
}
