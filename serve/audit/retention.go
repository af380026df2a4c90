package audit

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// MinRetention is the shortest retention Prune accepts. The daily
// deployment limit counts today's approvals from the log, and GitHub lets
// a delivery be redelivered for days: a shorter retention would forget
// approvals the limit still counts, or delivery ids that must not be
// acted on again.
const MinRetention = 7 * 24 * time.Hour

// pruneBatch bounds one delete, so that pruning a large backlog never
// holds a write lock for long.
const pruneBatch = 1000

// Prune deletes the decisions, and the processed deliveries, recorded
// before now minus retention, a batch per transaction so that writes go
// on between batches. It returns how many of each it deleted.
func (s *Store) Prune(ctx context.Context, retention time.Duration) (decisions, deliveries int, err error) {
	if retention < MinRetention {
		return 0, 0, fmt.Errorf("audit retention %s is shorter than 7 days: the daily deployment limit and redelivered deliveries need what it would delete", retention)
	}
	before := s.dialect.timeArg(s.now().Add(-retention))
	for _, t := range []struct {
		n     *int
		query string
	}{
		{&decisions, `DELETE FROM decisions WHERE seq IN (SELECT seq FROM decisions WHERE time < ? ORDER BY seq LIMIT ?)`},
		// Unprocessed deliveries stay whatever their age: nothing
		// received is dropped before it is decided.
		{&deliveries, `DELETE FROM deliveries WHERE seq IN (SELECT seq FROM deliveries WHERE received_at < ? AND state IN ('done', 'error') ORDER BY seq LIMIT ?)`},
	} {
		for {
			res, err := s.exec(ctx, t.query, before, pruneBatch)
			if err != nil {
				return decisions, deliveries, fmt.Errorf("prune audit log: %w", err)
			}
			n, _ := res.RowsAffected()
			*t.n += int(n)
			if n < pruneBatch {
				break
			}
			select {
			case <-ctx.Done():
				return decisions, deliveries, ctx.Err()
			case <-time.After(10 * time.Millisecond): // let queued writes in
			}
		}
	}
	return decisions, deliveries, nil
}

// ParseRetention reads a retention period: a number of days ("400d") or a
// Go duration ("72h").
func ParseRetention(s string) (time.Duration, error) {
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil || n <= 0 {
			return 0, fmt.Errorf("retention %q: want a number of days like 400d, or a duration like 72h", s)
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("retention %q: want a number of days like 400d, or a duration like 72h", s)
	}
	return d, nil
}
