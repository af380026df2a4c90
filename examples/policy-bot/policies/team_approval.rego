# METADATA
# title: Team approval
# description: >-
#   One approval from acme/reviewers, and none of them asking for changes:
#   policy-bot's requires.count and requires.teams, with a disapproval
#   policy whose requires.teams may block by requesting changes.
# custom:
#   gitpoli:
#     on: [pull_request, pull_request_review]
#     answer: check
#     check_name: gitpoli / Team approval
#     config: team_approval
package github.team_approval

import data.lib.reviews

default allow := false

allow if count(violations) == 0

given := object.get(input, "reviews", [])

team_members := object.get(input, "teams", {})

required := object.get(input, ["config", "requires", "count"], null)

users := strings(object.get(input, ["config", "requires", "users"], []))

team_names := strings(object.get(input, ["config", "requires", "teams"], []))

approved := reviews.approved_by(reviews.approvers(given), users, team_names, team_members)

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
	"msg": "No requires.count in .repol/team_approval.yaml: nothing says how many approvals a pull request needs",
	"config": ["requires", "count"],
} if not is_number(required)

violations contains {
	"code": "approvals.insufficient",
	"msg": sprintf("Needs %s from %s; %s", [approvals(required), listed(array.concat(users, team_names)), so_far(approved)]),
	"config": ["requires", "count"],
} if {
	is_number(required)
	count(approved) < required
}

# Disapproval is off unless disapproval.requires names who may block, as
# in policy-bot. A reviewer's later approval, or a dismissal of the
# review, lifts it.
violations contains {
	"code": "changes.requested",
	"msg": sprintf("%s requested changes: their approval, or a dismissal of that review, lifts it", [reviews.spelled(given, login)]),
	"config": ["disapproval", "requires"],
} if {
	blockers := reviews.approved_by(
		reviews.changes_requested_by(given),
		strings(object.get(input, ["config", "disapproval", "requires", "users"], [])),
		strings(object.get(input, ["config", "disapproval", "requires", "teams"], [])),
		team_members,
	)
	some login in blockers
}

so_far(approved) := "none so far" if count(approved) == 0

so_far(approved) := sprintf("approved so far by %s", [listed(reviews.as_written(given, approved))]) if count(approved) > 0

approvals(n) := "1 approval" if n == 1

approvals(n) := sprintf("%v approvals", [n]) if n != 1

listed(xs) := concat(", ", sort(xs))

strings(x) := [s | some s in x; is_string(s)] if is_array(x)

strings(x) := [] if not is_array(x)
