package serve

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"golang.org/x/sync/semaphore"
	"hash"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/gitpoli/gitpoli/serve/audit"
	"github.com/gitpoli/gitpoli/workbench"
)

// MaxBody bounds a webhook body: GitHub caps payloads at 25 MB.
const MaxBody = 25 << 20

const maxBody = MaxBody

// maxDeliveryID bounds X-GitHub-Delivery (a GUID: 36 characters).
const maxDeliveryID = 128

// Handler returns the server's routes.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /webhook", s.handleWebhook)
	mux.HandleFunc("POST /webhook/{event}", s.handleWebhook)
	mux.HandleFunc("GET /health", s.handleHealth)
	mux.HandleFunc("POST /reconcile", s.authorized(s.handleReconcile))
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.metrics.registry, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /audit", s.authorized(s.handleAuditList))
	mux.HandleFunc("GET /audit/summary", s.authorized(s.handleAuditSummary))
	mux.HandleFunc("GET /audit/{id}", s.authorized(s.handleAuditGet))
	mux.HandleFunc("POST /evaluate/{policy}", s.authorized(s.handleEvaluate))
	return mux
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"error": msg})
}

// verifySignature checks X-Hub-Signature-256 over the raw body in constant
// time. There is no SHA-1 fallback.
func verifySignature(secret, body []byte, header string) bool {
	mac := hmac.New(sha256.New, secret)
	mac.Write(body)
	return signatureMatches(mac.Sum(nil), header)
}

// signatureMatches compares the HMAC-SHA256 of a body with the
// X-Hub-Signature-256 header, in constant time.
func signatureMatches(sum []byte, header string) bool {
	hexSig, ok := strings.CutPrefix(header, "sha256=")
	if !ok {
		return false
	}
	got, err := hex.DecodeString(hexSig)
	if err != nil || len(got) != sha256.Size {
		return false
	}
	return hmac.Equal(got, sum)
}

// eventLabel is an unauthenticated event name as a metric label: one of
// GitHub's names a gitpoli App subscribes to, else "other", so that
// unsigned requests cannot grow the label set without bound.
func eventLabel(event string) string {
	switch event {
	case "pull_request", "pull_request_review", "check_run", "check_suite", "deployment_protection_rule",
		"deployment", "deployment_status", "ping", "push", "installation", "installation_repositories", "status", "merge_group":
		return event
	}
	return "other"
}

// errBodiesBusy: the budget for bodies read before their signature is
// checked stayed spent for longer than a request may wait.
var errBodiesBusy = errors.New("too many request bodies being read at once")

// bodyWait is how long a read waits for budget before the request is
// turned away: long enough for a burst of GitHub's deliveries to pass,
// short against GitHub's 10 s.
const bodyWait = time.Second

// budgetedBody reads a request body on the server's budget for bodies not
// yet authenticated: each chunk is paid for before it is read, so a client
// holds what it has sent, not what it declared. A body's first
// smallBody bytes come from a budget of their own: a delivery of GitHub's
// usual size is read at once however many large bodies hold the rest.
// The body is kept in chunks, its signature computed as they come, and
// made one slice only once the signature holds: memory held for unsigned
// bodies is what the budgets allow, no more.
type budgetedBody struct {
	ctx          context.Context
	r            io.Reader
	small, large *semaphore.Weighted
	heldSmall    int64
	heldLarge    int64
	chunks       [][]byte
	mac          hash.Hash
}

// smallBody is the part of every body paid from the budget of small
// bodies: GitHub's deliveries are mostly under it.
const smallBody = 256 << 10

// chunkSize is what one read pays for and keeps.
const chunkSize = 64 << 10

// readAll reads the body into chunks, each paid for first.
func (b *budgetedBody) readAll() error {
	for {
		n := int64(chunkSize)
		held := b.heldSmall + b.heldLarge
		sem := b.large
		if held < smallBody {
			sem, n = b.small, min(n, smallBody-held)
		}
		ctx, cancel := context.WithTimeout(b.ctx, bodyWait)
		err := sem.Acquire(ctx, n)
		cancel()
		if err != nil {
			return errBodiesBusy
		}
		chunk := chunkPool.Get().(*[chunkSize]byte)[:n]
		k, err := fill(b.r, chunk)
		sem.Release(n - int64(k))
		if sem == b.small {
			b.heldSmall += int64(k)
		} else {
			b.heldLarge += int64(k)
		}
		if k > 0 {
			b.chunks = append(b.chunks, chunk[:k])
			b.mac.Write(chunk[:k])
		} else {
			chunkPool.Put((*[chunkSize]byte)(chunk[:chunkSize]))
		}
		switch {
		case err == io.EOF:
			return nil
		case err != nil:
			return err
		}
	}
}

// fill reads into p until it is full or the reader ends (io.EOF): unlike
// io.ReadFull, a body cut short by its client (io.ErrUnexpectedEOF from
// the HTTP server) stays an error, not the end of a complete body.
func fill(r io.Reader, p []byte) (int, error) {
	n := 0
	for n < len(p) {
		k, err := r.Read(p[n:])
		n += k
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// bytes is the body as one slice of its own.
func (b *budgetedBody) bytes() []byte {
	return bytes.Join(b.chunks, nil)
}

// release gives back what the body held (once), and its chunks for the
// next bodies: the memory of unsigned bodies is reused, not left to the
// garbage collector, so that a flood of them holds the budget and little
// more.
func (b *budgetedBody) release() {
	b.small.Release(b.heldSmall)
	b.large.Release(b.heldLarge)
	for _, c := range b.chunks {
		chunkPool.Put((*[chunkSize]byte)(c[:chunkSize]))
	}
	b.heldSmall, b.heldLarge, b.chunks = 0, 0, nil
}

var chunkPool = sync.Pool{New: func() any { return new([chunkSize]byte) }}

func (s *Server) handleWebhook(w http.ResponseWriter, r *http.Request) {
	if r.ContentLength > maxBody {
		s.metrics.deliveries.WithLabelValues("", "too_large").Inc()
		writeError(w, http.StatusRequestEntityTooLarge, "body larger than 25 MB")
		return
	}
	// Bodies are read whole before their signature can be checked: what
	// all of them hold at once is capped, and past the cap a request is
	// turned away (503, Retry-After) after a short wait.
	in := &budgetedBody{ctx: r.Context(), r: http.MaxBytesReader(w, r.Body, maxBody), small: s.smallBodies, large: s.bodies,
		mac: hmac.New(sha256.New, s.cfg.WebhookSecret)}
	defer in.release()
	err := in.readAll()
	if errors.Is(err, errBodiesBusy) {
		s.metrics.deliveries.WithLabelValues("", "busy").Inc()
		w.Header().Set("Retry-After", "1")
		writeError(w, http.StatusServiceUnavailable, "too many request bodies being read at once; try again")
		return
	}
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			s.metrics.deliveries.WithLabelValues("", "too_large").Inc()
			writeError(w, http.StatusRequestEntityTooLarge, "body larger than 25 MB")
			return
		}
		writeError(w, http.StatusBadRequest, "read body: "+err.Error())
		return
	}
	// A webhook set to the form content type sends payload=<url-encoded
	// JSON>: it must be configured as application/json.
	if ct := r.Header.Get("Content-Type"); strings.HasPrefix(ct, "application/x-www-form-urlencoded") {
		writeError(w, http.StatusUnsupportedMediaType, "set the webhook's content type to application/json")
		return
	}
	// Nothing is parsed, and nothing recorded, before the signature holds.
	if !signatureMatches(in.mac.Sum(nil), r.Header.Get("X-Hub-Signature-256")) {
		s.metrics.deliveries.WithLabelValues(eventLabel(r.Header.Get("X-GitHub-Event")), "bad_signature").Inc()
		writeError(w, http.StatusUnauthorized, "missing or invalid X-Hub-Signature-256")
		return
	}
	body := in.bytes()
	in.release() // GitHub's, now: no longer on the budget for the unknown
	event := r.Header.Get("X-GitHub-Event")
	if pe := r.PathValue("event"); pe != "" {
		if event != "" && event != pe {
			writeError(w, http.StatusBadRequest, "X-GitHub-Event does not match the path")
			return
		}
		event = pe
	}
	id := r.Header.Get("X-GitHub-Delivery")
	if event == "" || id == "" {
		writeError(w, http.StatusBadRequest, "X-GitHub-Event and X-GitHub-Delivery are required")
		return
	}
	// GitHub's delivery ids are GUIDs: anything much longer, or with
	// control characters, is no delivery of GitHub's, and it would be
	// stored and listed with every decision.
	if len(id) > maxDeliveryID || strings.ContainsFunc(id, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("X-GitHub-Delivery is not a delivery id (at most %d printable characters)", maxDeliveryID))
		return
	}
	// Only what decides whether to queue is read here; the worker
	// normalizes the whole payload.
	d := workbench.Delivery{Event: event, ID: id, Payload: body}
	err = s.engine.Load().Prefilter(d)
	var npe *workbench.NotPolicyEvent
	switch {
	case errors.As(err, &npe):
		s.metrics.deliveries.WithLabelValues(event, "ignored").Inc()
		writeJSON(w, http.StatusOK, map[string]string{"ignored": npe.Reason})
		return
	case err != nil:
		s.metrics.deliveries.WithLabelValues(event, "malformed").Inc()
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	// Stored before it is acknowledged: a crash after the 202 loses nothing.
	// A database that does not take the write in time gets GitHub a 503
	// well within its 10 s: GitHub records the delivery as failed, and the
	// reconciler takes it from there.
	ectx, cancel := context.WithTimeout(r.Context(), enqueueTimeout)
	defer cancel()
	fresh, err := s.store.Enqueue(ectx, audit.Delivery{ID: id, Event: event, Payload: body})
	if err != nil {
		s.log.Error("enqueue failed", keyDelivery, id, "error", err.Error())
		writeError(w, http.StatusServiceUnavailable, "could not store the delivery; GitHub may redeliver it")
		return
	}
	if !fresh {
		s.metrics.deliveries.WithLabelValues(event, "duplicate").Inc()
		writeJSON(w, http.StatusAccepted, map[string]any{"delivery_id": id, "duplicate": true})
		return
	}
	s.metrics.deliveries.WithLabelValues(event, "queued").Inc()
	select {
	case s.wake <- struct{}{}:
	default:
	}
	writeJSON(w, http.StatusAccepted, map[string]any{"delivery_id": id, "queued": true})
}

// enqueueTimeout bounds the wait for the database to store a delivery,
// and healthTimeout its probe: an acknowledgement in about 2 s, /health
// within one.
const (
	enqueueTimeout = 1500 * time.Millisecond
	healthTimeout  = 900 * time.Millisecond
)

func (s *Server) handleHealth(w http.ResponseWriter, r *http.Request) {
	e := s.engine.Load()
	ctx, cancel := context.WithTimeout(r.Context(), healthTimeout)
	defer cancel()
	dbErr := s.store.Writable(ctx)
	status, code := "ok", http.StatusOK
	if dbErr != nil || e == nil {
		status, code = "degraded", http.StatusServiceUnavailable
	}
	body := map[string]any{"status": status, "policies_loaded": e != nil, "db_writable": dbErr == nil,
		"db": map[string]any{"backend": s.store.Backend(), "writable": dbErr == nil}}
	if e != nil {
		body["policy_hash"] = e.Hash()
		evaluators := map[string]string{}
		policies := make([]map[string]any, 0, len(e.Policies()))
		for _, spec := range e.Policies() {
			evaluators[string(spec.Name)], _ = e.Evaluator(spec.Name)
			policies = append(policies, map[string]any{"name": spec.Name, "on": spec.On, "answer": spec.Answer})
		}
		body["evaluators"] = evaluators
		body["policies"] = policies
	}
	if dbErr != nil {
		body["db_error"] = dbErr.Error()
	}
	writeJSON(w, code, body)
}

// handleReconcile reconciles now (gitpoli reconcile).
func (s *Server) handleReconcile(w http.ResponseWriter, r *http.Request) {
	rep, err := s.Reconcile(r.Context())
	switch {
	case errors.Is(err, audit.ErrLeased):
		writeError(w, http.StatusConflict, "another replica is reconciling now")
	case err != nil:
		writeError(w, http.StatusServiceUnavailable, err.Error())
	default:
		writeJSON(w, http.StatusOK, rep)
	}
}

// authorized requires Authorization: Bearer <GITPOLI_AUDIT_TOKEN>,
// compared in constant time. Without a configured token nothing passes.
func (s *Server) authorized(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		want := s.cfg.AuditToken
		if !ok || want == "" || subtle.ConstantTimeCompare([]byte(got), []byte(want)) != 1 {
			writeError(w, http.StatusUnauthorized, "a valid bearer token is required")
			return
		}
		h(w, r)
	}
}

func (s *Server) handleAuditList(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f := audit.Filter{Limit: 50, Policy: q.Get("policy"), Decision: q.Get("decision"),
		Environment: q.Get("environment"), Repo: q.Get("repo"), Cursor: q.Get("cursor"),
		Disagree: q.Get("disagree") == "true"}
	if l := q.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > 500 {
			writeError(w, http.StatusBadRequest, "limit must be 1 to 500")
			return
		}
		f.Limit = n
	}
	switch f.Decision {
	case "", "allow", "deny", "error":
	default:
		writeError(w, http.StatusBadRequest, "decision must be allow, deny or error")
		return
	}
	if since := q.Get("since"); since != "" {
		t, err := audit.ParseSince(since, time.Now())
		if err != nil {
			writeError(w, http.StatusBadRequest, err.Error())
			return
		}
		f.Since = t
	}
	page, err := s.store.Query(r.Context(), f)
	if errors.Is(err, audit.ErrBadCursor) {
		writeError(w, http.StatusBadRequest, "bad cursor")
		return
	}
	if err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, page)
}

func (s *Server) handleAuditSummary(w http.ResponseWriter, r *http.Request) {
	sum, err := s.store.Summarize(r.Context())
	if err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, sum)
}

func (s *Server) handleAuditGet(w http.ResponseWriter, r *http.Request) {
	rec, err := s.store.Get(r.Context(), r.PathValue("id"))
	if errors.Is(err, audit.ErrNotFound) {
		writeError(w, http.StatusNotFound, "no such decision")
		return
	}
	if err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, rec)
}

// handleEvaluate decides an input document, as gitpoli eval does, and
// audits it with source api.
func (s *Server) handleEvaluate(w http.ResponseWriter, r *http.Request) {
	e := s.engine.Load()
	spec, err := e.Policy(r.PathValue("policy"))
	if err != nil {
		writeError(w, http.StatusNotFound, err.Error())
		return
	}
	p := spec.Name
	arrived := s.store.Coming()
	defer arrived()
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20))
	if err != nil {
		writeError(w, http.StatusRequestEntityTooLarge, "input larger than 1 MB")
		return
	}
	in, err := workbench.ParseInput(body)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	start := time.Now()
	d, _ := e.Decide(r.Context(), p, in)
	s.metrics.decisionSeconds.WithLabelValues(string(p)).Observe(time.Since(start).Seconds())
	rec := decisionRecord(e, d, in)
	rec.Source, rec.Actor = "api", r.Header.Get("X-Actor")
	rec.Environment, rec.Ref = in.StringField("environment"), in.StringField("ref")
	arrived()
	if err := s.store.InsertBatched(r.Context(), &rec); err != nil {
		// An unrecorded decision is not given out.
		writeError(w, http.StatusServiceUnavailable, "could not record the decision: "+err.Error())
		return
	}
	s.metrics.decisions.WithLabelValues(string(p), rec.Decision, "api").Inc()
	writeJSON(w, http.StatusOK, map[string]any{"policy": d.Policy, "allow": d.Allow, "violations": d.Violations, "audit_id": rec.ID})
}
