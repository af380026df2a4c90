// Package serve is gitpoli's GitHub App backend: it verifies and queues
// webhook deliveries durably, decides them with the workbench engine,
// answers deployment protection rules and posts the PR check run, and
// keeps an audit log with a query API. It decides nothing itself.
package serve

import (
	"context"
	"crypto/rsa"
	"errors"
	"fmt"
	"golang.org/x/sync/semaphore"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/gitpoli/gitpoli/serve/audit"
	"github.com/gitpoli/gitpoli/workbench"
	"github.com/gitpoli/gitpoli/workbench/ghfacts"
)

// Config is everything serve needs; main resolves it from flags and
// environment.
type Config struct {
	Addr string
	// DB is the audit database: a SQLite file path, or a postgres:// URL
	// shared by replicas.
	DB string
	// Lease is how long a claimed delivery stays with this replica without
	// a renewal (default 30s); after it, another replica may take it.
	Lease time.Duration
	// Retention, when set, prunes decisions older than it (hourly).
	Retention time.Duration
	// Sources are the policies, schemas and the default .repol config
	// (used for repositories without their own).
	Sources workbench.Sources
	// WebhookSecret verifies X-Hub-Signature-256. Required.
	WebhookSecret []byte
	// AuditToken guards the audit and evaluate API. Empty: those routes
	// refuse every request.
	AuditToken string
	AppID      int64
	PrivateKey *rsa.PrivateKey
	// APIURL is GitHub's REST API root (https://api.github.com/ when empty).
	APIURL string
	// Transport carries requests to GitHub (tests use a fake API).
	Transport http.RoundTripper
	Logger    *slog.Logger
	// EngineOptions build every engine the server loads.
	EngineOptions []workbench.Option
	// MaxInflightBytes caps the bytes of webhook bodies read at once
	// before their signatures are checked, past each body's first 256 KiB
	// (default DefaultMaxInflightBytes); those have 64 MiB of their own.
	MaxInflightBytes int64
	// APICacheBytes bounds the GitHub responses kept to ask again with
	// their ETag (default DefaultAPICacheBytes; negative: none kept).
	APICacheBytes int
	// Workers process queued deliveries (default 2).
	Workers int
	// ReconcileEvery is how often the App's recent webhook deliveries are
	// compared with the queue, and those missing taken (0: never; serve's
	// flag defaults to 5m). It runs at start too.
	ReconcileEvery time.Duration
	// AnswerRetryBase is the first wait before an answer GitHub did not
	// take is tried again (default 30s); it doubles to ten minutes.
	AnswerRetryBase time.Duration
	// Now is the clock (default time.Now): the waits of answers tried
	// again and, on SQLite, leases run on it.
	Now func() time.Time
	// RetryBase is the first backoff of a GitHub retry (default 500ms).
	RetryBase time.Duration
	// ReadHeaderTimeout bounds how long a client may take to send its
	// headers (default 5s): a slow client cannot hold a connection.
	ReadHeaderTimeout time.Duration
	// Shadow, when its policies are set, is a candidate policy set that
	// decides every delivery too; its decision is recorded, not enforced.
	Shadow *workbench.Sources
}

// Server is a running gitpoli serve.
type Server struct {
	cfg     Config
	store   *audit.Store
	engine  atomic.Pointer[workbench.Engine]
	shadow  atomic.Pointer[workbench.Engine]
	app     *app
	log     *slog.Logger
	wake    chan struct{}
	metrics *metrics
	// apiCache keeps GitHub's responses to ask again with their ETag.
	apiCache *ghfacts.Cache
	// deployMu serializes deployment decisions in this process (the
	// database transaction serializes them across processes).
	deployMu sync.Mutex
	ready    atomic.Bool
	// bodies is the budget of webhook bodies being read before their
	// signatures are checked, in bytes (see budgetedBody).
	bodies *semaphore.Weighted
	// smallBodies is the budget of each body's first smallBody bytes.
	smallBodies *semaphore.Weighted
}

// New opens the audit database and loads the policies.
func New(ctx context.Context, cfg Config) (*Server, error) {
	if len(cfg.WebhookSecret) == 0 {
		return nil, errors.New("GITPOLI_WEBHOOK_SECRET is not set: refusing to accept unsigned webhooks")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Workers <= 0 {
		cfg.Workers = 2
	}
	if cfg.RetryBase <= 0 {
		cfg.RetryBase = 500 * time.Millisecond
	}
	if cfg.Lease <= 0 {
		cfg.Lease = 30 * time.Second
	}
	if cfg.AnswerRetryBase <= 0 {
		cfg.AnswerRetryBase = 30 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	cfg.Lease = max(cfg.Lease, 30*time.Millisecond) // renewed every third of it
	if cfg.Retention != 0 && cfg.Retention < audit.MinRetention {
		return nil, fmt.Errorf("--audit-retention %s is shorter than 7 days: the daily deployment limit and redelivered deliveries need what it would delete", cfg.Retention)
	}
	if cfg.MaxInflightBytes <= 0 {
		cfg.MaxInflightBytes = DefaultMaxInflightBytes
	}
	if cfg.APICacheBytes == 0 {
		cfg.APICacheBytes = DefaultAPICacheBytes
	}
	if cfg.ReadHeaderTimeout <= 0 {
		cfg.ReadHeaderTimeout = 5 * time.Second
	}
	if cfg.APIURL == "" {
		cfg.APIURL = "https://api.github.com/"
	}
	if !strings.HasSuffix(cfg.APIURL, "/") {
		cfg.APIURL += "/"
	}
	if cfg.Transport == nil {
		cfg.Transport = http.DefaultTransport
	}
	e, err := workbench.New(ctx, cfg.Sources, cfg.EngineOptions...)
	if err != nil {
		return nil, fmt.Errorf("load policies: %w", err)
	}
	store, err := audit.Open(ctx, cfg.DB, audit.Options{Lease: cfg.Lease, Now: cfg.Now})
	if err != nil {
		return nil, err
	}
	s := &Server{
		cfg:    cfg,
		store:  store,
		log:    cfg.Logger,
		wake:   make(chan struct{}, 1),
		bodies: semaphore.NewWeighted(cfg.MaxInflightBytes),
		// The first 256 KiB of each body: 256 bodies at once.
		smallBodies: semaphore.NewWeighted(256 * smallBody),
		metrics:     newMetrics(),
	}
	if cfg.APICacheBytes > 0 {
		s.apiCache = ghfacts.NewCache(cfg.APICacheBytes)
	}
	s.metrics.watchWaiting(store, cfg.Now)
	s.engine.Store(e)
	s.logEvaluators(e)
	if cfg.Shadow != nil {
		shadow, err := workbench.New(ctx, *cfg.Shadow, cfg.EngineOptions...)
		if err != nil {
			store.Close()
			return nil, fmt.Errorf("load shadow policies: %w", err)
		}
		s.shadow.Store(shadow)
	}
	s.metrics.registry.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "gitpoli_queue_depth",
		Help: "Deliveries received and not yet processed.",
	}, func() float64 {
		n, _ := store.QueueDepth(context.Background())
		return float64(n)
	}))
	if store.Backend() == "sqlite" {
		s.metrics.registry.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "gitpoli_audit_wal_restarts_total",
			Help: "Times the SQLite audit database's WAL was started over by the checkpointer; flat under writes means the WAL is growing.",
		}, func() float64 { return float64(store.WALRestarts()) }))
	}
	retry := &retryTransport{next: cfg.Transport, attempts: 4, base: cfg.RetryBase, sleep: sleepCtx}
	s.app = &app{
		id:     cfg.AppID,
		key:    cfg.PrivateKey,
		apiURL: cfg.APIURL,
		client: &http.Client{Timeout: 30 * time.Second, Transport: retry},
		now:    time.Now,
		logger: cfg.Logger,
	}
	if p := e.Config().Problems(); len(p) > 0 {
		s.log.Warn("default config has problems; repositories without their own config are denied", "problems", p.Error())
	}
	if cfg.AuditToken == "" {
		s.log.Warn("GITPOLI_AUDIT_TOKEN is not set: the audit API (/audit) and /evaluate are disabled and answer 401")
	}
	s.log.Info("policies loaded", "policy_hash", e.Hash(), "policies", policyNames(e))
	return s, nil
}

// policyNames lists the engine's policies, for the log.
func policyNames(e *workbench.Engine) string {
	names := make([]string, len(e.Policies()))
	for i, spec := range e.Policies() {
		names[i] = string(spec.Name)
	}
	return strings.Join(names, ",")
}

// DefaultAPICacheBytes is the default bound on the GitHub responses kept
// for conditional requests: some thousands of pull requests' facts.
const DefaultAPICacheBytes = 64 << 20

// DefaultMaxInflightBytes is the default cap on webhook bodies read at
// once: four of GitHub's largest (25 MB) deliveries, or thousands of the
// usual tens of kilobytes, while the server's own memory stays well under
// 300 MB whatever is sent.
const DefaultMaxInflightBytes = 4 * maxBody

// Close closes the audit database.
func (s *Server) Close() error { return s.store.Close() }

// Store returns the audit store (for tests).
func (s *Server) Store() *audit.Store { return s.store }

// Registry returns the Prometheus registry of the server's metrics.
func (s *Server) Registry() *prometheus.Registry { return s.metrics.registry }

// Reload builds a new engine from the policy sources and swaps it in. A
// broken policy keeps the running one.
func (s *Server) Reload(ctx context.Context) error {
	e, err := workbench.New(ctx, s.cfg.Sources, s.cfg.EngineOptions...)
	if err != nil {
		s.log.Error("reload failed; keeping the running policies", "error", err.Error())
		return err
	}
	s.engine.Store(e)
	s.log.Info("policies reloaded", "policy_hash", e.Hash(), "policies", policyNames(e))
	s.logEvaluators(e)
	return nil
}

// logEvaluators says which policies OPA's topdown decides instead of the
// planned evaluator, and why: the decisions are the same, only slower.
func (s *Server) logEvaluators(e *workbench.Engine) {
	for _, spec := range e.Policies() {
		p := spec.Name
		if ev, err := e.Evaluator(p); ev != "irvm" {
			reason := "topdown only (GITPOLI_EVALUATOR=topdown)"
			if err != nil {
				reason = err.Error()
			}
			s.log.Warn("policy decided by OPA's topdown evaluator, not the planned one (same decisions, slower)", "policy", string(p), "reason", reason)
		}
	}
}

// Run serves HTTP on cfg.Addr and processes the queue until ctx ends, then
// stops accepting, lets in-flight requests and the current deliveries
// finish, and returns.
func (s *Server) Run(ctx context.Context) error {
	ln, err := net.Listen("tcp", s.cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen %s: %w", s.cfg.Addr, err)
	}
	return s.Serve(ctx, ln)
}

// prune deletes decisions past the retention, at start and hourly.
func (s *Server) prune(ctx context.Context) {
	for {
		decisions, deliveries, err := s.store.Prune(ctx, s.cfg.Retention)
		switch {
		case err != nil && ctx.Err() == nil:
			s.log.Error("pruning the audit log failed", "error", err.Error())
		case decisions+deliveries > 0:
			s.log.Info("pruned the audit log", "retention", s.cfg.Retention.String(), "decisions", decisions, "deliveries", deliveries)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Hour):
		}
	}
}

// Serve is Run on a listener.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: s.cfg.ReadHeaderTimeout,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
	}
	workCtx, stopWork := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for range s.cfg.Workers {
		wg.Go(func() { s.work(workCtx) })
	}
	if s.cfg.Retention > 0 {
		wg.Go(func() { s.prune(workCtx) })
	}
	if s.cfg.ReconcileEvery > 0 && s.app.key != nil && s.app.id != 0 {
		wg.Go(func() { s.reconcileLoop(workCtx, s.cfg.ReconcileEvery) })
	}
	s.ready.Store(true)
	s.log.Info("serving", "addr", ln.Addr().String(), "policy_hash", s.engine.Load().Hash(), "db", s.store.Backend()+" "+s.store.Name())
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		stopWork()
		wg.Wait()
		return err
	case <-ctx.Done():
	}
	s.ready.Store(false)
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	err := srv.Shutdown(shutdownCtx)
	// Workers finish the delivery in hand; what is still queued is
	// processed at the next start.
	stopWork()
	wg.Wait()
	s.log.Info("stopped")
	return err
}
