package audit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gitpoli/gitpoli/internal/pgtest"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// backends runs a test against each backend, on a fresh database.
func backends(t *testing.T, test func(t *testing.T, dsn string)) {
	t.Run("sqlite", func(t *testing.T) { test(t, filepath.Join(t.TempDir(), "gitpoli.db")) })
	t.Run("postgres", func(t *testing.T) { test(t, pgtest.DSN(t)) })
}

func mustOpen(tb testing.TB, dsn string, opts ...Options) *Store {
	tb.Helper()
	s, err := Open(context.Background(), dsn, opts...)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { s.Close() })
	return s
}

func TestQueue(t *testing.T) { backends(t, testQueue) }

func testQueue(t *testing.T, path string) {
	ctx := context.Background()
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
	if !IsPostgres(path) {
		// A crash now: reopening the SQLite file requeues the claimed
		// delivery at once (one process owns the file).
		s.Close()
		s = mustOpen(t, path)
		d, err = s.Claim(ctx)
		if err != nil || d == nil || d.ID != "a" || d.Attempts != 2 {
			t.Fatalf("claim after restart: %+v, %v", d, err)
		}
	}
	if err := s.Finish(ctx, d, ""); err != nil {
		t.Fatal(err)
	}
	d, _ = s.Claim(ctx)
	if d == nil || d.ID != "b" {
		t.Fatalf("second claim: %+v", d)
	}
	if err := s.Finish(ctx, d, "boom"); err != nil {
		t.Fatal(err)
	}
	if d, _ := s.Claim(ctx); d != nil {
		t.Errorf("claim on an empty queue: %+v", d)
	}
	if st, _ := s.DeliveryState(ctx, "b"); st != "error" {
		t.Errorf("state of b: %q", st)
	}
}

func TestRecordsQuerySummary(t *testing.T) { backends(t, testRecordsQuerySummary) }

func testRecordsQuerySummary(t *testing.T, dsn string) {
	ctx := context.Background()
	s := mustOpen(t, dsn)
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
// Two stores stand for two replicas on one database.
func TestDeployGateSerializes(t *testing.T) { backends(t, testDeployGateSerializes) }

func testDeployGateSerializes(t *testing.T, dsn string) {
	ctx := context.Background()
	replicas := []*Store{mustOpen(t, dsn), mustOpen(t, dsn)}
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for i := range 20 {
		s := replicas[i%2]
		wg.Go(func() {
			g, err := s.BeginDeploy(ctx, nil)
			if err != nil {
				errs <- err
				return
			}
			n, err := g.ApprovedToday(ctx, "o/r", "prod", []string{"deploy"}, "")
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
	page, _ := replicas[0].Query(ctx, Filter{Limit: 100, Decision: "allow"})
	if len(page.Records) != 3 {
		t.Errorf("%d deployments approved, want 3", len(page.Records))
	}
}

func TestInsertBatchedConcurrent(t *testing.T) { backends(t, testInsertBatchedConcurrent) }

func testInsertBatchedConcurrent(t *testing.T, path string) {
	ctx := context.Background()
	s, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	// A write announced and never made holds no commit up for long.
	never := s.Coming()
	defer never()
	start := time.Now()
	if err := s.InsertBatched(ctx, &Record{Policy: "deploy", Decision: "allow", Source: "api"}); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("a commit waited %s for a write that never came", took)
	}
	var wg sync.WaitGroup
	for i := range 200 {
		wg.Go(func() {
			// Half announce their write first, as a request deciding
			// does.
			if i%2 == 0 {
				arrived := s.Coming()
				defer arrived()
				time.Sleep(time.Duration(i%7) * 50 * time.Microsecond)
				arrived()
			}
			if err := s.InsertBatched(ctx, &Record{Policy: "deploy", Decision: "allow", Source: "api", Input: json.RawMessage(fmt.Sprintf(`{"i":%d}`, i))}); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	s.Close()
	s = mustOpen(t, path)
	sum, err := s.Summarize(ctx)
	if err != nil || sum.Total != 201 {
		t.Errorf("after reopening: %d records, %v", sum.Total, err)
	}
}

// TestBatchFailureStaysWithItsWrite: a write that fails in a group commit
// fails alone; the others in its batch are stored.
func TestBatchFailureStaysWithItsWrite(t *testing.T) { backends(t, testBatchFailureStaysWithItsWrite) }

func testBatchFailureStaysWithItsWrite(t *testing.T, dsn string) {
	ctx := context.Background()
	s := mustOpen(t, dsn)
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

// TestLeases: a delivery whose worker stops renewing goes to another
// worker; the first cannot finish it any more; a renewed lease holds.
func TestLeases(t *testing.T) { backends(t, testLeases) }

func testLeases(t *testing.T, dsn string) {
	ctx := context.Background()
	const lease = 400 * time.Millisecond
	a := mustOpen(t, dsn, Options{Lease: lease, Owner: "a"})
	b := mustOpen(t, dsn, Options{Lease: lease, Owner: "b"})
	for _, id := range []string{"d1", "d2", "d3"} {
		if _, err := a.Enqueue(ctx, Delivery{ID: id, Event: "ping", Payload: []byte(`{}`)}); err != nil {
			t.Fatal(err)
		}
	}
	held, _ := a.Claim(ctx)
	renewed, _ := a.Claim(ctx)
	if held == nil || renewed == nil || held.ID != "d1" || renewed.ID != "d2" {
		t.Fatalf("claims: %+v %+v", held, renewed)
	}
	other, _ := b.Claim(ctx)
	if other == nil || other.ID != "d3" {
		t.Fatalf("b claimed %+v, want d3 (d1 and d2 are leased)", other)
	}
	if d, _ := b.Claim(ctx); d != nil {
		t.Fatalf("b claimed %s while every delivery is leased", d.ID)
	}
	// a keeps renewing d2 and stops renewing d1 (as if it died); b renews d3.
	for range 4 {
		time.Sleep(lease / 3)
		if err := a.Renew(ctx, renewed); err != nil {
			t.Fatal(err)
		}
		if err := b.Renew(ctx, other); err != nil {
			t.Fatal(err)
		}
	}
	stolen, err := b.Claim(ctx)
	if err != nil || stolen == nil || stolen.ID != "d1" || stolen.Attempts != 2 {
		t.Fatalf("after the lease: b claimed %+v, %v; want d1, attempt 2", stolen, err)
	}
	if d, _ := b.Claim(ctx); d != nil {
		t.Fatalf("b claimed %s, whose lease a renews", d.ID)
	}
	if g, err := a.BeginDeploy(ctx, held); !errors.Is(err, ErrLeaseLost) {
		if g != nil {
			g.Rollback()
		}
		t.Errorf("a began deciding a delivery b holds: %v", err)
	}
	if err := a.Finish(ctx, held, ""); !errors.Is(err, ErrLeaseLost) {
		t.Errorf("a finished a delivery b holds: %v", err)
	}
	if err := a.Renew(ctx, held); !errors.Is(err, ErrLeaseLost) {
		t.Errorf("a renewed a delivery b holds: %v", err)
	}
	for _, f := range []struct {
		s *Store
		d *Delivery
	}{{b, stolen}, {a, renewed}, {b, other}} {
		if err := f.s.Finish(ctx, f.d, ""); err != nil {
			t.Errorf("finish %s: %v", f.d.ID, err)
		}
	}
	if n, _ := a.QueueDepth(ctx); n != 0 {
		t.Errorf("queue depth %d after finishing everything", n)
	}
}

// TestConcurrentClaims: workers of two stores claiming at once take
// every delivery exactly once.
func TestConcurrentClaims(t *testing.T) { backends(t, testConcurrentClaims) }

func testConcurrentClaims(t *testing.T, dsn string) {
	ctx := context.Background()
	stores := []*Store{mustOpen(t, dsn), mustOpen(t, dsn)}
	const n = 300
	for i := range n {
		if _, err := stores[i%2].Enqueue(ctx, Delivery{ID: fmt.Sprint("d", i), Event: "ping", Payload: []byte(`{}`)}); err != nil {
			t.Fatal(err)
		}
	}
	var mu sync.Mutex
	claimed := map[string]int{}
	var wg sync.WaitGroup
	for w := range 8 {
		s := stores[w%2]
		wg.Go(func() {
			for {
				d, err := s.Claim(ctx)
				if err != nil {
					t.Error(err)
					return
				}
				if d == nil {
					return
				}
				mu.Lock()
				claimed[d.ID]++
				mu.Unlock()
				if err := s.Finish(ctx, d, ""); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	if len(claimed) != n {
		t.Errorf("%d deliveries claimed, want %d", len(claimed), n)
	}
	for id, c := range claimed {
		if c != 1 {
			t.Errorf("%s claimed %d times", id, c)
		}
	}
}

func TestPrune(t *testing.T) { backends(t, testPrune) }

func testPrune(t *testing.T, dsn string) {
	ctx := context.Background()
	s := mustOpen(t, dsn)
	now := time.Now()
	for i := range 2500 {
		at := now.Add(-500 * 24 * time.Hour)
		if i >= 2400 {
			at = now.Add(-time.Duration(i-2400) * time.Hour)
		}
		if err := s.InsertBatched(ctx, &Record{Time: at, Policy: "deploy", Decision: "allow", Source: "api"}); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := s.Prune(ctx, 24*time.Hour); err == nil {
		t.Error("a retention shorter than two days was accepted")
	}
	// Writes go on while it prunes, in batches.
	var wg sync.WaitGroup
	for i := range 50 {
		wg.Go(func() {
			if err := s.InsertBatched(ctx, &Record{Policy: "deploy", Decision: "deny", Source: "api", Input: json.RawMessage(fmt.Sprintf(`{"during":%d}`, i))}); err != nil {
				t.Errorf("a write during pruning: %v", err)
			}
		})
	}
	decisions, _, err := s.Prune(ctx, 400*24*time.Hour)
	wg.Wait()
	if err != nil || decisions != 2400 {
		t.Fatalf("pruned %d decisions, %v; want 2400", decisions, err)
	}
	if sum, _ := s.Summarize(ctx); sum.Total != 150 {
		t.Errorf("%d decisions left, want 150 (100 recent, 50 written while pruning)", sum.Total)
	}
	page, _ := s.Query(ctx, Filter{Limit: 100, Decision: "allow", Since: now.Add(-3*time.Hour - time.Minute)})
	if len(page.Records) != 4 {
		t.Errorf("allowed since 3h ago: %d records, want 4", len(page.Records))
	}
}

func TestParseRetention(t *testing.T) {
	for in, want := range map[string]time.Duration{"400d": 400 * 24 * time.Hour, "72h": 72 * time.Hour} {
		if got, err := ParseRetention(in); err != nil || got != want {
			t.Errorf("%s: %v, %v", in, got, err)
		}
	}
	for _, in := range []string{"", "0d", "-3d", "d", "forever", "10x"} {
		if _, err := ParseRetention(in); err == nil {
			t.Errorf("%q accepted", in)
		}
	}
}

func TestRedact(t *testing.T) {
	for in, want := range map[string]string{
		"postgres://gitpoli:s3cret@db:5432/audit":                                    "postgres://gitpoli:xxxxx@db:5432/audit",
		"postgres://gitpoli@db/audit?password=s3cret&sslmode=verify-full":            "postgres://gitpoli@db/audit?password=xxxxx&sslmode=verify-full",
		"postgresql://db/audit?sslpassword=s3cret&sslkey=%2Fk.pem&connect_timeout=5": "postgresql://db/audit?connect_timeout=5&sslkey=%2Fk.pem&sslpassword=xxxxx",
	} {
		if got := Redact(in); got != want {
			t.Errorf("Redact(%s) = %s, want %s", in, got, want)
		}
	}
}

// TestDeployGateUnderRepeatableRead: a database whose default isolation
// is REPEATABLE READ still never lets the daily limit be passed (the gate
// asks for READ COMMITTED).
func TestDeployGateUnderRepeatableRead(t *testing.T) {
	dsn := pgtest.DSN(t)
	u, _ := url.Parse(dsn)
	owner := mustOpen(t, dsn)
	if _, err := owner.db.Exec(`ALTER DATABASE ` + strings.TrimPrefix(u.Path, "/") + ` SET default_transaction_isolation = 'repeatable read'`); err != nil {
		t.Fatal(err)
	}
	testDeployGateSerializes(t, dsn)
}

// TestPostgresPrivileges: once the owner has created the tables, serve
// runs as a role with only SELECT, INSERT, UPDATE and DELETE on them, and
// backtest as a role with SELECT alone — the privileges README.md gives.
func TestPostgresPrivileges(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.DSN(t)
	mustOpen(t, dsn).Close() // the owner migrates
	owner := mustOpen(t, dsn)
	suffix := fmt.Sprint(time.Now().UnixNano())
	app, reader := "gitpoli_app_"+suffix, "gitpoli_reader_"+suffix
	for _, q := range []string{
		"CREATE ROLE " + app + " LOGIN",
		"CREATE ROLE " + reader + " LOGIN",
		"GRANT USAGE ON SCHEMA public TO " + app + ", " + reader,
		"GRANT SELECT, INSERT, UPDATE, DELETE ON deliveries, decisions, schema_migrations TO " + app,
		"GRANT SELECT ON decisions TO " + reader,
	} {
		if _, err := owner.db.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	t.Cleanup(func() {
		for _, q := range []string{"DROP OWNED BY " + app + ", " + reader, "DROP ROLE " + app, "DROP ROLE " + reader} {
			owner.db.ExecContext(ctx, q)
		}
	})
	as := func(role string) string {
		u, _ := url.Parse(dsn)
		u.User = url.User(role)
		return u.String()
	}
	s := mustOpen(t, as(app))
	if _, err := s.Enqueue(ctx, Delivery{ID: "d", Event: "ping", Payload: []byte(`{}`)}); err != nil {
		t.Fatal(err)
	}
	d, err := s.Claim(ctx)
	if err != nil || d == nil {
		t.Fatalf("claim: %v", err)
	}
	if err := s.Renew(ctx, d); err != nil {
		t.Fatal(err)
	}
	g, err := s.BeginDeploy(ctx, d)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := g.ApprovedToday(ctx, "o/r", "prod", []string{"deploy"}, ""); err != nil {
		t.Fatal(err)
	}
	if err := g.Insert(ctx, &Record{Policy: "deploy", Decision: "allow", Source: "webhook", Repo: "o/r", Environment: "prod"}); err != nil {
		t.Fatal(err)
	}
	if err := g.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := s.Finish(ctx, d, ""); err != nil {
		t.Fatal(err)
	}
	if err := s.Writable(ctx); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Prune(ctx, 400*24*time.Hour); err != nil {
		t.Fatal(err)
	}
	r, err := OpenReadOnly(ctx, as(reader))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if page, err := r.Query(ctx, Filter{Limit: 5}); err != nil || len(page.Records) != 1 {
		t.Errorf("reader: %d records, %v", len(page.Records), err)
	}
}

// TestApprovedTodayNeedsEveryPolicy: a deployment counts as approved when
// every deployment policy that decided it allowed; records of other
// policies, sources and environments do not count.
func TestApprovedTodayNeedsEveryPolicy(t *testing.T) { backends(t, testApprovedTodayNeedsEveryPolicy) }

func testApprovedTodayNeedsEveryPolicy(t *testing.T, dsn string) {
	ctx := context.Background()
	s := mustOpen(t, dsn)
	for _, r := range []Record{
		{DeliveryID: "a", Policy: "deploy", Decision: "allow"},
		{DeliveryID: "a", Policy: "freeze", Decision: "allow"},
		{DeliveryID: "b", Policy: "deploy", Decision: "allow"},
		{DeliveryID: "b", Policy: "freeze", Decision: "deny"},
		{DeliveryID: "c", Policy: "deploy", Decision: "allow"},
		{DeliveryID: "c", Policy: "watch", Decision: "deny"}, // not a deployment policy
		{DeliveryID: "d", Policy: "deploy", Decision: "error"},
		{DeliveryID: "e", Policy: "deploy", Decision: "allow", Environment: "staging"},
	} {
		r.Source, r.Repo = "webhook", "o/r"
		if r.Environment == "" {
			r.Environment = "prod"
		}
		if err := s.Insert(ctx, &r); err != nil {
			t.Fatal(err)
		}
	}
	g, err := s.BeginDeploy(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Rollback()
	for _, tt := range []struct {
		policies []string
		delivery string // the one being decided, not counted
		want     int
	}{
		{[]string{"deploy", "freeze"}, "", 2}, // a and c (c was not decided by freeze)
		{[]string{"deploy"}, "", 3},           // a, b, c
		{[]string{"freeze"}, "", 1},           // a
		{nil, "", 0},
		{[]string{"deploy", "freeze"}, "a", 1}, // decided again after a restart: c
		{[]string{"deploy"}, "c", 2},           // a, b
	} {
		n, err := g.ApprovedToday(ctx, "o/r", "prod", tt.policies, tt.delivery)
		if err != nil || n != tt.want {
			t.Errorf("ApprovedToday(%v) = %d, %v; want %d", tt.policies, n, err, tt.want)
		}
	}
}

// TestPageBytesCapped: a page of the audit API ends at MaxPageBytes of
// records, not only at its row count; the cursor goes on from there.
func TestPageBytesCapped(t *testing.T) { backends(t, testPageBytesCapped) }

func testPageBytesCapped(t *testing.T, dsn string) {
	ctx := context.Background()
	s := mustOpen(t, dsn)
	big := json.RawMessage(`{"x":"` + strings.Repeat("a", 5<<20) + `"}`)
	for range 3 {
		if err := s.Insert(ctx, &Record{Policy: "deploy", Decision: "allow", Source: "api", Input: big}); err != nil {
			t.Fatal(err)
		}
	}
	seen := 0
	for cursor, pages := "", 0; ; pages++ {
		page, err := s.Query(ctx, Filter{Limit: 500, Cursor: cursor})
		if err != nil || pages > 3 {
			t.Fatalf("page %d: %v", pages, err)
		}
		if len(page.Records) != 1 {
			t.Errorf("page %d holds %d records of 5 MB, want 1", pages, len(page.Records))
		}
		seen += len(page.Records)
		if cursor = page.NextCursor; cursor == "" {
			break
		}
	}
	if seen != 3 {
		t.Errorf("paged through %d records, want 3", seen)
	}
}
