package lib.codeowners_test

import data.lib.codeowners

owned := {
	"infra/main.tf": ["@acme/platform"],
	"src/app.js": ["@octocat", "@Acme/Reviewers"],
	"docs/guide.md": [],
	"legal/NOTICE": ["legal@acme.example"],
}

team_members := {
	"acme/platform": ["hubot", "Octocat"],
	"acme/reviewers": ["SebastianSzt"],
}

test_owners if {
	codeowners.owners(owned, "infra/main.tf") == ["@acme/platform"]
	codeowners.owners(owned, "not/changed") == []
	codeowners.owners({"a": "@x"}, "a") == []
	codeowners.owners(null, "a") == []
}

test_team_owner_satisfied_by_a_member if {
	codeowners.owner_approved(["@acme/platform"], {"hubot"}, team_members)
	codeowners.owner_approved(["@ACME/Platform"], ["OCTOCAT"], team_members)
	not codeowners.owner_approved(["@acme/platform"], {"sebastianszt"}, team_members)
}

test_user_owner_satisfied_by_their_approval if {
	codeowners.owner_approved(["@octocat"], {"octocat"}, {})
	codeowners.owner_approved(["@Octocat"], ["octocat"], {})
	not codeowners.owner_approved(["@octocat"], {"hubot"}, team_members)
}

test_team_without_members_is_not_satisfied if {
	not codeowners.owner_approved(["@acme/unknown"], {"hubot"}, team_members)
	not codeowners.owner_approved(["@acme/platform"], {"hubot"}, null)
}

test_email_owner_never_satisfied if {
	not codeowners.owner_approved(["legal@acme.example"], {"legal"}, team_members)
}

test_unapproved if {
	codeowners.unapproved(owned, set(), team_members) == {"infra/main.tf", "src/app.js", "legal/NOTICE"}
	codeowners.unapproved(owned, {"hubot"}, team_members) == {"src/app.js", "legal/NOTICE"}
	codeowners.unapproved(owned, {"hubot", "sebastianszt"}, team_members) == {"legal/NOTICE"}
	codeowners.unapproved(owned, ["octocat"], team_members) == {"legal/NOTICE"}
}

test_unapproved_file_without_owners_needs_nothing if {
	codeowners.unapproved({"docs/guide.md": []}, set(), {}) == set()
	codeowners.unapproved({}, set(), {}) == set()
	codeowners.unapproved(null, set(), {}) == set()
}

test_missing if {
	codeowners.missing(owned, {"hubot", "sebastianszt"}, team_members) == {"legal/NOTICE": ["legal@acme.example"]}
	codeowners.missing(owned, {"octocat"}, team_members) == {"legal/NOTICE": ["legal@acme.example"]}
	codeowners.missing({"a": ["@x"]}, set(), {}) == {"a": ["@x"]}
}
