package cli

import (
	"cmp"
	"context"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/gitpoli/gitpoli/serve"
	"github.com/gitpoli/gitpoli/serve/audit"
	"github.com/gitpoli/gitpoli/workbench"
	"github.com/gitpoli/gitpoli/workbench/session"
)

type serveOptions struct {
	sources   *sourceFlags
	addr      string
	db        string
	logFormat string
	workers   int
	bundle    string
	shadow    string
	lease     time.Duration
	retention string
	inflight  int64
	apiCache  int
	reconcile time.Duration
}

func runServeCmd(ctx context.Context, args []string, env Env) error {
	fs := newFlagSet("serve", env)
	opts := serveOptions{sources: addSourceFlags(fs)}
	fs.StringVar(&opts.addr, "addr", ":8080", "address to listen on")
	fs.StringVar(&opts.db, "db", "", "audit database: a SQLite file, or a postgres:// URL shared by replicas (default $GITPOLI_DATABASE_URL, else gitpoli.db)")
	fs.DurationVar(&opts.lease, "lease", 30*time.Second, "how long a delivery stays with a replica that stops renewing its claim")
	fs.StringVar(&opts.retention, "audit-retention", "", "prune decisions older than this (e.g. 400d; default: keep everything)")
	fs.StringVar(&opts.logFormat, "log-format", "text", "log format: text or json")
	fs.IntVar(&opts.workers, "workers", 2, "deliveries processed at once")
	fs.IntVar(&opts.apiCache, "api-cache-bytes", serve.DefaultAPICacheBytes, "GitHub responses kept to ask again with their ETag (a 304 costs no rate limit); 0 keeps none")
	fs.Int64Var(&opts.inflight, "max-inflight-bytes", serve.DefaultMaxInflightBytes, "webhook body bytes read at once before their signatures are checked; past it, 503 with Retry-After")
	fs.DurationVar(&opts.reconcile, "reconcile-every", 5*time.Minute, "how often to compare the App's recent webhook deliveries with the queue and take those GitHub could not hand over (0: never)")
	fs.StringVar(&opts.shadow, "shadow-policies", "", "candidate policies that decide every delivery too, recorded but not enforced")
	fs.StringVar(&opts.bundle, "bundle", "", "serve the policies, config and schemas of this bundle (gitpoli build) instead of directories")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), `Usage: gitpoli serve [--addr :8080] [--db gitpoli.db | --db postgres://...] [--policies DIR] [--config DIR]

The GitHub App backend. Environment:
  GITPOLI_WEBHOOK_SECRET        webhook secret (required)
  GITHUB_APP_ID                 the App's id
  GITHUB_APP_PRIVATE_KEY        the App's private key (PEM), or
  GITHUB_APP_PRIVATE_KEY_FILE   a file holding it
  GITHUB_API_URL                GitHub Enterprise API root (https://HOST/api/v3)
  GITPOLI_AUDIT_TOKEN           bearer token for /audit and /evaluate
  GITPOLI_DATABASE_URL          postgres:// URL of the audit database (when --db is not given)
SIGHUP, or a saved policy file, reloads the policies; SIGTERM drains and stops.`)
		fs.PrintDefaults()
	}
	if err := parseNoArgs(fs, args); err != nil {
		return err
	}
	cfg, err := serveConfig(opts, env)
	if err != nil {
		return err
	}
	if !audit.IsPostgres(cfg.DB) && env.Getenv("GOMAXPROCS") == "" {
		// SQLite (pure Go) keeps its P through each file system call, and
		// the audit writer makes many: with one P a core, decided requests
		// wait for a P behind them (figures in docs/performance.md).
		// GOMAXPROCS set in the environment wins.
		doubleProcs.Do(func() { runtime.GOMAXPROCS(2 * runtime.GOMAXPROCS(0)) })
	}
	s, err := serve.New(ctx, cfg)
	if err != nil {
		return &usageError{err}
	}
	defer s.Close()
	log := cfg.Logger

	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	var changes <-chan struct{}
	if !cfg.Sources.Policies.Embedded && opts.bundle == "" {
		root := filepath.Dir(filepath.Join(env.Dir, cfg.Sources.Policies.Name))
		if w, err := session.Watch(root, session.DefaultDebounce); err == nil {
			defer w.Close()
			changes = w.Changes
		} else {
			log.Warn("not watching the policies for changes", "error", err.Error())
		}
	}
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
			case <-changes:
			}
			_ = s.Reload(ctx)
		}
	}()
	return s.Run(ctx)
}

var doubleProcs sync.Once

func serveConfig(opts serveOptions, env Env) (serve.Config, error) {
	var cfg serve.Config
	src, err := opts.sources.resolve(env)
	if err != nil {
		return cfg, err
	}
	if opts.bundle != "" {
		path := env.path(opts.bundle)
		f, err := os.Open(path)
		if err != nil {
			return cfg, usagef("--bundle: %v", pathErr(err))
		}
		defer f.Close()
		bsrc, _, err := workbench.ReadBundle(f, opts.bundle)
		if err != nil {
			return cfg, &usageError{err}
		}
		// The bundle's policies; its config and schemas when it has them.
		src.Policies = bsrc.Policies
		if bsrc.Config.FS != nil {
			src.Config = bsrc.Config
		}
		if bsrc.Schemas.FS != nil {
			src.Schemas = bsrc.Schemas
		}
	}
	var handler slog.Handler
	switch opts.logFormat {
	case "json":
		handler = slog.NewJSONHandler(env.Stderr, nil)
	case "text":
		handler = slog.NewTextHandler(env.Stderr, nil)
	default:
		return cfg, usagef("--log-format: want text or json, got %q", opts.logFormat)
	}
	db := opts.db
	if db == "" {
		db = env.Getenv("GITPOLI_DATABASE_URL")
	}
	if db == "" {
		db = "gitpoli.db"
	}
	if !audit.IsPostgres(db) {
		db = env.path(db)
	}
	var retention time.Duration
	if opts.retention != "" {
		if retention, err = audit.ParseRetention(opts.retention); err != nil {
			return cfg, usagef("--audit-retention: %v", err)
		}
		if retention < audit.MinRetention {
			return cfg, usagef("--audit-retention %s is shorter than 7 days: the daily deployment limit and redelivered deliveries need what it would delete", opts.retention)
		}
	}
	if opts.inflight < serve.MaxBody {
		return cfg, usagef("--max-inflight-bytes %d: want at least %d, one of GitHub's largest deliveries", opts.inflight, serve.MaxBody)
	}
	if opts.lease < time.Second {
		return cfg, usagef("--lease %s: want at least 1s (it is renewed every third of it)", opts.lease)
	}
	var shadow *workbench.Sources
	if opts.shadow != "" {
		dir, err := resolveDir(env, opts.shadow, "policies", true)
		if err != nil {
			return cfg, err
		}
		sh := src
		sh.Policies = dir
		shadow = &sh
	}
	cfg = serve.Config{
		EngineOptions: env.engineOptions(),
		Shadow:        shadow,
		Addr:          opts.addr,
		DB:            db,
		Lease:         opts.lease,
		Retention:     retention,
		Sources:       src,
		WebhookSecret: []byte(env.Getenv("GITPOLI_WEBHOOK_SECRET")),
		AuditToken:    env.Getenv("GITPOLI_AUDIT_TOKEN"),
		APIURL:        env.Getenv("GITHUB_API_URL"),
		Logger:        slog.New(handler),
		Workers:       opts.workers,

		MaxInflightBytes: opts.inflight,
		APICacheBytes:    cmp.Or(opts.apiCache, -1),
		ReconcileEvery:   opts.reconcile,
	}
	if len(cfg.WebhookSecret) == 0 {
		return cfg, usagef("GITPOLI_WEBHOOK_SECRET is not set: gitpoli serve refuses to accept unsigned webhooks")
	}
	if id := env.Getenv("GITHUB_APP_ID"); id != "" {
		cfg.AppID, err = strconv.ParseInt(id, 10, 64)
		if err != nil {
			return cfg, usagef("GITHUB_APP_ID %q is not a number", id)
		}
	}
	if cfg.PrivateKey, err = privateKey(env); err != nil {
		return cfg, err
	}
	if cfg.AppID == 0 || cfg.PrivateKey == nil {
		cfg.Logger.Warn("GITHUB_APP_ID or GITHUB_APP_PRIVATE_KEY not set: deliveries will be decided but GitHub cannot be asked or answered, so every decision fails closed")
	}
	return cfg, nil
}

func privateKey(env Env) (*rsa.PrivateKey, error) {
	pem := env.Getenv("GITHUB_APP_PRIVATE_KEY")
	if file := env.Getenv("GITHUB_APP_PRIVATE_KEY_FILE"); pem == "" && file != "" {
		data, err := os.ReadFile(file)
		if err != nil {
			return nil, usagef("GITHUB_APP_PRIVATE_KEY_FILE: %v", pathErr(err))
		}
		pem = string(data)
	}
	if pem == "" {
		return nil, nil
	}
	key, err := jwt.ParseRSAPrivateKeyFromPEM([]byte(pem))
	if err != nil {
		return nil, usagef("the GitHub App private key is not an RSA key in PEM: %v", err)
	}
	return key, nil
}

func runReconcileCmd(ctx context.Context, args []string, env Env) error {
	fs := newFlagSet("reconcile", env)
	format := addFormatFlag(fs)
	server := fs.String("server", "", "the running gitpoli serve (default $GITPOLI_SERVER, else http://localhost:8080)")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), `Usage: gitpoli reconcile [--server URL] [--format text|json]

Has the running gitpoli serve do now what it does at start and every
--reconcile-every: list the GitHub App's webhook deliveries of the last three
days, and fetch and queue each one that a policy decides and that the queue
does not hold (GitHub does not redeliver a delivery that failed). The server
holds the App's credentials and the queue; this asks it, with
GITPOLI_AUDIT_TOKEN.`)
		fs.PrintDefaults()
	}
	if err := parseNoArgs(fs, args); err != nil {
		return err
	}
	base := cmp.Or(*server, env.Getenv("GITPOLI_SERVER"), "http://localhost:8080")
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(base, "/")+"/reconcile", nil)
	if err != nil {
		return usagef("--server %q: %v", base, err)
	}
	req.Header.Set("Authorization", "Bearer "+env.Getenv("GITPOLI_AUDIT_TOKEN"))
	// A run reads some pages of GitHub's list and fetches up to 200
	// deliveries: minutes at most.
	client := &http.Client{Timeout: 5 * time.Minute}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("reconcile: %w (is gitpoli serve running at %s?)", err, base)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("reconcile: %s answered %d: %s", base, resp.StatusCode, strings.TrimSpace(string(body)))
	}
	if *format == "json" {
		_, err := env.Stdout.Write(body)
		return err
	}
	var rep serve.ReconcileReport
	if err := json.Unmarshal(body, &rep); err != nil {
		return fmt.Errorf("reconcile: %s answered: %w", base, err)
	}
	for _, id := range rep.Taken {
		fmt.Fprintf(env.Stdout, "took %s\n", id)
	}
	fmt.Fprintf(env.Stdout, "%d deliveries listed: %d taken, %d already queued, %d decided by no policy, %d left for the next run\n",
		rep.Listed, len(rep.Taken), rep.Known, rep.Ignored, rep.Left)
	return nil
}
