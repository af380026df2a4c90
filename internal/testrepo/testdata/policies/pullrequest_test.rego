package github.pullrequest_test

import data.github.pullrequest

# base is the contract's example, changed so that it passes.
base := {
	"head_ref": "feature/login",
	"base_ref": "develop",
	"workflow_meta": {"approvers": ["erasmo"], "signed_off": false},
	"repo_policy": {"policy": {
		"version": "1.0",
		"branch_rules": [
			{"source": "feature/*", "target": "develop"},
			{"source": "hotfix/*", "target": "release/*"},
			{"source": "release/**", "target": "main"},
		],
		"rules": {
			"allowed_target_branches": ["main", "develop", "release/*"],
			"approvals_required": 1,
			"signed_off": false,
		},
	}},
}

codes(doc) := {v.code |
	vs := pullrequest.violations with input as doc
	some v in vs
}

set_op(path, value) := {"op": "add", "path": path, "value": value}

del_op(path) := {"op": "remove", "path": path}

patched(ops) := json.patch(base, ops)

fires(code, ops) if code in codes(patched(ops))

message(code, ops) := v.msg if {
	vs := pullrequest.violations with input as patched(ops)
	some v in vs
	v.code == code
}

test_allows_contract_example if {
	pullrequest.allow with input as base
	count(codes(base)) == 0
}

test_allows_full_refs if {
	pullrequest.allow with input as patched([
		set_op("/head_ref", "refs/heads/feature/login"),
		set_op("/base_ref", "refs/heads/develop"),
	])
}

test_denies_empty_input if {
	not pullrequest.allow with input as {}
	codes({}) == {"policy.missing"}
}

# Row 14: rules null, non-object or absent.
test_policy_missing if {
	every rules in [null, "strict", false] {
		got := codes(patched([set_op("/repo_policy/policy/rules", rules)]))
		got == {"policy.missing"}
	}
}

test_policy_missing_absent if {
	fires("policy.missing", [del_op("/repo_policy/policy/rules")])
	fires("policy.missing", [del_op("/repo_policy")])
	not "policy.missing" in codes(base)
}

# Row 15: version absent.
test_missing_version if {
	fires("schema.policy.missing_version", [del_op("/repo_policy/policy/version")])
	fires("schema.policy.missing_version", [set_op("/repo_policy/policy/version", 1)])
	not "schema.policy.missing_version" in codes(base)
}

test_rules_approvals_required if {
	codes(patched([set_op("/repo_policy/policy/rules", {})])) == {"schema.policy.rules.approvals_required"}
	fires("schema.policy.rules.approvals_required", [set_op("/repo_policy/policy/rules/approvals_required", null)])
	fires("schema.policy.rules.approvals_required", [set_op("/repo_policy/policy/rules/approvals_required", "1")])
	not "schema.policy.rules.approvals_required" in codes(base)
}

# Row 15: branch_rules of the wrong shape.
test_branch_rules_shape if {
	fires("schema.policy.branch_rules", [set_op("/repo_policy/policy/branch_rules", "feature/*")])
	fires("schema.policy.branch_rules", [set_op("/repo_policy/policy/branch_rules", null)])
	not "schema.policy.branch_rules" in codes(base)
	not fires("schema.policy.branch_rules", [del_op("/repo_policy/policy/branch_rules")])
}

test_branch_naming_denied if {
	fires("branch_naming.denied", [set_op("/head_ref", "feat/login")])
	fires("branch_naming.denied", [set_op("/head_ref", "feature/a/b")])
	fires("branch_naming.denied", [set_op("/base_ref", "main")])
	not "branch_naming.denied" in codes(base)

	# globs: "*" stays in a segment, "**" crosses them
	not fires("branch_naming.denied", [set_op("/head_ref", "release/1/2"), set_op("/base_ref", "main")])
	not fires("branch_naming.denied", [set_op("/head_ref", "hotfix/x"), set_op("/base_ref", "release/2")])
}

test_branch_naming_message if {
	message("branch_naming.denied", [set_op("/head_ref", "refs/heads/feat/login")]) == "Branch \"feat/login\" → \"develop\" does not match any allowed branch naming rule"
}

# Row 11: an absent or non-string ref matches no rule.
test_branch_naming_missing_refs if {
	every op in [del_op("/head_ref"), set_op("/head_ref", false), del_op("/base_ref"), set_op("/base_ref", false)] {
		fires("branch_naming.denied", [op])
	}
}

test_branch_naming_off if {
	not fires("branch_naming.denied", [set_op("/repo_policy/policy/branch_rules", []), set_op("/head_ref", "x")])
	not fires("branch_naming.denied", [del_op("/repo_policy/policy/branch_rules"), set_op("/head_ref", "x")])
}

test_branch_naming_malformed_entries_never_match if {
	fires("branch_naming.denied", [set_op("/repo_policy/policy/branch_rules", [
		"feature/*",
		{"source": "feature/*"},
		{"source": 1, "target": "develop"},
	])])
}

test_target_branch_denied if {
	fires("target_branch.denied", [set_op("/base_ref", "master")])
	fires("target_branch.denied", [del_op("/base_ref")])
	fires("target_branch.denied", [set_op("/base_ref", false)])
	not "target_branch.denied" in codes(base)
	not fires("target_branch.denied", [set_op("/repo_policy/policy/rules/allowed_target_branches", null), set_op("/base_ref", "x")])
	not fires("target_branch.denied", [del_op("/repo_policy/policy/rules/allowed_target_branches"), set_op("/base_ref", "x")])
}

test_target_branch_message if {
	ops := [set_op("/base_ref", "master"), set_op("/repo_policy/policy/rules/allowed_target_branches", ["main", "develop"])]
	message("target_branch.denied", ops) == "Target branch \"master\" not in allowed list: [\"main\", \"develop\"]"
}

# Row 12: approvals with absent or duplicate facts.
test_approvals_insufficient if {
	every meta in [null, {}, {"approvers": ["x", "x"]}, {"approvers": [""]}, {"approvers": ["X", "x "]}, "x"] {
		fires("approvals.insufficient", [
			set_op("/workflow_meta", meta),
			set_op("/repo_policy/policy/rules/approvals_required", 2),
		])
	}
}

test_approvals_insufficient_absent if {
	not "approvals.insufficient" in codes(base)
	not fires("approvals.insufficient", [
		set_op("/workflow_meta/approvers", []),
		set_op("/repo_policy/policy/rules/approvals_required", 0),
	])
	fires("approvals.insufficient", [del_op("/workflow_meta")])
}

test_approvals_message if {
	message("approvals.insufficient", [set_op("/workflow_meta/approvers", [])]) == "Requires 1 approvers, but only 0 provided"
}

# Row 13: sign-off required and the fact absent.
test_signoff_missing if {
	fires("signoff.missing", [set_op("/repo_policy/policy/rules/signed_off", true)])
	fires("signoff.missing", [set_op("/repo_policy/policy/rules/signed_off", true), del_op("/workflow_meta/signed_off")])
	fires("signoff.missing", [set_op("/repo_policy/policy/rules/signed_off", null)])
	not "signoff.missing" in codes(base)
	not fires("signoff.missing", [del_op("/repo_policy/policy/rules/signed_off")])
	not fires("signoff.missing", [
		set_op("/repo_policy/policy/rules/signed_off", true),
		set_op("/workflow_meta/signed_off", true),
	])
}
