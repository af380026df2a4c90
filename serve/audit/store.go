// Package audit is gitpoli serve's durable state: the queue of received
// deliveries and the log of every decision. It runs on SQLite (one
// process, the embedded default) or on PostgreSQL (any number of replicas
// sharing one queue and one log); both backends run the same code, and
// differ only where the databases do (see dialect).
package audit

import (
	"cmp"
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

//go:embed migrations
var migrations embed.FS

// Options tune a Store.
type Options struct {
	// Lease is how long a claimed delivery stays with its worker without a
	// renewal (default 30s). A worker renews while it works; a replica that
	// died loses its deliveries to the others when the lease runs out.
	Lease time.Duration
	// Owner names this process in claims (default: a random id).
	Owner string
	// Now is the clock (default time.Now): leases and waits on SQLite run
	// on it (PostgreSQL's run on the database's own).
	Now func() time.Time
}

// Store is the audit database. It is safe for concurrent use, and on
// PostgreSQL by concurrent processes.
type Store struct {
	db      *sql.DB
	dialect *dialect
	now     func() time.Time
	lease   time.Duration
	owner   string
	name    string // the database, for messages (no password)
	closeDB func() error
	// stmts holds each query prepared once (by its text), on SQLite:
	// preparing a statement for every use costs SQLite about as much as
	// running it. pgx keeps its own statement cache on each pooled
	// connection; a database/sql statement there would be prepared and
	// deallocated around every use (the pool keeps no idle wrappers).
	stmts sync.Map

	coming atomic.Int64 // writes announced to the group commit (see Coming)
	// writing is the turn to write to SQLite (see lockWrites); nil on
	// PostgreSQL.
	writing  chan struct{}
	ckptStop chan struct{}
	ckptDone chan struct{}
	ckptErr  atomic.Pointer[error] // the last checkpoint's failure
	dbFile   *os.File              // the SQLite file, for the checkpointer's syncs
	// restartedAt is the WAL's length at the checkpointer's last RESTART
	// (its goroutine's alone); restartTries and restarts count them, tried
	// and done.
	restartedAt  int
	restartTries atomic.Int64
	restarts     atomic.Int64
	batchOnce    sync.Once
	batch        chan batchItem
	batchDone    chan struct{}
	closeOnce    sync.Once
	closeErr     error
}

// IsPostgres reports whether dsn names a PostgreSQL database rather than
// a SQLite file.
func IsPostgres(dsn string) bool {
	return strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://")
}

// Open opens the audit database named by dsn — a SQLite file path, or a
// postgres:// URL — creating its tables or applying pending migrations.
func Open(ctx context.Context, dsn string, opts ...Options) (*Store, error) {
	var o Options
	if len(opts) > 0 {
		o = opts[0]
	}
	if o.Lease <= 0 {
		o.Lease = 30 * time.Second
	}
	if o.Owner == "" {
		o.Owner = randomOwner()
	}
	s, err := open(ctx, dsn, false)
	if err != nil {
		return nil, err
	}
	s.lease, s.owner = o.Lease, o.Owner
	if o.Now != nil {
		s.now = o.Now
	}
	if err := s.migrate(ctx); err != nil {
		s.closeDB()
		return nil, err
	}
	// The statements written inside transactions, prepared now (see
	// txExec).
	for _, q := range []string{s.dialect.enqueue, s.dialect.enqueuePayload, insertDecision} {
		if !s.dialect.prepare {
			break
		}
		if q == "" {
			continue
		}
		if _, err := s.prepared(ctx, q); err != nil {
			s.Close()
			return nil, fmt.Errorf("open audit db %s: %w", s.name, err)
		}
	}
	if s.dialect == sqliteDialect {
		// One process owns a SQLite file: what it was working on when it
		// stopped is unfinished, whatever the lease says.
		if _, err := s.db.ExecContext(ctx, `UPDATE deliveries SET state = 'queued' WHERE state = 'working'`); err != nil {
			s.closeDB()
			return nil, fmt.Errorf("requeue unfinished deliveries: %w", err)
		}
		s.writing = make(chan struct{}, 1)
		if err := s.startCheckpointer(ctx); err != nil {
			s.closeDB()
			return nil, err
		}
	}
	return s, nil
}

// OpenReadOnly opens an audit database for reading only: backtests and
// reports never change what was recorded. On PostgreSQL every
// transaction is read-only, enforced by the server.
func OpenReadOnly(ctx context.Context, dsn string) (*Store, error) {
	s, err := open(ctx, dsn, true)
	if err != nil {
		return nil, err
	}
	var n int
	if err := s.db.QueryRowContext(ctx, s.dialect.tableExists, "decisions").Scan(&n); err != nil || n == 0 {
		s.closeDB()
		return nil, fmt.Errorf("open audit db %s: not a gitpoli audit database", s.name)
	}
	return s, nil
}

// open connects to the database dsn names, of either backend.
func open(ctx context.Context, dsn string, readOnly bool) (*Store, error) {
	switch {
	case IsPostgres(dsn):
		return openPostgres(ctx, dsn, readOnly)
	case readOnly:
		return openSQLiteReadOnly(ctx, dsn)
	default:
		return openSQLite(ctx, dsn)
	}
}

// Backend names the database kind: "sqlite" or "postgres".
func (s *Store) Backend() string { return s.dialect.name }

// Name is the database's name for messages: the file, or the URL without
// its password.
func (s *Store) Name() string { return s.name }

// Close closes the database (after the batch writer has written what it
// holds).
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.batchOnce.Do(func() {}) // no writer starts after this
		if s.batch != nil {
			close(s.batch)
			<-s.batchDone
		}
		if s.ckptStop != nil {
			close(s.ckptStop)
			<-s.ckptDone
		}
		s.stmts.Range(func(_, st any) bool {
			st.(*sql.Stmt).Close()
			return true
		})
		s.closeErr = s.closeDB()
		if s.dbFile != nil {
			closeSyncFile(s.dbFile, s.db.Stats().OpenConnections) // see syncFiles
		}
	})
	return s.closeErr
}

// lockWrites waits for the store's turn to write. SQLite takes one
// writer at a time, and a writer that finds the database locked polls
// for it, sleeping 1, 2, 5, 10 ms and on: writes from the group commit,
// the workers and the checkpointer that collided there waited whole
// milliseconds for a lock freed in microseconds. Through one Store (serve
// opens one per file) they queue here instead, and each starts the
// moment the previous one ends. The busy timeout remains for writers
// elsewhere.
func (s *Store) lockWrites(ctx context.Context) (unlock func(), err error) {
	if s.writing == nil {
		return func() {}, nil
	}
	select {
	case s.writing <- struct{}{}:
		return func() { <-s.writing }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// exec (for writes), query and queryRow run queries written with ?
// placeholders, whatever the backend, as statements prepared once where
// that pays.
func (s *Store) exec(ctx context.Context, q string, args ...any) (sql.Result, error) {
	unlock, err := s.lockWrites(ctx)
	if err != nil {
		return nil, err
	}
	defer unlock()
	if !s.dialect.prepare {
		return s.db.ExecContext(ctx, s.dialect.rebind(q), args...)
	}
	st, err := s.prepared(ctx, q)
	if err != nil {
		return nil, err
	}
	return st.ExecContext(ctx, args...)
}

func (s *Store) query(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	if !s.dialect.prepare {
		return s.db.QueryContext(ctx, s.dialect.rebind(q), args...)
	}
	st, err := s.prepared(ctx, q)
	if err != nil {
		return nil, err
	}
	return st.QueryContext(ctx, args...)
}

func (s *Store) queryRow(ctx context.Context, q string, args ...any) *sql.Row {
	if !s.dialect.prepare {
		return s.db.QueryRowContext(ctx, s.dialect.rebind(q), args...)
	}
	st, err := s.prepared(ctx, q)
	if err != nil {
		// A *sql.Row cannot be made to hold an error: run the query
		// unprepared, and it fails or answers on its own.
		return s.db.QueryRowContext(ctx, s.dialect.rebind(q), args...)
	}
	return st.QueryRowContext(ctx, args...)
}

// txExec runs q in tx, as a statement prepared once when Open prepared
// it. It never prepares one itself: that would take a second connection
// from the pool while tx holds one, and transactions waiting on a lock
// (the deployment gate) could hold every connection.
func (s *Store) txExec(ctx context.Context, tx *sql.Tx, q string, args ...any) (sql.Result, error) {
	if st, ok := s.stmts.Load(q); ok {
		return tx.StmtContext(ctx, st.(*sql.Stmt)).ExecContext(ctx, args...)
	}
	return tx.ExecContext(ctx, s.dialect.rebind(q), args...)
}

// prepared returns q (with ? placeholders) prepared on the database.
func (s *Store) prepared(ctx context.Context, q string) (*sql.Stmt, error) {
	if st, ok := s.stmts.Load(q); ok {
		return st.(*sql.Stmt), nil
	}
	st, err := s.db.PrepareContext(ctx, s.dialect.rebind(q))
	if err != nil {
		return nil, err
	}
	if prev, loaded := s.stmts.LoadOrStore(q, st); loaded {
		st.Close()
		return prev.(*sql.Stmt), nil
	}
	return st, nil
}

// migrate applies the backend's embedded NNNN_name.sql files above the
// recorded version, each in its own transaction. On PostgreSQL, replicas
// starting together take turns under an advisory lock.
func (s *Store) migrate(ctx context.Context) error {
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("migrate %s: %w", s.name, err)
	}
	defer conn.Close()
	if s.dialect.lockMigrations != "" {
		if _, err := conn.ExecContext(ctx, s.dialect.lockMigrations); err != nil {
			return fmt.Errorf("migrate %s: lock: %w", s.name, err)
		}
		defer conn.ExecContext(context.WithoutCancel(ctx), s.dialect.unlockMigrations)
	}
	// Created only when missing: a role without CREATE on the schema can
	// run a database its owner migrated.
	var exists int
	if err := conn.QueryRowContext(ctx, s.dialect.tableExists, "schema_migrations").Scan(&exists); err != nil {
		return fmt.Errorf("migrate %s: %w", s.name, err)
	}
	if exists == 0 {
		if _, err := conn.ExecContext(ctx, `CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)`); err != nil {
			return fmt.Errorf("migrate %s: %w", s.name, err)
		}
	}
	var current int
	if err := conn.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&current); err != nil {
		return fmt.Errorf("migrate %s: %w", s.name, err)
	}
	dir := "migrations/" + s.dialect.name
	names, err := fs.Glob(migrations, dir+"/*.sql")
	if err != nil {
		return err
	}
	sort.Strings(names)
	if latest, _ := strconv.Atoi(strings.SplitN(path.Base(names[len(names)-1]), "_", 2)[0]); current > latest {
		// Written by a newer gitpoli, whose schema this one would misread.
		return fmt.Errorf("audit db %s is at schema version %d; this gitpoli knows versions up to %d: run the newer gitpoli that migrated it", s.name, current, latest)
	}
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
		tx, err := conn.BeginTx(ctx, nil)
		if err != nil {
			return fmt.Errorf("migration %s: %w", name, err)
		}
		if _, err := tx.ExecContext(ctx, string(sqlText)); err != nil {
			tx.Rollback()
			return fmt.Errorf("migration %s: %w", name, err)
		}
		if _, err := tx.ExecContext(ctx, s.dialect.rebind(`INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)`), version, s.now().UTC().Format(time.RFC3339Nano)); err != nil {
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
	// Attempts counts the claims of this delivery, this one included. It
	// is also the claim's fencing token: only the latest claim may finish.
	Attempts int
	// AnswerTries counts the claims that came after a wait for GitHub to
	// take an answer (Wait): those are not claims whose worker died.
	AnswerTries int
	// Origin is where the delivery came from: OriginWebhook (the
	// default) or OriginReconciler.
	Origin string
}

// Where a delivery came from.
const (
	OriginWebhook    = "webhook"
	OriginReconciler = "reconciler"
)

// ErrLeaseLost is returned when a worker finishes or renews a delivery
// whose lease ran out and that another worker has claimed since.
var ErrLeaseLost = errors.New("the delivery's lease ran out and another worker claimed it")

// Enqueue stores a delivery durably. It reports false, and stores
// nothing, when a delivery with the same id was already received: GitHub
// redelivers with the same X-GitHub-Delivery, and a delivery is acted on
// once.
func (s *Store) Enqueue(ctx context.Context, d Delivery) (bool, error) {
	var fresh bool
	wctx := context.WithoutCancel(ctx)
	err := s.groupWrite(ctx, func(tx *sql.Tx) error {
		ctx := wctx
		args := []any{d.ID, d.Event, s.dialect.timeArg(s.now()), cmp.Or(d.Origin, OriginWebhook)}
		if s.dialect.enqueuePayload == "" {
			args = append(args, d.Payload)
		}
		res, err := s.txExec(ctx, tx, s.dialect.enqueue, args...)
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if fresh = n == 1; !fresh || err != nil || s.dialect.enqueuePayload == "" {
			return err
		}
		seq, err := res.LastInsertId()
		if err != nil {
			return err
		}
		_, err = s.txExec(ctx, tx, s.dialect.enqueuePayload, seq, d.Payload)
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
	case s.batch <- batchItem{ctx: ctx, write: write, done: done}:
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
	// ctx is the waiter's: a write whose waiter gave up is left out of
	// the batch. The write itself runs to the batch's end whatever ctx
	// does, so that one waiter's deadline cannot roll the others back.
	ctx   context.Context
	write func(*sql.Tx) error
	done  chan error
}

// maxBatch bounds one group commit; maxLinger bounds how long it waits
// for announced writes.
const (
	maxBatch  = 256
	maxLinger = 300 * time.Microsecond
)

// Coming announces a write that will reach InsertBatched shortly (a
// request whose decision is being made), so that a group commit about to
// start waits for it instead of committing without it: under load, one
// commit of many rows costs far less than a commit for each. Call the
// returned func when the write is handed over or given up; further calls
// do nothing.
func (s *Store) Coming() (arrived func()) {
	s.coming.Add(1)
	var once sync.Once
	return func() { once.Do(func() { s.coming.Add(-1) }) }
}

func (s *Store) batchWriter() {
	defer close(s.batchDone)
	for first := range s.batch {
		items := []batchItem{first}
		var linger *time.Timer
	more:
		for len(items) < maxBatch {
			select {
			case it, ok := <-s.batch:
				if !ok {
					break more
				}
				items = append(items, it)
				continue
			default:
			}
			// Nothing queued: commit, unless writes are on their way
			// (Coming), which one commit takes more cheaply than several.
			if s.coming.Load() == 0 {
				break
			}
			if linger == nil {
				linger = time.NewTimer(maxLinger)
			}
			select {
			case it, ok := <-s.batch:
				if !ok {
					break more
				}
				items = append(items, it)
			case <-linger.C:
				break more
			}
		}
		if linger != nil {
			linger.Stop()
		}
		s.commitBatch(items)
	}
}

func (s *Store) commitBatch(all []batchItem) {
	items := all[:0]
	for _, it := range all {
		if err := it.ctx.Err(); err != nil {
			it.done <- err
			continue
		}
		items = append(items, it)
	}
	if len(items) == 0 {
		return
	}
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
	unlock, err := s.lockWrites(ctx)
	if err != nil {
		return nil, err
	}
	defer unlock()
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

// Claim takes the oldest delivery that is queued, or whose worker's lease
// ran out, for processing; it returns nil when there is none. Concurrent
// claimers — other workers, other replicas — never take the same one.
func (s *Store) Claim(ctx context.Context) (*Delivery, error) {
	var d Delivery
	var received dbTime
	args := []any{s.leaseArg(), s.owner}
	if s.dialect == sqliteDialect {
		args = append(args, s.dialect.timeArg(s.now()))
	}
	unlock, err := s.lockWrites(ctx)
	if err != nil {
		return nil, fmt.Errorf("claim delivery: %w", err)
	}
	err = s.queryRow(ctx, s.dialect.claim, args...).
		Scan(&d.Seq, &d.ID, &d.Event, &d.Payload, &received, &d.Attempts, &d.AnswerTries)
	unlock()
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("claim delivery: %w", err)
	}
	d.ReceivedAt = received.Time
	return &d, nil
}

func (s *Store) leaseArg() any {
	if s.dialect == postgresDialect {
		return s.lease.Seconds() // the database's clock: replicas' clocks may differ
	}
	return s.dialect.timeArg(s.now().Add(s.lease))
}

// Renew extends the lease of a delivery being worked on.
func (s *Store) Renew(ctx context.Context, d *Delivery) error {
	res, err := s.exec(ctx, s.dialect.renew, s.leaseArg(), d.Seq, d.Attempts)
	if err != nil {
		return fmt.Errorf("renew lease of delivery %s: %w", d.ID, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("renew lease of delivery %s: %w", d.ID, ErrLeaseLost)
	}
	return nil
}

// Finish marks a claimed delivery done, or failed with errMsg. It fails
// with ErrLeaseLost when the claim is no longer this worker's.
func (s *Store) Finish(ctx context.Context, d *Delivery, errMsg string) error {
	state := "done"
	if errMsg != "" {
		state = "error"
	}
	res, err := s.exec(ctx, `UPDATE deliveries SET state = ?, last_error = ?, processed_at = ? WHERE seq = ? AND attempts = ? AND state = 'working'`,
		state, errMsg, s.dialect.timeArg(s.now()), d.Seq, d.Attempts)
	if err != nil {
		return fmt.Errorf("finish delivery %s: %w", d.ID, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("finish delivery %s: %w", d.ID, ErrLeaseLost)
	}
	return nil
}

// ErrLeased is returned by TryLease when another process holds the
// lease.
var ErrLeased = errors.New("another process holds the lease")

// TryLease takes the named lease for ttl, or fails with ErrLeased while
// another process holds it; release gives it back.
func (s *Store) TryLease(ctx context.Context, name string, ttl time.Duration) (release func(), err error) {
	// An owner of its own for each holding: two holders in one process
	// (the reconcile loop and a POST /reconcile) exclude each other too.
	owner := s.owner + "/" + randomOwner()
	args := []any{name, owner, s.dialect.timeArg(s.now().Add(ttl)), s.dialect.timeArg(s.now())}
	if s.dialect == postgresDialect {
		args = []any{name, owner, ttl.Seconds()}
	}
	res, err := s.exec(ctx, s.dialect.lease, args...)
	if err != nil {
		return nil, fmt.Errorf("lease %s: %w", name, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return nil, fmt.Errorf("lease %s: %w", name, ErrLeased)
	}
	return func() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		s.exec(ctx, `DELETE FROM leases WHERE name = ? AND owner = ?`, name, owner)
	}, nil
}

// Wait puts a claimed delivery back, to be claimed again once after has
// passed: its answer is to be tried again then. It fails with
// ErrLeaseLost when the claim is no longer this worker's.
func (s *Store) Wait(ctx context.Context, d *Delivery, after time.Duration, errMsg string) error {
	until := s.dialect.timeArg(s.now().Add(after))
	if s.dialect == postgresDialect {
		until = after.Seconds()
	}
	res, err := s.exec(ctx, s.dialect.wait, until, errMsg, d.Seq, d.Attempts)
	if err != nil {
		return fmt.Errorf("delivery %s: wait for a later try: %w", d.ID, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("delivery %s: wait for a later try: %w", d.ID, ErrLeaseLost)
	}
	return nil
}

// Waiting counts the deliveries waiting to try their answer again, and
// says when the oldest of them was received.
func (s *Store) Waiting(ctx context.Context) (n int, oldest time.Time, err error) {
	var first dbTime
	var min sql.NullString
	if s.dialect == postgresDialect {
		var t sql.NullTime
		err = s.queryRow(ctx, `SELECT COUNT(*), MIN(received_at) FROM deliveries WHERE state IN ('queued', 'working', 'waiting') AND state = 'waiting'`).Scan(&n, &t)
		return n, t.Time, err
	}
	err = s.queryRow(ctx, `SELECT COUNT(*), MIN(received_at) FROM deliveries WHERE state IN ('queued', 'working', 'waiting') AND state = 'waiting'`).Scan(&n, &min)
	if err == nil && min.Valid {
		err = first.parse(min.String)
	}
	return n, first.Time, err
}

// QueueDepth counts the deliveries not yet processed.
func (s *Store) QueueDepth(ctx context.Context) (int, error) {
	var n int
	err := s.queryRow(ctx, `SELECT COUNT(*) FROM deliveries WHERE state IN ('queued', 'working')`).Scan(&n)
	return n, err
}

// DeliveryState returns a delivery's state ("" when unknown).
func (s *Store) DeliveryState(ctx context.Context, id string) (string, error) {
	var state string
	err := s.queryRow(ctx, `SELECT state FROM deliveries WHERE delivery_id = ?`, id).Scan(&state)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	return state, err
}

// Writable checks that the database takes the write a delivery's
// enqueue makes: a row of the deliveries queue, inserted (and deleted
// again) through the same group commit. A probe of another table said
// writable while every enqueue failed.
func (s *Store) Writable(ctx context.Context) error {
	if err := s.ckptErr.Load(); err != nil {
		return *err
	}
	wctx := context.WithoutCancel(ctx)
	probe := healthProbeID + "-" + s.owner
	return s.groupWrite(ctx, func(tx *sql.Tx) error {
		ctx := wctx
		args := []any{probe, "health", s.dialect.timeArg(s.now()), "health"}
		if s.dialect.enqueuePayload == "" {
			args = append(args, []byte("{}"))
		}
		if _, err := s.txExec(ctx, tx, s.dialect.enqueue, args...); err != nil {
			return err
		}
		_, err := s.txExec(ctx, tx, `DELETE FROM deliveries WHERE delivery_id = ?`, probe)
		return err
	})
}

// healthProbeID begins the delivery id of Writable's probe row, one per
// process (replicas probing at once do not wait on one another's row);
// GitHub's ids are UUIDs.
const healthProbeID = "gitpoli-health-probe"
