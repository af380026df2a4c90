package markdown

import (
	"testing"

	"github.com/charmbracelet/x/exp/golden"

	"github.com/gitpoli/gitpoli/workbench"
)

func TestRender(t *testing.T) {
	deny := workbench.Decision{Policy: "deploy", Violations: []workbench.Violation{
		{Code: "approvals.insufficient", Msg: "Environment production requires 2 approvers, but only 1 provided",
			ConfigPath: "policy.environments.production.rules.approvals_required", Config: &workbench.Pos{File: ".repol/deploy.yaml", Line: 9, Col: 29}},
		{Code: "fact.unavailable", Msg: "reviews of o/r#1: a | b\nc"},
	}}
	freeze := workbench.Decision{Policy: "freeze", Violations: []workbench.Violation{{Code: "freeze.on", Msg: "production is frozen", ConfigPath: "windows"}}}
	allow := workbench.Decision{Policy: "watch", Allow: true, Violations: []workbench.Violation{}}
	tests := []struct {
		name string
		out  string
	}{
		{"check_deny", CheckSummary(deny, "a1")},
		{"check_allow", CheckSummary(allow, "a2")},
		{"deployment_one_policy", DeploymentComment([]workbench.Outcome{{Decision: deny}}, []string{"a1"})},
		{"deployment_policies", DeploymentComment([]workbench.Outcome{{Decision: deny}, {Decision: freeze}, {Decision: allow}}, []string{"a1", "a2", "a3"})},
		{"deployment_approved", DeploymentComment([]workbench.Outcome{{Decision: allow}}, []string{"a3"})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { golden.RequireEqual(t, tt.out) })
	}
}
