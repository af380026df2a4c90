package audit

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestWALStartsOverUnderSteadyWrites writes without a pause from the
// group commit and from workers on connections of their own: the WAL must
// still start over. SQLite's own checkpoints are off, and could not start
// it over while the writes go on.
func TestWALStartsOverUnderSteadyWrites(t *testing.T) {
	old := restartPages
	t.Cleanup(func() { restartPages = old }) // after the store's Close
	restartPages = 256
	path := filepath.Join(t.TempDir(), "gitpoli.db")
	s := mustOpen(t, path)
	ctx := context.Background()
	payload := bytes.Repeat([]byte("x"), 16<<10)

	var stop atomic.Bool
	var wg sync.WaitGroup
	var written atomic.Int64
	for w := range 4 {
		wg.Go(func() {
			for i := 0; !stop.Load(); i++ {
				if err := s.InsertBatched(ctx, &Record{Policy: "deploy", Decision: "allow", Source: "api"}); err != nil {
					t.Error(err)
					return
				}
				if _, err := s.Enqueue(ctx, Delivery{ID: fmt.Sprintf("%d-%d", w, i), Event: "ping", Payload: payload}); err != nil {
					t.Error(err)
					return
				}
				d, err := s.Claim(ctx)
				if err == nil && d != nil {
					err = s.Finish(ctx, d, "")
				}
				if err != nil {
					t.Error(err)
					return
				}
				written.Add(1)
			}
		})
	}
	// Enough writes for the WAL to reach ten times restartPages.
	deadline := time.Now().Add(time.Minute)
	for written.Load() < 1500 && time.Now().Before(deadline) && !t.Failed() {
		time.Sleep(10 * time.Millisecond)
	}
	stop.Store(true)
	wg.Wait()

	// The WAL's header counts its restarts (the checkpoint sequence
	// number); its file keeps the length it reached.
	wal, err := os.ReadFile(path + "-wal")
	if err != nil || len(wal) < 32 {
		t.Fatalf("read the WAL: %v", err)
	}
	restarts := binary.BigEndian.Uint32(wal[12:16])
	pages := len(wal) / (4096 + 24)
	t.Logf("%d deliveries: the WAL started over %d times, and reached %d pages", written.Load(), restarts, pages)
	if restarts < 3 {
		t.Errorf("the WAL started over %d times under steady writes, want 3 or more", restarts)
	}
	if err := s.Writable(ctx); err != nil {
		t.Errorf("writable: %v", err)
	}
}

// TestWaitingForTheTurnToWriteEndsWithTheContext holds this process's
// turn to write with an open deployment gate: another write waits for it,
// and gives up when its context ends.
func TestWaitingForTheTurnToWriteEndsWithTheContext(t *testing.T) {
	s := mustOpen(t, filepath.Join(t.TempDir(), "gitpoli.db"))
	gate, err := s.BeginDeploy(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := s.BeginDeploy(ctx, nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("a second gate while the first is open: %v, want the context's deadline", err)
	}
	if err := s.Annotate(ctx, "none", "", []byte(`{}`)); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("a write while the gate is open: %v, want the context's deadline", err)
	}
	gate.Rollback()
	ended := make(chan struct{})
	go func() {
		gate.Commit() // a second end gives nothing back twice
		close(ended)
	}()
	select {
	case <-ended:
	case <-time.After(10 * time.Second):
		t.Fatal("ending a gate twice blocked")
	}
	if err := s.Annotate(context.Background(), "none", "", []byte(`{}`)); err != nil {
		t.Errorf("a write after the gate: %v", err)
	}
	g2, err := s.BeginDeploy(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	g2.Commit()
}

// TestPayloadsMoveOut migrates a database of version 4, with a delivery
// still queued, to its own payload table: the delivery is claimed with
// its payload, and pruning it takes the payload too.
func TestPayloadsMoveOut(t *testing.T) {
	path := filepath.Join(t.TempDir(), "gitpoli.db")
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=foreign_keys(ON)")
	if err != nil {
		t.Fatal(err)
	}
	names, _ := fs.Glob(migrations, "migrations/sqlite/*.sql")
	sort.Strings(names)
	if _, err := db.Exec(`CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	for i, name := range names[:4] {
		text, _ := migrations.ReadFile(name)
		if _, err := db.Exec(string(text)); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		db.Exec(`INSERT INTO schema_migrations VALUES (?, '')`, i+1)
	}
	old := time.Now().Add(-30 * 24 * time.Hour).UTC().Format(sqliteTime)
	for _, id := range []string{"done-long-ago", "queued"} {
		if _, err := db.Exec(`INSERT INTO deliveries (delivery_id, event, payload, received_at) VALUES (?, 'ping', ?, ?)`, id, `{"zen":"`+id+`"}`, old); err != nil {
			t.Fatal(err)
		}
	}
	db.Exec(`UPDATE deliveries SET state = 'done' WHERE delivery_id = 'done-long-ago'`)
	db.Close()

	s := mustOpen(t, path)
	ctx := context.Background()
	d, err := s.Claim(ctx)
	if err != nil || d == nil || d.ID != "queued" || string(d.Payload) != `{"zen":"queued"}` {
		t.Fatalf("claim after the migration: %+v, %v", d, err)
	}
	if _, n, err := s.Prune(ctx, MinRetention); err != nil || n != 1 {
		t.Fatalf("pruned %d deliveries, %v; want 1", n, err)
	}
	var payloads int
	s.db.QueryRow(`SELECT COUNT(*) FROM delivery_payloads`).Scan(&payloads)
	if payloads != 1 {
		t.Errorf("%d payloads left, want 1 (the pruned delivery's went with it)", payloads)
	}
	// A redelivery stores nothing, payload included.
	if fresh, err := s.Enqueue(ctx, Delivery{ID: "queued", Event: "ping", Payload: []byte(`{}`)}); fresh || err != nil {
		t.Errorf("redelivery: fresh %v, %v", fresh, err)
	}
	s.db.QueryRow(`SELECT COUNT(*) FROM delivery_payloads`).Scan(&payloads)
	if payloads != 1 {
		t.Errorf("%d payloads after a redelivery, want 1", payloads)
	}
}

// TestTwoStoresOnOneFileKeepTheirLocks closes one of two stores on a
// file: the other's connections must keep SQLite's POSIX locks, which
// closing any descriptor of the file in this process would drop.
func TestTwoStoresOnOneFileKeepTheirLocks(t *testing.T) {
	path := filepath.Join(t.TempDir(), "gitpoli.db")
	a := mustOpen(t, path)
	b := mustOpen(t, path)
	if a.dbFile == nil || a.dbFile != b.dbFile {
		t.Fatalf("the stores sync through %p and %p, want one shared descriptor", a.dbFile, b.dbFile)
	}
	a.Close()
	if _, err := b.dbFile.Stat(); err != nil {
		t.Fatalf("the descriptor was closed with the first store, dropping the second's locks: %v", err)
	}
	if err := b.Writable(context.Background()); err != nil {
		t.Fatal(err)
	}
	f := b.dbFile
	b.Close()
	if _, err := f.Stat(); err == nil {
		t.Error("the descriptor outlived the last store on its file")
	}
}

// TestMigrationsRefuseANewerSchema opens a database migrated by a newer
// gitpoli: it is refused at start, not misread later.
func TestMigrationsRefuseANewerSchema(t *testing.T) {
	path := filepath.Join(t.TempDir(), "gitpoli.db")
	s := mustOpen(t, path)
	if _, err := s.db.Exec(`INSERT INTO schema_migrations VALUES (999, '')`); err != nil {
		t.Fatal(err)
	}
	s.Close()
	_, err := Open(context.Background(), path)
	if err == nil || !strings.Contains(err.Error(), "schema version 999") {
		t.Fatalf("open: %v, want a refusal naming schema version 999", err)
	}
}

// BenchmarkInsertBatched is the audit write of POST /evaluate: 16
// requests at a time, each committed before it returns.
func BenchmarkInsertBatched(b *testing.B) {
	s := mustOpen(b, filepath.Join(b.TempDir(), "gitpoli.db"))
	input := []byte(`{"environment":"production","ref":"refs/heads/main","repo_environments":["production","staging"],"workflow_meta":{"approvers":["alice","bob"],"checks":{"tests":true},"deployments_today":1,"signed_off":true}}`)
	b.SetParallelism(8) // 16 on two cores
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		ctx := context.Background()
		for pb.Next() {
			r := &Record{Policy: "deploy", Decision: "allow", Source: "api", Environment: "production", Ref: "refs/heads/main", Input: input, Violations: []byte(`[]`)}
			if err := s.InsertBatched(ctx, r); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "rows/s")
}

// TestWALStartsOverAfterAReaderLetsGo holds an old snapshot open from a
// connection of its own (as a backtest of the live file does) while
// decisions are written: the WAL cannot start over meanwhile, and does
// once the reader lets go, with the writes still going on.
func TestWALStartsOverAfterAReaderLetsGo(t *testing.T) {
	old := restartPages
	t.Cleanup(func() { restartPages = old })
	restartPages = 64
	path := filepath.Join(t.TempDir(), "gitpoli.db")
	s := mustOpen(t, path)
	ctx := context.Background()
	restarts := func() uint32 {
		wal, err := os.ReadFile(path + "-wal")
		if err != nil || len(wal) < 32 {
			t.Fatalf("read the WAL: %v", err)
		}
		return binary.BigEndian.Uint32(wal[12:16])
	}
	write := func(n int) {
		for range n {
			if err := s.InsertBatched(ctx, &Record{Policy: "deploy", Decision: "allow", Source: "api", Input: bytes.Repeat([]byte(" "), 4000)}); err != nil {
				t.Fatal(err)
			}
		}
	}
	write(10)
	reader, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer reader.Close()
	tx, err := reader.Begin()
	if err != nil {
		t.Fatal(err)
	}
	var n int
	if err := tx.QueryRow(`SELECT COUNT(*) FROM decisions`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	before := restarts()
	write(300) // ~2,000 pages
	time.Sleep(2 * checkpointEvery)
	// Now far behind, the checkpointer does not hold the writers back
	// for a RESTART that would have to copy everything the reader lets
	// go of. (While it was less than restartBehind behind, it may have
	// tried one, which the reader made give up.)
	tries := s.restartTries.Load()
	time.Sleep(4 * checkpointEvery)
	write(10)
	time.Sleep(2 * checkpointEvery)
	if n := s.restartTries.Load() - tries; n != 0 {
		t.Errorf("%d RESTARTs tried while the reader held the WAL far behind", n)
	}
	if got := restarts(); got != before {
		t.Fatalf("the WAL started over %d times under a reader's snapshot", got-before)
	}
	tx.Rollback()
	deadline := time.Now().Add(10 * time.Second)
	for restarts() == before && time.Now().Before(deadline) {
		write(5)
		time.Sleep(checkpointEvery)
	}
	if restarts() == before {
		t.Fatal("the WAL never started over after the reader let go")
	}
}

// TestIdleWALIsLeftAlone: once the WAL has started over and nothing is
// written, the checkpointer neither syncs nor holds the writers back
// again (SQLite reports the old length until the next write).
func TestIdleWALIsLeftAlone(t *testing.T) {
	old := restartPages
	t.Cleanup(func() { restartPages = old })
	restartPages = 64
	s := mustOpen(t, filepath.Join(t.TempDir(), "gitpoli.db"))
	ctx := context.Background()
	for range 100 { // ~200 pages, then nothing
		if err := s.InsertBatched(ctx, &Record{Policy: "deploy", Decision: "allow", Source: "api", Input: bytes.Repeat([]byte(" "), 4000)}); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for s.restarts.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(checkpointEvery)
	}
	if s.restarts.Load() == 0 {
		t.Fatal("the WAL never started over")
	}
	time.Sleep(2 * checkpointEvery) // a RESTART under way ends
	tries := s.restartTries.Load()
	time.Sleep(10 * checkpointEvery)
	if n := s.restartTries.Load() - tries; n != 0 {
		t.Errorf("%d RESTARTs tried on an idle WAL in %v", n, 10*checkpointEvery)
	}
}
