package workbench

import (
	"context"
	"testing"
	"testing/fstest"
)

const readsMeta = `# METADATA
# title: Reads
# custom:
#   gitpoli:
#     on: [pull_request]
#     answer: record
package github.reads

default allow := false

allow if count(violations) == 0

`

func TestInputWarnings(t *testing.T) {
	policy := readsMeta + `violations contains {"code": "a", "msg": "a"} if {
	some f in input.files
	startswith(f.filename, "infra/")
	input.files[_].path == "x"
	input.filez
	input.pull_request.user.login == "bot"
	input.pull_request.merged_at
	object.get(input, ["reviews", "approved"], false)
	input.config.anything.goes
	input.teams["acme/platform"][_] == "ann"
	input.codeowners[f.filename][_] == "@ann"
	input.files.filename
}
`
	e, err := New(context.Background(), Sources{
		Policies: Dir{FS: fstest.MapFS{"reads.rego": {Data: []byte(policy)}}, Name: "policies"},
		Config:   Dir{FS: fstest.MapFS{}, Name: ".repol"}, Schemas: Dir{FS: fstest.MapFS{}, Name: "schemas"},
	})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, p := range e.InputWarnings() {
		got = append(got, p.String())
	}
	want := []string{
		`policies/reads.rego:16:2: input.files[_].path: no delivery or fact has "path" here (there is additions, changes, deletions, filename, previous_filename, status)`,
		`policies/reads.rego:17:2: input.filez: no delivery or fact has "filez" here (there is base_ref, checks, codeowners, commits, config, deployment, environment, event, files, head_ref, merge_group, pull_request, pull_requests, ref, repo_environments, repo_policy, repository, reviews, teams, workflow_meta)`,
		`policies/reads.rego:19:2: input.pull_request.merged_at: no delivery or fact has "merged_at" here (there is additions, author_association, base, body, changed_files, commits, deletions, draft, fork, head, labels, number, state, title, user)`,
		`policies/reads.rego:20:2: input.reviews is a list: input.reviews[_].approved, not input.reviews.approved`,
		`policies/reads.rego:24:2: input.files is a list: input.files[_].filename, not input.files.filename`,
	}
	if len(got) != len(want) {
		t.Fatalf("warnings:\n%q\nwant\n%q", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("warning %d:\n%s\nwant\n%s", i, got[i], want[i])
		}
	}
}
