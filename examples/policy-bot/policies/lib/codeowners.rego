# METADATA
# title: Code owners
# description: |-
#   Whether each changed file is approved by one of its code owners. The
#   codeowners fact (input.codeowners) maps each changed file to its
#   owners as the base branch's CODEOWNERS names them: "@login",
#   "@org/team" or an email address; the last matching rule wins, as on
#   GitHub, and a file no rule matches has no owners and needs nothing.
#   A user owner is satisfied by their own approval, a team owner by the
#   approval of one of its members (from the teams fact, which gitpoli
#   fills with every team that owns a changed file when the policy reads
#   both facts). An email owner names no login, so its approval cannot be
#   seen: a file owned only by email addresses stays unapproved.
#   approvers is a set or array of logins, e.g. reviews.approvers(input.reviews).
package lib.codeowners

import data.lib.teams

# owners is the list of a file's owners; a file the fact does not list
# has none.
owners(codeowners, filename) := list if {
	is_object(codeowners)
	list := object.get(codeowners, filename, [])
	is_array(list)
}

owners(codeowners, _) := [] if not is_object(codeowners)

owners(codeowners, filename) := [] if {
	is_object(codeowners)
	not is_array(object.get(codeowners, filename, []))
}

# owner_approved holds when one of the owners approved: a user owner
# ("@login") is among the approvers, or a member of a team owner
# ("@org/team") is.
owner_approved(owners, approvers, team_members) if {
	some owner in owners
	approved_as(owner, approvers, team_members)
}

# unapproved is the set of changed files that have owners and no approval
# from any of them: name them in a violation's message.
unapproved(codeowners, approvers, team_members) := {filename |
	is_object(codeowners)
	some filename, list in codeowners
	is_array(list)
	count(list) > 0
	not owner_approved(list, approvers, team_members)
}

# missing maps each file of unapproved to its owners, for a message that
# says whose approval each one needs.
missing(codeowners, approvers, team_members) := {filename: owners(codeowners, filename) |
	some filename in unapproved(codeowners, approvers, team_members)
}

# approved_as holds when owner's approval is among the approvers.
approved_as(owner, approvers, _) if {
	user(owner)
	lower(trim_prefix(owner, "@")) in logins(approvers)
}

approved_as(owner, approvers, team_members) if {
	team(owner)
	count(teams.members(team_members, owner) & logins(approvers)) > 0
}

# user holds for "@login"; team for "@org/team"; anything else (an email
# address) is neither.
user(owner) if {
	is_string(owner)
	startswith(owner, "@")
	not contains(owner, "/")
}

team(owner) if {
	is_string(owner)
	startswith(owner, "@")
	contains(owner, "/")
}

logins(approvers) := {lower(a) |
	some a in approvers
	is_string(a)
}
