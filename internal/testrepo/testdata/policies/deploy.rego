# Deployment policy: may this deployment to input.environment go ahead?
#
# The input document and the violation codes are gitpoli's policy contract
# (see README.md). A missing or mistyped fact produces a violation instead of
# silently skipping a rule, so the decision fails closed.
#
# How the rules read input: object.get with a path from input is total. It
# yields the default for anything absent, or not an object, along the way,
# so a check such as `object.get(input, "ref", false) == false` holds for an
# absent ref. (A negated reference to an absent key would be undefined and
# skip the rule instead: the fail-open trap.) Reading input directly, rather
# than through intermediate rules, also keeps a decision to a few
# microseconds.
#
# A violation is {"code", "msg"} plus, where a config value decided it,
# "config": the path of that value in the .repol/deploy.yaml document.
# METADATA
# title: Deployment policy
# description: >-
#   May this deployment to input.environment go ahead? Rules per environment
#   in .repol/deploy.yaml: approvals, allowed branches, tests, sign-off and a
#   daily limit.
# custom:
#   gitpoli:
#     on: [deployment_protection_rule]
#     answer: deployment
#     config: deploy
package github.deploy

import data.lib.helpers

default allow := false

allow if count(violations) == 0

# --- the input document ----------------------------------------------------

violations contains {
	"code": "schema.input.missing_environment",
	"msg": "Missing input.environment",
} if {
	object.get(input, "environment", false) == false
}

violations contains {
	"code": "schema.input.missing_ref",
	"msg": "Missing input.ref (e.g., refs/heads/main)",
} if {
	object.get(input, "ref", false) == false
}

violations contains {
	"code": "schema.input.missing_repo_environments",
	"msg": "Missing input.repo_environments (array of env names)",
} if {
	object.get(input, "repo_environments", false) == false
}

# A workflow_meta that is not an object carries no facts, so every fact rule
# below requires an object and none can pass without one.
violations contains {
	"code": "schema.input.missing_workflow_meta",
	"msg": "Missing input.workflow_meta",
} if {
	not is_object(object.get(input, "workflow_meta", null))
}

violations contains {
	"code": "schema.input.invalid_checks.tests",
	"msg": "workflow_meta.checks.tests must be boolean",
} if {
	tests := input.workflow_meta.checks.tests
	not is_boolean(tests)
}

violations contains {
	"code": "schema.input.invalid_approvers",
	"msg": "workflow_meta.approvers must be array of strings",
} if {
	approvers := input.workflow_meta.approvers
	not helpers.is_string_array(approvers)
}

violations contains {
	"code": "schema.input.invalid_deployments_today",
	"msg": "workflow_meta.deployments_today must be number",
} if {
	n := input.workflow_meta.deployments_today
	not is_number(n)
}

violations contains {
	"code": "schema.input.invalid_deployments_today",
	"msg": "workflow_meta.deployments_today must be number",
} if {
	input.workflow_meta.deployments_today < 0
}

# Without a count the daily limit cannot be checked, so an absent count is an
# error whenever the limit is on.
violations contains {
	"code": "schema.input.invalid_deployments_today",
	"msg": "workflow_meta.deployments_today must be number",
} if {
	is_object(input.workflow_meta)
	not is_number(object.get(input.workflow_meta, "deployments_today", null))
	max := input.repo_policy.policy.environments[input.environment].rules.max_deployments_per_day
	is_number(max)
	max > 0
}

# --- the repository policy -------------------------------------------------

violations contains {
	"code": "schema.policy.missing_repo_policy",
	"msg": "Missing input.repo_policy",
} if {
	object.get(input, "repo_policy", false) == false
}

violations contains {
	"code": "schema.policy.missing_policy",
	"msg": "Missing input.repo_policy.policy",
	"config": ["policy"],
} if {
	object.get(input, "repo_policy", false) != false
	object.get(input, ["repo_policy", "policy"], false) == false
}

violations contains {
	"code": "schema.policy.missing_version",
	"msg": "policy.version must be string",
	"config": ["policy", "version"],
} if {
	is_object(input.repo_policy.policy)
	not is_string(object.get(input.repo_policy.policy, "version", null))
}

violations contains {
	"code": "schema.policy.missing_environments",
	"msg": "policy.environments missing",
	"config": ["policy", "environments"],
} if {
	object.get(input, ["repo_policy", "policy"], false) != false
	object.get(input, ["repo_policy", "policy", "environments"], false) == false
}

violations contains {
	"code": "schema.policy.env_not_defined",
	"msg": sprintf("Environment %q not found in policy.environments", [helpers.show(input.environment)]),
	"config": ["policy", "environments"],
} if {
	object.get(input, ["repo_policy", "policy", "environments"], false) != false
	env := input.environment
	object.get(input, ["repo_policy", "policy", "environments", env], false) == false
}

violations contains {
	"code": "schema.policy.env.enabled",
	"msg": "environments[env].enabled must be boolean",
	"config": ["policy", "environments", env, "enabled"],
} if {
	env := input.environment
	object.get(input, ["repo_policy", "policy", "environments", env], false) != false
	not is_boolean(object.get(input, ["repo_policy", "policy", "environments", env, "enabled"], null))
}

violations contains {
	"code": "schema.policy.env.rules.missing",
	"msg": "environments[env].rules missing",
	"config": ["policy", "environments", env, "rules"],
} if {
	env := input.environment
	object.get(input, ["repo_policy", "policy", "environments", env], false) != false
	not is_object(object.get(input, ["repo_policy", "policy", "environments", env, "rules"], null))
}

violations contains {
	"code": "schema.policy.rules.approvals_required",
	"msg": "rules.approvals_required must be number",
	"config": ["policy", "environments", input.environment, "rules", "approvals_required"],
} if {
	rules := input.repo_policy.policy.environments[input.environment].rules
	is_object(rules)
	not is_number(object.get(rules, "approvals_required", null))
}

violations contains {
	"code": "schema.policy.rules.max_deployments_per_day",
	"msg": "rules.max_deployments_per_day must be number",
	"config": ["policy", "environments", input.environment, "rules", "max_deployments_per_day"],
} if {
	rules := input.repo_policy.policy.environments[input.environment].rules
	is_object(rules)
	not is_number(object.get(rules, "max_deployments_per_day", null))
}

violations contains {
	"code": "schema.policy.rules.tests_passed",
	"msg": "rules.tests_passed must be boolean",
	"config": ["policy", "environments", input.environment, "rules", "tests_passed"],
} if {
	rules := input.repo_policy.policy.environments[input.environment].rules
	is_object(rules)
	not is_boolean(object.get(rules, "tests_passed", null))
}

violations contains {
	"code": "schema.policy.rules.signed_off",
	"msg": "rules.signed_off must be boolean",
	"config": ["policy", "environments", input.environment, "rules", "signed_off"],
} if {
	rules := input.repo_policy.policy.environments[input.environment].rules
	is_object(rules)
	not is_boolean(object.get(rules, "signed_off", null))
}

# An absent allowed_branches is an error (and admits no ref, below); null is
# valid and switches the ref rule off.
violations contains {
	"code": "schema.policy.rules.allowed_branches",
	"msg": "rules.allowed_branches must be array of strings or null",
	"config": ["policy", "environments", input.environment, "rules", "allowed_branches"],
} if {
	rules := input.repo_policy.policy.environments[input.environment].rules
	is_object(rules)
	not helpers.is_null_or_string_array(object.get(rules, "allowed_branches", false))
}

# --- the deployment rules --------------------------------------------------

# An environment is on unless it says enabled: false.
violations contains {
	"code": "env.missing",
	"msg": sprintf("Environment %q not defined in repository", [helpers.show(env)]),
	"config": ["policy", "environments", env],
} if {
	env := input.environment
	object.get(input, ["repo_policy", "policy", "environments", env], false) != false
	object.get(input, ["repo_policy", "policy", "environments", env, "enabled"], true) != false
	repo_environments := input.repo_environments
	not helpers.string_in(repo_environments, env)
}

violations contains {
	"code": "env.disabled",
	"msg": sprintf("Environment %q is disabled in policy", [helpers.show(env)]),
	"config": ["policy", "environments", env, "enabled"],
} if {
	env := input.environment
	object.get(input, ["repo_policy", "policy", "environments", env, "enabled"], null) == false
}

violations contains {
	"code": "ref.denied",
	"msg": sprintf("Branch %s not allowed for environment %s. Allowed: %v", [
		helpers.show(ref),
		helpers.show(input.environment),
		allowed,
	]),
	"config": ["policy", "environments", input.environment, "rules", "allowed_branches"],
} if {
	rules := input.repo_policy.policy.environments[input.environment].rules
	is_object(rules)
	allowed := object.get(rules, "allowed_branches", [])
	allowed != null
	ref := input.ref
	not ref_allowed(allowed, ref)
}

# ref_allowed holds when ref is the branch refs/heads/<p>, or matches the glob
# refs/heads/<p>, for some string p in patterns. Tags never match.
ref_allowed(patterns, ref) if {
	some pattern in patterns
	is_string(pattern)
	ref == concat("", ["refs/heads/", pattern])
}

ref_allowed(patterns, ref) if {
	some pattern in patterns
	is_string(pattern)
	helpers.glob_match(concat("", ["refs/heads/", pattern]), ref)
}

violations contains {
	"code": "approvals.insufficient",
	"msg": sprintf("Environment %s requires %d approvers, but only %d provided", [
		helpers.show(input.environment),
		required,
		count(approvers),
	]),
	"config": ["policy", "environments", input.environment, "rules", "approvals_required"],
} if {
	required := input.repo_policy.policy.environments[input.environment].rules.approvals_required
	is_number(required)
	required > 0
	is_object(input.workflow_meta)
	approvers := helpers.distinct_approvers(object.get(input.workflow_meta, "approvers", []))
	count(approvers) < required
}

violations contains {
	"code": "tests.failed",
	"msg": sprintf("Tests must pass for %s environment deployment", [helpers.show(input.environment)]),
	"config": ["policy", "environments", input.environment, "rules", "tests_passed"],
} if {
	rules := input.repo_policy.policy.environments[input.environment].rules
	is_object(rules)
	object.get(rules, "tests_passed", true) != false
	is_object(input.workflow_meta)
	object.get(input.workflow_meta, ["checks", "tests"], false) != true
}

violations contains {
	"code": "signoff.missing",
	"msg": sprintf("Sign-off required for %s environment deployment", [helpers.show(input.environment)]),
	"config": ["policy", "environments", input.environment, "rules", "signed_off"],
} if {
	rules := input.repo_policy.policy.environments[input.environment].rules
	is_object(rules)
	object.get(rules, "signed_off", true) != false
	is_object(input.workflow_meta)
	object.get(input.workflow_meta, "signed_off", false) != true
}

# deployments_today excludes this deployment, so reaching the maximum
# already means this one would exceed it.
violations contains {
	"code": "rate_limit.exceeded",
	"msg": sprintf("Daily deployment limit exceeded for %s. Max: %d, Attempted: %d", [
		helpers.show(input.environment),
		max,
		done + 1,
	]),
	"config": ["policy", "environments", input.environment, "rules", "max_deployments_per_day"],
} if {
	max := input.repo_policy.policy.environments[input.environment].rules.max_deployments_per_day
	is_number(max)
	max > 0
	done := input.workflow_meta.deployments_today
	is_number(done)
	done >= max
}
