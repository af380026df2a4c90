# METADATA
# title: Reviews
# description: |-
#   Who approved and who requested changes, from the reviews fact
#   (input.reviews): each reviewer's latest review that says something,
#   [{user: {login}, state, commit_id, on_head, submitted_at}], the pull
#   request author's own left out. Logins are compared case-insensitively,
#   so every set of logins here is lower-cased.
package lib.reviews

import data.lib.teams

# approvers is the set of reviewers whose latest review is an approval.
# Anything but an array yields the empty set.
approvers(reviews) := {login |
	some r in reviews
	state(r) == "APPROVED"
	login := reviewer(r)
} if is_array(reviews)

approvers(reviews) := set() if not is_array(reviews)

# approvers_on_head is the set of reviewers who approved the pull
# request's head commit: a push makes an older approval stale
# (policy-bot's invalidate_on_push). A review without on_head is stale.
approvers_on_head(reviews) := {login |
	some r in reviews
	state(r) == "APPROVED"
	object.get(r, "on_head", false) == true
	login := reviewer(r)
} if is_array(reviews)

approvers_on_head(reviews) := set() if not is_array(reviews)

# stale_approvers is the set of reviewers whose approval was given on an
# earlier commit than the head.
stale_approvers(reviews) := approvers(reviews) - approvers_on_head(reviews)

# valid_approvers is approvers_on_head when invalidate_on_push is true,
# approvers otherwise: the option as a config value.
valid_approvers(reviews, invalidate_on_push) := approvers_on_head(reviews) if invalidate_on_push == true

valid_approvers(reviews, invalidate_on_push) := approvers(reviews) if invalidate_on_push != true

# changes_requested_by is the set of reviewers whose latest review
# requests changes. A later approval or a dismissal lifts it.
changes_requested_by(reviews) := {login |
	some r in reviews
	state(r) == "CHANGES_REQUESTED"
	login := reviewer(r)
} if is_array(reviews)

changes_requested_by(reviews) := set() if not is_array(reviews)

# among is the set of logins that are also in allowed (an array or set of
# logins), compared case-insensitively: approvers(input.reviews) among
# the users a rule names.
among(logins, allowed) := lowered(logins) & lowered(allowed)

# approved_by is the set of approvers whose approval a rule counts: those
# among users, or members of one of the teams named (team_members is the
# teams fact, input.teams), as policy-bot's requires block counts users
# and teams. No users and no teams count nobody.
approved_by(approvers, users, team_names, team_members) := among(approvers, teams.eligible(team_members, users, team_names))

# as_written is the set of logins (lower-cased, as the functions above
# give them) spelled as the reviews write them, for messages: octocat as
# OctoCat. A login no review writes stays as it is.
as_written(reviews, logins) := {spelled(reviews, login) | some login in logins}

# spelled is login as a review writes it (the first spelling in sort
# order, should reviews differ).
spelled(reviews, login) := min(spellings) if {
	spellings := {r.user.login |
		some r in reviews
		reviewer(r) == login
	}
	count(spellings) > 0
} else := login

# lowered is the set of the strings in x, trimmed and lower-cased; blanks
# and non-strings are dropped, and anything but an array or set yields
# the empty set.
lowered(x) := {lower(trim_space(s)) |
	some s in x
	is_string(s)
	trim_space(s) != ""
} if collection(x)

lowered(x) := set() if not collection(x)

collection(x) if is_array(x)

collection(x) if is_set(x)

# state is a review's state in upper case (webhooks write it in lower
# case, the REST API in upper case).
state(r) := upper(s) if {
	is_object(r)
	s := object.get(r, "state", null)
	is_string(s)
}

# reviewer is a review's login, lower-cased.
reviewer(r) := lower(login) if {
	is_object(r)
	login := object.get(r, ["user", "login"], "")
	is_string(login)
	login != ""
}
