package audit

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// dialect is where SQLite and PostgreSQL differ: placeholders, how times
// are stored, how a delivery is claimed, and locks that only a database
// shared by several processes needs.
type dialect struct {
	name string
	// numbered placeholders ($1, $2, ...) instead of ?
	numbered bool
	// claim takes the next claimable delivery (args: lease, owner[, now]).
	claim string
	// enqueue stores a received delivery once (args: delivery id, event,
	// received at[, payload]).
	enqueue string
	// enqueuePayload stores a new delivery's payload apart from its row
	// (args: seq, payload; empty: the row holds it).
	enqueuePayload string
	// renew extends a lease (args: lease, seq, attempts).
	renew string
	// wait puts a claimed delivery back to wait for a later try at its
	// answer.
	wait string
	// lease takes or renews a named lease (TryLease).
	lease string
	// tableExists counts tables of a name (arg: name).
	tableExists string
	// lockMigrations and unlockMigrations bracket migrations (empty: no
	// lock needed).
	lockMigrations, unlockMigrations string
	// lockDeployDay serializes the daily deployment count of one
	// environment across processes (empty: the write transaction does).
	lockDeployDay string
	// forUpdate locks the rows a select reads (empty: the write
	// transaction does).
	forUpdate string
	// clock reads the database's time (empty: the process's clock).
	clock string
	// prepare keeps statements prepared (see Store.stmts).
	prepare bool
}

// sqliteTime is a fixed-width UTC timestamp, so that text order is time
// order.
const sqliteTime = "2006-01-02T15:04:05.000000000Z"

var sqliteDialect = &dialect{
	name: "sqlite",
	// The write transaction (BEGIN IMMEDIATE) makes the select and the
	// update one step.
	claim: `UPDATE deliveries SET state = 'working', attempts = attempts + 1, lease_until = ?, claimed_by = ?
		WHERE seq = (SELECT seq FROM deliveries WHERE state IN ('queued', 'working', 'waiting') AND (state = 'queued' OR lease_until < ?) ORDER BY seq LIMIT 1)
		RETURNING seq, delivery_id, event, (SELECT payload FROM delivery_payloads p WHERE p.seq = deliveries.seq), received_at, attempts, answer_tries`,
	// SQLite rewrites a whole row on every update: the payload is kept
	// apart, so that claims and finishes do not rewrite it (migration
	// 0005). PostgreSQL stores a large value out of line, and an update
	// that leaves it alone does not copy it.
	enqueue:        `INSERT INTO deliveries (delivery_id, event, received_at, origin) VALUES (?, ?, ?, ?) ON CONFLICT (delivery_id) DO NOTHING`,
	enqueuePayload: `INSERT INTO delivery_payloads (seq, payload) VALUES (?, ?)`,
	renew:          `UPDATE deliveries SET lease_until = ? WHERE seq = ? AND attempts = ? AND state = 'working'`,
	lease: `INSERT INTO leases (name, owner, until) VALUES (?, ?, ?) ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, until = excluded.until
		WHERE leases.until < ? OR leases.owner = excluded.owner`,
	wait:        `UPDATE deliveries SET state = 'waiting', lease_until = ?, claimed_by = '', answer_tries = answer_tries + 1, last_error = ? WHERE seq = ? AND attempts = ? AND state = 'working'`,
	tableExists: `SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = ?`,
	prepare:     true,
}

var postgresDialect = &dialect{
	name:     "postgres",
	numbered: true,
	// SKIP LOCKED: replicas claiming at the same moment take different
	// deliveries instead of queueing on one row. Leases run on the
	// database's clock.
	claim: `UPDATE deliveries SET state = 'working', attempts = attempts + 1, lease_until = now() + make_interval(secs => ?), claimed_by = ?
		WHERE seq = (SELECT seq FROM deliveries WHERE state IN ('queued', 'working', 'waiting') AND (state = 'queued' OR lease_until < now())
			ORDER BY seq LIMIT 1 FOR UPDATE SKIP LOCKED)
		RETURNING seq, delivery_id, event, payload, received_at, attempts, answer_tries`,
	enqueue: `INSERT INTO deliveries (delivery_id, event, received_at, origin, payload) VALUES (?, ?, ?, ?, ?) ON CONFLICT (delivery_id) DO NOTHING`,
	renew:   `UPDATE deliveries SET lease_until = now() + make_interval(secs => ?) WHERE seq = ? AND attempts = ? AND state = 'working'`,
	lease: `INSERT INTO leases (name, owner, until) VALUES (?, ?, now() + make_interval(secs => ?)) ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, until = excluded.until
		WHERE leases.until < now() OR leases.owner = excluded.owner`,
	wait:             `UPDATE deliveries SET state = 'waiting', lease_until = now() + make_interval(secs => ?), claimed_by = '', answer_tries = answer_tries + 1, last_error = ? WHERE seq = ? AND attempts = ? AND state = 'working'`,
	tableExists:      `SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = current_schema() AND table_name = $1`,
	lockMigrations:   `SELECT pg_advisory_lock(7407287761)`,
	unlockMigrations: `SELECT pg_advisory_unlock(7407287761)`,
	// Held to the end of the transaction: a second replica deciding a
	// deployment to the same environment waits, then counts the first's.
	lockDeployDay: `SELECT pg_advisory_xact_lock(hashtextextended(? || '/' || ? || '/' || ?, 0))`,
	forUpdate:     ` FOR UPDATE`,
	clock:         `SELECT now()`,
}

// rebind turns ? placeholders into the dialect's.
func (d *dialect) rebind(q string) string {
	if !d.numbered || !strings.Contains(q, "?") {
		return q
	}
	var b strings.Builder
	n := 0
	for _, r := range q {
		if r == '?' {
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// timeArg is t as the dialect stores it.
func (d *dialect) timeArg(t time.Time) any {
	if d.numbered {
		return t.UTC()
	}
	return t.UTC().Format(sqliteTime)
}

// dayArg is t's UTC date as the dialect stores it.
func (d *dialect) dayArg(t time.Time) any {
	return t.UTC().Format("2006-01-02")
}

// dbTime scans a timestamp from either backend: SQLite returns text,
// PostgreSQL a time.
type dbTime struct{ time.Time }

func (t *dbTime) Scan(src any) error {
	switch v := src.(type) {
	case nil:
		t.Time = time.Time{}
	case time.Time:
		t.Time = v.UTC()
	case string:
		return t.parse(v)
	case []byte:
		return t.parse(string(v))
	default:
		return fmt.Errorf("timestamp: unexpected %T", src)
	}
	return nil
}

func (t *dbTime) parse(s string) error {
	if s == "" {
		t.Time = time.Time{}
		return nil
	}
	v, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return fmt.Errorf("timestamp %q: %w", s, err)
	}
	t.Time = v
	return nil
}

func randomOwner() string {
	b := make([]byte, 6)
	rand.Read(b)
	return hex.EncodeToString(b)
}
