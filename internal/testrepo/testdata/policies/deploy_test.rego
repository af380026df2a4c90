package github.deploy_test

import data.github.deploy

# base is the contract's example: a production deployment that passes.
base := {
	"environment": "production",
	"ref": "refs/heads/main",
	"repo_environments": ["production", "staging"],
	"workflow_meta": {
		"approvers": ["alice", "bob"],
		"checks": {"tests": true},
		"signed_off": true,
		"deployments_today": 1,
	},
	"repo_policy": {"policy": {
		"version": "1.0.0",
		"environments": {
			"production": {"enabled": true, "rules": {
				"approvals_required": 2,
				"allowed_branches": ["main"],
				"tests_passed": true,
				"signed_off": true,
				"max_deployments_per_day": 5,
			}},
			"staging": {"enabled": true, "rules": {
				"approvals_required": 0,
				"allowed_branches": ["main", "develop", "release/*"],
				"tests_passed": false,
				"signed_off": false,
				"max_deployments_per_day": 20,
			}},
			"development": {"enabled": true, "rules": {
				"approvals_required": 0,
				"allowed_branches": null,
				"tests_passed": false,
				"signed_off": false,
				"max_deployments_per_day": 50,
			}},
		},
	}},
}

rules_path := "/repo_policy/policy/environments/production/rules"

codes(doc) := {v.code |
	vs := deploy.violations with input as doc
	some v in vs
}

set_op(path, value) := {"op": "add", "path": path, "value": value}

del_op(path) := {"op": "remove", "path": path}

patched(ops) := json.patch(base, ops)

fires(code, ops) if code in codes(patched(ops))

# --- allow -----------------------------------------------------------------

test_allows_contract_example if {
	deploy.allow with input as base
	count(codes(base)) == 0
}

test_denies_empty_input if {
	not deploy.allow with input as {}
	codes({}) == {
		"schema.input.missing_environment",
		"schema.input.missing_ref",
		"schema.input.missing_repo_environments",
		"schema.input.missing_workflow_meta",
		"schema.policy.missing_repo_policy",
	}
}

test_allows_development_without_facts_but_count if {
	doc := patched([
		set_op("/environment", "development"),
		set_op("/ref", "refs/tags/v1.0.0"),
		set_op("/repo_environments", ["development"]),
		set_op("/workflow_meta", {"deployments_today": 0}),
	])
	deploy.allow with input as doc
}

# --- the input document ----------------------------------------------------

test_missing_environment if {
	fires("schema.input.missing_environment", [del_op("/environment")])
	fires("schema.input.missing_environment", [set_op("/environment", false)])
	not "schema.input.missing_environment" in codes(base)

	# null is set: it is reported as an unknown environment instead.
	not fires("schema.input.missing_environment", [set_op("/environment", null)])
	fires("schema.policy.env_not_defined", [set_op("/environment", null)])
}

test_missing_ref if {
	fires("schema.input.missing_ref", [del_op("/ref")])
	fires("schema.input.missing_ref", [set_op("/ref", false)])
	not "schema.input.missing_ref" in codes(base)
}

test_missing_repo_environments if {
	fires("schema.input.missing_repo_environments", [del_op("/repo_environments")])
	not "schema.input.missing_repo_environments" in codes(base)
}

test_missing_workflow_meta_runs_no_fact_rule if {
	every meta in [null, false, "x", [], 3] {
		got := codes(patched([set_op("/workflow_meta", meta)]))
		got == {"schema.input.missing_workflow_meta"}
	}
}

test_missing_workflow_meta_absent if {
	codes(patched([del_op("/workflow_meta")])) == {"schema.input.missing_workflow_meta"}
	not "schema.input.missing_workflow_meta" in codes(base)
}

test_invalid_checks_tests if {
	fires("schema.input.invalid_checks.tests", [set_op("/workflow_meta/checks/tests", "yes")])
	fires("schema.input.invalid_checks.tests", [set_op("/workflow_meta/checks/tests", null)])
	not "schema.input.invalid_checks.tests" in codes(base)

	# an absent result is not a type error, but it is not a pass either
	got := codes(patched([set_op("/workflow_meta/checks", {})]))
	not "schema.input.invalid_checks.tests" in got
	"tests.failed" in got
}

test_invalid_approvers if {
	every approvers in [false, null, "alice", [1, "bob"], {"a": "b"}] {
		fires("schema.input.invalid_approvers", [set_op("/workflow_meta/approvers", approvers)])
	}
}

test_invalid_approvers_absent if {
	not "schema.input.invalid_approvers" in codes(base)
	not fires("schema.input.invalid_approvers", [del_op("/workflow_meta/approvers")])
}

test_invalid_deployments_today if {
	every n in [false, null, "3", -100, -1] {
		fires("schema.input.invalid_deployments_today", [set_op("/workflow_meta/deployments_today", n)])
	}
}

test_deployments_today_absent_while_rate_limit_on if {
	fires("schema.input.invalid_deployments_today", [del_op("/workflow_meta/deployments_today")])
	not fires("schema.input.invalid_deployments_today", [
		del_op("/workflow_meta/deployments_today"),
		set_op(concat("", [rules_path, "/max_deployments_per_day"]), 0),
	])
	not "schema.input.invalid_deployments_today" in codes(base)
}

# --- the repository policy -------------------------------------------------

test_missing_repo_policy if {
	fires("schema.policy.missing_repo_policy", [del_op("/repo_policy")])
	fires("schema.policy.missing_repo_policy", [set_op("/repo_policy", false)])
	not "schema.policy.missing_repo_policy" in codes(base)
}

test_missing_policy if {
	fires("schema.policy.missing_policy", [set_op("/repo_policy", {})])
	fires("schema.policy.missing_policy", [set_op("/repo_policy", "strict")])
	not "schema.policy.missing_policy" in codes(base)
}

# Row 1 of the contract's fail-open table: without a version every rule
# still runs.
test_missing_version_keeps_every_rule if {
	got := codes(patched([
		del_op("/repo_policy/policy/version"),
		set_op("/ref", "refs/heads/feature/x"),
		set_op("/workflow_meta/approvers", []),
		set_op("/workflow_meta/checks/tests", false),
	]))
	got == {
		"schema.policy.missing_version",
		"ref.denied",
		"approvals.insufficient",
		"tests.failed",
	}
}

test_missing_version if {
	fires("schema.policy.missing_version", [set_op("/repo_policy/policy/version", 1)])
	not "schema.policy.missing_version" in codes(base)
}

test_missing_environments if {
	fires("schema.policy.missing_environments", [del_op("/repo_policy/policy/environments")])
	fires("schema.policy.missing_environments", [set_op("/repo_policy/policy/environments", false)])
	not "schema.policy.missing_environments" in codes(base)
}

test_env_not_defined if {
	got := codes(patched([set_op("/environment", "qa")]))
	got == {"schema.policy.env_not_defined"}
	not "schema.policy.env_not_defined" in codes(base)
}

test_env_not_defined_message if {
	doc := patched([set_op("/environment", "qa")])
	vs := deploy.violations with input as doc
	some v in vs
	v.msg == "Environment \"qa\" not found in policy.environments"
}

test_env_enabled_type if {
	fires("schema.policy.env.enabled", [set_op("/repo_policy/policy/environments/production/enabled", "yes")])
	fires("schema.policy.env.enabled", [del_op("/repo_policy/policy/environments/production/enabled")])
	not "schema.policy.env.enabled" in codes(base)
}

test_env_rules_missing if {
	fires("schema.policy.env.rules.missing", [del_op(rules_path)])
	fires("schema.policy.env.rules.missing", [set_op(rules_path, "strict")])
	not "schema.policy.env.rules.missing" in codes(base)
}

# Row 3: an empty rules object reports every missing key and still denies
# the ref, since an absent allowed_branches admits nothing.
test_empty_rules if {
	codes(patched([set_op(rules_path, {})])) == {
		"schema.policy.rules.approvals_required",
		"schema.policy.rules.allowed_branches",
		"schema.policy.rules.tests_passed",
		"schema.policy.rules.signed_off",
		"schema.policy.rules.max_deployments_per_day",
		"ref.denied",
	}
}

test_rules_types if {
	fires("schema.policy.rules.approvals_required", [set_op(concat("", [rules_path, "/approvals_required"]), "2")])
	fires("schema.policy.rules.max_deployments_per_day", [set_op(concat("", [rules_path, "/max_deployments_per_day"]), null)])
	fires("schema.policy.rules.tests_passed", [set_op(concat("", [rules_path, "/tests_passed"]), "true")])
	fires("schema.policy.rules.signed_off", [set_op(concat("", [rules_path, "/signed_off"]), 1)])
	fires("schema.policy.rules.allowed_branches", [set_op(concat("", [rules_path, "/allowed_branches"]), "main")])
	fires("schema.policy.rules.allowed_branches", [set_op(concat("", [rules_path, "/allowed_branches"]), [1])])
}

test_rules_types_absent if {
	got := codes(base)
	not "schema.policy.rules.approvals_required" in got
	not "schema.policy.rules.max_deployments_per_day" in got
	not "schema.policy.rules.tests_passed" in got
	not "schema.policy.rules.signed_off" in got
	not "schema.policy.rules.allowed_branches" in got
	not fires("schema.policy.rules.allowed_branches", [set_op("/environment", "development")])
}

# --- the deployment rules --------------------------------------------------

test_env_missing if {
	fires("env.missing", [set_op("/repo_environments", ["staging"])])
	fires("env.missing", [set_op("/repo_environments", null)])
	not "env.missing" in codes(base)

	# a disabled environment reports that instead
	not fires("env.missing", [
		set_op("/repo_environments", ["staging"]),
		set_op("/repo_policy/policy/environments/production/enabled", false),
	])
}

# Row 2: a disabled environment denies, and the other rules still report.
test_env_disabled if {
	got := codes(patched([
		set_op("/repo_policy/policy/environments/production/enabled", false),
		set_op("/workflow_meta/signed_off", false),
	]))
	got == {"env.disabled", "signoff.missing"}
	not "env.disabled" in codes(base)
}

test_ref_denied if {
	fires("ref.denied", [set_op("/ref", "refs/heads/feature/x")])
	fires("ref.denied", [set_op("/ref", "main")])
	fires("ref.denied", [set_op("/ref", "refs/tags/main")])
	fires("ref.denied", [set_op("/ref", null)])
	fires("ref.denied", [set_op("/ref", "refs/heads/Main")])
	not "ref.denied" in codes(base)
}

test_ref_denied_message if {
	doc := patched([set_op("/ref", "refs/heads/feature/x")])
	vs := deploy.violations with input as doc
	some v in vs
	v.code == "ref.denied"
	v.msg == "Branch refs/heads/feature/x not allowed for environment production. Allowed: [\"main\"]"
}

test_ref_globs if {
	staging := [set_op("/environment", "staging"), set_op("/repo_environments", ["staging"])]
	not fires("ref.denied", array.concat(staging, [set_op("/ref", "refs/heads/release/1")]))
	fires("ref.denied", array.concat(staging, [set_op("/ref", "refs/heads/release/1/x")]))
	fires("ref.denied", array.concat(staging, [set_op("/ref", "refs/tags/release/1")]))
	not fires("ref.denied", array.concat(staging, [set_op("/ref", "refs/heads/develop")]))
}

# Row 4: an absent allowed_branches admits no ref; null switches the rule off.
test_allowed_branches_absent_or_null if {
	fires("ref.denied", [del_op(concat("", [rules_path, "/allowed_branches"]))])
	not fires("ref.denied", [
		set_op(concat("", [rules_path, "/allowed_branches"]), null),
		set_op("/ref", "refs/tags/v1"),
	])
}

# Row 5: approvers are counted once each, case-insensitively, blanks dropped.
test_approvals_insufficient if {
	every approvers in [["a", "a"], ["a", "A"], ["", "a"], [" ", "a"], [" a ", "A"], []] {
		fires("approvals.insufficient", [set_op("/workflow_meta/approvers", approvers)])
	}
}

test_approvals_insufficient_absent_fact if {
	fires("approvals.insufficient", [del_op("/workflow_meta/approvers")])
	not "approvals.insufficient" in codes(base)
	not fires("approvals.insufficient", [set_op("/workflow_meta/approvers", ["Alice", "bob", "alice"])])
}

test_approvals_insufficient_message if {
	doc := patched([set_op("/workflow_meta/approvers", ["a", "A"])])
	vs := deploy.violations with input as doc
	some v in vs
	v.code == "approvals.insufficient"
	v.msg == "Environment production requires 2 approvers, but only 1 provided"
	v.config == ["policy", "environments", "production", "rules", "approvals_required"]
}

test_tests_failed if {
	fires("tests.failed", [set_op("/workflow_meta/checks/tests", false)])
	fires("tests.failed", [del_op("/workflow_meta/checks")])
	fires("tests.failed", [del_op(concat("", [rules_path, "/tests_passed"])), set_op("/workflow_meta/checks", {})])
	not "tests.failed" in codes(base)
	not fires("tests.failed", [
		set_op(concat("", [rules_path, "/tests_passed"]), false),
		set_op("/workflow_meta/checks/tests", false),
	])
}

# Row 6: sign-off required and the fact absent.
test_signoff_missing if {
	fires("signoff.missing", [del_op("/workflow_meta/signed_off")])
	fires("signoff.missing", [set_op("/workflow_meta/signed_off", "true")])
	fires("signoff.missing", [del_op(concat("", [rules_path, "/signed_off"])), set_op("/workflow_meta/signed_off", false)])
	not "signoff.missing" in codes(base)
	not fires("signoff.missing", [
		set_op(concat("", [rules_path, "/signed_off"]), false),
		del_op("/workflow_meta/signed_off"),
	])
}

# Row 8: deployments_today excludes this one, so 5 done of 5 allowed denies.
test_rate_limit_exceeded if {
	fires("rate_limit.exceeded", [set_op("/workflow_meta/deployments_today", 5)])
	fires("rate_limit.exceeded", [set_op("/workflow_meta/deployments_today", 9)])
	not fires("rate_limit.exceeded", [set_op("/workflow_meta/deployments_today", 4)])
	not "rate_limit.exceeded" in codes(base)
	not fires("rate_limit.exceeded", [
		set_op("/workflow_meta/deployments_today", 500),
		set_op(concat("", [rules_path, "/max_deployments_per_day"]), 0),
	])
}

test_rate_limit_message if {
	doc := patched([set_op("/workflow_meta/deployments_today", 5)])
	vs := deploy.violations with input as doc
	some v in vs
	v.code == "rate_limit.exceeded"
	v.msg == "Daily deployment limit exceeded for production. Max: 5, Attempted: 6"
}

# Rows 9 and 10 of the fail-open table.
test_staging_bad_facts if {
	staging := [set_op("/environment", "staging")]
	fires("schema.input.invalid_approvers", array.concat(staging, [set_op("/workflow_meta/approvers", false)]))
	fires("schema.input.missing_workflow_meta", array.concat(staging, [set_op("/workflow_meta", null)]))
}

test_development_empty_meta if {
	doc := patched([
		set_op("/environment", "development"),
		set_op("/repo_environments", ["development"]),
		set_op("/workflow_meta", {}),
	])
	codes(doc) == {"schema.input.invalid_deployments_today"}
}
