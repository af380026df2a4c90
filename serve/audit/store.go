// Package audit is gitpoli serve's durable state on SQLite: the queue of
// received deliveries and the log of every decision.
package audit

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	_ "modernc.org/sqlite" // the database/sql driver "sqlite", pure Go
)

//go:embed migrations/*.sql
var migrations embed.FS

// Store is the SQLite audit database. It is safe for concurrent use.
type Store struct {
	db  *sql.DB
	now func() time.Time

	batchOnce sync.Once
	batch     chan batchItem
	batchDone chan struct{}
	closeOnce sync.Once
	closeErr  error
}

// Open opens (creating if needed) the database at path, checks that it is
// in WAL mode, applies pending migrations and requeues deliveries that a
// crash left half-processed.
func Open(ctx context.Context, path string) (*Store, error) {
	// busy_timeout makes writers wait for a lock instead of failing;
	// _txlock=immediate takes the write lock when a transaction begins, so
	// two writers never deadlock upgrading a read lock.
	dsn := "file:" + path + "?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)&_pragma=foreign_keys(ON)&_txlock=immediate"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("open audit db %s: %w", path, err)
	}
	s := &Store{db: db, now: time.Now}
	var mode string
	if err := db.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil {
		db.Close()
		return nil, fmt.Errorf("open audit db %s: %w", path, err)
	}
	if !strings.EqualFold(mode, "wal") {
		db.Close()
		return nil, fmt.Errorf("open audit db %s: journal mode is %q, not WAL", path, mode)
	}
	if err := s.migrate(ctx); err != nil {
		db.Close()
		return nil, err
	}
	if _, err := db.ExecContext(ctx, `UPDATE deliveries SET state = 'queued' WHERE state = 'working'`); err != nil {
		db.Close()
		return nil, fmt.Errorf("requeue unfinished deliveries: %w", err)
	}
	return s, nil
}

// Close closes the database (after the batch writer has written what it
// holds).
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.batchOnce.Do(func() {}) // no writer starts after this
		if s.batch != nil {
			close(s.batch)
			<-s.batchDone
		}
		s.closeErr = s.db.Close()
	})
	return s.closeErr
}

// migrate applies the embedded NNNN_name.sql files above the recorded
// version, each in its own transaction.
func (s *Store) migrate(ctx context.Context) error {
	if _, err := s.db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)`); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	var current int
	if err := s.db.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&current); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	names, err := fs.Glob(migrations, "migrations/*.sql")
	if err != nil {
		return err
	}
	sort.Strings(names)
	for _, name := range names {
		version, err := strconv.Atoi(strings.SplitN(path.Base(name), "_", 2)[0])
		if err != nil {
			return fmt.Errorf("migration %s: no version number", name)
		}
		if version <= current {
			continue
		}
		sqlText, err := migrations.ReadFile(name)
		if err != nil {
			return err
		}
		tx, err := s.db.BeginTx(ctx, nil)
		if err != nil {
			return fmt.Errorf("migration %s: %w", name, err)
		}
		if _, err := tx.ExecContext(ctx, string(sqlText)); err != nil {
			tx.Rollback()
			return fmt.Errorf("migration %s: %w", name, err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)`, version, s.now().UTC().Format(time.RFC3339Nano)); err != nil {
			tx.Rollback()
			return fmt.Errorf("migration %s: %w", name, err)
		}
		if err := tx.Commit(); err != nil {
			return fmt.Errorf("migration %s: %w", name, err)
		}
	}
	return nil
}

// Delivery is a received webhook delivery.
type Delivery struct {
	Seq        int64
	ID         string
	Event      string
	Payload    []byte
	ReceivedAt time.Time
	Attempts   int
}

// Enqueue stores a delivery durably. It reports false, and stores
// nothing, when a delivery with the same id was already received: GitHub
// redelivers with the same X-GitHub-Delivery, and a delivery is acted on
// once.
func (s *Store) Enqueue(ctx context.Context, d Delivery) (bool, error) {
	var fresh bool
	err := s.groupWrite(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx,
			`INSERT INTO deliveries (delivery_id, event, payload, received_at) VALUES (?, ?, ?, ?) ON CONFLICT (delivery_id) DO NOTHING`,
			d.ID, d.Event, d.Payload, s.now().UTC().Format(time.RFC3339Nano))
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		fresh = n == 1
		return err
	})
	if err != nil {
		return false, fmt.Errorf("enqueue delivery %s: %w", d.ID, err)
	}
	return fresh, nil
}

// groupWrite runs write in a transaction shared with the writes queued at
// the same moment, and returns when that transaction has committed. When
// a write fails, the batch is redone one write per transaction, so the
// failure stays with that write.
func (s *Store) groupWrite(ctx context.Context, write func(*sql.Tx) error) error {
	s.batchOnce.Do(func() {
		s.batch = make(chan batchItem, 1024)
		s.batchDone = make(chan struct{})
		go s.batchWriter()
	})
	done := make(chan error, 1)
	select {
	case s.batch <- batchItem{write: write, done: done}:
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

type batchItem struct {
	write func(*sql.Tx) error
	done  chan error
}

// maxBatch bounds one group commit.
const maxBatch = 256

func (s *Store) batchWriter() {
	defer close(s.batchDone)
	for first := range s.batch {
		items := []batchItem{first}
	more:
		for len(items) < maxBatch {
			select {
			case it, ok := <-s.batch:
				if !ok {
					break more
				}
				items = append(items, it)
			default:
				break more
			}
		}
		s.commitBatch(items)
	}
}

func (s *Store) commitBatch(items []batchItem) {
	errs, err := s.runBatch(items)
	if err != nil && len(items) > 1 {
		// Something in the batch failed: commit each write on its own, so
		// one bad write fails only itself.
		for _, it := range items {
			errs, err := s.runBatch([]batchItem{it})
			if err == nil {
				err = errs[0]
			}
			it.done <- err
		}
		return
	}
	for i, it := range items {
		if err != nil {
			it.done <- err
		} else {
			it.done <- errs[i]
		}
	}
}

// runBatch runs the writes in one transaction; it fails as a whole when
// any write fails.
func (s *Store) runBatch(items []batchItem) ([]error, error) {
	ctx := context.Background()
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	errs := make([]error, len(items))
	for i, it := range items {
		if errs[i] = it.write(tx); errs[i] != nil {
			tx.Rollback()
			return errs, errs[i]
		}
	}
	if err := tx.Commit(); err != nil {
		return nil, err
	}
	return errs, nil
}

// Claim takes the oldest queued delivery for processing, or returns nil
// when there is none.
func (s *Store) Claim(ctx context.Context) (*Delivery, error) {
	var d Delivery
	var received string
	err := s.db.QueryRowContext(ctx, `
		UPDATE deliveries SET state = 'working', attempts = attempts + 1
		WHERE seq = (SELECT seq FROM deliveries WHERE state = 'queued' ORDER BY seq LIMIT 1)
		RETURNING seq, delivery_id, event, payload, received_at, attempts`).
		Scan(&d.Seq, &d.ID, &d.Event, &d.Payload, &received, &d.Attempts)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("claim delivery: %w", err)
	}
	d.ReceivedAt, _ = time.Parse(time.RFC3339Nano, received)
	return &d, nil
}

// Finish marks a claimed delivery done, or failed with errMsg.
func (s *Store) Finish(ctx context.Context, seq int64, errMsg string) error {
	state := "done"
	if errMsg != "" {
		state = "error"
	}
	_, err := s.db.ExecContext(ctx, `UPDATE deliveries SET state = ?, last_error = ?, processed_at = ? WHERE seq = ?`,
		state, errMsg, s.now().UTC().Format(time.RFC3339Nano), seq)
	if err != nil {
		return fmt.Errorf("finish delivery %d: %w", seq, err)
	}
	return nil
}

// QueueDepth counts the deliveries not yet processed.
func (s *Store) QueueDepth(ctx context.Context) (int, error) {
	var n int
	err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM deliveries WHERE state IN ('queued', 'working')`).Scan(&n)
	return n, err
}

// DeliveryState returns a delivery's state ("" when unknown).
func (s *Store) DeliveryState(ctx context.Context, id string) (string, error) {
	var state string
	err := s.db.QueryRowContext(ctx, `SELECT state FROM deliveries WHERE delivery_id = ?`, id).Scan(&state)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	return state, err
}

// Writable checks that the database accepts a write.
func (s *Store) Writable(ctx context.Context) error {
	_, err := s.db.ExecContext(ctx, `UPDATE schema_migrations SET applied_at = applied_at WHERE version = (SELECT MAX(version) FROM schema_migrations)`)
	return err
}
