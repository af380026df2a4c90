# Pull-request policy: may this pull request merge into its base branch?
#
# The input document and the violation codes are gitpoli's policy contract
# (see README.md). A missing or mistyped fact produces a violation instead of
# silently skipping a rule: the decision fails closed.
#
# A violation is {"code", "msg"} plus, where a config value decided it,
# "config": the path of that value in the .repol/pullrequest.yaml document.
package github.pullrequest

import data.lib.helpers

default allow := false

allow if count(violations) == 0

# --- the documents the rules read ------------------------------------------

policy := input.repo_policy.policy if is_object(input.repo_policy.policy)

rules := policy.rules if is_object(policy.rules)

default rules_ok := false

rules_ok if is_object(policy.rules)

meta := helpers.get(input, "workflow_meta", {})

approvers := helpers.distinct_approvers(helpers.get(meta, "approvers", []))

# Branch names with one leading refs/heads/ removed; a ref that is absent or
# not a string leaves them undefined, and an undefined branch matches no rule.
head := helpers.strip_heads(input.head_ref) if is_string(input.head_ref)

base := helpers.strip_heads(input.base_ref) if is_string(input.base_ref)

default head_shown := "(missing)"

head_shown := head

head_shown := helpers.show(input.head_ref) if {
	helpers.present(input, "head_ref")
	not is_string(input.head_ref)
}

default base_shown := "(missing)"

base_shown := base

base_shown := helpers.show(input.base_ref) if {
	helpers.present(input, "base_ref")
	not is_string(input.base_ref)
}

# --- the repository policy -------------------------------------------------

# Without a rules object none of the rule checks below can run, so its
# absence alone denies.
violations contains {
	"code": "policy.missing",
	"msg": "Pull request policy or rules section missing in repo_policy",
	"config": ["policy", "rules"],
} if {
	not rules_ok
}

violations contains {
	"code": "schema.policy.missing_version",
	"msg": "policy.version must be string",
	"config": ["policy", "version"],
} if {
	is_object(policy)
	not is_string(object.get(policy, "version", null))
}

violations contains {
	"code": "schema.policy.rules.approvals_required",
	"msg": "rules.approvals_required must be number",
	"config": ["policy", "rules", "approvals_required"],
} if {
	rules_ok
	not is_number(object.get(rules, "approvals_required", null))
}

violations contains {
	"code": "schema.policy.branch_rules",
	"msg": "policy.branch_rules must be an array of {source, target} objects",
	"config": ["policy", "branch_rules"],
} if {
	helpers.present(policy, "branch_rules")
	not is_array(policy.branch_rules)
}

# --- the pull-request rules ------------------------------------------------

branch_rule_matches if {
	some rule in policy.branch_rules
	helpers.glob_match(rule.source, head)
	helpers.glob_match(rule.target, base)
}

violations contains {
	"code": "branch_naming.denied",
	"msg": sprintf("Branch %q → %q does not match any allowed branch naming rule", [head_shown, base_shown]),
	"config": ["policy", "branch_rules"],
} if {
	is_array(policy.branch_rules)
	count(policy.branch_rules) > 0
	not branch_rule_matches
}

target_allowed if {
	some pattern in rules.allowed_target_branches
	helpers.glob_match(pattern, base)
}

violations contains {
	"code": "target_branch.denied",
	"msg": sprintf("Target branch %q not in allowed list: %v", [base_shown, rules.allowed_target_branches]),
	"config": ["policy", "rules", "allowed_target_branches"],
} if {
	helpers.present(rules, "allowed_target_branches")
	rules.allowed_target_branches != null
	not target_allowed
}

violations contains {
	"code": "approvals.insufficient",
	"msg": sprintf("Requires %d approvers, but only %d provided", [rules.approvals_required, count(approvers)]),
	"config": ["policy", "rules", "approvals_required"],
} if {
	is_number(rules.approvals_required)
	rules.approvals_required > 0
	count(approvers) < rules.approvals_required
}

violations contains {
	"code": "signoff.missing",
	"msg": "Sign-off required for pull request",
	"config": ["policy", "rules", "signed_off"],
} if {
	helpers.is_set(rules, "signed_off")
	not signed_off
}

signed_off if meta.signed_off == true
