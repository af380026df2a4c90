# METADATA
# title: Review or skip-review
# description: >-
#   One approval from acme/reviewers, unless the pull request carries the
#   skip-review label and changes docs only: policy-bot's or of an approval
#   rule and a rule with if.has_labels and if.only_changed_files that
#   requires no approval.
# custom:
#   gitpoli:
#     on: [pull_request, pull_request_review]
#     answer: check
#     check_name: gitpoli / Review or skip-review
#     config: skip_review
package github.skip_review

import data.lib.files
import data.lib.labels
import data.lib.reviews

default allow := false

allow if count(violations) == 0

changed := object.get(input, "files", [])

pr_labels := object.get(input, ["pull_request", "labels"], [])

bypass_labels := object.get(input, ["config", "bypass", "if", "has_labels"], [])

bypass_paths := object.get(input, ["config", "bypass", "if", "only_changed_files", "paths"], [])

required := object.get(input, ["config", "requires", "count"], null)

users := strings(object.get(input, ["config", "requires", "users"], []))

team_names := strings(object.get(input, ["config", "requires", "teams"], []))

given := object.get(input, "reviews", [])

approved := reviews.approved_by(
	reviews.approvers(given),
	users,
	team_names,
	object.get(input, "teams", {}),
)

labeled if labels.all_of(pr_labels, bypass_labels)

# The bypass: every label it names, and only files its paths match.
bypassed if {
	labeled
	files.only_match(changed, bypass_paths)
}

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
	"msg": "No requires.count in .repol/skip_review.yaml: nothing says how many approvals a pull request needs",
	"config": ["requires", "count"],
} if not is_number(required)

violations contains {
	"code": "approvals.insufficient",
	"msg": sprintf("Needs %s from %s, or the %s label on a change to %s only; %s", [
		approvals(required),
		listed(array.concat(users, team_names)),
		listed(bypass_labels),
		listed(bypass_paths),
		so_far(approved),
	]),
	"config": ["requires", "count"],
} if {
	is_number(required)
	count(approved) < required
	not bypassed
}

violations contains {
	"code": "skip_review.not_docs_only",
	"msg": sprintf("The %s label lets through changes to %s only, and these files are not: %s", [
		listed(bypass_labels),
		listed(bypass_paths),
		listed(files.not_matching(changed, bypass_paths)),
	]),
	"config": ["bypass", "if", "only_changed_files", "paths"],
} if {
	labeled
	not bypassed
	count(approved) < required
}

so_far(approved) := "none so far" if count(approved) == 0

so_far(approved) := sprintf("approved so far by %s", [listed(reviews.as_written(given, approved))]) if count(approved) > 0

approvals(n) := "1 approval" if n == 1

approvals(n) := sprintf("%v approvals", [n]) if n != 1

listed(xs) := concat(", ", sort(xs))

strings(x) := [s | some s in x; is_string(s)] if is_array(x)

strings(x) := [] if not is_array(x)
