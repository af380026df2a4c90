// Package markdown renders decisions as GitHub shows them: the summary
// of a policy's check run, the comment of a deployment protection
// answer, and the decisions in gitpoli ci's job summary. One table of
// violations serves all of them, so they cannot drift apart.
package markdown

import (
	"fmt"
	"strings"

	"github.com/gitpoli/gitpoli/workbench"
)

// Violations is a table of violations: the code, what it means, and
// where to fix it (the config value that decided it).
func Violations(vs []workbench.Violation) string {
	var b strings.Builder
	b.WriteString("| Violation | What it means | Where to fix it |\n|---|---|---|\n")
	for _, v := range vs {
		fmt.Fprintf(&b, "| `%s` | %s | %s |\n", v.Code, cell(v.Msg), where(v))
	}
	return b.String()
}

// where names the config value a violation relied on, and its position.
func where(v workbench.Violation) string {
	switch {
	case v.Config != nil && v.ConfigPath != "":
		return fmt.Sprintf("`%s` (`%s`)", v.Config, v.ConfigPath)
	case v.Config != nil:
		return fmt.Sprintf("`%s`", v.Config)
	case v.ConfigPath != "":
		return "`" + v.ConfigPath + "`"
	}
	return ""
}

// cell makes text safe in a table cell: a pipe would end it, a newline
// the row.
func cell(s string) string {
	return strings.NewReplacer("|", "\\|", "\r\n", " ", "\n", " ").Replace(s)
}

// CheckSummary is the summary of a policy's check run.
func CheckSummary(d workbench.Decision, auditID string) string {
	if d.Allow {
		return fmt.Sprintf("All policy rules passed.\n\n*audit_id: `%s`*", auditID)
	}
	return Violations(d.Violations) + fmt.Sprintf("\n*audit_id: `%s`*", auditID)
}

// DeploymentState is the answer to a deployment: approved when every
// deployment policy that decided it allows (and one did).
func DeploymentState(outcomes []workbench.Outcome) string {
	if len(outcomes) == 0 {
		return "rejected" // nothing allowed it
	}
	for _, o := range outcomes {
		if !o.Decision.Allow {
			return "rejected"
		}
	}
	return "approved"
}

// DeploymentComment is the comment of the one answer to a deployment: the
// state, the audit ids of its decisions, and each denying policy's
// violations.
func DeploymentComment(outcomes []workbench.Outcome, auditIDs []string) string {
	ids := make([]string, len(auditIDs))
	for i, id := range auditIDs {
		ids[i] = "`" + id + "`"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "Policy decision: **%s** (audit_id: %s).", DeploymentState(outcomes), strings.Join(ids, ", "))
	for _, o := range outcomes {
		if o.Decision.Allow && len(o.Decision.Violations) == 0 {
			continue
		}
		if len(outcomes) > 1 {
			fmt.Fprintf(&b, "\n\n**%s** denies.", o.Decision.Policy)
		}
		fmt.Fprintf(&b, " Violations: %s\n\n", strings.Join(o.Decision.Verdict().Codes, ", "))
		b.WriteString(strings.TrimSuffix(Violations(o.Decision.Violations), "\n"))
	}
	return b.String()
}
