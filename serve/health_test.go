package serve

import (
	"net/http"
	"strings"
	"testing"
)

// TestHealthProbesTheEnqueueWrite: the deliveries queue stops taking
// rows (as an immutable database file, or a full disk, would have it)
// while the rest of the database still takes writes. /health says 503
// and not writable, as every delivery gets 503: its probe is the
// enqueue's own write.
func TestHealthProbesTheEnqueueWrite(t *testing.T) {
	if testBackend == "postgres" {
		t.Skip("the trigger is SQLite's")
	}
	gh := newFakeGitHub(t)
	h := start(t, gh, "")
	if code, _ := h.get("/health", ""); code != http.StatusOK {
		t.Fatalf("/health before: %d", code)
	}
	db := openDirect(t, h)
	if _, err := db.Exec(`CREATE TRIGGER refuse BEFORE INSERT ON deliveries BEGIN SELECT RAISE(ABORT, 'deliveries refused'); END`); err != nil {
		t.Fatal(err)
	}
	code, _ := h.deliver("ping", "refused-1", withInstallation(t, []byte(`{"zen":"x"}`)), "")
	if code != http.StatusOK { // a ping is answered before it is stored
		t.Errorf("ping: %d", code)
	}
	f := loadFixture(t, "deployment_protection_rule.staging-allowed.json")
	if code, _ := h.deliver("deployment_protection_rule", "refused-2", withInstallation(t, f.Payload), ""); code != http.StatusServiceUnavailable {
		t.Errorf("delivery: %d, want 503", code)
	}
	code, body := h.get("/health", "")
	if code != http.StatusServiceUnavailable || !strings.Contains(string(body), `"db_writable":false`) || !strings.Contains(string(body), "deliveries refused") {
		t.Errorf("/health: %d %s", code, body)
	}
}
