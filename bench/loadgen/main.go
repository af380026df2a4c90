// Command loadgen drives an HTTP endpoint on this machine with a bounded
// number of requests, either as fast as a number of workers can go
// (saturation) or at a fixed rate, and prints throughput and latency
// percentiles as JSON. It signs webhook bodies when given a secret.
package main

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

type result struct {
	URL        string      `json:"url"`
	Requests   int         `json:"requests"`
	Clients    int         `json:"clients"`
	Errors     int         `json:"errors"`
	Seconds    float64     `json:"seconds"`
	PerSecond  float64     `json:"per_second"`
	P50Ms      float64     `json:"p50_ms"`
	P90Ms      float64     `json:"p90_ms"`
	P99Ms      float64     `json:"p99_ms"`
	MaxMs      float64     `json:"max_ms"`
	TargetRate float64     `json:"target_rate,omitempty"`
	Statuses   map[int]int `json:"statuses"`
	// E2E, in an -e2e run, is delivery → decision → answer at the fake
	// GitHub API.
	E2E *e2eResult `json:"end_to_end,omitempty"`
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(2)
	}
}

func run() error {
	target := flag.String("url", "", "endpoint to POST to (loopback only); several, comma-separated, share the workers round-robin")
	bodyFile := flag.String("body", "", "file holding the request body")
	n := flag.Int("n", 2000, "requests to send")
	workers := flag.Int("c", 16, "concurrent workers")
	rate := flag.Float64("rate", 0, "requests per second (0: as fast as the workers go)")
	maxDur := flag.Duration("max", 2*time.Minute, "stop after this long")
	token := flag.String("token", "", "bearer token")
	secret := flag.String("secret", "", "webhook secret: sign each body and send webhook headers")
	event := flag.String("event", "pull_request", "X-GitHub-Event for webhooks")
	e2eFixture := flag.String("e2e", "", "a deployment_protection_rule fixture: send its delivery, each naming its own workflow run, and time each until its answer reaches the fake GitHub API")
	githubAddr := flag.String("github", "127.0.0.1:18399", "where the fake GitHub API listens in an -e2e run (point GITHUB_API_URL here)")
	wait := flag.Duration("wait", time.Minute, "in an -e2e run, how long to wait for the answers after the last delivery")
	flag.Parse()
	targets := strings.Split(*target, ",")
	for _, t := range targets {
		u, err := url.Parse(t)
		if err != nil || u.Host == "" {
			return fmt.Errorf("-url %q is not a URL", t)
		}
		// Traffic stays on this machine.
		host, _, _ := net.SplitHostPort(u.Host)
		if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
			return fmt.Errorf("-url must point at loopback, not %s", u.Host)
		}
	}
	var body []byte
	var e2e *e2eRun
	var err error
	if *e2eFixture != "" {
		if *secret == "" {
			return fmt.Errorf("-e2e needs -secret")
		}
		if e2e, err = newE2E(*e2eFixture, *githubAddr, *n); err != nil {
			return err
		}
		*event = e2e.event
	} else if body, err = os.ReadFile(*bodyFile); err != nil {
		return err
	}
	// Signatures are made before the clock starts.
	sign := func(body []byte) string {
		mac := hmac.New(sha256.New, []byte(*secret))
		mac.Write(body)
		return "sha256=" + hex.EncodeToString(mac.Sum(nil))
	}
	var sigs []string
	if *secret != "" {
		if e2e != nil {
			for _, b := range e2e.bodies {
				sigs = append(sigs, sign(b))
			}
		} else {
			sigs = []string{sign(body)}
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), *maxDur)
	defer cancel()
	end, _ := ctx.Deadline()

	lat := make([]time.Duration, *n)
	acked := make([]bool, *n)
	var next, errs atomic.Int64
	var mu sync.Mutex
	statuses := map[int]int{}
	// take hands a worker the index of its next request: at a fixed rate
	// from a ticker, otherwise at once.
	take := func() (int, bool) {
		if ctx.Err() != nil {
			return 0, false
		}
		i := int(next.Add(1)) - 1
		return i, i < *n
	}
	if *rate > 0 {
		t := time.NewTicker(time.Duration(float64(time.Second) / *rate))
		defer t.Stop()
		jobs := make(chan int)
		go func() {
			defer close(jobs)
			for i := range *n {
				select {
				case <-t.C:
				case <-ctx.Done():
					return
				}
				select {
				case jobs <- i:
				case <-ctx.Done():
					return
				}
			}
		}()
		take = func() (int, bool) {
			i, ok := <-jobs
			if ok {
				next.Add(1)
			}
			return i, ok
		}
	}
	start := time.Now()
	var wg sync.WaitGroup
	for w := range *workers {
		c, err := newConn(targets[w%len(targets)])
		if err != nil {
			return err
		}
		wg.Go(func() {
			defer c.close()
			headers := []header{{"Content-Type", "application/json"}}
			if *token != "" {
				headers = append(headers, header{"Authorization", "Bearer " + *token})
			}
			fixed := len(headers)
			for {
				i, ok := take()
				if !ok {
					return
				}
				b, sig := body, ""
				if e2e != nil {
					b = e2e.bodies[i]
				}
				headers = headers[:fixed]
				if *secret != "" {
					sig = sigs[min(i, len(sigs)-1)]
					headers = append(headers, header{"X-GitHub-Event", *event},
						header{"X-GitHub-Delivery", fmt.Sprintf("load-%d-%d", start.UnixNano(), i)},
						header{"X-Hub-Signature-256", sig})
				}
				t0 := time.Now()
				if e2e != nil {
					e2e.sent[i] = t0
				}
				deadline := t0.Add(30 * time.Second)
				if end.Before(deadline) {
					deadline = end
				}
				status, err := c.do(deadline, headers, b)
				lat[i] = time.Since(t0)
				if err != nil {
					if ctx.Err() == nil {
						errs.Add(1)
					}
					continue
				}
				mu.Lock()
				statuses[status]++
				mu.Unlock()
				if status >= 300 {
					errs.Add(1)
				} else {
					acked[i] = true
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	done := min(int(next.Load()), *n)
	ds := slices.Clone(lat[:done])
	slices.Sort(ds)
	pct := func(p float64) float64 {
		if len(ds) == 0 {
			return 0
		}
		return float64(ds[min(int(p*float64(len(ds))), len(ds)-1)].Microseconds()) / 1000
	}
	var e2eRes *e2eResult
	if e2e != nil {
		e2e.wait(acked[:done], time.Now().Add(*wait))
		e2eRes = e2e.result(acked[:done])
	}
	res := result{E2E: e2eRes, URL: *target, Requests: done, Clients: *workers, Errors: int(errs.Load()), Seconds: elapsed.Seconds(),
		PerSecond: float64(done) / elapsed.Seconds(), P50Ms: pct(.5), P90Ms: pct(.9), P99Ms: pct(.99), MaxMs: pct(1), TargetRate: *rate, Statuses: statuses}
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(res)
}
