# METADATA
# title: Teams
# description: |-
#   Team membership from the teams fact (input.teams, {"org/slug":
#   [logins]}). gitpoli fills it for each team the policy's config names
#   (a string in a list under a key named teams, or under a key named
#   team, "org/slug" or "@org/slug") and, when the policy reads the
#   codeowners fact, for each team that owns a changed file. A team whose
#   members could not be had is absent: it has no members here, so no
#   approval counts for it. Logins come out lower-cased.
package lib.teams

# key is a team name as the teams fact keys it: "@Acme/Platform" and
# "acme/platform" are both "acme/platform". Not a string: null.
key(name) := lower(trim_prefix(trim_space(name), "@")) if is_string(name)

key(name) := null if not is_string(name)

# members is the set of logins in any of the named teams (an array or set
# of team names; a single string is taken as one team).
members(teams, names) := {lower(login) |
	is_object(teams)
	some name in as_list(names)
	list := object.get(teams, key(name), [])
	is_array(list)
	some login in list
	is_string(login)
}

# is_member holds when login belongs to one of the named teams: the
# author in a team is teams.is_member(input.teams, names, author).
is_member(teams, names, login) if {
	is_string(login)
	lower(login) in members(teams, names)
}

# eligible is the set of logins whose approval a policy-bot requires block
# of users and teams counts: the users, lower-cased, and the members of
# the teams.
eligible(teams, users, names) := {lower(u) |
	some u in as_list(users)
	is_string(u)
} | members(teams, names)

as_list(x) := [x] if is_string(x)

as_list(x) := x if is_array(x)

as_list(x) := x if is_set(x)

as_list(x) := [] if {
	not is_string(x)
	not is_array(x)
	not is_set(x)
}
