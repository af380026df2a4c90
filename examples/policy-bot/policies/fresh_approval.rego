# METADATA
# title: Fresh approval
# description: >-
#   An approval given before the last push does not count: policy-bot's
#   options.invalidate_on_push. Only approvals of the pull request's head
#   commit count toward requires.count.
# custom:
#   gitpoli:
#     on: [pull_request, pull_request_review]
#     answer: check
#     check_name: gitpoli / Fresh approval
#     config: fresh_approval
package github.fresh_approval

import data.lib.reviews

default allow := false

allow if count(violations) == 0

given := object.get(input, "reviews", [])

team_members := object.get(input, "teams", {})

required := object.get(input, ["config", "requires", "count"], null)

users := strings(object.get(input, ["config", "requires", "users"], []))

team_names := strings(object.get(input, ["config", "requires", "teams"], []))

invalidate_on_push := object.get(input, ["config", "options", "invalidate_on_push"], true)

approved := reviews.approved_by(reviews.valid_approvers(given, invalidate_on_push), users, team_names, team_members)

# Approvals that would count but for a push since they were given.
stale := reviews.approved_by(reviews.stale_approvers(given), users, team_names, team_members) if {
	invalidate_on_push == true
} else := set()

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
	"msg": "No requires.count in .repol/fresh_approval.yaml: nothing says how many approvals a pull request needs",
	"config": ["requires", "count"],
} if not is_number(required)

violations contains {
	"code": "approvals.stale",
	"msg": sprintf("Needs %s of the head commit from %s; %s approved an earlier commit, and a push since makes that approval stale", [
		approvals(required),
		listed(array.concat(users, team_names)),
		listed(reviews.as_written(given, stale)),
	]),
	"config": ["options", "invalidate_on_push"],
} if {
	is_number(required)
	count(approved) < required
	count(stale) > 0
}

violations contains {
	"code": "approvals.insufficient",
	"msg": sprintf("Needs %s from %s; %s", [approvals(required), listed(array.concat(users, team_names)), so_far(approved)]),
	"config": ["requires", "count"],
} if {
	is_number(required)
	count(approved) < required
	count(stale) == 0
}

so_far(approved) := "none so far" if count(approved) == 0

so_far(approved) := sprintf("approved so far by %s", [listed(reviews.as_written(given, approved))]) if count(approved) > 0

approvals(n) := "1 approval" if n == 1

approvals(n) := sprintf("%v approvals", [n]) if n != 1

listed(xs) := concat(", ", sort(xs))

strings(x) := [s | some s in x; is_string(s)] if is_array(x)

strings(x) := [] if not is_array(x)
