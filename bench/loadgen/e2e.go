package main

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/gitpoli/gitpoli/workbench/fixture"
)

// fakeGitHub stands in for GitHub's API in an end-to-end run: it answers
// the recorded GETs of a fixture, mints installation tokens, and notes
// when each deployment protection answer arrives, by workflow run.
type fakeGitHub struct {
	responses map[string]fixture.Response
	mu        sync.Mutex
	answered  map[int]time.Time
	arrived   chan struct{}
}

var runPath = regexp.MustCompile(`/actions/runs/(\d+)/deployment_protection_rule$`)

func (f *fakeGitHub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	switch {
	case r.Method == http.MethodPost && runPath.MatchString(r.URL.Path):
		run, _ := strconv.Atoi(runPath.FindStringSubmatch(r.URL.Path)[1])
		f.mu.Lock()
		if _, seen := f.answered[run]; !seen {
			f.answered[run] = time.Now()
		}
		f.mu.Unlock()
		select {
		case f.arrived <- struct{}{}:
		default:
		}
		w.WriteHeader(http.StatusNoContent)
	case r.Method == http.MethodPost:
		// An installation token (the App's JWT is not checked: loopback only).
		w.WriteHeader(http.StatusCreated)
		fmt.Fprintf(w, `{"token":"ghs_bench","expires_at":%q}`, time.Now().Add(time.Hour).UTC().Format(time.RFC3339))
	default:
		fixture.Serve(w, r, f.responses)
	}
}

// e2eRun holds the deliveries of an end-to-end run and what became of them.
type e2eRun struct {
	event  string
	bodies [][]byte
	github *fakeGitHub
	sent   []time.Time
}

const firstRun = 5_000_000

// newE2E reads a deployment_protection_rule fixture and makes n
// deliveries of it, each naming its own workflow run, and starts the fake
// API on addr.
func newE2E(path, addr string, n int) (*e2eRun, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	f, err := fixture.Parse(path, data)
	if err != nil {
		return nil, err
	}
	if f.Event != "deployment_protection_rule" {
		return nil, fmt.Errorf("%s: -e2e needs a deployment_protection_rule fixture, not %s", path, f.Event)
	}
	var payload map[string]any
	if err := json.Unmarshal(f.Payload, &payload); err != nil {
		return nil, err
	}
	payload["installation"] = map[string]any{"id": 1}
	repo, _ := payload["repository"].(map[string]any)
	fullName, _ := repo["full_name"].(string)
	e := &e2eRun{event: f.Event, bodies: make([][]byte, n), sent: make([]time.Time, n),
		github: &fakeGitHub{responses: f.Responses, answered: map[int]time.Time{}, arrived: make(chan struct{}, 1)}}
	for i := range n {
		payload["deployment_callback_url"] = fmt.Sprintf("https://api.github.com/repos/%s/actions/runs/%d/deployment_protection_rule", fullName, firstRun+i)
		if e.bodies[i], err = json.Marshal(payload); err != nil {
			return nil, err
		}
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("fake GitHub API: %w", err)
	}
	go http.Serve(ln, e.github)
	return e, nil
}

// wait waits until every delivery in acked is answered, or the deadline.
func (e *e2eRun) wait(acked []bool, deadline time.Time) {
	for time.Now().Before(deadline) {
		e.github.mu.Lock()
		missing := 0
		for i, ok := range acked {
			if _, answered := e.github.answered[firstRun+i]; ok && !answered {
				missing++
			}
		}
		e.github.mu.Unlock()
		if missing == 0 {
			return
		}
		select {
		case <-e.github.arrived:
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// e2eResult is the latency from sending a delivery to its answer
// reaching the (fake) GitHub API.
type e2eResult struct {
	Acknowledged int     `json:"acknowledged"`
	Answered     int     `json:"answered"`
	P50Ms        float64 `json:"p50_ms"`
	P90Ms        float64 `json:"p90_ms"`
	P99Ms        float64 `json:"p99_ms"`
	MaxMs        float64 `json:"max_ms"`
}

func (e *e2eRun) result(acked []bool) *e2eResult {
	e.github.mu.Lock()
	defer e.github.mu.Unlock()
	var ds []time.Duration
	res := &e2eResult{}
	for i, ok := range acked {
		if !ok {
			continue
		}
		res.Acknowledged++
		if at, answered := e.github.answered[firstRun+i]; answered {
			ds = append(ds, at.Sub(e.sent[i]))
		}
	}
	res.Answered = len(ds)
	slices.Sort(ds)
	res.P50Ms, res.P90Ms, res.P99Ms, res.MaxMs = percentile(ds, .5), percentile(ds, .9), percentile(ds, .99), percentile(ds, 1)
	return res
}

func percentile(ds []time.Duration, p float64) float64 {
	if len(ds) == 0 {
		return 0
	}
	return float64(ds[min(int(p*float64(len(ds))), len(ds)-1)].Microseconds()) / 1000
}
