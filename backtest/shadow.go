package backtest

import (
	"context"
	"fmt"
	"strings"

	"github.com/gitpoli/gitpoli/serve/audit"
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
		out = append(out, session.Change{
			Kind:    "decision",
			Name:    describe(r),
			Before:  outcome(r.Decision, recordedCodes(r.Violations)),
			After:   outcome(r.Shadow.Decision, recordedCodes(r.Shadow.Violations)),
			Flipped: r.Decision != r.Shadow.Decision,
		})
	}
	return out, nil
}

// outcome reads like the workbench's fixture outcomes: "allow",
// "deny [code code]".
func outcome(decision string, codes []string) string {
	if len(codes) == 0 {
		return decision
	}
	return decision + " [" + strings.Join(codes, " ") + "]"
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
