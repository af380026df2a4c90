# Deployment policy: may this deployment to input.environment go ahead?
#
# The input document and the violation codes are gitpoli's policy contract
# (see README.md). Every rule below is written so that a missing or mistyped
# fact produces a violation instead of silently skipping the rule: the
# decision fails closed.
#
# A violation is {"code", "msg"} plus, where a config value decided it,
# "config": the path of that value in the .repol/deploy.yaml document.
package github.deploy

import data.lib.helpers

default allow := false

allow if count(violations) == 0

# --- the documents the rules read ------------------------------------------

meta := input.workflow_meta if is_object(input.workflow_meta)

default meta_ok := false

meta_ok if is_object(input.workflow_meta)

policy := input.repo_policy.policy if is_object(input.repo_policy.policy)

default policy_ok := false

policy_ok if is_object(input.repo_policy.policy)

default env_set := false

env_set if helpers.is_set(policy.environments, input.environment)

env := policy.environments[input.environment] if env_set

env_path := ["policy", "environments", input.environment]

rules := env.rules if is_object(env.rules)

default rules_ok := false

rules_ok if is_object(env.rules)

rules_path := array.concat(env_path, ["rules"])

# An environment counts as enabled unless it says enabled: false.
default env_enabled := true

env_enabled := false if helpers.get(env, "enabled", true) == false

# --- the input document ----------------------------------------------------

violations contains {
	"code": "schema.input.missing_environment",
	"msg": "Missing input.environment",
} if {
	not helpers.is_set(input, "environment")
}

violations contains {
	"code": "schema.input.missing_ref",
	"msg": "Missing input.ref (e.g., refs/heads/main)",
} if {
	not helpers.is_set(input, "ref")
}

violations contains {
	"code": "schema.input.missing_repo_environments",
	"msg": "Missing input.repo_environments (array of env names)",
} if {
	not helpers.is_set(input, "repo_environments")
}

# A workflow_meta that is not an object carries no facts, so no fact rule
# below can pass on it: they all require meta_ok.
violations contains {
	"code": "schema.input.missing_workflow_meta",
	"msg": "Missing input.workflow_meta",
} if {
	not meta_ok
}

violations contains {
	"code": "schema.input.invalid_checks.tests",
	"msg": "workflow_meta.checks.tests must be boolean",
} if {
	is_object(meta.checks)
	helpers.present(meta.checks, "tests")
	not is_boolean(meta.checks.tests)
}

violations contains {
	"code": "schema.input.invalid_approvers",
	"msg": "workflow_meta.approvers must be array of strings",
} if {
	helpers.present(meta, "approvers")
	not helpers.is_string_array(meta.approvers)
}

default deployments_today_ok := false

deployments_today_ok if {
	is_number(meta.deployments_today)
	meta.deployments_today >= 0
}

violations contains {
	"code": "schema.input.invalid_deployments_today",
	"msg": "workflow_meta.deployments_today must be number",
} if {
	helpers.present(meta, "deployments_today")
	not deployments_today_ok
}

# Without a count the daily limit cannot be checked, so its absence is an
# error whenever the limit is on.
violations contains {
	"code": "schema.input.invalid_deployments_today",
	"msg": "workflow_meta.deployments_today must be number",
} if {
	meta_ok
	not helpers.present(meta, "deployments_today")
	rate_limit_on
}

# --- the repository policy -------------------------------------------------

violations contains {
	"code": "schema.policy.missing_repo_policy",
	"msg": "Missing input.repo_policy",
} if {
	not helpers.is_set(input, "repo_policy")
}

violations contains {
	"code": "schema.policy.missing_policy",
	"msg": "Missing input.repo_policy.policy",
	"config": ["policy"],
} if {
	helpers.is_set(input, "repo_policy")
	not helpers.is_set(input.repo_policy, "policy")
}

violations contains {
	"code": "schema.policy.missing_version",
	"msg": "policy.version must be string",
	"config": ["policy", "version"],
} if {
	policy_ok
	not is_string(object.get(policy, "version", null))
}

violations contains {
	"code": "schema.policy.missing_environments",
	"msg": "policy.environments missing",
	"config": ["policy", "environments"],
} if {
	helpers.is_set(input.repo_policy, "policy")
	not helpers.is_set(input.repo_policy.policy, "environments")
}

violations contains {
	"code": "schema.policy.env_not_defined",
	"msg": sprintf("Environment %q not found in policy.environments", [helpers.show(input.environment)]),
	"config": ["policy", "environments"],
} if {
	helpers.is_set(policy, "environments")
	helpers.present(input, "environment")
	not env_set
}

violations contains {
	"code": "schema.policy.env.enabled",
	"msg": "environments[env].enabled must be boolean",
	"config": array.concat(env_path, ["enabled"]),
} if {
	env_set
	not is_boolean(helpers.get(env, "enabled", null))
}

violations contains {
	"code": "schema.policy.env.rules.missing",
	"msg": "environments[env].rules missing",
	"config": rules_path,
} if {
	env_set
	not rules_ok
}

violations contains {
	"code": "schema.policy.rules.approvals_required",
	"msg": "rules.approvals_required must be number",
	"config": array.concat(rules_path, ["approvals_required"]),
} if {
	rules_ok
	not is_number(object.get(rules, "approvals_required", null))
}

violations contains {
	"code": "schema.policy.rules.max_deployments_per_day",
	"msg": "rules.max_deployments_per_day must be number",
	"config": array.concat(rules_path, ["max_deployments_per_day"]),
} if {
	rules_ok
	not is_number(object.get(rules, "max_deployments_per_day", null))
}

violations contains {
	"code": "schema.policy.rules.tests_passed",
	"msg": "rules.tests_passed must be boolean",
	"config": array.concat(rules_path, ["tests_passed"]),
} if {
	rules_ok
	not is_boolean(object.get(rules, "tests_passed", null))
}

violations contains {
	"code": "schema.policy.rules.signed_off",
	"msg": "rules.signed_off must be boolean",
	"config": array.concat(rules_path, ["signed_off"]),
} if {
	rules_ok
	not is_boolean(object.get(rules, "signed_off", null))
}

default allowed_branches_ok := false

allowed_branches_ok if helpers.is_string_array(rules.allowed_branches)

allowed_branches_ok if {
	helpers.present(rules, "allowed_branches")
	rules.allowed_branches == null
}

violations contains {
	"code": "schema.policy.rules.allowed_branches",
	"msg": "rules.allowed_branches must be array of strings or null",
	"config": array.concat(rules_path, ["allowed_branches"]),
} if {
	rules_ok
	not allowed_branches_ok
}

# --- the deployment rules --------------------------------------------------

violations contains {
	"code": "env.missing",
	"msg": sprintf("Environment %q not defined in repository", [helpers.show(input.environment)]),
	"config": env_path,
} if {
	env_set
	env_enabled
	helpers.present(input, "repo_environments")
	not env_in_repository
}

env_in_repository if {
	is_array(input.repo_environments)
	some e in input.repo_environments
	is_string(e)
	e == input.environment
}

violations contains {
	"code": "env.disabled",
	"msg": sprintf("Environment %q is disabled in policy", [helpers.show(input.environment)]),
	"config": array.concat(env_path, ["enabled"]),
} if {
	env_set
	not env_enabled
}

# An absent allowed_branches admits nothing; only an explicit null turns the
# rule off.
allowed_branches := object.get(rules, "allowed_branches", [])

ref_allowed if {
	is_array(allowed_branches)
	some pattern in allowed_branches
	is_string(pattern)
	input.ref == concat("", ["refs/heads/", pattern])
}

ref_allowed if {
	is_array(allowed_branches)
	some pattern in allowed_branches
	helpers.glob_match(concat("", ["refs/heads/", pattern]), input.ref)
}

violations contains {
	"code": "ref.denied",
	"msg": sprintf("Branch %s not allowed for environment %s. Allowed: %v", [
		helpers.show(input.ref),
		helpers.show(input.environment),
		allowed_branches,
	]),
	"config": array.concat(rules_path, ["allowed_branches"]),
} if {
	rules_ok
	allowed_branches != null
	helpers.present(input, "ref")
	not ref_allowed
}

approvers := helpers.distinct_approvers(helpers.get(meta, "approvers", []))

violations contains {
	"code": "approvals.insufficient",
	"msg": sprintf("Environment %s requires %d approvers, but only %d provided", [
		helpers.show(input.environment),
		rules.approvals_required,
		count(approvers),
	]),
	"config": array.concat(rules_path, ["approvals_required"]),
} if {
	is_number(rules.approvals_required)
	rules.approvals_required > 0
	meta_ok
	count(approvers) < rules.approvals_required
}

violations contains {
	"code": "tests.failed",
	"msg": sprintf("Tests must pass for %s environment deployment", [helpers.show(input.environment)]),
	"config": array.concat(rules_path, ["tests_passed"]),
} if {
	rules_ok
	object.get(rules, "tests_passed", true) != false
	meta_ok
	not tests_passed
}

tests_passed if meta.checks.tests == true

violations contains {
	"code": "signoff.missing",
	"msg": sprintf("Sign-off required for %s environment deployment", [helpers.show(input.environment)]),
	"config": array.concat(rules_path, ["signed_off"]),
} if {
	rules_ok
	object.get(rules, "signed_off", true) != false
	meta_ok
	not signed_off
}

signed_off if meta.signed_off == true

default rate_limit_on := false

rate_limit_on if {
	is_number(rules.max_deployments_per_day)
	rules.max_deployments_per_day > 0
}

# deployments_today excludes this deployment, so reaching the maximum
# already means this one would exceed it.
violations contains {
	"code": "rate_limit.exceeded",
	"msg": sprintf("Daily deployment limit exceeded for %s. Max: %d, Attempted: %d", [
		helpers.show(input.environment),
		rules.max_deployments_per_day,
		meta.deployments_today + 1,
	]),
	"config": array.concat(rules_path, ["max_deployments_per_day"]),
} if {
	rate_limit_on
	deployments_today_ok
	meta.deployments_today >= rules.max_deployments_per_day
}
