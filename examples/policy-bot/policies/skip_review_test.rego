package github.skip_review_test

import data.github.skip_review

config := {
	"requires": {"count": 1, "teams": ["acme/reviewers"]},
	"bypass": {"if": {
		"has_labels": ["skip-review"],
		"only_changed_files": {"paths": ["docs/**", "**.md"]},
	}},
}

team_members := {"acme/reviewers": ["octocat"]}

doc(labels, files, approvers) := {
	"pull_request": {"labels": [{"name": l} | some l in labels]},
	"files": [{"filename": f} | some f in files],
	"reviews": [{"user": {"login": a}, "state": "APPROVED", "on_head": true} | some a in approvers],
	"teams": team_members,
	"config": config,
}

codes(doc_in) := {v.code | some v in skip_review.violations with input as doc_in}

test_label_lets_docs_through if {
	skip_review.allow with input as doc(["skip-review"], ["docs/guide.md", "README.md"], [])
	skip_review.allow with input as doc(["Skip-Review", "bug"], ["docs/a/b.png"], [])
}

test_docs_without_the_label_need_approval if {
	codes(doc(["bug"], ["docs/guide.md"], [])) == {"approvals.insufficient"}
}

test_label_on_code_changes_denied if {
	codes(doc(["skip-review"], ["docs/guide.md", "src/app.js"], [])) == {"approvals.insufficient", "skip_review.not_docs_only"}
	some v in skip_review.violations with input as doc(["skip-review"], ["docs/guide.md", "src/app.js"], [])
	v.code == "skip_review.not_docs_only"
	v.msg == "The skip-review label lets through changes to **.md, docs/** only, and these files are not: src/app.js"
}

test_label_with_no_files_is_not_docs_only if {
	"approvals.insufficient" in codes(doc(["skip-review"], [], []))
}

test_approval_allowed_whatever_changed if {
	skip_review.allow with input as doc([], ["src/app.js"], ["OctoCat"])
	skip_review.allow with input as doc(["skip-review"], ["src/app.js"], ["octocat"])
}

test_approval_from_outside_the_team_does_not_count if {
	codes(doc([], ["src/app.js"], ["hubot"])) == {"approvals.insufficient"}
}

test_message if {
	some v in skip_review.violations with input as doc([], ["src/app.js"], [])
	v.msg == "Needs 1 approval from acme/reviewers, or the skip-review label on a change to **.md, docs/** only; none so far"
}

test_no_config_denies if {
	codes(object.remove(doc(["skip-review"], ["docs/a.md"], []), ["config"])) == {"config.missing"}
}

test_missing_facts_deny if {
	codes(object.remove(doc(["skip-review"], ["docs/a.md"], []), ["files"])) == {"input.missing", "approvals.insufficient", "skip_review.not_docs_only"}
}
