package workbench

import "fmt"

// Policy names one of the decisions gitpoli makes.
type Policy string

const (
	// Deploy decides whether a deployment to an environment may proceed.
	Deploy Policy = "deploy"
	// PullRequest decides whether a pull request may merge.
	PullRequest Policy = "pullrequest"
)

// Policies lists every policy in a fixed order.
func Policies() []Policy { return []Policy{Deploy, PullRequest} }

// ParsePolicy accepts a policy name as users type it.
func ParsePolicy(s string) (Policy, error) {
	switch s {
	case "deploy", "deployment":
		return Deploy, nil
	case "pullrequest", "pull_request", "pr":
		return PullRequest, nil
	}
	return "", fmt.Errorf("unknown policy %q (want deploy or pullrequest)", s)
}

// Package is the Rego package that holds the policy's decision.
func (p Policy) Package() string { return "github." + string(p) }

// ConfigFile is the policy's file name in the .repol directory.
func (p Policy) ConfigFile() string { return string(p) + ".yaml" }

// SchemaFile is the file name of the JSON Schema for the policy's config.
func (p Policy) SchemaFile() string {
	if p == Deploy {
		return "github_env_protect_schema.json"
	}
	return "github_pull_request_schema.json"
}
