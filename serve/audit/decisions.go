package audit

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
)

// Record is one audited decision.
type Record struct {
	ID          string          `json:"id"`
	Time        time.Time       `json:"time"`
	DeliveryID  string          `json:"delivery_id,omitempty"`
	Repo        string          `json:"repo,omitempty"`
	Policy      string          `json:"policy"`
	Decision    string          `json:"decision"` // allow | deny | error
	Violations  json.RawMessage `json:"violations"`
	Actor       string          `json:"actor,omitempty"`
	Source      string          `json:"source"` // webhook | api
	Event       string          `json:"event,omitempty"`
	Environment string          `json:"environment,omitempty"`
	Ref         string          `json:"ref,omitempty"`
	SHA         string          `json:"sha,omitempty"`
	Input       json.RawMessage `json:"input"`
	InputHash   string          `json:"input_hash"`
	PolicyHash  string          `json:"policy_hash"`
	// Detail holds what happened around the decision: where the config came
	// from, the callback or check run and its answer, errors.
	Detail json.RawMessage `json:"detail,omitempty"`
	// Shadow is the candidate policies' decision, in shadow mode.
	Shadow *Shadow `json:"shadow,omitempty"`
}

// Shadow is a decision made by candidate policies and not enforced.
type Shadow struct {
	Decision   string          `json:"decision"`
	Violations json.RawMessage `json:"violations"`
	PolicyHash string          `json:"policy_hash"`
	// Disagree is set when the verdict or the violation codes differ from
	// the enforced decision's.
	Disagree bool `json:"disagree"`
}

// ErrNotFound is returned for an unknown record id.
var ErrNotFound = errors.New("no such record")

// Insert stores a decision and returns its id. Time and ID are set when
// zero.
func (s *Store) Insert(ctx context.Context, r *Record) error {
	return insert(ctx, s.db, s.now, r)
}

// InsertBatched stores a decision like Insert, committing it together
// with the writes other requests make at the same moment (group commit):
// one transaction for many, so a burst does not queue on the database's
// write lock. It returns once the record is durable.
func (s *Store) InsertBatched(ctx context.Context, r *Record) error {
	return s.groupWrite(ctx, func(tx *sql.Tx) error { return insert(ctx, tx, s.now, r) })
}

type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

func insert(ctx context.Context, db execer, now func() time.Time, r *Record) error {
	if r.ID == "" {
		r.ID = uuid.NewString()
	}
	if r.Time.IsZero() {
		r.Time = now().UTC()
	}
	if len(r.Violations) == 0 {
		r.Violations = json.RawMessage("[]")
	}
	if len(r.Input) == 0 {
		r.Input = json.RawMessage("{}")
	}
	if r.InputHash == "" {
		sum := sha256.Sum256(r.Input)
		r.InputHash = hex.EncodeToString(sum[:8])
	}
	if len(r.Detail) == 0 {
		r.Detail = json.RawMessage("{}")
	}
	sh := Shadow{Violations: json.RawMessage("[]")}
	if r.Shadow != nil {
		sh = *r.Shadow
		if len(sh.Violations) == 0 {
			sh.Violations = json.RawMessage("[]")
		}
	}
	_, err := db.ExecContext(ctx, `
		INSERT INTO decisions (id, time, day, delivery_id, repo, policy, decision, violations, actor, source,
			event, environment, ref, sha, input, input_hash, policy_hash, detail,
			shadow_decision, shadow_violations, shadow_policy_hash, disagree)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		r.ID, r.Time.UTC().Format(time.RFC3339Nano), r.Time.UTC().Format("2006-01-02"), r.DeliveryID, r.Repo,
		r.Policy, r.Decision, string(r.Violations), r.Actor, r.Source, r.Event, r.Environment, r.Ref, r.SHA,
		string(r.Input), r.InputHash, r.PolicyHash, string(r.Detail),
		sh.Decision, string(sh.Violations), sh.PolicyHash, sh.Disagree)
	if err != nil {
		return fmt.Errorf("record decision: %w", err)
	}
	return nil
}

// DeployGate counts and records deployment decisions for one repository
// environment under a single write transaction, so that two deployments
// decided at the same moment cannot both pass a daily limit.
type DeployGate struct {
	tx  *sql.Tx
	now func() time.Time
}

// BeginDeploy starts a deployment decision: the write lock is held until
// Commit or Rollback.
func (s *Store) BeginDeploy(ctx context.Context) (*DeployGate, error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("begin deployment decision: %w", err)
	}
	return &DeployGate{tx: tx, now: s.now}, nil
}

// ApprovedToday counts the deployments to repo's environment approved on
// the current UTC day.
func (g *DeployGate) ApprovedToday(ctx context.Context, repo, environment string) (int, error) {
	var n int
	err := g.tx.QueryRowContext(ctx, `
		SELECT COUNT(*) FROM decisions
		WHERE repo = ? AND environment = ? AND day = ? AND policy = 'deploy' AND decision = 'allow' AND source = 'webhook'`,
		repo, environment, g.now().UTC().Format("2006-01-02")).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("count deployments today: %w", err)
	}
	return n, nil
}

// Insert records the decision within the gate's transaction.
func (g *DeployGate) Insert(ctx context.Context, r *Record) error { return insert(ctx, g.tx, g.now, r) }

// Commit ends the gate, keeping what it recorded.
func (g *DeployGate) Commit() error { return g.tx.Commit() }

// Rollback ends the gate without recording.
func (g *DeployGate) Rollback() error { return g.tx.Rollback() }

// Filter selects records for Query.
type Filter struct {
	Limit       int
	Policy      string
	Decision    string
	Environment string
	Repo        string
	Since       time.Time
	// Disagree keeps only decisions where the shadow policies disagreed.
	Disagree bool
	// Cursor continues a previous page (the NextCursor it returned).
	Cursor string
}

// Page is one page of records, newest first.
type Page struct {
	Records    []Record `json:"records"`
	NextCursor string   `json:"next_cursor,omitempty"`
}

const recordColumns = `seq, id, time, delivery_id, repo, policy, decision, violations, actor, source, event,
	environment, ref, sha, input, input_hash, policy_hash, detail, shadow_decision, shadow_violations,
	shadow_policy_hash, disagree`

// Query lists records matching f, newest first. Pages are cut by a cursor
// on the insertion order, so a page is stable while new records arrive.
func (s *Store) Query(ctx context.Context, f Filter) (Page, error) {
	var where []string
	var args []any
	add := func(cond string, v any) {
		where = append(where, cond)
		args = append(args, v)
	}
	if f.Policy != "" {
		add("policy = ?", f.Policy)
	}
	if f.Decision != "" {
		add("decision = ?", f.Decision)
	}
	if f.Environment != "" {
		add("environment = ?", f.Environment)
	}
	if f.Repo != "" {
		add("repo = ?", f.Repo)
	}
	if !f.Since.IsZero() {
		add("time >= ?", f.Since.UTC().Format(time.RFC3339Nano))
	}
	if f.Disagree {
		add("disagree = ?", 1)
	}
	if f.Cursor != "" {
		seq, err := decodeCursor(f.Cursor)
		if err != nil {
			return Page{}, err
		}
		add("seq < ?", seq)
	}
	q := "SELECT " + recordColumns + " FROM decisions"
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += " ORDER BY seq DESC LIMIT ?"
	args = append(args, f.Limit+1)
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return Page{}, fmt.Errorf("query decisions: %w", err)
	}
	defer rows.Close()
	page := Page{Records: []Record{}}
	var lastSeq int64
	for rows.Next() {
		r, seq, err := scanRecord(rows)
		if err != nil {
			return Page{}, err
		}
		if len(page.Records) == f.Limit {
			page.NextCursor = encodeCursor(lastSeq)
			break
		}
		page.Records = append(page.Records, r)
		lastSeq = seq
	}
	return page, rows.Err()
}

// ErrBadCursor is returned for a cursor that Query did not make.
var ErrBadCursor = errors.New("bad cursor")

func encodeCursor(seq int64) string {
	return base64.RawURLEncoding.EncodeToString([]byte("s" + strconv.FormatInt(seq, 10)))
}

func decodeCursor(c string) (int64, error) {
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil || len(b) < 2 || b[0] != 's' {
		return 0, ErrBadCursor
	}
	seq, err := strconv.ParseInt(string(b[1:]), 10, 64)
	if err != nil {
		return 0, ErrBadCursor
	}
	return seq, nil
}

type scanner interface{ Scan(dest ...any) error }

func scanRecord(sc scanner) (Record, int64, error) {
	var r Record
	var seq int64
	var t, violations, input, detail, shDecision, shViolations, shHash string
	var disagree bool
	err := sc.Scan(&seq, &r.ID, &t, &r.DeliveryID, &r.Repo, &r.Policy, &r.Decision, &violations, &r.Actor, &r.Source,
		&r.Event, &r.Environment, &r.Ref, &r.SHA, &input, &r.InputHash, &r.PolicyHash, &detail,
		&shDecision, &shViolations, &shHash, &disagree)
	if err != nil {
		return r, 0, err
	}
	if shDecision != "" {
		r.Shadow = &Shadow{Decision: shDecision, Violations: json.RawMessage(shViolations), PolicyHash: shHash, Disagree: disagree}
	}
	r.Time, _ = time.Parse(time.RFC3339Nano, t)
	r.Violations, r.Input, r.Detail = json.RawMessage(violations), json.RawMessage(input), json.RawMessage(detail)
	return r, seq, nil
}

// Get returns one record.
func (s *Store) Get(ctx context.Context, id string) (Record, error) {
	r, _, err := scanRecord(s.db.QueryRowContext(ctx, "SELECT "+recordColumns+" FROM decisions WHERE id = ?", id))
	if errors.Is(err, sql.ErrNoRows) {
		return Record{}, ErrNotFound
	}
	if err != nil {
		return Record{}, fmt.Errorf("get decision %s: %w", id, err)
	}
	return r, nil
}

// Summary counts records.
type Summary struct {
	Total         int            `json:"total"`
	ByDecision    map[string]int `json:"by_decision"`
	ByPolicy      map[string]int `json:"by_policy"`
	ByEnvironment map[string]int `json:"by_environment"`
}

// Summarize counts every record by decision, policy and environment.
func (s *Store) Summarize(ctx context.Context) (Summary, error) {
	sum := Summary{ByDecision: map[string]int{}, ByPolicy: map[string]int{}, ByEnvironment: map[string]int{}}
	for col, m := range map[string]map[string]int{"decision": sum.ByDecision, "policy": sum.ByPolicy, "environment": sum.ByEnvironment} {
		rows, err := s.db.QueryContext(ctx, "SELECT "+col+", COUNT(*) FROM decisions WHERE "+col+" != '' GROUP BY "+col)
		if err != nil {
			return sum, fmt.Errorf("summarize decisions: %w", err)
		}
		for rows.Next() {
			var k string
			var n int
			if err := rows.Scan(&k, &n); err != nil {
				rows.Close()
				return sum, err
			}
			m[k] = n
		}
		rows.Close()
	}
	err := s.db.QueryRowContext(ctx, "SELECT COUNT(*) FROM decisions").Scan(&sum.Total)
	return sum, err
}

// Annotate replaces a record's detail, and its decision when decision is
// not empty: what GitHub answered happens after the decision is recorded,
// and a failed answer turns the record into an "error" outcome.
func (s *Store) Annotate(ctx context.Context, id, decision string, detail json.RawMessage) error {
	q := `UPDATE decisions SET detail = ? WHERE id = ?`
	args := []any{string(detail), id}
	if decision != "" {
		q = `UPDATE decisions SET detail = ?, decision = ? WHERE id = ?`
		args = []any{string(detail), decision, id}
	}
	if _, err := s.db.ExecContext(ctx, q, args...); err != nil {
		return fmt.Errorf("annotate decision %s: %w", id, err)
	}
	return nil
}

// OpenReadOnly opens an audit database for reading only: backtests and
// reports never change what was recorded.
func OpenReadOnly(ctx context.Context, path string) (*Store, error) {
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro&_pragma=busy_timeout(10000)")
	if err != nil {
		return nil, fmt.Errorf("open audit db %s: %w", path, err)
	}
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("open audit db %s: %w", path, err)
	}
	var n int
	if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM sqlite_master WHERE name = 'decisions'`).Scan(&n); err != nil || n == 0 {
		db.Close()
		return nil, fmt.Errorf("open audit db %s: not a gitpoli audit database", path)
	}
	return &Store{db: db, now: time.Now}, nil
}

// Each calls fn for every record matching f (Limit and Cursor ignored),
// oldest first, reading rows as it goes so memory stays constant.
func (s *Store) Each(ctx context.Context, f Filter, fn func(Record) error) error {
	var where []string
	var args []any
	if f.Policy != "" {
		where, args = append(where, "policy = ?"), append(args, f.Policy)
	}
	if f.Decision != "" {
		where, args = append(where, "decision = ?"), append(args, f.Decision)
	}
	if f.Environment != "" {
		where, args = append(where, "environment = ?"), append(args, f.Environment)
	}
	if f.Repo != "" {
		where, args = append(where, "repo = ?"), append(args, f.Repo)
	}
	if !f.Since.IsZero() {
		where, args = append(where, "time >= ?"), append(args, f.Since.UTC().Format(time.RFC3339Nano))
	}
	if f.Disagree {
		where, args = append(where, "disagree = ?"), append(args, 1)
	}
	q := "SELECT " + recordColumns + " FROM decisions"
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	rows, err := s.db.QueryContext(ctx, q+" ORDER BY seq", args...)
	if err != nil {
		return fmt.Errorf("read decisions: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		r, _, err := scanRecord(rows)
		if err != nil {
			return err
		}
		if err := fn(r); err != nil {
			return err
		}
	}
	return rows.Err()
}
