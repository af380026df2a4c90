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
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
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
