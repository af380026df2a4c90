package workbench

// The starter policies of the frozen test repository
// (internal/testrepo/testdata), which many tests decide with.
const (
	Deploy       Policy = "deploy"
	PullRequest  Policy = "pullrequest"
	CheckRunName        = "gitpoli / PR Policy"
)

// The METADATA that makes a test's package github.deploy or
// github.pullrequest the starter policy of that name; six lines, put
// before the package line.
const (
	deployHeader      = "# METADATA\n# custom:\n#   gitpoli:\n#     on: [deployment_protection_rule]\n#     answer: deployment\n#     config: deploy\n"
	pullRequestHeader = "# METADATA\n# custom:\n#   gitpoli:\n#     on: [pull_request, pull_request_review]\n#     answer: check\n#     config: pullrequest\n"
)
