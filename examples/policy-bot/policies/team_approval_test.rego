package github.team_approval_test

import data.github.team_approval

config := {
	"requires": {"count": 1, "teams": ["acme/reviewers"]},
	"disapproval": {"requires": {"teams": ["acme/reviewers"]}},
}

team_members := {"acme/reviewers": ["SebastianSzt", "erwinmombay", "octocat"]}

review(login, state) := {"user": {"login": login}, "state": state, "on_head": true}

doc(reviews) := {"reviews": reviews, "teams": team_members, "config": config}

codes(doc_in) := {v.code | some v in team_approval.violations with input as doc_in}

# replaced is doc with key set to value (object.union would merge objects).
replaced(doc, key, value) := object.union(object.remove(doc, [key]), {key: value})

test_reviewer_approval_allowed if {
	team_approval.allow with input as doc([review("sebastianszt", "APPROVED")])
}

test_no_approval_denied if {
	codes(doc([])) == {"approvals.insufficient"}
	codes(doc([review("sebastianszt", "COMMENTED")])) == {"approvals.insufficient"}
	codes(doc([review("sebastianszt", "DISMISSED")])) == {"approvals.insufficient"}
}

test_approval_from_outside_the_team_does_not_count if {
	codes(doc([review("donttrustthisbot", "APPROVED")])) == {"approvals.insufficient"}
}

test_changes_requested_blocks if {
	codes(doc([review("erwinmombay", "APPROVED"), review("SebastianSzt", "CHANGES_REQUESTED")])) == {"changes.requested"}
	some v in team_approval.violations with input as doc([review("SebastianSzt", "CHANGES_REQUESTED")])
	v.code == "changes.requested"
	v.msg == "SebastianSzt requested changes: their approval, or a dismissal of that review, lifts it"
}

test_changes_requested_from_outside_the_team_does_not_block if {
	team_approval.allow with input as doc([review("octocat", "APPROVED"), review("donttrustthisbot", "CHANGES_REQUESTED")])
}

test_disapproval_off_without_its_requires if {
	doc_in := replaced(doc([review("octocat", "APPROVED"), review("SebastianSzt", "CHANGES_REQUESTED")]), "config", {"requires": config.requires})
	team_approval.allow with input as doc_in
}

test_message if {
	some v in team_approval.violations with input as doc([review("donttrustthisbot", "APPROVED")])
	v.msg == "Needs 1 approval from acme/reviewers; none so far"
}

test_users_count_too if {
	doc_in := replaced(doc([review("Hubot", "APPROVED")]), "config", {"requires": {"count": 1, "users": ["hubot"]}})
	team_approval.allow with input as doc_in
}

test_count_of_two if {
	doc_in := replaced(doc([review("octocat", "APPROVED")]), "config", {"requires": {"count": 2, "teams": ["acme/reviewers"]}})
	some v in team_approval.violations with input as doc_in
	v.msg == "Needs 2 approvals from acme/reviewers; approved so far by octocat"
}

test_no_config_denies if {
	codes(object.remove(doc([review("octocat", "APPROVED")]), ["config"])) == {"config.missing"}
}

test_missing_reviews_deny if {
	codes(object.remove(doc([]), ["reviews"])) == {"input.missing", "approvals.insufficient"}
}
