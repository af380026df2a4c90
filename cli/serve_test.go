package cli

import (
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
