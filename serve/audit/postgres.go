package audit

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
)

// openPostgres connects a pgx pool to the database at dsn (a postgres://
// URL; libpq's parameters and PG* environment variables apply).
func openPostgres(ctx context.Context, dsn string, readOnly bool) (*Store, error) {
	name := Redact(dsn)
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("open audit db %s: %w", name, err)
	}
	if cfg.ConnConfig.RuntimeParams == nil {
		cfg.ConnConfig.RuntimeParams = map[string]string{}
	}
	cfg.ConnConfig.RuntimeParams["application_name"] = "gitpoli"
	if readOnly {
		cfg.ConnConfig.RuntimeParams["default_transaction_read_only"] = "on"
	}
	// The record of a request must not wait forever on a lock; a deploy
	// decision holds its environment's lock for one short transaction.
	cfg.ConnConfig.RuntimeParams["lock_timeout"] = "30s"
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("open audit db %s: %w", name, err)
	}
	pingCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := pool.Ping(pingCtx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("open audit db %s: %w", name, err)
	}
	db := stdlib.OpenDBFromPool(pool)
	closeDB := func() error {
		err := db.Close()
		pool.Close()
		return err
	}
	return &Store{db: db, dialect: postgresDialect, now: time.Now, name: name, closeDB: closeDB}, nil
}

// Redact returns dsn without its passwords, for logs and messages.
func Redact(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil {
		return "postgres://(unparsable URL)"
	}
	if u.User != nil {
		if _, ok := u.User.Password(); ok {
			u.User = url.UserPassword(u.User.Username(), "xxxxx")
		}
	}
	q := u.Query()
	for k := range q {
		if strings.Contains(strings.ToLower(k), "password") {
			q.Set(k, "xxxxx")
		}
	}
	u.RawQuery = q.Encode()
	return u.String()
}
