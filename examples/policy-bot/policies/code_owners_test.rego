package github.code_owners_test

import data.github.code_owners

owned := {
	"infra/main.tf": ["@acme/platform"],
	"dir2/dir1/dir1/file.txt": ["@erwinmombay"],
	"docs/guide.md": [],
}

team_members := {"acme/platform": ["octocat", "hubot"]}

review(login, on_head) := {"user": {"login": login}, "state": "APPROVED", "on_head": on_head}

doc(reviews) := {"codeowners": owned, "reviews": reviews, "teams": team_members, "config": {"options": {"invalidate_on_push": false}}}

violations(doc_in) := {[v.code, v.msg] | some v in code_owners.violations with input as doc_in}

# replaced is doc with key set to value (object.union would merge objects).
replaced(doc, key, value) := object.union(object.remove(doc, [key]), {key: value})

test_every_owned_file_needs_its_owner if {
	violations(doc([])) == {
		["codeowners.unapproved", "infra/main.tf needs an approval from one of its code owners: @acme/platform"],
		["codeowners.unapproved", "dir2/dir1/dir1/file.txt needs an approval from one of its code owners: @erwinmombay"],
	}
}

test_code_owner_approvals_allowed if {
	code_owners.allow with input as doc([review("Hubot", true), review("erwinmombay", true)])
}

test_one_file_still_unapproved if {
	violations(doc([review("erwinmombay", true)])) == {["codeowners.unapproved", "infra/main.tf needs an approval from one of its code owners: @acme/platform"]}
}

test_approval_of_someone_else_does_not_count if {
	count(violations(doc([review("sebastianszt", true)]))) == 2
}

test_files_without_owners_need_nothing if {
	code_owners.allow with input as replaced(doc([]), "codeowners", {"docs/guide.md": [], "README.md": []})
}

test_invalidate_on_push if {
	doc_in := replaced(doc([review("hubot", false), review("erwinmombay", true)]), "config", {"options": {"invalidate_on_push": true}})
	violations(doc_in) == {["codeowners.unapproved", "infra/main.tf needs an approval from one of its code owners: @acme/platform"]}
	code_owners.allow with input as replaced(doc_in, "config", {})
}

test_missing_facts_deny if {
	violations(object.remove(doc([]), ["codeowners", "reviews"])) == {
		["input.missing", "The input has no codeowners: the decision needs it"],
		["input.missing", "The input has no reviews: the decision needs it"],
	}
}
