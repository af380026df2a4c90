package backtest

import (
	"context"
	"fmt"
	"strings"

	"github.com/gitpoli/gitpoli/serve/audit"
	"github.com/gitpoli/gitpoli/workbench"
	"github.com/gitpoli/gitpoli/workbench/session"
)

// ShadowChanges lists the recorded decisions the shadow policies
// (serve --shadow-policies) disagreed with, as changes from the enforced
// decision to the shadow one, so the workbench shows them like a diff.
// The newest limit are read (the audit API's page size bounds it).
func ShadowChanges(ctx context.Context, store *audit.Store, limit int) ([]session.Change, error) {
	page, err := store.Query(ctx, audit.Filter{Disagree: true, Limit: limit})
	if err != nil {
		return nil, fmt.Errorf("read shadow disagreements: %w", err)
	}
	out := make([]session.Change, 0, len(page.Records))
	for _, r := range page.Records {
		if r.Shadow == nil {
			continue
		}
		before, after := recordedVerdict(r.Decision, r.Violations), recordedVerdict(r.Shadow.Decision, r.Shadow.Violations)
		out = append(out, session.Change{
			Kind:    "decision",
			Name:    describe(r),
			Before:  before.String(),
			After:   after.String(),
			Flipped: workbench.Flipped(workbench.Change(before, after)),
		})
	}
	return out, nil
}

func describe(r audit.Record) string {
	parts := []string{r.ID, r.Policy}
	for _, s := range []string{r.Repo, r.Environment, r.Ref} {
		if s != "" {
			parts = append(parts, s)
		}
	}
	return strings.Join(parts, " ")
}
