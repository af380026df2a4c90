package github.fresh_approval_test

import data.github.fresh_approval

config := {
	"requires": {"count": 1, "teams": ["acme/reviewers"]},
	"options": {"invalidate_on_push": true},
}

team_members := {"acme/reviewers": ["SebastianSzt", "erwinmombay", "octocat"]}

review(login, state, on_head) := {"user": {"login": login}, "state": state, "on_head": on_head}

doc(reviews) := {"reviews": reviews, "teams": team_members, "config": config}

codes(doc_in) := {v.code | some v in fresh_approval.violations with input as doc_in}

# replaced is doc with key set to value (object.union would merge objects).
replaced(doc, key, value) := object.union(object.remove(doc, [key]), {key: value})

test_approval_of_the_head_allowed if {
	fresh_approval.allow with input as doc([review("octocat", "APPROVED", true)])
}

test_approval_before_a_push_is_stale if {
	codes(doc([review("octocat", "APPROVED", false)])) == {"approvals.stale"}
	some v in fresh_approval.violations with input as doc([review("octocat", "APPROVED", false)])
	v.msg == "Needs 1 approval of the head commit from acme/reviewers; octocat approved an earlier commit, and a push since makes that approval stale"
	v.config == ["options", "invalidate_on_push"]
}

test_a_stale_and_a_fresh_approval_allowed if {
	fresh_approval.allow with input as doc([review("octocat", "APPROVED", false), review("erwinmombay", "APPROVED", true)])
}

test_stale_approval_from_outside_the_team_is_just_missing if {
	codes(doc([review("donttrustthisbot", "APPROVED", false)])) == {"approvals.insufficient"}
}

test_no_approval if {
	codes(doc([])) == {"approvals.insufficient"}
}

test_stale_counts_without_invalidate_on_push if {
	doc_in := replaced(doc([review("octocat", "APPROVED", false)]), "config", {"requires": config.requires, "options": {"invalidate_on_push": false}})
	fresh_approval.allow with input as doc_in
}

test_invalidate_on_push_by_default if {
	doc_in := replaced(doc([review("octocat", "APPROVED", false)]), "config", {"requires": config.requires})
	codes(doc_in) == {"approvals.stale"}
}

test_no_config_denies if {
	codes(object.remove(doc([review("octocat", "APPROVED", true)]), ["config"])) == {"config.missing"}
}

test_missing_reviews_deny if {
	codes(object.remove(doc([]), ["reviews"])) == {"input.missing", "approvals.insufficient"}
}
