# METADATA
# title: No WIP
# description: A pull request whose title starts with WIP may not merge.
# custom:
#   gitpoli:
#     on: [pull_request]
#     answer: check
#     check_name: gitpoli / No WIP
#     config: wip
package github.wip

default allow := false

allow if count(violations) == 0

# The prefixes that mark work in progress, from .repol/wip.yaml.
prefixes := object.get(input, ["config", "prefixes"], ["WIP"])

violations contains {
	"code": "pr.wip",
	"msg": sprintf("The title starts with %q: work in progress may not merge", [prefix]),
	"config": ["prefixes"],
} if {
	some prefix in prefixes
	startswith(lower(input.pull_request.title), lower(prefix))
}
