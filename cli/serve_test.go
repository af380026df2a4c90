package cli

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestServeRefusesBadSettings: serve stops before listening, with exit 2
// and a message naming the setting, on settings it cannot honour.
func TestServeRefusesBadSettings(t *testing.T) {
	secret := map[string]string{"GITPOLI_WEBHOOK_SECRET": "s"}
	for _, tt := range []struct {
		name string
		vars map[string]string
		args []string
		want string
	}{
		{"no secret", nil, nil, "GITPOLI_WEBHOOK_SECRET is not set"},
		{"retention too short", secret, []string{"--audit-retention", "1d"}, "--audit-retention 1d is shorter than 7 days"},
		{"lease too short", secret, []string{"--lease", "10ms"}, "--lease 10ms: want at least 1s"},
		{"retention unreadable", secret, []string{"--audit-retention", "a year"}, `retention "a year"`},
		// The password never appears in the message.
		{"database unreachable", map[string]string{"GITPOLI_WEBHOOK_SECRET": "s", "GITPOLI_DATABASE_URL": "postgres://gitpoli:hunter2@127.0.0.1:1/audit?connect_timeout=2"}, []string{"--addr", "127.0.0.1:0"},
			"open audit db postgres://gitpoli:xxxxx@127.0.0.1:1/audit"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, stderr, code := runEnv(t, t.TempDir(), "", tt.vars, append([]string{"serve"}, tt.args...)...)
			if code != 2 || !strings.Contains(stderr, tt.want) || strings.Contains(stderr, "hunter2") {
				t.Errorf("exit %d, stderr:\n%s\nwant exit 2 and %q", code, stderr, tt.want)
			}
		})
	}
}

// TestReconcileAsksTheServer: gitpoli reconcile has the running server
// reconcile, with the audit token, and says what it took.
func TestReconcileAsksTheServer(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/reconcile" || r.Header.Get("Authorization") != "Bearer tok" {
			http.Error(w, "no", http.StatusUnauthorized)
			return
		}
		fmt.Fprint(w, `{"listed": 5, "taken": ["a1b2"], "known": 3, "ignored": 1, "left": 0}`)
	}))
	defer srv.Close()
	stdout, stderr, code := runEnv(t, t.TempDir(), "", map[string]string{"GITPOLI_AUDIT_TOKEN": "tok", "GITPOLI_SERVER": srv.URL}, "reconcile")
	if code != 0 || stdout != "took a1b2\n5 deliveries listed: 1 taken, 3 already queued, 1 decided by no policy, 0 left for the next run\n" {
		t.Errorf("exit %d\n%s%s", code, stdout, stderr)
	}
	_, stderr, code = runEnv(t, t.TempDir(), "", map[string]string{"GITPOLI_SERVER": srv.URL}, "reconcile")
	if code == 0 || !strings.Contains(stderr, "answered 401") {
		t.Errorf("without the token: exit %d, %s", code, stderr)
	}
}
