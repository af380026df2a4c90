package serve

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/golang-jwt/jwt/v5"
	_ "github.com/jackc/pgx/v5/stdlib" // the database/sql driver "pgx"

	"github.com/gitpoli/gitpoli/internal/pgtest"
	"github.com/gitpoli/gitpoli/internal/syncbuf"
	"github.com/gitpoli/gitpoli/serve/audit"
	"github.com/gitpoli/gitpoli/workbench"
	"github.com/gitpoli/gitpoli/workbench/fixture"
)

const secret = "s3cret"

var testKey = func() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return k
}()

// fakeGitHub answers recorded GET responses (404 for anything else), mints
// installation tokens, and records every POST a test asserts on.
type fakeGitHub struct {
	t         testing.TB
	srv       *httptest.Server
	mu        sync.Mutex
	responses map[string]fixture.Response
	posts     []post
	posted    chan post
	tokens    int
	// requests lists every request received, "METHOD /path"; keys the
	// same with their queries, as fixture.Key writes them.
	requests []string
	keys     []string
	// fail answers the next n POSTs to a path suffix with 502 (or
	// failStatus).
	fail       map[string]int
	failStatus int
	// tokenTTL is how long minted tokens last.
	tokenTTL time.Duration
	// hold, when set, keeps GETs whose path contains it waiting until
	// release is closed (or the request is given up).
	hold    string
	release chan struct{}
	// etags makes recorded responses carry an ETag, and answers 304 to a
	// request that still has it; full and notModified count them.
	etags             bool
	full, notModified int
}

type post struct {
	method string
	path   string
	auth   string
	body   map[string]any
}

func newFakeGitHub(t *testing.T) *fakeGitHub { return newFakeGitHubB(t) }

func newFakeGitHubB(t testing.TB) *fakeGitHub {
	f := &fakeGitHub{t: t, responses: map[string]fixture.Response{}, posted: make(chan post, 100), fail: map[string]int{}, tokenTTL: time.Hour}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeGitHub) serve(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	hold, release := f.hold, f.release
	f.mu.Unlock()
	if hold != "" && r.Method == http.MethodGet && strings.Contains(r.URL.Path, hold) {
		select {
		case <-release:
		case <-r.Context().Done():
			return
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests = append(f.requests, r.Method+" "+r.URL.Path)
	f.keys = append(f.keys, fixture.Key(r))
	w.Header().Set("Content-Type", "application/json")
	if r.Method == http.MethodPost && strings.HasPrefix(r.URL.Path, "/app/installations/") {
		tok, _ := jwt.Parse(strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer "), func(*jwt.Token) (any, error) {
			return &testKey.PublicKey, nil
		}, jwt.WithValidMethods([]string{"RS256"}))
		if tok == nil || !tok.Valid {
			w.WriteHeader(http.StatusUnauthorized)
			fmt.Fprint(w, `{"message":"A JSON web token could not be decoded"}`)
			return
		}
		f.tokens++
		w.WriteHeader(http.StatusCreated)
		fmt.Fprintf(w, `{"token":"ghs_test%d","expires_at":%q}`, f.tokens, time.Now().Add(f.tokenTTL).UTC().Format(time.RFC3339))
		return
	}
	if r.Method == http.MethodPost || r.Method == http.MethodPatch {
		for suffix, n := range f.fail {
			if n > 0 && strings.HasSuffix(r.URL.Path, suffix) {
				f.fail[suffix] = n - 1
				status := cmp.Or(f.failStatus, http.StatusBadGateway)
				w.WriteHeader(status)
				fmt.Fprintf(w, `{"message":%q}`, http.StatusText(status))
				return
			}
		}
		var body map[string]any
		_ = json.NewDecoder(r.Body).Decode(&body)
		p := post{method: r.Method, path: r.URL.Path, auth: r.Header.Get("Authorization"), body: body}
		f.posts = append(f.posts, p)
		select {
		case f.posted <- p:
		default: // nobody waits on this one; posts keeps it
		}
		if strings.HasSuffix(r.URL.Path, "/check-runs") {
			w.WriteHeader(http.StatusCreated)
			fmt.Fprint(w, `{"id": 1}`)
			return
		}
		if strings.Contains(r.URL.Path, "/check-runs/") {
			w.WriteHeader(http.StatusOK)
			fmt.Fprint(w, `{"id": 7}`)
			return
		}
		w.WriteHeader(http.StatusNoContent)
		return
	}
	if resp, ok := f.responses[fixture.Key(r)]; ok && f.etags && resp.Status == http.StatusOK {
		etag := fmt.Sprintf(`"%x"`, sha256.Sum256(resp.Body))
		w.Header().Set("ETag", etag)
		w.Header().Set("Cache-Control", "private, max-age=60, s-maxage=60")
		if r.Header.Get("If-None-Match") == etag {
			f.notModified++
			w.WriteHeader(http.StatusNotModified)
			return
		}
		f.full++
	}
	fixture.Serve(w, r, f.responses)
}

func (f *fakeGitHub) add(responses map[string]fixture.Response) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for k, v := range responses {
		f.responses[k] = v
	}
}

// waitPost waits for the next POST to GitHub.
func (f *fakeGitHub) waitPost(t *testing.T) post {
	t.Helper()
	select {
	case p := <-f.posted:
		return p
	case <-time.After(20 * time.Second):
		t.Fatal("no call to GitHub")
		return post{}
	}
}

func repoSources() workbench.Sources {
	return workbench.Sources{
		Policies: workbench.Dir{FS: os.DirFS("../internal/testrepo/testdata/policies"), Name: "policies"},
		Config:   workbench.Dir{FS: os.DirFS("../internal/testrepo/testdata/.repol"), Name: ".repol"},
		Schemas:  workbench.Dir{FS: os.DirFS("../internal/testrepo/testdata/schemas"), Name: "schemas"},
	}
}

type harness struct {
	t      testing.TB
	gh     *fakeGitHub
	srv    *Server
	url    string
	db     string
	cancel context.CancelFunc
	done   chan error
}

func start(t *testing.T, gh *fakeGitHub, db string) *harness { return startDB(t, gh, db) }

// startShadow starts a server with candidate policies that demand one
// approval more than the live ones for every deployment.
func startShadow(t *testing.T, gh *fakeGitHub) *harness {
	t.Helper()
	h := startDB(t, gh, "")
	pr, _ := os.ReadFile("../internal/testrepo/testdata/policies/pullrequest.rego")
	dep, _ := os.ReadFile("../internal/testrepo/testdata/policies/deploy.rego")
	helpers, _ := os.ReadFile("../internal/testrepo/testdata/policies/lib/helpers.rego")
	strict := strings.Replace(string(dep), "count(approvers) < required", "count(approvers) < required + 1", 1)
	sh := repoSources()
	sh.Policies = workbench.Dir{Name: "candidate", FS: fstest.MapFS{
		"deploy.rego": {Data: []byte(strict)}, "pullrequest.rego": {Data: pr}, "lib/helpers.rego": {Data: helpers}}}
	e, err := workbench.New(context.Background(), sh)
	if err != nil {
		t.Fatal(err)
	}
	h.srv.shadow.Store(e)
	return h
}

func startB(b testing.TB, gh *fakeGitHub) *harness { return startDB(b, gh, "") }

// testBackend is the audit database the harness gives a server:
// "sqlite", or "postgres" while TestOnPostgres runs the suite again.
var testBackend = "sqlite"

// newDB returns a fresh, empty audit database of the test backend.
func newDB(t testing.TB) string {
	if testBackend == "postgres" {
		return pgtest.DSN(t)
	}
	return filepath.Join(t.TempDir(), "gitpoli.db")
}

func startDB(t testing.TB, gh *fakeGitHub, db string) *harness {
	t.Helper()
	return startConfig(t, gh, db, nil)
}

// startConfig starts a server on db (a fresh one when empty); edit, when
// set, adjusts its config.
func startConfig(t testing.TB, gh *fakeGitHub, db string, edit func(*Config)) *harness {
	t.Helper()
	if db == "" {
		db = newDB(t)
	}
	cfg := Config{
		DB:            db,
		Sources:       repoSources(),
		WebhookSecret: []byte(secret),
		AuditToken:    "audit-token",
		AppID:         42,
		PrivateKey:    testKey,
		APIURL:        gh.srv.URL,
		Transport:     gh.srv.Client().Transport,
		RetryBase:     time.Millisecond,
		// Answers GitHub did not take are tried again soon.
		AnswerRetryBase: 10 * time.Millisecond,

		ReadHeaderTimeout: 300 * time.Millisecond,
	}
	if edit != nil {
		edit(&cfg)
	}
	s, err := New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	h := &harness{t: t, gh: gh, srv: s, url: "http://" + ln.Addr().String(), db: db, cancel: cancel, done: make(chan error, 1)}
	go func() { h.done <- s.Serve(ctx, ln) }()
	t.Cleanup(h.stop)
	return h
}

// waitState waits until a delivery reaches state (or 20 s pass).
func (h *harness) waitState(id, state string) {
	h.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if st, _ := h.srv.Store().DeliveryState(context.Background(), id); st == state {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	h.t.Errorf("delivery %s never reached %s", id, state)
}

func (h *harness) stop() {
	if h.cancel == nil {
		return
	}
	h.cancel()
	<-h.done
	h.srv.Close()
	h.cancel = nil
}

func sign(body []byte) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

// deliver posts a webhook delivery, signed unless sig says otherwise.
func (h *harness) deliver(event, id string, body []byte, sig string) (int, map[string]any) {
	h.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, h.url+"/webhook", bytes.NewReader(body))
	req.Header.Set("X-GitHub-Event", event)
	req.Header.Set("X-GitHub-Delivery", id)
	req.Header.Set("Content-Type", "application/json")
	if sig == "" {
		sig = sign(body)
	}
	if sig != "none" {
		req.Header.Set("X-Hub-Signature-256", sig)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

func (h *harness) get(path, token string) (int, []byte) {
	h.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, h.url+path, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, body
}

// loadFixture reads a shipped fixture: its payload is the delivery, its
// recorded responses feed the fake API.
// fakeGitHubFor is a fake GitHub API that answers with the recorded
// responses of the fixture name, and that fixture.
func fakeGitHubFor(t *testing.T, name string) (*fakeGitHub, *fixture.Fixture) {
	t.Helper()
	f := loadFixture(t, name)
	gh := newFakeGitHub(t)
	gh.add(f.Responses)
	return gh, f
}

func loadFixture(t *testing.T, name string) *fixture.Fixture {
	t.Helper()
	return parseFixture(t, filepath.Join("../internal/testrepo/testdata/fixtures", name))
}

// parseFixture reads and parses one fixture file.
func parseFixture(t *testing.T, path string) *fixture.Fixture {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	f, err := fixture.Parse(filepath.Base(path), data)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func withInstallation(t *testing.T, payload []byte) []byte {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(payload, &m); err != nil {
		t.Fatal(err)
	}
	m["installation"] = map[string]any{"id": 57923423}
	out, _ := json.Marshal(m)
	return out
}

func TestWebhookRejectsBadInput(t *testing.T) {
	gh := newFakeGitHub(t)
	h := start(t, gh, "")
	body := []byte(`{"zen":"x"}`)
	tests := []struct {
		name  string
		event string
		body  []byte
		sig   string
		want  int
	}{
		{"no signature", "ping", body, "none", http.StatusUnauthorized},
		{"wrong signature", "ping", body, "sha256=" + strings.Repeat("0", 64), http.StatusUnauthorized},
		{"sha1 only", "ping", body, "sha1=" + strings.Repeat("0", 40), http.StatusUnauthorized},
		{"signed for another body", "ping", body, sign([]byte(`{"zen":"y"}`)), http.StatusUnauthorized},
		{"not json", "pull_request", []byte(`{"action":`), "", http.StatusBadRequest},
		{"ignored event", "ping", body, "", http.StatusOK},
		{"closed pull request", "pull_request", []byte(`{"action":"closed"}`), "", http.StatusOK},
	}
	for _, tt := range tests {
		code, _ := h.deliver(tt.event, "id-"+tt.name, tt.body, tt.sig)
		if code != tt.want {
			t.Errorf("%s: status %d, want %d", tt.name, code, tt.want)
		}
	}
	big := bytes.Repeat([]byte("a"), maxBody+1)
	if code, _ := h.deliver("ping", "big", big, ""); code != http.StatusRequestEntityTooLarge {
		t.Errorf("oversized body: %d", code)
	}
	if n, _ := h.srv.Store().QueueDepth(context.Background()); n != 0 {
		t.Errorf("%d deliveries stored from rejected requests", n)
	}
	page, _ := h.srv.Store().Query(context.Background(), audit.Filter{Limit: 10})
	if len(page.Records) != 0 {
		t.Errorf("%d decisions recorded from rejected requests", len(page.Records))
	}
	// A delivery id that is no GUID of GitHub's is refused, signed or not.
	if code, _ := h.deliver("ping", strings.Repeat("d", 200), body, ""); code != http.StatusBadRequest {
		t.Errorf("a 200-character delivery id: %d", code)
	}
	// Bad signatures are counted under the event named, when it is one of
	// GitHub's, else as "other": unsigned requests make no new labels.
	h.deliver("made-up-event", "id-made-up", body, "none")
	_, metrics := h.get("/metrics", "")
	if !strings.Contains(string(metrics), `gitpoli_deliveries_total{event="ping",outcome="bad_signature"} 4`) ||
		!strings.Contains(string(metrics), `gitpoli_deliveries_total{event="other",outcome="bad_signature"} 1`) {
		t.Errorf("metrics:\n%s", grepLines(string(metrics), "bad_signature"))
	}
}

func TestDeploymentApprovedThenRedeliveryIgnored(t *testing.T) {
	gh, f := fakeGitHubFor(t, "deployment_protection_rule.staging-allowed.json")
	h := start(t, gh, "")
	payload := withInstallation(t, f.Payload)
	code, out := h.deliver("deployment_protection_rule", "d-1", payload, "")
	if code != http.StatusAccepted || out["queued"] != true {
		t.Fatalf("delivery: %d %v", code, out)
	}
	p := gh.waitPost(t)
	if p.path != "/repos/product-os/deploynaut/actions/runs/12201231746/deployment_protection_rule" ||
		p.body["state"] != "approved" || p.body["environment_name"] != "staging" || p.auth != "token ghs_test1" {
		t.Errorf("callback %+v", p)
	}
	// Redelivered: acknowledged, never acted on twice.
	code, out = h.deliver("deployment_protection_rule", "d-1", payload, "")
	if code != http.StatusAccepted || out["duplicate"] != true {
		t.Errorf("redelivery: %d %v", code, out)
	}
	select {
	case p := <-gh.posted:
		t.Errorf("a redelivery was answered again: %+v", p)
	case <-time.After(300 * time.Millisecond):
	}
	page, err := h.srv.Store().Query(context.Background(), audit.Filter{Limit: 10})
	if err != nil || len(page.Records) != 1 {
		t.Fatalf("audit: %+v %v", page, err)
	}
	r := page.Records[0]
	if r.Decision != "allow" || r.Environment != "staging" || r.Repo != "product-os/deploynaut" || r.DeliveryID != "d-1" || !strings.Contains(string(r.Detail), `"default .repol/deploy.yaml"`) {
		t.Errorf("record %+v detail %s", r, r.Detail)
	}
}

func TestDeploymentRejectedWithViolations(t *testing.T) {
	gh, f := fakeGitHubFor(t, "deployment_protection_rule.production-denied.json")
	h := start(t, gh, "")
	h.deliver("deployment_protection_rule", "d-2", withInstallation(t, f.Payload), "")
	p := gh.waitPost(t)
	comment, _ := p.body["comment"].(string)
	if p.body["state"] != "rejected" || !strings.Contains(comment, "ref.denied") || !strings.Contains(comment, "approvals.insufficient") {
		t.Errorf("callback %+v", p.body)
	}
}

// TestDailyLimitAtItsBoundary: a repository allows two staging
// deployments a day; the third is rejected.
func TestDailyLimitAtItsBoundary(t *testing.T) {
	gh, f := fakeGitHubFor(t, "deployment_protection_rule.staging-allowed.json")
	cfg := "policy:\n  version: \"1\"\n  environments:\n    staging:\n      enabled: true\n      rules:\n        approvals_required: 0\n        allowed_branches: [\"develop\"]\n        tests_passed: false\n        signed_off: false\n        max_deployments_per_day: 2\n"
	gh.add(map[string]fixture.Response{"GET /repos/product-os/deploynaut/contents/.repol/deploy.yaml?ref=main": {Status: 200,
		Body: json.RawMessage(fmt.Sprintf(`{"type":"file","encoding":"base64","name":"deploy.yaml","path":".repol/deploy.yaml","content":%q}`, base64.StdEncoding.EncodeToString([]byte(cfg))))}})
	h := start(t, gh, "")
	payload := withInstallation(t, f.Payload)
	var states []any
	for i := range 3 {
		h.deliver("deployment_protection_rule", fmt.Sprintf("limit-%d", i), payload, "")
		states = append(states, gh.waitPost(t).body["state"])
	}
	if fmt.Sprint(states) != "[approved approved rejected]" {
		t.Errorf("states %v", states)
	}
}

func TestPullRequestCheckRun(t *testing.T) {
	gh, f := fakeGitHubFor(t, "pull_request.opened.dco-missing.json")
	h := start(t, gh, "")
	h.deliver("pull_request", "pr-1", withInstallation(t, f.Payload), "")
	p := gh.waitPost(t)
	out, _ := p.body["output"].(map[string]any)
	summary, _ := out["summary"].(string)
	if p.path != "/repos/Codertocat/Hello-World/check-runs" || p.body["name"] != "gitpoli / PR Policy" || p.body["conclusion"] != "failure" ||
		out["title"] != "Policy violations found" || !strings.Contains(summary, "| `signoff.missing` |") {
		t.Errorf("check run %+v", p.body)
	}
}

// TestCheckRunUpdated: when gitpoli's check run is already on the commit,
// it is updated rather than a second one created.
func TestCheckRunUpdated(t *testing.T) {
	gh, f := fakeGitHubFor(t, "pull_request.opened.dco-missing.json")
	gh.add(map[string]fixture.Response{
		// Only this App's runs are listed (app_id): another app's run of
		// the same name is not gitpoli's to update.
		"GET /repos/Codertocat/Hello-World/commits/ec26c3e57ca3a959ca5aad62de7213c562f8c821/check-runs?app_id=42&check_name=gitpoli+%2F+PR+Policy&filter=latest": {
			Status: 200, Body: json.RawMessage(`{"total_count":1,"check_runs":[{"id":7,"name":"gitpoli / PR Policy","status":"completed","conclusion":"success"}]}`)},
	})
	h := start(t, gh, "")
	h.deliver("pull_request", "pr-upd", withInstallation(t, f.Payload), "")
	p := gh.waitPost(t)
	if p.method != http.MethodPatch || p.path != "/repos/Codertocat/Hello-World/check-runs/7" || p.body["conclusion"] != "failure" {
		t.Errorf("update: %s %s %v", p.method, p.path, p.body)
	}
}

// TestPullRequestWithoutRepoConfigDecidedByDefault: a repository without
// its own .repol/pullrequest.yaml is decided with the server's, as replay
// decides it, and gets its check run.
func TestPullRequestWithoutRepoConfigDecidedByDefault(t *testing.T) {
	gh, f := fakeGitHubFor(t, "pull_request.opened.feature-approved.json")
	h := start(t, gh, "")
	h.deliver("pull_request", "pr-2", withInstallation(t, f.Payload), "")
	p := gh.waitPost(t)
	if p.path != "/repos/Codertocat/Hello-World/check-runs" || p.body["name"] != "gitpoli / PR Policy" || p.body["conclusion"] != "success" {
		t.Errorf("check run: %s %s %v", p.method, p.path, p.body)
	}
	summary, _ := p.body["output"].(map[string]any)["summary"].(string)
	if strings.Contains(summary, "audit_id: ``") {
		t.Errorf("summary names no audit id: %q", summary)
	}
	h.waitState("pr-2", "done")
	page, _ := h.srv.Store().Query(context.Background(), audit.Filter{Limit: 10})
	if len(page.Records) != 1 || !strings.Contains(string(page.Records[0].Detail), `"default .repol/pullrequest.yaml"`) ||
		!strings.Contains(summary, page.Records[0].ID) {
		t.Errorf("records %+v, summary %q", page.Records, summary)
	}
}

// TestServeDecidesAsReplay holds serve to replay: every delivery fixture
// of the test repository, delivered signed to a server whose fake GitHub
// answers the fixture's recorded requests (and 404 to the rest: a
// repository without its own config, as the fixtures that decide with
// the local one mean), is decided as replaying the fixture decides it.
func TestServeDecidesAsReplay(t *testing.T) {
	e, err := workbench.New(context.Background(), repoSources())
	if err != nil {
		t.Fatal(err)
	}
	fixtures, err := fixture.Load(os.DirFS("../internal/testrepo/testdata/fixtures"), "fixtures")
	if err != nil {
		t.Fatal(err)
	}
	compared := 0
	for _, f := range fixtures {
		// Input documents are no deliveries; serve counts a day's
		// deployments in its own audit log, which starts empty here.
		if f.Policy != "" || (f.Event == "deployment_protection_rule" && (f.DeploymentsToday == nil || *f.DeploymentsToday != 0)) {
			continue
		}
		compared++
		t.Run(strings.TrimPrefix(f.Name, "fixtures/"), func(t *testing.T) {
			want := fixture.Run(context.Background(), e, f)
			if want.Error != "" {
				t.Skip("replay cannot decide it either:", want.Error)
			}
			gh := newFakeGitHub(t)
			gh.add(f.Responses)
			h := start(t, gh, "")
			id := "agree-" + f.DeliveryID
			code, _ := h.deliver(f.Event, id, withInstallation(t, f.Payload), "")
			if code == http.StatusOK {
				if want.Ignored == "" {
					t.Fatalf("serve ignored it; replay decides %+v", want.Outcomes)
				}
				return
			}
			h.waitState(id, "done")
			recs, err := h.srv.Store().ForDelivery(context.Background(), id)
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]string{}
			for _, r := range recs {
				got[r.Policy] = recordedVerdict(r)
			}
			wantVerdicts := map[string]string{}
			for _, o := range want.Outcomes {
				wantVerdicts[string(o.Decision.Policy)] = o.Decision.Verdict().String()
			}
			if !maps.Equal(got, wantVerdicts) {
				t.Errorf("serve decided %v, replay %v", got, wantVerdicts)
			}
		})
	}
	if compared < 30 {
		t.Errorf("compared %d fixtures, want at least 30", compared)
	}
}

// recordedVerdict reads a record as a verdict; an answer GitHub did not
// take (an error outcome) still denied.
func recordedVerdict(r audit.Record) string {
	var vs []workbench.Violation
	_ = json.Unmarshal(r.Violations, &vs)
	codes := make([]string, len(vs))
	for i, v := range vs {
		codes[i] = v.Code
	}
	return workbench.NewVerdict(r.Decision == "allow", codes).String()
}

// TestCrashRecovery: a delivery acknowledged (stored) by a server that
// died before processing it is processed, once, by the next start.
//
// On SQLite the restart requeues it at once; on PostgreSQL (replicas
// share the queue, so a start cannot know the claim's owner is dead)
// the claim's lease runs out first.
func TestCrashRecovery(t *testing.T) {
	gh, f := fakeGitHubFor(t, "deployment_protection_rule.staging-allowed.json")
	db := newDB(t)
	store, err := audit.Open(context.Background(), db, audit.Options{Lease: 500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.Enqueue(context.Background(), audit.Delivery{ID: "crash-1", Event: "deployment_protection_rule", Payload: withInstallation(t, f.Payload)}); err != nil {
		t.Fatal(err)
	}
	// Claimed, then the process died mid-work.
	if _, err := store.Claim(context.Background()); err != nil {
		t.Fatal(err)
	}
	store.Close()
	startConfig(t, gh, db, func(c *Config) { c.Lease = 500 * time.Millisecond })
	if p := gh.waitPost(t); p.body["state"] != "approved" {
		t.Errorf("callback after restart: %+v", p.body)
	}
	select {
	case p := <-gh.posted:
		t.Errorf("answered twice: %+v", p)
	case <-time.After(300 * time.Millisecond):
	}
}

func TestGitHub5xxThenSuccess(t *testing.T) {
	gh, f := fakeGitHubFor(t, "deployment_protection_rule.staging-allowed.json")
	gh.fail["/deployment_protection_rule"] = 2
	h := start(t, gh, "")
	h.deliver("deployment_protection_rule", "retry-1", withInstallation(t, f.Payload), "")
	if p := gh.waitPost(t); p.body["state"] != "approved" {
		t.Errorf("callback %+v", p.body)
	}
	if len(gh.posts) != 1 {
		t.Errorf("%d callbacks, want 1", len(gh.posts))
	}
}

func grepLines(text, word string) string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if strings.Contains(l, word) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

func TestInstallationTokenCachedAndRenewed(t *testing.T) {
	gh, f := fakeGitHubFor(t, "deployment_protection_rule.staging-allowed.json")
	h := start(t, gh, "")
	payload := withInstallation(t, f.Payload)
	h.deliver("deployment_protection_rule", "tok-1", payload, "")
	gh.waitPost(t)
	h.deliver("deployment_protection_rule", "tok-2", payload, "")
	gh.waitPost(t)
	if gh.tokens != 1 {
		t.Errorf("%d tokens minted for two deliveries, want 1", gh.tokens)
	}
	// A token about to expire is replaced.
	h.srv.app.mu.Lock()
	for k, v := range h.srv.app.tokens {
		v.expires = time.Now().Add(time.Minute)
		h.srv.app.tokens[k] = v
	}
	h.srv.app.mu.Unlock()
	h.deliver("deployment_protection_rule", "tok-3", payload, "")
	if p := gh.waitPost(t); p.auth != "token ghs_test2" {
		t.Errorf("after expiry the callback used %q", p.auth)
	}
}

// TestTopdownEvaluator: GITPOLI_EVALUATOR=topdown makes every decision
// with OPA's own evaluator, says so, and decides as the planned one does.
func TestTopdownEvaluator(t *testing.T) {
	input := `{"environment":"production","ref":"refs/heads/main","repo_environments":["production"],"workflow_meta":{"approvers":["a"],"checks":{"tests":true},"signed_off":true,"deployments_today":0}}`
	decide := func(h *harness) string {
		req, _ := http.NewRequest(http.MethodPost, h.url+"/evaluate/deploy", strings.NewReader(input))
		req.Header.Set("Authorization", "Bearer audit-token")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var ev struct {
			Allow      bool              `json:"allow"`
			Violations []json.RawMessage `json:"violations"`
		}
		json.NewDecoder(resp.Body).Decode(&ev)
		out, _ := json.Marshal(ev)
		return string(out)
	}
	planned := decide(start(t, newFakeGitHub(t), ""))
	h := startConfig(t, newFakeGitHub(t), "", func(c *Config) { c.EngineOptions = []workbench.Option{workbench.TopdownOnly()} })
	if _, body := h.get("/health", ""); !strings.Contains(string(body), `"evaluators":{"deploy":"topdown","pullrequest":"topdown"}`) {
		t.Errorf("health: %s", body)
	}
	if got := decide(h); got != planned || !strings.Contains(got, "approvals.insufficient") {
		t.Errorf("topdown decided %s, the planned evaluator %s", got, planned)
	}
}

func TestAuditAndEvaluateAPI(t *testing.T) {
	gh := newFakeGitHub(t)
	h := start(t, gh, "")
	if code, _ := h.get("/audit", ""); code != http.StatusUnauthorized {
		t.Errorf("audit without token: %d", code)
	}
	if code, _ := h.get("/audit", "wrong"); code != http.StatusUnauthorized {
		t.Errorf("audit with a wrong token: %d", code)
	}
	input := `{"environment":"production","ref":"refs/heads/main","repo_environments":["production"],"workflow_meta":{"approvers":["a"],"checks":{"tests":true},"signed_off":true,"deployments_today":0}}`
	req, _ := http.NewRequest(http.MethodPost, h.url+"/evaluate/deploy", strings.NewReader(input))
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("evaluate without token: %v %v", resp, err)
	}
	req, _ = http.NewRequest(http.MethodPost, h.url+"/evaluate/deploy", strings.NewReader(input))
	req.Header.Set("Authorization", "Bearer audit-token")
	req.Header.Set("X-Actor", "ci-bot")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var ev map[string]any
	json.NewDecoder(resp.Body).Decode(&ev)
	resp.Body.Close()
	if resp.StatusCode != 200 || ev["allow"] != false || ev["audit_id"] == "" {
		t.Fatalf("evaluate: %d %v", resp.StatusCode, ev)
	}
	code, body := h.get("/audit?limit=5&policy=deploy", "audit-token")
	var page audit.Page
	json.Unmarshal(body, &page)
	if code != 200 || len(page.Records) != 1 || page.Records[0].Source != "api" || page.Records[0].Actor != "ci-bot" || page.Records[0].Environment != "production" {
		t.Errorf("audit list: %d %s", code, body)
	}
	code, body = h.get("/audit/"+page.Records[0].ID, "audit-token")
	if code != 200 || !strings.Contains(string(body), `"approvals.insufficient"`) {
		t.Errorf("audit get: %d %s", code, body)
	}
	if code, _ := h.get("/audit/nope", "audit-token"); code != 404 {
		t.Errorf("audit get unknown: %d", code)
	}
	code, body = h.get("/audit/summary", "audit-token")
	if code != 200 || !strings.Contains(string(body), `"total":1`) {
		t.Errorf("summary: %d %s", code, body)
	}
	if code, _ := h.get("/audit?limit=501", "audit-token"); code != 400 {
		t.Errorf("limit 501: %d", code)
	}
	if code, body := h.get("/audit?decision=maybe", "audit-token"); code != 400 || !strings.Contains(string(body), "allow, deny or error") {
		t.Errorf("decision=maybe: %d %s", code, body)
	}
	if code, body := h.get("/audit?since=1h", "audit-token"); code != 200 || !strings.Contains(string(body), `"policy":"deploy"`) {
		t.Errorf("since=1h (as gitpoli backtest --since takes it): %d %s", code, body)
	}
	if code, _ := h.get("/audit?since=yesterday", "audit-token"); code != 400 {
		t.Errorf("since=yesterday: %d", code)
	}
	code, body = h.get("/health", "")
	if code != 200 || !strings.Contains(string(body), `"db_writable":true`) || !strings.Contains(string(body), `"backend":"`+testBackend+`"`) ||
		!strings.Contains(string(body), `"evaluators":{"deploy":"irvm","pullrequest":"irvm"}`) {
		t.Errorf("health: %d %s", code, body)
	}

	code, body = h.get("/metrics", "")
	if code != 200 || !strings.Contains(string(body), `gitpoli_decisions_total{decision="deny",policy="deploy",source="api"} 1`) {
		t.Errorf("metrics: %d %s", code, body)
	}
	if walRestarts := strings.Contains(string(body), "gitpoli_audit_wal_restarts_total "); walRestarts != (testBackend == "sqlite") {
		t.Errorf("gitpoli_audit_wal_restarts_total exported: %v on %s", walRestarts, testBackend)
	}

	// Pages and filters: seven more decisions, walked three at a time.
	for _, env := range []string{"staging", "staging", "production", "staging", "production", "staging", "staging"} {
		req, _ := http.NewRequest(http.MethodPost, h.url+"/evaluate/deploy", strings.NewReader(strings.Replace(input, `"production"`, `"`+env+`"`, 1)))
		req.Header.Set("Authorization", "Bearer audit-token")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	var ids []string
	for cursor, pages := "", 0; ; pages++ {
		code, body := h.get("/audit?limit=3&cursor="+cursor, "audit-token")
		var page audit.Page
		if err := json.Unmarshal(body, &page); code != 200 || err != nil || pages > 3 {
			t.Fatalf("page %d: %d %s", pages, code, body)
		}
		for _, r := range page.Records {
			ids = append(ids, r.ID)
		}
		if cursor = page.NextCursor; cursor == "" {
			break
		}
	}
	if len(ids) != 8 || slices.Contains(ids[1:], ids[0]) {
		t.Errorf("paged through %d records, want 8 distinct: %v", len(ids), ids)
	}
	code, body = h.get("/audit?environment=staging&limit=50&since="+url.QueryEscape(time.Now().Add(-time.Hour).Format(time.RFC3339)), "audit-token")
	json.Unmarshal(body, &page)
	if code != 200 || len(page.Records) != 5 {
		t.Errorf("staging in the last hour: %d records (%d), want 5", len(page.Records), code)
	}
	code, body = h.get("/audit?since="+url.QueryEscape(time.Now().Add(time.Hour).Format(time.RFC3339)), "audit-token")
	json.Unmarshal(body, &page)
	if code != 200 || len(page.Records) != 0 {
		t.Errorf("since an hour from now: %d records (%d)", len(page.Records), code)
	}
	code, body = h.get("/audit/summary", "audit-token")
	if code != 200 || !strings.Contains(string(body), `"by_environment":{"production":3,"staging":5}`) {
		t.Errorf("summary: %d %s", code, body)
	}
}

// TestInvalidRepoConfigRejects: the repository's deploy.yaml breaks its
// schema; the rejection comment names the file and line.
func TestInvalidRepoConfigRejects(t *testing.T) {
	gh, f := fakeGitHubFor(t, "deployment_protection_rule.repo-config-broken.json")
	h := start(t, gh, "")
	h.deliver("deployment_protection_rule", "badcfg", withInstallation(t, f.Payload), "")
	p := gh.waitPost(t)
	comment, _ := p.body["comment"].(string)
	if p.body["state"] != "rejected" || !strings.Contains(comment, "| `config.invalid` | policy.version: is required | `product-os/deploynaut@main:.repol/deploy.yaml:1:1` (`policy.version`) |") {
		t.Errorf("callback %v:\n%s", p.body["state"], comment)
	}
}

// TestReloadKeepsLastGood: a broken policy does not replace the running one.
func TestReloadKeepsLastGood(t *testing.T) {
	gh := newFakeGitHub(t)
	h := start(t, gh, "")
	before := h.srv.engine.Load()
	h.srv.cfg.Sources.Policies = workbench.Dir{Name: "policies", FS: fstest.MapFS{"deploy.rego": {Data: []byte("package github.deploy\n\nallow if {")}}}
	if err := h.srv.Reload(context.Background()); err == nil {
		t.Fatal("a broken policy reloaded")
	}
	if h.srv.engine.Load() != before {
		t.Error("the running policies were replaced by broken ones")
	}
	h.srv.cfg.Sources = repoSources()
	if err := h.srv.Reload(context.Background()); err != nil || h.srv.engine.Load() == before {
		t.Errorf("a good reload: %v", err)
	}
}

// TestShadowMode: candidate policies decide every delivery too; only the
// live decision is enforced; disagreements are listed by the audit API.
func TestShadowMode(t *testing.T) {
	gh, f := fakeGitHubFor(t, "deployment_protection_rule.production-allowed.json")
	h := startShadow(t, gh)
	h.deliver("deployment_protection_rule", "sh-1", withInstallation(t, f.Payload), "")
	if p := gh.waitPost(t); p.body["state"] != "approved" {
		t.Errorf("enforced decision: %v", p.body["state"])
	}
	var page audit.Page
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		_, body := h.get("/audit?disagree=true", "audit-token")
		page = audit.Page{}
		json.Unmarshal(body, &page)
		if len(page.Records) > 0 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if len(page.Records) != 1 {
		t.Fatalf("disagreements: %+v", page.Records)
	}
	r := page.Records[0]
	if r.Decision != "allow" || r.Shadow == nil || r.Shadow.Decision != "deny" || !r.Shadow.Disagree ||
		!strings.Contains(string(r.Shadow.Violations), "approvals.insufficient") {
		t.Errorf("record %+v shadow %+v", r, r.Shadow)
	}
}

func TestRefusesToStartWithoutSecret(t *testing.T) {
	_, err := New(context.Background(), Config{DB: filepath.Join(t.TempDir(), "x.db"), Sources: repoSources()})
	if err == nil || !strings.Contains(err.Error(), "GITPOLI_WEBHOOK_SECRET") {
		t.Errorf("New without a secret: %v", err)
	}
}

// TestNoAppCredentialsFailsClosed: without App credentials nothing can be
// asked of GitHub; the deployment is denied and recorded, nothing panics.
func TestNoAppCredentialsFailsClosed(t *testing.T) {
	gh := newFakeGitHub(t)
	f := loadFixture(t, "deployment_protection_rule.staging-allowed.json")
	h := start(t, gh, "")
	h.srv.app.key = nil
	h.deliver("deployment_protection_rule", "nocreds", withInstallation(t, f.Payload), "")
	h.waitState("nocreds", "error")
	page, _ := h.srv.Store().Query(context.Background(), audit.Filter{Limit: 10})
	if len(page.Records) == 0 {
		t.Fatal("nothing recorded")
	}
	for _, r := range page.Records {
		if r.Decision == "allow" {
			t.Errorf("allowed without facts: %s", r.Violations)
		}
	}
}

func TestTokenNeverSentElsewhere(t *testing.T) {
	a := &app{apiURL: "https://api.github.com/", client: &http.Client{}, now: time.Now}
	c := a.installationClient(1)
	_, err := c.Get("https://evil.example/repos/o/r")
	if err == nil || !strings.Contains(err.Error(), "refusing to send the installation token") {
		t.Errorf("request to another host: %v", err)
	}
}

// TestHostileRequests: what an attacker, or a misconfigured webhook, can
// send gets a clear status and records nothing.
func TestHostileRequests(t *testing.T) {
	gh := newFakeGitHub(t)
	h := start(t, gh, "")
	send := func(headers map[string]string, body []byte) int {
		req, _ := http.NewRequest(http.MethodPost, h.url+"/webhook", bytes.NewReader(body))
		for k, v := range headers {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return -1
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	signed := func(event string, body []byte) map[string]string {
		return map[string]string{"X-GitHub-Event": event, "X-GitHub-Delivery": "h-" + event + fmt.Sprint(len(body)), "X-Hub-Signature-256": sign(body), "Content-Type": "application/json"}
	}
	deep := []byte(strings.Repeat(`{"a":`, 20000) + "1" + strings.Repeat("}", 20000))
	tests := []struct {
		name    string
		headers map[string]string
		body    []byte
		want    int
	}{
		{"huge headers", map[string]string{"X-Junk": strings.Repeat("a", 200<<10)}, []byte("{}"), http.StatusRequestHeaderFieldsTooLarge},
		{"form content type", map[string]string{"Content-Type": "application/x-www-form-urlencoded", "X-Hub-Signature-256": sign([]byte("payload=%7B%7D"))}, []byte("payload=%7B%7D"), http.StatusUnsupportedMediaType},
		{"deeply nested JSON", signed("deployment_protection_rule", deep), deep, http.StatusBadRequest},
		{"not an object", signed("pull_request", []byte(`[1,2]`)), []byte(`[1,2]`), http.StatusBadRequest},
		{"invalid UTF-8 in an ignored event", signed("ping", []byte("{\"zen\":\"\xff\xfe\"}")), []byte("{\"zen\":\"\xff\xfe\"}"), http.StatusOK},
		{"unsigned", map[string]string{"X-GitHub-Event": "ping"}, []byte("{}"), http.StatusUnauthorized},
		{"no delivery id", map[string]string{"X-GitHub-Event": "ping", "X-Hub-Signature-256": sign([]byte("{}"))}, []byte("{}"), http.StatusBadRequest},
	}
	for _, tt := range tests {
		if got := send(tt.headers, tt.body); got != tt.want {
			t.Errorf("%s: status %d, want %d", tt.name, got, tt.want)
		}
	}
	// Slow loris: headers never finish; the server hangs up.
	conn, err := net.Dial("tcp", strings.TrimPrefix(h.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprint(conn, "POST /webhook HTTP/1.1\r\nHost: x\r\nX-Slow: ")
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	start := time.Now()
	_, _ = conn.Read(make([]byte, 1)) // returns when the server hangs up
	if held := time.Since(start); held > 5*time.Second {
		t.Errorf("a slow client held the connection for %s", held)
	}
	if n, _ := h.srv.Store().QueueDepth(context.Background()); n != 0 {
		t.Errorf("%d deliveries stored from hostile requests", n)
	}
}

// openDirect opens the server's audit database beside it, as another
// process would: on SQLite a write waits for the server's (a lease
// renewal, a checkpoint) instead of failing at once.
func openDirect(t *testing.T, h *harness) *sql.DB {
	t.Helper()
	driver, dsn := "sqlite", "file:"+h.db+"?_pragma=busy_timeout(10000)"
	if audit.IsPostgres(h.db) {
		driver, dsn = "pgx", h.db
	}
	db, err := sql.Open(driver, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// rewind puts a processed delivery back in the queue, as if its worker
// had died before marking it done; forgetAnswer also removes GitHub's
// answer from its decision, as if the worker died before recording it.
func rewind(t *testing.T, h *harness, id string, forgetAnswer bool) {
	t.Helper()
	driver := "sqlite"
	if audit.IsPostgres(h.db) {
		driver = "pgx"
	}
	db := openDirect(t, h)
	// A working delivery whose lease ran out: the next claim takes it.
	rewound, forget := `UPDATE deliveries SET state = 'working', lease_until = '' WHERE delivery_id = ?`,
		`UPDATE decisions SET detail = '{"config":"repository .repol/deploy.yaml"}' WHERE delivery_id = ?`
	if driver == "pgx" {
		rewound = `UPDATE deliveries SET state = 'working', lease_until = now() - interval '1 hour' WHERE delivery_id = $1`
		forget = strings.Replace(forget, "?", "$1", 1)
	}
	if _, err := db.Exec(rewound, id); err != nil {
		t.Fatal(err)
	}
	if forgetAnswer {
		if _, err := db.Exec(forget, id); err != nil {
			t.Fatal(err)
		}
	}
}

// TestReclaimedDeliveryIsNotDecidedTwice: a delivery whose worker died
// after deciding it is answered with the recorded decision (the same
// audit id, no second record), and not answered at all when the answer
// was recorded too.
func TestReclaimedDeliveryIsNotDecidedTwice(t *testing.T) {
	gh, f := fakeGitHubFor(t, "deployment_protection_rule.staging-allowed.json")
	h := startConfig(t, gh, "", func(c *Config) { c.Lease = 300 * time.Millisecond })
	payload := withInstallation(t, f.Payload)
	h.deliver("deployment_protection_rule", "reclaim-1", payload, "")
	first := gh.waitPost(t)
	h.waitState("reclaim-1", "done")

	rewind(t, h, "reclaim-1", false) // died after recording the answer
	h.waitState("reclaim-1", "done")
	h.deliver("deployment_protection_rule", "reclaim-wake", payload, "") // a later delivery goes through
	gh.waitPost(t)
	h.waitState("reclaim-wake", "done")
	recs, _ := h.srv.Store().ForDelivery(context.Background(), "reclaim-1")
	if len(recs) != 1 || len(gh.posts) != 2 {
		t.Fatalf("after a restart past the answer: %d records, %d callbacks; want 1 and 2", len(recs), len(gh.posts))
	}

	rewind(t, h, "reclaim-1", true) // died between the answer and its record
	again := gh.waitPost(t)
	h.waitState("reclaim-1", "done")
	recs, _ = h.srv.Store().ForDelivery(context.Background(), "reclaim-1")
	if len(recs) != 1 {
		t.Fatalf("%d decisions for one delivery, want 1", len(recs))
	}
	id := recs[0].ID
	if again.body["state"] != first.body["state"] || !strings.Contains(fmt.Sprint(again.body["comment"]), id) || !strings.Contains(fmt.Sprint(first.body["comment"]), id) {
		t.Errorf("answered again with %v, first %v (audit id %s)", again.body, first.body, id)
	}
	if !strings.Contains(string(recs[0].Detail), `"answer"`) {
		t.Errorf("the second answer is not recorded: %s", recs[0].Detail)
	}
}

// TestLostClaimStopsTheWorker: while a worker waits on GitHub, another
// replica takes its delivery over. The worker notices at its next lease
// renewal and stops: it neither posts a check run nor records a decision
// when GitHub answers.
func TestLostClaimStopsTheWorker(t *testing.T) {
	gh, f := fakeGitHubFor(t, "pull_request.opened.dco-missing.json")
	release := make(chan struct{})
	gh.hold, gh.release = "/repos/", release
	h := startConfig(t, gh, "", func(c *Config) { c.Lease = 300 * time.Millisecond })
	h.deliver("pull_request", "taken-over", withInstallation(t, f.Payload), "")
	h.waitState("taken-over", "working")

	takeOver := `UPDATE deliveries SET attempts = attempts + 1, lease_until = '9999-12-31T00:00:00.000000000Z' WHERE delivery_id = ?`
	if audit.IsPostgres(h.db) {
		takeOver = `UPDATE deliveries SET attempts = attempts + 1, lease_until = now() + interval '1 day' WHERE delivery_id = $1`
	}
	db := openDirect(t, h)
	if _, err := db.Exec(takeOver, "taken-over"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond) // more than a renewal
	close(release)
	time.Sleep(500 * time.Millisecond)
	recs, _ := h.srv.Store().ForDelivery(context.Background(), "taken-over")
	gh.mu.Lock()
	posts := len(gh.posts)
	gh.mu.Unlock()
	if posts != 0 || len(recs) != 0 {
		t.Errorf("the worker that lost its claim went on: %d posts, %d decisions", posts, len(recs))
	}
}

// TestReanswerRefusedKeepsDecision: a worker died between GitHub taking
// its approval and recording it; GitHub refuses the second answer, and
// the approval stays recorded as an approval (it counts against the
// daily limit, since GitHub has it).
func TestReanswerRefusedKeepsDecision(t *testing.T) {
	gh, f := fakeGitHubFor(t, "deployment_protection_rule.staging-allowed.json")
	h := startConfig(t, gh, "", func(c *Config) { c.Lease = 300 * time.Millisecond })
	h.deliver("deployment_protection_rule", "refused-1", withInstallation(t, f.Payload), "")
	gh.waitPost(t)
	h.waitState("refused-1", "done")
	gh.mu.Lock()
	gh.fail["/deployment_protection_rule"], gh.failStatus = 1, http.StatusUnprocessableEntity
	gh.mu.Unlock()
	rewind(t, h, "refused-1", true)
	h.waitState("refused-1", "done")
	recs, _ := h.srv.Store().ForDelivery(context.Background(), "refused-1")
	if len(recs) != 1 || recs[0].Decision != "allow" || !strings.Contains(string(recs[0].Detail), "422") {
		t.Errorf("after GitHub refused the second answer: %+v", recs)
	}
}

// TestAbandonedAfterRepeatedClaims: a delivery whose workers died five
// times over is marked failed instead of being passed on for ever.
func TestAbandonedAfterRepeatedClaims(t *testing.T) {
	gh, f := fakeGitHubFor(t, "deployment_protection_rule.staging-allowed.json")
	db := newDB(t)
	store, err := audit.Open(context.Background(), db, audit.Options{Lease: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.Enqueue(context.Background(), audit.Delivery{ID: "doomed", Event: "deployment_protection_rule", Payload: withInstallation(t, f.Payload)}); err != nil {
		t.Fatal(err)
	}
	for range maxClaims {
		time.Sleep(5 * time.Millisecond)
		if d, err := store.Claim(context.Background()); err != nil || d == nil {
			t.Fatalf("claim: %v %v", d, err)
		}
	}
	store.Close()
	h := startConfig(t, gh, db, func(c *Config) { c.Lease = 300 * time.Millisecond })
	h.waitState("doomed", "error")
	if len(gh.posts) != 0 {
		t.Errorf("an abandoned delivery was answered: %+v", gh.posts)
	}
}

// TestOnPostgres runs the server's tests again on a PostgreSQL audit
// database: the same behaviour on both backends.
func TestOnPostgres(t *testing.T) {
	pgtest.AdminURL(t) // skips, or fails under GITPOLI_REQUIRE_POSTGRES=1, without PostgreSQL
	suite := []struct {
		name string
		test func(*testing.T)
	}{
		{"WebhookRejectsBadInput", TestWebhookRejectsBadInput},
		{"DeploymentApprovedThenRedeliveryIgnored", TestDeploymentApprovedThenRedeliveryIgnored},
		{"DeploymentRejectedWithViolations", TestDeploymentRejectedWithViolations},
		{"DailyLimitAtItsBoundary", TestDailyLimitAtItsBoundary},
		{"PullRequestCheckRun", TestPullRequestCheckRun},
		{"CheckRunUpdated", TestCheckRunUpdated},
		{"PullRequestWithoutRepoConfigDecidedByDefault", TestPullRequestWithoutRepoConfigDecidedByDefault},
		{"CrashRecovery", TestCrashRecovery},
		{"ReclaimedDeliveryIsNotDecidedTwice", TestReclaimedDeliveryIsNotDecidedTwice},
		{"ReanswerRefusedKeepsDecision", TestReanswerRefusedKeepsDecision},
		{"AbandonedAfterRepeatedClaims", TestAbandonedAfterRepeatedClaims},
		{"LostClaimStopsTheWorker", TestLostClaimStopsTheWorker},
		{"GitHub5xxThenSuccess", TestGitHub5xxThenSuccess},
		{"AnswersWaitForGitHub", TestAnswersWaitForGitHub},
		{"AuditAndEvaluateAPI", TestAuditAndEvaluateAPI},
		{"InvalidRepoConfigRejects", TestInvalidRepoConfigRejects},
		{"ShadowMode", TestShadowMode},
		{"TokenNeverSentElsewhere", TestTokenNeverSentElsewhere},
	}
	testBackend = "postgres"
	defer func() { testBackend = "sqlite" }()
	for _, tc := range suite {
		t.Run(tc.name, tc.test)
	}
}

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// TestReclaimedPullRequestWhoseCheckRunFailed: a pull request whose check
// run GitHub refused (422) is recorded as an error. Claimed again after its
// worker died, it is not decided again, and the log says its check run
// failed, not that it was answered.
func TestReclaimedPullRequestWhoseCheckRunFailed(t *testing.T) {
	gh, f := fakeGitHubFor(t, "pull_request.opened.dco-missing.json")
	gh.fail["/check-runs"] = 1000
	gh.failStatus = http.StatusUnprocessableEntity // refused for good
	logs := &syncbuf.Buffer{}
	h := startConfig(t, gh, "", func(c *Config) {
		c.Lease = 300 * time.Millisecond
		c.Logger = slog.New(slog.NewTextHandler(logs, nil))
	})
	payload := withInstallation(t, f.Payload)
	h.deliver("pull_request", "pr-down", payload, "")
	h.waitState("pr-down", "error")
	rewind(t, h, "pr-down", false)
	h.deliver("pull_request", "pr-wake", payload, "") // a later delivery goes through
	h.waitState("pr-down", "done")
	recs, _ := h.srv.Store().ForDelivery(context.Background(), "pr-down")
	if len(recs) != 1 || recs[0].Decision != "error" {
		t.Fatalf("records %+v, want the one error", recs)
	}
	out := logs.String()
	if !strings.Contains(out, "its answer could not be sent to GitHub then") || strings.Contains(out, "already decided and answered") {
		t.Errorf("log:\n%s", out)
	}
}

// wipSources is the test repository with the no-WIP policy of
// examples/wip added, and without the pull-request policy when alone.
func wipSources(t *testing.T, alone bool) workbench.Sources {
	t.Helper()
	dir := t.TempDir()
	for _, d := range []string{"policies", ".repol", "schemas"} {
		if err := os.CopyFS(filepath.Join(dir, d), os.DirFS(filepath.Join("../internal/testrepo/testdata", d))); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.CopyFS(dir, os.DirFS("../examples/wip")); err != nil {
		t.Fatal(err)
	}
	if alone {
		for _, name := range []string{"policies/pullrequest.rego", "policies/pullrequest_test.rego", ".repol/pullrequest.yaml", "schemas/pullrequest.schema.json"} {
			if err := os.Remove(filepath.Join(dir, name)); err != nil {
				t.Fatal(err)
			}
		}
	}
	return workbench.Sources{
		Policies: workbench.Dir{FS: os.DirFS(filepath.Join(dir, "policies")), Name: "policies"},
		Config:   workbench.Dir{FS: os.DirFS(filepath.Join(dir, ".repol")), Name: ".repol"},
		Schemas:  workbench.Dir{FS: os.DirFS(filepath.Join(dir, "schemas")), Name: "schemas"},
	}
}

// TestEachCheckPolicyPostsItsCheckRun: a policy added as Rego alone (the
// no-WIP policy) gets its own check run beside the pull-request policy's,
// created once per head and updated after that; with the pull-request
// policy deleted, it is the only one.
func TestEachCheckPolicyPostsItsCheckRun(t *testing.T) {
	for _, alone := range []bool{false, true} {
		t.Run(fmt.Sprintf("alone=%v", alone), func(t *testing.T) {
			gh, f := fakeGitHubFor(t, "pull_request.opened.octokit.json")
			h := startConfig(t, gh, "", func(c *Config) { c.Sources = wipSources(t, alone) })
			var payload map[string]any
			if err := json.Unmarshal(withInstallation(t, f.Payload), &payload); err != nil {
				t.Fatal(err)
			}
			payload["pull_request"].(map[string]any)["title"] = "WIP: Update the README with new information."
			body, _ := json.Marshal(payload)
			h.deliver("pull_request", "wip-1", body, "")
			h.waitState("wip-1", "done")
			runs := map[string]post{}
			for _, p := range gh.posts {
				if p.path == "/repos/Codertocat/Hello-World/check-runs" {
					name, _ := p.body["name"].(string)
					if _, dup := runs[name]; dup {
						t.Errorf("two check runs named %q", name)
					}
					runs[name] = p
				}
			}
			want := 2
			if alone {
				want = 1
			}
			if len(runs) != want || len(gh.posts) != want {
				t.Fatalf("check runs %v, posts %v; want %d", runs, gh.posts, want)
			}
			wip := runs["gitpoli / No WIP"]
			summary, _ := wip.body["output"].(map[string]any)["summary"].(string)
			if wip.body["conclusion"] != "failure" || wip.body["head_sha"] != "ec26c3e57ca3a959ca5aad62de7213c562f8c821" || !strings.Contains(summary, "`pr.wip`") {
				t.Errorf("No WIP check run: %v", wip.body)
			}
			if pr, ok := runs["gitpoli / PR Policy"]; !alone && (!ok || pr.body["conclusion"] != "failure") {
				t.Errorf("PR Policy check run: %v", pr.body)
			}
			recs, _ := h.srv.Store().ForDelivery(context.Background(), "wip-1")
			policies := map[string]string{}
			for _, r := range recs {
				policies[r.Policy] = r.Decision
			}
			if policies["wip"] != "deny" || len(policies) != want {
				t.Errorf("audit records by policy: %v", policies)
			}
			page, err := h.srv.Store().Query(context.Background(), audit.Filter{Limit: 10, Policy: "wip"})
			if err != nil || len(page.Records) != 1 {
				t.Errorf("audit filtered by policy wip: %+v %v", page.Records, err)
			}

			// The title fixed: GitHub lists the check run made for this
			// head, and that one is updated, not a second one made.
			q := url.Values{"app_id": {"42"}, "check_name": {"gitpoli / No WIP"}, "filter": {"latest"}}
			gh.add(map[string]fixture.Response{
				"GET /repos/Codertocat/Hello-World/commits/ec26c3e57ca3a959ca5aad62de7213c562f8c821/check-runs?" + q.Encode(): {
					Status: 200, Body: json.RawMessage(`{"total_count":1,"check_runs":[{"id":9,"name":"gitpoli / No WIP"}]}`)},
			})
			gh.mu.Lock()
			gh.posts = nil
			gh.mu.Unlock()
			payload["action"] = "edited"
			payload["pull_request"].(map[string]any)["title"] = "Update the README with new information."
			body, _ = json.Marshal(payload)
			h.deliver("pull_request", "wip-2", body, "")
			h.waitState("wip-2", "done")
			var updated []post
			for _, p := range gh.posts {
				if strings.Contains(p.path, "/check-runs") && p.body["name"] == "gitpoli / No WIP" {
					updated = append(updated, p)
				}
			}
			if len(updated) != 1 || updated[0].method != http.MethodPatch || updated[0].path != "/repos/Codertocat/Hello-World/check-runs/9" || updated[0].body["conclusion"] != "success" {
				t.Errorf("after the edit, No WIP posts %+v, want one update of check run 9 to success", updated)
			}
		})
	}
}

// TestDeploymentAnsweredOnceForAllItsPolicies: with a second deployment
// policy and a record policy beside the starter deploy policy, GitHub
// gets one answer, rejected because one policy denies, naming that
// policy's violations; every policy's decision is its own record, and the
// record policy's answers nothing.
func TestDeploymentAnsweredOnceForAllItsPolicies(t *testing.T) {
	gh, f := fakeGitHubFor(t, "deployment_protection_rule.staging-allowed.json")
	src := withPolicies(t, freezePolicy, watchPolicy)
	h := startConfig(t, gh, "", func(c *Config) { c.Sources = src })
	h.deliver("deployment_protection_rule", "d-many", withInstallation(t, f.Payload), "")
	p := gh.waitPost(t)
	h.waitState("d-many", "done")
	comment, _ := p.body["comment"].(string)
	if p.path != "/repos/product-os/deploynaut/actions/runs/12201231746/deployment_protection_rule" || p.body["state"] != "rejected" ||
		!strings.Contains(comment, "**freeze** denies. Violations: freeze.on") || strings.Contains(comment, "**deploy**") {
		t.Errorf("answer %s %v", p.path, p.body)
	}
	if len(gh.posts) != 1 {
		t.Errorf("%d answers, want one: %+v", len(gh.posts), gh.posts)
	}
	recs, err := h.srv.Store().ForDelivery(context.Background(), "d-many")
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, r := range recs {
		got[r.Policy] = r.Decision
		answered := strings.Contains(string(r.Detail), `"answer"`)
		if answered != (r.Policy != "watch") {
			t.Errorf("%s: detail %s", r.Policy, r.Detail)
		}
		if r.Policy != "watch" && !strings.Contains(comment, r.ID) {
			t.Errorf("the answer names no audit id of %s: %q", r.Policy, comment)
		}
	}
	if want := map[string]string{"deploy": "allow", "freeze": "deny", "watch": "allow"}; !maps.Equal(got, want) {
		t.Errorf("records %v, want %v", got, want)
	}
}

// freezePolicy is a second deployment policy: staging is frozen.
var freezePolicy = map[string]string{"freeze.rego": `# METADATA
# title: Change freeze
# custom:
#   gitpoli:
#     on: [deployment_protection_rule]
#     answer: deployment
package github.freeze

default allow := false

allow if count(violations) == 0

violations contains {"code": "freeze.on", "msg": sprintf("%s is frozen", [input.deployment.environment])} if {
	input.deployment.environment == "staging"
}
`}

// watchPolicy records deployments, and denies one decided without the
// day's count: a record policy decides with the same input as the
// deployment policies.
var watchPolicy = map[string]string{"watch.rego": `# METADATA
# custom:
#   gitpoli:
#     on: [deployment_protection_rule.requested]
#     answer: record
package github.watch

default allow := false

allow if count(violations) == 0

violations contains {"code": "count.missing", "msg": "no deployments_today"} if {
	not is_number(object.get(input, ["workflow_meta", "deployments_today"], null))
}
`}

// withPolicies is the test repository's sources with more policy files.
func withPolicies(t *testing.T, extra ...map[string]string) workbench.Sources {
	t.Helper()
	src := repoSources()
	files := fstest.MapFS{}
	if err := fs.WalkDir(src.Policies.FS, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := fs.ReadFile(src.Policies.FS, p)
		files[p] = &fstest.MapFile{Data: data}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	for _, m := range extra {
		for name, text := range m {
			files[name] = &fstest.MapFile{Data: []byte(text)}
		}
	}
	src.Policies.FS = files
	return src
}

// TestReclaimedAfterReloadDecidesOnlyTheNewPolicy: a deployment decided
// by the deploy policy, whose answer a restart cut off, is claimed again
// after a reload added a second deployment policy. The recorded decision
// stands (same audit id), the new policy decides now, and the one answer
// carries both: rejected, because the new one denies.
func TestReclaimedAfterReloadDecidesOnlyTheNewPolicy(t *testing.T) {
	gh, f := fakeGitHubFor(t, "deployment_protection_rule.staging-allowed.json")
	h := startConfig(t, gh, "", func(c *Config) { c.Lease = 300 * time.Millisecond })
	h.deliver("deployment_protection_rule", "reload-1", withInstallation(t, f.Payload), "")
	if first := gh.waitPost(t); first.body["state"] != "approved" {
		t.Fatalf("first answer %v", first.body)
	}
	h.waitState("reload-1", "done")
	before, _ := h.srv.Store().ForDelivery(context.Background(), "reload-1")

	e, err := workbench.New(context.Background(), withPolicies(t, freezePolicy))
	if err != nil {
		t.Fatal(err)
	}
	h.srv.engine.Store(e)
	rewind(t, h, "reload-1", true)
	again := gh.waitPost(t)
	h.waitState("reload-1", "done")
	recs, _ := h.srv.Store().ForDelivery(context.Background(), "reload-1")
	got := map[string]string{}
	for _, r := range recs {
		got[r.Policy] = r.Decision
	}
	comment, _ := again.body["comment"].(string)
	if len(before) != 1 || len(recs) != 2 || got["deploy"] != "allow" || got["freeze"] != "deny" || again.body["state"] != "rejected" ||
		!strings.Contains(comment, before[0].ID) || !strings.Contains(comment, "freeze.on") {
		t.Errorf("records %v (before %d), answer %v", got, len(before), again.body)
	}
}

// TestWarnsWithoutAuditToken: serve says at start that without
// GITPOLI_AUDIT_TOKEN the audit API and /evaluate answer 401.
func TestWarnsWithoutAuditToken(t *testing.T) {
	var logs syncbuf.Buffer
	h := startConfig(t, newFakeGitHub(t), "", func(c *Config) {
		c.AuditToken = ""
		c.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	})
	if code, _ := h.get("/audit", ""); code != http.StatusUnauthorized {
		t.Errorf("/audit without a token configured: %d", code)
	}
	if !strings.Contains(logs.String(), "GITPOLI_AUDIT_TOKEN is not set: the audit API (/audit) and /evaluate are disabled") {
		t.Errorf("log:\n%s", logs.String())
	}
}

// TestHostileIdentifiersSendNothing: signed payloads whose repository or
// commit would climb out of their API path, or whose installation is not
// a number, are recorded as errors with the reason, and not one request
// reaches GitHub (where the installation token would have gone with it).
func TestHostileIdentifiersSendNothing(t *testing.T) {
	gh, f := fakeGitHubFor(t, "pull_request.opened.octokit.json")
	h := start(t, gh, "")
	edit := func(change func(p map[string]any)) []byte {
		var p map[string]any
		if err := json.Unmarshal(withInstallation(t, f.Payload), &p); err != nil {
			t.Fatal(err)
		}
		change(p)
		out, _ := json.Marshal(p)
		return out
	}
	pr := func(p map[string]any) map[string]any { return p["pull_request"].(map[string]any) }
	tests := []struct {
		name, state string
		body        []byte
	}{
		{"repository ../..", "error", edit(func(p map[string]any) { p["repository"].(map[string]any)["full_name"] = "../.." })},
		{"head sha as a path", "error", edit(func(p map[string]any) {
			pr(p)["head"].(map[string]any)["sha"] = "../../../app/installations/1/access_tokens"
		})},
		{"installation abc", "error", edit(func(p map[string]any) { p["installation"] = map[string]any{"id": "abc"} })},
		{"no installation", "error", edit(func(p map[string]any) { delete(p, "installation") })},
	}
	for i, tt := range tests {
		id := fmt.Sprintf("hostile-%d", i)
		if code, _ := h.deliver("pull_request", id, tt.body, ""); code != http.StatusAccepted {
			t.Errorf("%s: status %d", tt.name, code)
		}
		h.waitState(id, tt.state)
	}
	gh.mu.Lock()
	defer gh.mu.Unlock()
	if len(gh.requests) != 0 {
		t.Errorf("requests reached GitHub: %q", gh.requests)
	}
	for _, id := range []string{"hostile-0", "hostile-1"} {
		recs, _ := h.srv.Store().ForDelivery(context.Background(), id)
		if len(recs) != 1 || recs[0].Decision != "error" || !strings.Contains(string(recs[0].Detail), "not answered: the delivery is invalid") ||
			!strings.Contains(string(recs[0].Violations), "delivery.invalid") {
			t.Errorf("%s: records %+v", id, recs)
		}
	}
}

// TestInflightBodiesCapped: while an unsigned body holds the budget for
// bodies read before their signature is checked, with what it has sent
// (not what it declared), the next large request waits a moment and is
// turned away with 503 and Retry-After; a delivery of the usual size is
// still taken (the first 256 KiB of every body have a budget of their
// own), and a large one again once the budget frees. A body declared
// larger than GitHub sends is refused before a byte of it is read.
func TestInflightBodiesCapped(t *testing.T) {
	h := startConfig(t, newFakeGitHub(t), "", func(c *Config) {
		c.MaxInflightBytes = 1 << 20
		c.ReadHeaderTimeout = 10 * time.Second
	})
	addr := strings.TrimPrefix(h.url, "http://")
	// An unsigned body declared at 10 MB (past the budget, which a
	// declaration alone does not spend): 256 KB + 950 KB of it sent, then
	// nothing.
	slow, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	fmt.Fprintf(slow, "POST /webhook HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nX-GitHub-Event: ping\r\nX-GitHub-Delivery: slow\r\nContent-Length: %d\r\n\r\n{", 10<<20)
	if _, err := slow.Write(bytes.Repeat([]byte("a"), smallBody+950<<10)); err != nil {
		t.Fatal(err)
	}
	// Until the server has read what was sent, a request racing it for the
	// budget could win; then the slow body holds it.
	deadline := time.Now().Add(5 * time.Second)
	for h.srv.bodies.TryAcquire(200 << 10) {
		h.srv.bodies.Release(200 << 10)
		if time.Now().After(deadline) {
			t.Fatal("the slow body never held the budget")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if code, _ := h.deliver("ping", "small", []byte(`{"zen":"x"}`), ""); code != http.StatusOK {
		t.Errorf("a delivery of the usual size while the budget is spent: %d", code)
	}
	for {
		body := []byte(`{"zen":"` + strings.Repeat("x", 600<<10) + `"}`)
		start := time.Now()
		req, _ := http.NewRequest(http.MethodPost, h.url+"/webhook", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusServiceUnavailable {
			if resp.Header.Get("Retry-After") == "" || time.Since(start) > 3*time.Second {
				t.Errorf("503 without Retry-After, or after %s", time.Since(start))
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("never refused past the cap: last %d", resp.StatusCode)
		}
		time.Sleep(10 * time.Millisecond)
	}
	slow.Close()
	// Freed: a signed delivery is taken again.
	deadline = time.Now().Add(5 * time.Second)
	for {
		code, _ := h.deliver("ping", "after", []byte(`{"zen":"x"}`), "")
		if code == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the slow body closed: %d", code)
		}
		time.Sleep(10 * time.Millisecond)
	}
	// Declared too large: 413 without reading it.
	big, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer big.Close()
	fmt.Fprintf(big, "POST /webhook HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", MaxBody+1)
	resp, err := http.ReadResponse(bufio.NewReader(big), nil)
	if err != nil || resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("declared %d bytes: %v %v", MaxBody+1, resp, err)
	}
}
