package lib.teams_test

import data.lib.teams

fact := {
	"acme/platform": ["Octocat", "hubot"],
	"acme/reviewers": ["SebastianSzt", "octocat"],
	"acme/broken": "not a list",
}

test_key if {
	teams.key("@Acme/Platform") == "acme/platform"
	teams.key(" acme/platform ") == "acme/platform"
	teams.key(3) == null
}

test_members if {
	teams.members(fact, ["acme/platform"]) == {"octocat", "hubot"}
	teams.members(fact, ["@ACME/platform", "acme/reviewers"]) == {"octocat", "hubot", "sebastianszt"}
	teams.members(fact, "acme/reviewers") == {"sebastianszt", "octocat"}
	teams.members(fact, {"acme/reviewers"}) == {"sebastianszt", "octocat"}
}

test_members_of_unknown_teams if {
	teams.members(fact, ["acme/nobody"]) == set()
	teams.members(fact, ["acme/broken"]) == set()
	teams.members(fact, []) == set()
	teams.members(fact, null) == set()
	teams.members(null, ["acme/platform"]) == set()
	teams.members({"acme/x": [1, null, "ok"]}, ["acme/x"]) == {"ok"}
}

test_is_member if {
	teams.is_member(fact, ["acme/platform"], "HUBOT")
	not teams.is_member(fact, ["acme/platform"], "sebastianszt")
	not teams.is_member(fact, ["acme/platform"], null)
	not teams.is_member({}, ["acme/platform"], "hubot")
}

test_eligible if {
	teams.eligible(fact, ["Erwinmombay"], ["acme/platform"]) == {"erwinmombay", "octocat", "hubot"}
	teams.eligible(fact, [], []) == set()
	teams.eligible(fact, null, null) == set()
	teams.eligible(fact, "erwinmombay", null) == {"erwinmombay"}
}
