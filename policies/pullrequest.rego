# Pull-request policy: may this pull request merge into its base branch?
#
# The input document and the violation codes are gitpoli's policy contract
# (see README.md). A missing or mistyped fact produces a violation instead of
# silently skipping a rule, so the decision fails closed. Rules read input
# the way deploy.rego explains: object.get with a path is total.
#
# A violation is {"code", "msg"} plus, where a config value decided it,
# "config": the path of that value in the .repol/pullrequest.yaml document.
# METADATA
# title: PR Policy
# description: >-
#   May this pull request merge into its base branch? Branch naming, target
#   branches, approvals and sign-off from .repol/pullrequest.yaml.
# custom:
#   gitpoli:
#     on: [pull_request, pull_request_review]
#     answer: check
#     check_name: gitpoli / PR Policy
#     config: pullrequest
package github.pullrequest

import data.lib.helpers

default allow := false

allow if count(violations) == 0

# --- the repository policy -------------------------------------------------

# Without a rules object none of the rule checks below can run, so its
# absence alone denies.
violations contains {
	"code": "policy.missing",
	"msg": "Pull request policy or rules section missing in repo_policy",
	"config": ["policy", "rules"],
} if {
	not is_object(object.get(input, ["repo_policy", "policy", "rules"], null))
}

violations contains {
	"code": "schema.policy.missing_version",
	"msg": "policy.version must be string",
	"config": ["policy", "version"],
} if {
	is_object(input.repo_policy.policy)
	not is_string(object.get(input.repo_policy.policy, "version", null))
}

violations contains {
	"code": "schema.policy.rules.approvals_required",
	"msg": "rules.approvals_required must be number",
	"config": ["policy", "rules", "approvals_required"],
} if {
	rules := input.repo_policy.policy.rules
	is_object(rules)
	not is_number(object.get(rules, "approvals_required", null))
}

violations contains {
	"code": "schema.policy.branch_rules",
	"msg": "policy.branch_rules must be an array of {source, target} objects",
	"config": ["policy", "branch_rules"],
} if {
	branch_rules := input.repo_policy.policy.branch_rules
	not is_array(branch_rules)
}

# --- the pull-request rules ------------------------------------------------

# Branch names with one leading refs/heads/ removed; null when the ref is
# absent or not a string, and null matches no pattern.
head := helpers.branch_name(object.get(input, "head_ref", null))

base := helpers.branch_name(object.get(input, "base_ref", null))

# The refs as messages show them: "(missing)" when absent, JSON when not
# a string.
default shown_head := "(missing)"

shown_head := helpers.shown_branch(input.head_ref)

default shown_base := "(missing)"

shown_base := helpers.shown_branch(input.base_ref)

violations contains {
	"code": "branch_naming.denied",
	"msg": sprintf("Branch %q → %q does not match any allowed branch naming rule", [
		shown_head,
		shown_base,
	]),
	"config": ["policy", "branch_rules"],
} if {
	branch_rules := input.repo_policy.policy.branch_rules
	is_array(branch_rules)
	count(branch_rules) > 0
	not branch_rule_matches(branch_rules, head, base)
}

# Entries that are not {source, target} string pairs never match.
branch_rule_matches(branch_rules, head, base) if {
	some rule in branch_rules
	helpers.glob_match(rule.source, head)
	helpers.glob_match(rule.target, base)
}

violations contains {
	"code": "target_branch.denied",
	"msg": sprintf("Target branch %q not in allowed list: %v", [shown_base, allowed]),
	"config": ["policy", "rules", "allowed_target_branches"],
} if {
	allowed := input.repo_policy.policy.rules.allowed_target_branches
	allowed != null
	not target_allowed(allowed, base)
}

target_allowed(allowed, base) if {
	some pattern in allowed
	helpers.glob_match(pattern, base)
}

violations contains {
	"code": "approvals.insufficient",
	"msg": sprintf("Requires %d approvers, but only %d provided", [required, count(approvers)]),
	"config": ["policy", "rules", "approvals_required"],
} if {
	required := input.repo_policy.policy.rules.approvals_required
	is_number(required)
	required > 0
	approvers := helpers.distinct_approvers(object.get(input, ["workflow_meta", "approvers"], []))
	count(approvers) < required
}

violations contains {
	"code": "signoff.missing",
	"msg": "Sign-off required for pull request",
	"config": ["policy", "rules", "signed_off"],
} if {
	input.repo_policy.policy.rules.signed_off != false
	object.get(input, ["workflow_meta", "signed_off"], false) != true
}
