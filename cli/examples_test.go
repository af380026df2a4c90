package cli

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

// TestPolicyBotExamples runs examples/policy-bot as a user would, in its
// own directory: the five policies written the way policy-bot users write
// their rules check clean, their Rego tests pass, and each decides every
// recorded delivery as its fixture expects, with no fact missing.
func TestPolicyBotExamples(t *testing.T) {
	dir := t.TempDir()
	if err := os.CopyFS(dir, os.DirFS("../examples/policy-bot")); err != nil {
		t.Fatal(err)
	}
	stdout, stderr, code := run(t, dir, "", "check")
	if code != 0 || strings.Contains(stdout, "warning") {
		t.Errorf("check: exit %d\n%s%s", code, stdout, stderr)
	}
	stdout, stderr, code = run(t, dir, "", "test")
	passed := regexp.MustCompile(`(\d+) passed, 0 failed`).FindStringSubmatch(stdout)
	if code != 0 || passed == nil {
		t.Fatalf("test: exit %d\n%s%s", code, stdout, stderr)
	}
	fixtures := strings.Count(stdout, "PASS  fixture ")
	if fixtures < 10 {
		t.Errorf("%d fixtures replayed; want every one of examples/policy-bot/fixtures", fixtures)
	}
	stdout, _, _ = run(t, dir, "", "replay", "fixtures", "--format", "json")
	if !strings.Contains(stdout, `"outcomes"`) || strings.Contains(stdout, "fact.unavailable") {
		t.Error("a fixture lacks a fact its policies read")
	}
}
