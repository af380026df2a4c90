# METADATA
# title: Infra approval
# description: >-
#   Path-based approvals, as policy-bot's approval_rules with
#   if.changed_files: a rule applies when a changed file matches one of its
#   paths, and then needs requires.count approvals from its users or teams.
#   Changes under infra/ need two approvals from acme/platform.
# custom:
#   gitpoli:
#     on: [pull_request, pull_request_review]
#     answer: check
#     check_name: gitpoli / Infra approval
#     config: infra_approval
package github.infra_approval

import data.lib.files
import data.lib.reviews

default allow := false

allow if count(violations) == 0

# Each fact is read by its own key: gitpoli fetches only the facts a
# policy can read.
changed := object.get(input, "files", [])

given := object.get(input, "reviews", [])

approvers := reviews.approvers(given)

team_members := object.get(input, "teams", {})

rules := object.get(input, ["config", "approval_rules"], null)

missing_facts contains "files" if not is_array(object.get(input, "files", null))

missing_facts contains "reviews" if not is_array(object.get(input, "reviews", null))

# A fact gitpoli could not fetch is absent (and gitpoli adds its own
# fact.unavailable); the policy denies for it too, so that an input
# document without it is never allowed. Each key is read by name.
violations contains {
	"code": "input.missing",
	"msg": sprintf("The input has no %s: the decision needs it", [key]),
} if {
	some key in missing_facts
}

violations contains {
	"code": "config.missing",
	"msg": "No approval_rules in .repol/infra_approval.yaml: nothing says which changes need whose approval",
	"config": ["approval_rules"],
} if not is_array(rules)

# A rule applies when a changed file matches one of its paths; then its
# count of approvals must come from its users or teams.
violations contains {
	"code": "approvals.insufficient",
	"msg": sprintf("%s: %s changed, which needs %s from %s; %s", [
		object.get(rule, "name", sprintf("approval_rules[%d]", [i])),
		listed(matched),
		approvals(required),
		listed(array.concat(users, team_names)),
		so_far(approved),
	]),
	"config": ["approval_rules", i, "requires", "count"],
} if {
	some i, rule in rules
	matched := files.matching(changed, object.get(rule, ["if", "changed_files", "paths"], []))
	count(matched) > 0
	required := object.get(rule, ["requires", "count"], 0)
	users := strings(object.get(rule, ["requires", "users"], []))
	team_names := strings(object.get(rule, ["requires", "teams"], []))
	approved := reviews.approved_by(approvers, users, team_names, team_members)
	count(approved) < required
}

so_far(approved) := "none so far" if count(approved) == 0

so_far(approved) := sprintf("%d so far (%s)", [count(approved), listed(reviews.as_written(given, approved))]) if count(approved) > 0

approvals(n) := "1 approval" if n == 1

approvals(n) := sprintf("%v approvals", [n]) if n != 1

listed(xs) := concat(", ", sort(xs))

strings(x) := [s | some s in x; is_string(s)] if is_array(x)

strings(x) := [] if not is_array(x)
