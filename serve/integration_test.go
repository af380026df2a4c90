//go:build integration

package serve

import (
	"bytes"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gitpoli/gitpoli/workbench/fixture"
)

// buildBinary builds gitpoli once for the integration tests.
func buildBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "gitpoli")
	cmd := exec.Command("go", "build", "-o", bin, "..")
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("build gitpoli: %v", err)
	}
	return bin
}

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

type process struct {
	cmd  *exec.Cmd
	addr string
}

func startProcess(t *testing.T, bin, addr, db, apiURL string, extra ...string) *process {
	t.Helper()
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(testKey)})
	args := append([]string{"serve", "--addr", addr, "--db", db, "--policies", "../internal/testrepo/testdata/policies", "--config", "../internal/testrepo/testdata/.repol", "--schemas", "../internal/testrepo/testdata/schemas"}, extra...)
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(),
		"GITPOLI_WEBHOOK_SECRET="+secret,
		"GITHUB_APP_ID=42",
		"GITHUB_APP_PRIVATE_KEY="+string(keyPEM),
		"GITHUB_API_URL="+apiURL,
		"GITPOLI_AUDIT_TOKEN=audit-token",
	)
	var logs bytes.Buffer
	cmd.Stderr = &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("serve logs:\n%s", logs.String())
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := http.Get("http://" + addr + "/health"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return &process{cmd: cmd, addr: addr}
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("serve did not become healthy:\n%s", logs.String())
	return nil
}

// TestIntegrationKillDuringBurst sends a burst of signed deliveries,
// kills the server with SIGKILL in the middle, restarts it, and checks
// that every delivery that got a 2xx is answered, none lost.
func TestIntegrationKillDuringBurst(t *testing.T) {
	bin := buildBinary(t)
	gh, f := fakeGitHubFor(t, "deployment_protection_rule.staging-allowed.json")
	db := filepath.Join(t.TempDir(), "gitpoli.db")
	addr := freePort(t)
	p := startProcess(t, bin, addr, db, gh.srv.URL)

	const n = 300
	var mu sync.Mutex
	acked := map[int]bool{}
	var wg sync.WaitGroup
	sem := make(chan struct{}, 16)
	killed := make(chan struct{})
	var once sync.Once
	client := &http.Client{Timeout: 5 * time.Second}
	for i := range n {
		var m map[string]any
		json.Unmarshal(withInstallation(t, f.Payload), &m)
		run := 100000 + i
		m["deployment_callback_url"] = fmt.Sprintf("https://api.github.com/repos/product-os/deploynaut/actions/runs/%d/deployment_protection_rule", run)
		body, _ := json.Marshal(m)
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			req, _ := http.NewRequest(http.MethodPost, "http://"+addr+"/webhook", bytes.NewReader(body))
			req.Header.Set("X-GitHub-Event", "deployment_protection_rule")
			req.Header.Set("X-GitHub-Delivery", fmt.Sprintf("burst-%d", i))
			req.Header.Set("X-Hub-Signature-256", sign(body))
			resp, err := client.Do(req)
			if err != nil {
				return // the server is down: GitHub would redeliver
			}
			resp.Body.Close()
			if resp.StatusCode/100 == 2 {
				mu.Lock()
				acked[run] = true
				count := len(acked)
				mu.Unlock()
				if count == n/3 {
					once.Do(func() {
						p.cmd.Process.Signal(syscall.SIGKILL)
						p.cmd.Wait()
						close(killed)
					})
				}
			}
		}()
	}
	wg.Wait()
	// If the burst ended before a third was acknowledged (a slow machine),
	// kill now: the restart must still finish what was acknowledged.
	once.Do(func() {
		p.cmd.Process.Signal(syscall.SIGKILL)
		p.cmd.Wait()
		close(killed)
	})
	<-killed
	startProcess(t, bin, addr, db, gh.srv.URL)

	answered := func() map[int]int { return callbacksByRun(gh) }
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		got := answered()
		missing := 0
		for run := range acked {
			if got[run] == 0 {
				missing++
			}
		}
		if missing == 0 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	got := answered()
	lost, twice := 0, 0
	for run := range acked {
		switch {
		case got[run] == 0:
			lost++
		case got[run] > 1:
			twice++
		}
	}
	t.Logf("%d acknowledged of %d sent; %d answered; %d answered twice (killed between answer and bookkeeping)", len(acked), n, len(got), twice)
	if lost > 0 {
		t.Errorf("%d acknowledged deliveries were never answered", lost)
	}
}

// TestIntegrationProcsOnSQLite: serve on SQLite runs with twice the
// default GOMAXPROCS (its file system calls hold a P while they run), and
// GOMAXPROCS set in the environment wins; /metrics says which it is.
func TestIntegrationProcsOnSQLite(t *testing.T) {
	bin := buildBinary(t)
	for _, tc := range []struct {
		env  string
		want int
	}{
		{"", 2 * defaultProcs(t)},
		{"GOMAXPROCS=3", 3},
	} {
		addr := freePort(t)
		cmd := exec.Command(bin, "serve", "--addr", addr, "--db", filepath.Join(t.TempDir(), "gitpoli.db"))
		for _, kv := range os.Environ() {
			if !strings.HasPrefix(kv, "GOMAXPROCS=") {
				cmd.Env = append(cmd.Env, kv)
			}
		}
		cmd.Env = append(cmd.Env, "GITPOLI_WEBHOOK_SECRET="+secret)
		if tc.env != "" {
			cmd.Env = append(cmd.Env, tc.env)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		got := -1
		for deadline := time.Now().Add(30 * time.Second); got < 0 && time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
			resp, err := http.Get("http://" + addr + "/metrics")
			if err != nil {
				continue
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			for line := range strings.Lines(string(body)) {
				if v, ok := strings.CutPrefix(line, "go_sched_gomaxprocs_threads "); ok {
					got, _ = strconv.Atoi(strings.TrimSpace(v))
				}
			}
		}
		cmd.Process.Kill()
		cmd.Wait()
		if got != tc.want {
			t.Errorf("env %q: GOMAXPROCS %d, want %d", tc.env, got, tc.want)
		}
	}
}

// defaultProcs is the GOMAXPROCS Go picks on this machine: this test
// process's, unless the environment set it.
func defaultProcs(t *testing.T) int {
	if os.Getenv("GOMAXPROCS") != "" {
		t.Skip("GOMAXPROCS is set for the tests: Go's own choice is not known here")
	}
	return runtime.GOMAXPROCS(0)
}

// repeatReader is an endless body of one byte.
type repeatReader byte

var as = bytes.Repeat([]byte("a"), 64<<10)

func (r repeatReader) Read(p []byte) (int, error) {
	return copy(p, as), nil
}

// TestIntegrationUnsignedBodiesBounded: 200 clients post unsigned 25 MB
// bodies to the real binary, again and again. Its memory stays bounded
// (the budgets for bodies not yet authenticated, their chunks reused),
// and signed deliveries of the usual size sent meanwhile, each on a new
// connection, are acknowledged: in a few milliseconds as a rule (the
// median within 100 ms), and every one within a second, though the
// flood's 200 clients share the machine's cores with the server.
func TestIntegrationUnsignedBodiesBounded(t *testing.T) {
	bin := buildBinary(t)
	gh := newFakeGitHub(t)
	p := startProcess(t, bin, freePort(t), filepath.Join(t.TempDir(), "audit.db"), gh.srv.URL)
	client := &http.Client{Transport: &http.Transport{MaxConnsPerHost: 0, MaxIdleConnsPerHost: 300}}
	var wg sync.WaitGroup
	codes := make(chan int, 1000)
	stop := make(chan struct{})
	for range 200 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				req, _ := http.NewRequest(http.MethodPost, "http://"+p.addr+"/webhook", io.LimitReader(repeatReader('a'), MaxBody))
				req.ContentLength = MaxBody
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("X-GitHub-Event", "ping")
				req.Header.Set("X-GitHub-Delivery", "unsigned")
				resp, err := client.Do(req)
				if err == nil {
					select {
					case codes <- resp.StatusCode:
					default:
					}
					resp.Body.Close()
				}
			}
		})
	}
	// The first half second is the flood filling the budget; then it
	// stays full, and new bodies keep coming as others are turned away.
	time.Sleep(time.Second)
	// Each on a connection of its own, as a delivery from GitHub comes.
	fresh := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	var slowest time.Duration
	var took []time.Duration
	for i := range 10 {
		body := []byte(`{"zen":"Keep it logically awesome."}`)
		req, _ := http.NewRequest(http.MethodPost, "http://"+p.addr+"/webhook", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-GitHub-Event", "ping")
		req.Header.Set("X-GitHub-Delivery", fmt.Sprintf("valid-%d", i))
		req.Header.Set("X-Hub-Signature-256", sign(body))
		start := time.Now()
		resp, err := fresh.Do(req)
		elapsed := time.Since(start)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("valid delivery %d: %d", i, resp.StatusCode)
		}
		slowest = max(slowest, elapsed)
		took = append(took, elapsed)
		time.Sleep(150 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	rss := peakRSS(t, p.cmd.Process.Pid)
	close(codes)
	seen := map[int]int{}
	for c := range codes {
		seen[c]++
	}
	slices.Sort(took)
	median := took[len(took)/2]
	t.Logf("valid deliveries acknowledged in %s (median), at most %s; peak RSS %d MB; unsigned bodies answered %v", median.Round(time.Millisecond), slowest.Round(time.Millisecond), rss>>20, seen)
	if median > 100*time.Millisecond || slowest > time.Second {
		t.Errorf("valid deliveries acknowledged in %s (median), at most %s", median, slowest)
	}
	if rss > 300<<20 {
		t.Errorf("peak RSS %d MB, want under 300 MB", rss>>20)
	}
}

// peakRSS is a process's peak resident set (VmHWM), in bytes.
func peakRSS(t *testing.T, pid int) int64 {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Skipf("no /proc: %v", err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	t.Fatal("no VmHWM")
	return 0
}

// TestIntegrationReconcileAtStart: while serve was stopped, GitHub failed
// to deliver 20 deployments and lists them among the App's deliveries.
// The real binary, started, reconciles at once: each is fetched, decided
// and answered exactly once; a second start takes nothing.
func TestIntegrationReconcileAtStart(t *testing.T) {
	bin := buildBinary(t)
	gh, f := fakeGitHubFor(t, "deployment_protection_rule.staging-allowed.json")
	const n = 20
	now := time.Now()
	var list []map[string]any
	for i := range n {
		guid := fmt.Sprintf("missed-%02d", i)
		list = append(list, hookDelivery(int64(100+i), guid, "deployment_protection_rule", "requested", "Service Unavailable", 503, now.Add(-time.Duration(i+2)*time.Minute), false))
		var payload map[string]any
		json.Unmarshal(withInstallation(t, f.Payload), &payload)
		payload["deployment_callback_url"] = fmt.Sprintf("https://api.github.com/repos/product-os/deploynaut/actions/runs/%d/deployment_protection_rule", 5000+i)
		raw, _ := json.Marshal(payload)
		full, _ := json.Marshal(map[string]any{"id": 100 + i, "guid": guid, "event": "deployment_protection_rule", "action": "requested",
			"request": map[string]any{"headers": map[string]string{"X-GitHub-Event": "deployment_protection_rule", "X-GitHub-Delivery": guid}, "payload": json.RawMessage(raw)}})
		gh.add(map[string]fixture.Response{fmt.Sprintf("GET /app/hook/deliveries/%d", 100+i): {Status: 200, Body: full}})
	}
	body, _ := json.Marshal(list)
	gh.add(map[string]fixture.Response{"GET /app/hook/deliveries?per_page=100": {Status: 200, Body: body}})
	db := filepath.Join(t.TempDir(), "audit.db")
	p := startProcess(t, bin, freePort(t), db, gh.srv.URL)
	deadline := time.Now().Add(30 * time.Second)
	for len(callbacksByRunFrom(gh, 5000)) < n && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	calls := callbacksByRunFrom(gh, 5000)
	for run, c := range calls {
		if c != 1 {
			t.Errorf("run %d answered %d times", run, c)
		}
	}
	if len(calls) != n {
		t.Fatalf("%d of %d reconciled deliveries answered", len(calls), n)
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	p.cmd.Wait()
	startProcess(t, bin, freePort(t), db, gh.srv.URL)
	time.Sleep(time.Second)
	if again := callbacksByRunFrom(gh, 5000); len(again) != n || sum(again) != n {
		t.Errorf("after a second start: %v", again)
	}
}

// callbacksByRunFrom counts deployment answers by workflow run, for runs
// numbered from first.
func callbacksByRunFrom(gh *fakeGitHub, first int) map[int]int {
	out := map[int]int{}
	for run, c := range callbacksByRun(gh) {
		if run >= first {
			out[run] = c
		}
	}
	return out
}

func sum(m map[int]int) int {
	n := 0
	for _, c := range m {
		n += c
	}
	return n
}
