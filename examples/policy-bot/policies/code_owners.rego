# METADATA
# title: Code owners
# description: >-
#   Every changed file approved by one of its code owners, as the base
#   branch's CODEOWNERS names them (a user, a team whose member approves,
#   or an email address, which no approval can satisfy). A file without
#   owners needs nothing.
# custom:
#   gitpoli:
#     on: [pull_request, pull_request_review]
#     answer: check
#     check_name: gitpoli / Code owners
#     config: code_owners
package github.code_owners

import data.lib.codeowners
import data.lib.reviews

default allow := false

allow if count(violations) == 0

invalidate_on_push := object.get(input, ["config", "options", "invalidate_on_push"], false)

approvers := reviews.valid_approvers(object.get(input, "reviews", []), invalidate_on_push)

owned := object.get(input, "codeowners", {})

missing := codeowners.missing(owned, approvers, object.get(input, "teams", {}))

missing_facts contains "codeowners" if not is_object(object.get(input, "codeowners", null))

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
	"code": "codeowners.unapproved",
	"msg": sprintf("%s needs an approval from one of its code owners: %s", [filename, concat(" ", owners)]),
} if {
	some filename, owners in missing
}
