package backtest

import (
	"context"
	"encoding/json"
	"path/filepath"
	"testing"

	"github.com/gitpoli/gitpoli/serve/audit"
	"github.com/gitpoli/gitpoli/workbench/session"
)

// shadowDB writes three decisions, two of which the shadow policies
// disagreed with, to a new audit database.
func shadowDB(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "audit.db")
	s, err := audit.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	deny := json.RawMessage(`[{"code":"approvals.insufficient","message":"x"}]`)
	for _, r := range []audit.Record{
		{ID: "a1", Policy: "deploy", Decision: "allow", Repo: "octo/service", Environment: "production",
			Shadow: &audit.Shadow{Decision: "allow", PolicyHash: "h"}},
		{ID: "a2", Policy: "deploy", Decision: "allow", Repo: "octo/service", Environment: "production", Ref: "refs/heads/main",
			Shadow: &audit.Shadow{Decision: "deny", Violations: deny, PolicyHash: "h", Disagree: true}},
		{ID: "a3", Policy: "pullrequest", Decision: "deny", Violations: deny, Repo: "octo/web",
			Shadow: &audit.Shadow{Decision: "deny", Violations: json.RawMessage(`[{"code":"title.format"},{"code":"approvals.insufficient"}]`), PolicyHash: "h", Disagree: true}},
	} {
		r.Source, r.Input = "webhook", json.RawMessage(`{}`)
		if err := s.Insert(context.Background(), &r); err != nil {
			t.Fatal(err)
		}
	}
	return path
}

func TestShadowChanges(t *testing.T) {
	ctx := context.Background()
	store, err := audit.OpenReadOnly(ctx, shadowDB(t))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	got, err := ShadowChanges(ctx, store, 10)
	if err != nil {
		t.Fatal(err)
	}
	want := []session.Change{
		{Kind: "decision", Name: "a3 pullrequest octo/web", Before: "deny [approvals.insufficient]", After: "deny [approvals.insufficient title.format]"},
		{Kind: "decision", Name: "a2 deploy octo/service production refs/heads/main", Before: "allow", After: "deny [approvals.insufficient]", Flipped: true},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d changes, want %d: %+v", len(got), len(want), got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("change %d:\n got %+v\nwant %+v", i, got[i], want[i])
		}
	}
	if got, _ := ShadowChanges(ctx, store, 1); len(got) != 1 || got[0].Name != want[0].Name {
		t.Errorf("limit 1: %+v", got)
	}
}
