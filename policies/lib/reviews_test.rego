package lib.reviews_test

import data.lib.reviews

review(login, state, on_head) := {
	"user": {"login": login},
	"state": state,
	"commit_id": "x",
	"on_head": on_head,
	"submitted_at": "2024-11-27T19:03:19Z",
}

given := [
	review("Octocat", "APPROVED", true),
	review("hubot", "APPROVED", false),
	review("SebastianSzt", "CHANGES_REQUESTED", true),
	review("erwinmombay", "COMMENTED", true),
	review("donttrustthisbot", "DISMISSED", false),
]

test_approvers if {
	reviews.approvers(given) == {"octocat", "hubot"}
}

test_approvers_any_case_state if {
	reviews.approvers([review("a", "approved", true)]) == {"a"}
}

test_approvers_not_a_list if {
	reviews.approvers(null) == set()
	reviews.approvers({"user": {"login": "a"}, "state": "APPROVED"}) == set()
	reviews.approvers([null, "a", {"state": "APPROVED"}, {"user": "a", "state": "APPROVED"}, {"user": {"login": 3}, "state": "APPROVED"}]) == set()
}

test_approvers_on_head if {
	reviews.approvers_on_head(given) == {"octocat"}
	reviews.approvers_on_head([{"user": {"login": "a"}, "state": "APPROVED"}]) == set()
	reviews.approvers_on_head([review("a", "APPROVED", "true")]) == set()
	reviews.approvers_on_head(null) == set()
}

test_stale_approvers if {
	reviews.stale_approvers(given) == {"hubot"}
	reviews.stale_approvers([]) == set()
}

test_valid_approvers if {
	reviews.valid_approvers(given, true) == {"octocat"}
	reviews.valid_approvers(given, false) == {"octocat", "hubot"}
	reviews.valid_approvers(given, null) == {"octocat", "hubot"}
}

test_changes_requested_by if {
	reviews.changes_requested_by(given) == {"sebastianszt"}
	reviews.changes_requested_by([review("a", "APPROVED", true)]) == set()
	reviews.changes_requested_by(null) == set()
}

test_among if {
	reviews.among(reviews.approvers(given), ["OCTOCAT", "someone"]) == {"octocat"}
	reviews.among({"a", "b"}, {"b", " C "}) == {"b"}
	reviews.among(["a", "", 1], ["a"]) == {"a"}
	reviews.among({"a"}, null) == set()
	reviews.among({"a"}, "a") == set()
	reviews.among({"a"}, {"x": "a"}) == set()
}

test_approved_by if {
	team_members := {"acme/platform": ["Hubot"], "acme/reviewers": ["octocat"]}
	reviews.approved_by({"octocat", "hubot"}, [], ["acme/platform"], team_members) == {"hubot"}
	reviews.approved_by({"octocat", "hubot"}, ["OctoCat"], ["@acme/platform"], team_members) == {"octocat", "hubot"}
	reviews.approved_by({"octocat", "hubot"}, [], ["acme/unknown"], team_members) == set()
	reviews.approved_by({"octocat", "hubot"}, [], [], team_members) == set()
	reviews.approved_by({"octocat"}, null, null, null) == set()
}

test_as_written if {
	reviews.as_written(given, {"octocat", "sebastianszt", "nobody"}) == {"Octocat", "SebastianSzt", "nobody"}
	reviews.as_written(null, {"octocat"}) == {"octocat"}
	reviews.as_written(given, set()) == set()
	reviews.as_written([review("OctoCat", "APPROVED", true), review("octocat", "APPROVED", true)], ["octocat"]) == {"OctoCat"}
}
