package github.infra_approval_test

import data.github.infra_approval

config := {"approval_rules": [{
	"name": "platform approves infrastructure changes",
	"if": {"changed_files": {"paths": ["infra/**", "**/*.tf"]}},
	"requires": {"count": 2, "teams": ["acme/platform"]},
}]}

team_members := {"acme/platform": ["octocat", "hubot"], "acme/reviewers": ["SebastianSzt"]}

approval(login) := {"user": {"login": login}, "state": "APPROVED", "on_head": true}

doc(files, reviews) := {
	"files": [{"filename": f} | some f in files],
	"reviews": reviews,
	"teams": team_members,
	"config": config,
}

codes(doc_in) := {v.code | some v in infra_approval.violations with input as doc_in}

# replaced is doc with key set to value (object.union would merge objects).
replaced(doc, key, value) := object.union(object.remove(doc, [key]), {key: value})

test_infra_change_needs_two_platform_approvals if {
	codes(doc(["infra/terraform/main.tf", "README.md"], [approval("octocat")])) == {"approvals.insufficient"}
}

test_infra_change_with_two_platform_approvals_allowed if {
	infra_approval.allow with input as doc(["infra/terraform/main.tf"], [approval("Octocat"), approval("hubot")])
}

test_approvals_outside_the_team_do_not_count if {
	codes(doc(["infra/main.tf"], [approval("octocat"), approval("sebastianszt")])) == {"approvals.insufficient"}
}

test_terraform_outside_infra_matches if {
	codes(doc(["modules/vpc/main.tf"], [])) == {"approvals.insufficient"}
	codes(doc(["main.tf"], [])) == {"approvals.insufficient"}
}

test_other_changes_need_nothing if {
	infra_approval.allow with input as doc(["src/app.js", "docs/infra.md"], [])
}

test_moving_a_file_out_of_infra_is_an_infra_change if {
	doc_in := replaced(doc([], []), "files", [{"filename": "docs/old.md", "previous_filename": "infra/old.md", "status": "renamed"}])
	codes(doc_in) == {"approvals.insufficient"}
}

test_message_names_files_team_and_approvers if {
	some v in infra_approval.violations with input as doc(["infra/b.tf", "infra/a.tf"], [approval("hubot")])
	v.msg == "platform approves infrastructure changes: infra/a.tf, infra/b.tf changed, which needs 2 approvals from acme/platform; 1 so far (hubot)"
	v.config == ["approval_rules", 0, "requires", "count"]
}

test_message_without_approvals if {
	some v in infra_approval.violations with input as doc(["infra/a.tf"], [])
	endswith(v.msg, "; none so far")
}

test_each_rule_is_judged_on_its_own if {
	two_rules := {"approval_rules": [
		config.approval_rules[0],
		{"name": "security", "if": {"changed_files": {"paths": ["auth/**"]}}, "requires": {"count": 1, "users": ["SebastianSzt"]}},
	]}
	doc_in := replaced(doc(["auth/login.go"], [approval("sebastianszt")]), "config", two_rules)
	infra_approval.allow with input as doc_in
	paths := {v.config | some v in infra_approval.violations with input as replaced(doc_in, "reviews", [])}
	paths == {["approval_rules", 1, "requires", "count"]}
}

test_no_config_denies if {
	codes(object.remove(doc([], []), ["config"])) == {"config.missing"}
}

test_missing_facts_deny if {
	codes(object.remove(doc(["src/a.go"], []), ["files", "reviews"])) == {"input.missing"}
	codes(replaced(doc(["src/a.go"], []), "reviews", "none")) == {"input.missing"}
}
