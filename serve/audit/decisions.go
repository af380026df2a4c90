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
	return s.insert(ctx, nil, r)
}

// InsertBatched stores a decision like Insert, committing it together
// with the writes other requests make at the same moment (group commit):
// one transaction for many, so a burst does not queue on the database's
// write lock. It returns once the record is durable.
func (s *Store) InsertBatched(ctx context.Context, r *Record) error {
	wctx := context.WithoutCancel(ctx)
	return s.groupWrite(ctx, func(tx *sql.Tx) error { return s.insert(wctx, tx, r) })
}

const insertDecision = `
		INSERT INTO decisions (id, time, day, delivery_id, repo, policy, decision, violations, actor, source,
			event, environment, ref, sha, input, input_hash, policy_hash, detail,
			shadow_decision, shadow_violations, shadow_policy_hash, disagree)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`

// NewID returns a time-ordered UUID (version 7), as Insert gives a record
// without one: consecutive decisions land on the last page of the id
// index, instead of each on a random page of it that the commit must then
// write. A caller that names the record before storing it (a check run's
// summary carries its audit id) takes one here.
func NewID() string {
	if id, err := uuid.NewV7(); err == nil {
		return id.String()
	}
	return uuid.NewString()
}

// insert records r, within tx when it is not nil.
func (s *Store) insert(ctx context.Context, tx *sql.Tx, r *Record) error {
	if r.ID == "" {
		r.ID = NewID()
	}
	if r.Time.IsZero() {
		r.Time = s.now().UTC()
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
	args := []any{r.ID, s.dialect.timeArg(r.Time), s.dialect.dayArg(r.Time), r.DeliveryID, r.Repo,
		r.Policy, r.Decision, string(r.Violations), r.Actor, r.Source, r.Event, r.Environment, r.Ref, r.SHA,
		string(r.Input), r.InputHash, r.PolicyHash, string(r.Detail),
		sh.Decision, string(sh.Violations), sh.PolicyHash, sh.Disagree}
	var err error
	if tx != nil {
		_, err = s.txExec(ctx, tx, insertDecision, args...)
	} else {
		_, err = s.exec(ctx, insertDecision, args...)
	}
	if err != nil {
		return fmt.Errorf("record decision: %w", err)
	}
	return nil
}

// DeployGate counts and records deployment decisions for one repository
// environment under a single write transaction, so that two deployments
// decided at the same moment cannot both pass a daily limit.
type DeployGate struct {
	tx *sql.Tx
	s  *Store
	// at is the decision's time, read once: the day counted is the day
	// recorded.
	at     time.Time
	unlock func() // the store's turn to write (Store.lockWrites)
}

// BeginDeploy starts a deployment decision for the claimed delivery d
// (nil for a decision that is not a delivery's): the write lock is held
// until Commit or Rollback. It fails with ErrLeaseLost when the claim on d
// is no longer the caller's, and while the gate is open no other worker
// can claim d — so a worker whose lease ran out can never decide a
// delivery that another has taken over.
func (s *Store) BeginDeploy(ctx context.Context, d *Delivery) (*DeployGate, error) {
	var opts *sql.TxOptions
	if s.dialect.lockDeployDay != "" {
		// The count must see the deployments committed while this
		// transaction waited for the environment's lock: a snapshot per
		// statement, whatever the database's default isolation.
		opts = &sql.TxOptions{Isolation: sql.LevelReadCommitted}
	}
	unlock, err := s.lockWrites(ctx)
	if err != nil {
		return nil, fmt.Errorf("begin deployment decision: %w", err)
	}
	tx, err := s.db.BeginTx(ctx, opts)
	if err != nil {
		unlock()
		return nil, fmt.Errorf("begin deployment decision: %w", err)
	}
	g := &DeployGate{tx: tx, s: s, at: s.now().UTC(), unlock: unlock}
	if s.dialect.clock != "" {
		// One clock for every replica: the database's.
		var at dbTime
		if err := tx.QueryRowContext(ctx, s.dialect.clock).Scan(&at); err != nil {
			g.Rollback()
			return nil, fmt.Errorf("begin deployment decision: %w", err)
		}
		g.at = at.Time
	}
	if d != nil {
		var one int
		err := tx.QueryRowContext(ctx, s.dialect.rebind(`SELECT 1 FROM deliveries WHERE seq = ? AND attempts = ? AND state = 'working'`+s.dialect.forUpdate),
			d.Seq, d.Attempts).Scan(&one)
		if err != nil {
			g.Rollback()
			if errors.Is(err, sql.ErrNoRows) {
				err = ErrLeaseLost
			}
			return nil, fmt.Errorf("decide delivery %s: %w", d.ID, err)
		}
	}
	return g, nil
}

// ApprovedToday counts the deployments to repo's environment approved on
// the current UTC day: those that every one of the deployment policies
// named allowed (a deployment is approved only when all of them allow),
// other than the delivery being decided (decided again after a restart,
// its earlier decisions are in the log). Until the gate ends, no other
// process counts them: on PostgreSQL it holds a lock on that
// environment's day.
func (g *DeployGate) ApprovedToday(ctx context.Context, repo, environment string, policies []string, deliveryID string) (int, error) {
	if len(policies) == 0 {
		return 0, nil
	}
	d, day := g.s.dialect, g.s.dialect.dayArg(g.at)
	if d.lockDeployDay != "" {
		if _, err := g.tx.ExecContext(ctx, d.rebind(d.lockDeployDay), repo, environment, day); err != nil {
			return 0, fmt.Errorf("lock deployments of %s/%s: %w", repo, environment, err)
		}
	}
	var n int
	var err error
	if len(policies) == 1 {
		// One deployment policy, one record a deployment: its allows,
		// counted on the decisions_deploys index (a count for every
		// deployment, so it has to stay cheap as the day's log grows).
		err = g.tx.QueryRowContext(ctx, d.rebind(`
			SELECT COUNT(*) FROM decisions
			WHERE repo = ? AND environment = ? AND day = ? AND policy = ? AND decision = 'allow' AND source = 'webhook'
			AND (? = '' OR delivery_id <> ?)`),
			repo, environment, day, policies[0], deliveryID, deliveryID).Scan(&n)
	} else {
		// Several: the deployments one of them allowed and none of them
		// did not (a probe of the delivery index for each allow).
		marks := strings.TrimSuffix(strings.Repeat("?, ", len(policies)), ", ")
		args := []any{repo, environment, day}
		for _, p := range policies {
			args = append(args, p)
		}
		args = append(args, deliveryID, deliveryID)
		for _, p := range policies {
			args = append(args, p)
		}
		// o.delivery_id <> '' stated on o itself lets both databases use
		// the partial decisions_delivery index.
		err = g.tx.QueryRowContext(ctx, d.rebind(`
			SELECT COUNT(DISTINCT COALESCE(NULLIF(a.delivery_id, ''), a.id)) FROM decisions a
			WHERE a.repo = ? AND a.environment = ? AND a.day = ? AND a.policy IN (`+marks+`) AND a.decision = 'allow' AND a.source = 'webhook'
			AND (? = '' OR a.delivery_id <> ?)
			AND NOT EXISTS (
				SELECT 1 FROM decisions o
				WHERE a.delivery_id <> '' AND o.delivery_id <> '' AND o.delivery_id = a.delivery_id AND o.day = a.day
				AND o.policy IN (`+marks+`) AND o.decision <> 'allow' AND o.source = 'webhook'
			)`),
			args...).Scan(&n)
	}
	if err != nil {
		return 0, fmt.Errorf("count deployments today: %w", err)
	}
	return n, nil
}

// Insert records the decision within the gate's transaction, at the
// gate's time.
func (g *DeployGate) Insert(ctx context.Context, r *Record) error {
	if r.Time.IsZero() {
		r.Time = g.at
	}
	return g.s.insert(ctx, g.tx, r)
}

// Commit ends the gate, keeping what it recorded.
func (g *DeployGate) Commit() error {
	defer g.end()
	return g.tx.Commit()
}

// Rollback ends the gate without recording.
func (g *DeployGate) Rollback() error {
	defer g.end()
	return g.tx.Rollback()
}

// end gives up the gate's turn to write, once.
func (g *DeployGate) end() {
	if g.unlock != nil {
		g.unlock()
		g.unlock = nil
	}
}

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
	where, args := s.where(f)
	if f.Cursor != "" {
		seq, err := decodeCursor(f.Cursor)
		if err != nil {
			return Page{}, err
		}
		where, args = append(where, "seq < ?"), append(args, seq)
	}
	q := "SELECT " + recordColumns + " FROM decisions"
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += " ORDER BY seq DESC LIMIT ?"
	args = append(args, f.Limit+1)
	rows, err := s.query(ctx, q, args...)
	if err != nil {
		return Page{}, fmt.Errorf("query decisions: %w", err)
	}
	defer rows.Close()
	page := Page{Records: []Record{}}
	var lastSeq int64
	size := 0
	for rows.Next() {
		r, seq, err := scanRecord(rows)
		if err != nil {
			return Page{}, err
		}
		// A page ends at its row count, or sooner at MaxPageBytes: records
		// carry whole input documents, and a page must stay a size a
		// client reads (the first record is always given).
		n := len(r.Input) + len(r.Violations) + len(r.Detail) + 512
		if len(page.Records) == f.Limit || (len(page.Records) > 0 && size+n > MaxPageBytes) {
			page.NextCursor = encodeCursor(lastSeq)
			break
		}
		size += n
		page.Records = append(page.Records, r)
		lastSeq = seq
	}
	return page, rows.Err()
}

// MaxPageBytes bounds a page of the audit API about: its records' input
// documents, violations and details together.
const MaxPageBytes = 8 << 20

// where turns a filter's conditions into SQL.
func (s *Store) where(f Filter) ([]string, []any) {
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
		add("time >= ?", s.dialect.timeArg(f.Since))
	}
	if f.Disagree {
		// Written as the partial index's condition, so that SQLite and
		// PostgreSQL both use that index.
		where = append(where, "disagree")
	}
	return where, args
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
	var t dbTime
	var violations, input, detail, shDecision, shViolations, shHash string
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
	r.Time = t.Time
	r.Violations, r.Input, r.Detail = json.RawMessage(violations), json.RawMessage(input), json.RawMessage(detail)
	return r, seq, nil
}

// Get returns one record.
func (s *Store) Get(ctx context.Context, id string) (Record, error) {
	r, _, err := scanRecord(s.queryRow(ctx, "SELECT "+recordColumns+" FROM decisions WHERE id = ?", id))
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
		rows, err := s.query(ctx, "SELECT "+col+", COUNT(*) FROM decisions WHERE "+col+" <> '' GROUP BY "+col)
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
	err := s.queryRow(ctx, "SELECT COUNT(*) FROM decisions").Scan(&sum.Total)
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
	if _, err := s.exec(ctx, q, args...); err != nil {
		return fmt.Errorf("annotate decision %s: %w", id, err)
	}
	return nil
}

// ParseSince reads a "since" of the audit API and gitpoli backtest alike:
// an RFC 3339 time (2026-11-25T00:00:00Z), or a duration back from now
// (168h, 30m).
func ParseSince(s string, now time.Time) (time.Time, error) {
	if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		return now.Add(-d), nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("since %q: want an RFC 3339 time (2026-11-25T00:00:00Z) or a duration back from now (168h)", s)
}

// SetShadow records the candidate policies' decision beside a recorded
// one: a deployment's shadow is decided after its gate, so that the
// candidates' evaluation never holds the gate's transaction.
func (s *Store) SetShadow(ctx context.Context, id string, sh *Shadow) error {
	violations := sh.Violations
	if len(violations) == 0 {
		violations = json.RawMessage("[]")
	}
	q := `UPDATE decisions SET shadow_decision = ?, shadow_violations = ?, shadow_policy_hash = ?, disagree = ? WHERE id = ?`
	if _, err := s.exec(ctx, q, sh.Decision, string(violations), sh.PolicyHash, sh.Disagree, id); err != nil {
		return fmt.Errorf("record shadow decision of %s: %w", id, err)
	}
	return nil
}

// Each calls fn for every record matching f (Limit and Cursor ignored),
// oldest first, reading rows as it goes so memory stays constant.
func (s *Store) Each(ctx context.Context, f Filter, fn func(Record) error) error {
	where, args := s.where(f)
	q := "SELECT " + recordColumns + " FROM decisions"
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	rows, err := s.query(ctx, q+" ORDER BY seq", args...)
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

// Latest returns the newest decision of a policy on a commit of a
// repository, or nil.
func (s *Store) Latest(ctx context.Context, repo, sha, policy string) (*Record, error) {
	row := s.queryRow(ctx, "SELECT "+recordColumns+" FROM decisions WHERE policy = ? AND repo = ? AND sha = ? ORDER BY seq DESC LIMIT 1", policy, repo, sha)
	r, _, err := scanRecord(row)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("latest decision of %s on %s@%s: %w", policy, repo, sha, err)
	}
	return &r, nil
}

// ForDelivery returns the decisions recorded for a delivery, oldest first:
// a delivery claimed again after its worker died is answered with the
// decisions already made, never decided twice.
func (s *Store) ForDelivery(ctx context.Context, deliveryID string) ([]Record, error) {
	rows, err := s.query(ctx, "SELECT "+recordColumns+" FROM decisions WHERE delivery_id = ? ORDER BY seq", deliveryID)
	if err != nil {
		return nil, fmt.Errorf("decisions of delivery %s: %w", deliveryID, err)
	}
	defer rows.Close()
	var out []Record
	for rows.Next() {
		r, _, err := scanRecord(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}
