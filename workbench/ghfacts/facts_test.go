package ghfacts

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gitpoli/gitpoli/workbench"
)

// TestFactsFromRecordedResponses reads each fact a policy can ask for
// from real GitHub responses (testdata/SOURCES.md): a pull request's
// files, its commits with their authors and signatures, a team's members,
// the CODEOWNERS file where GitHub looks for it, and the pull requests of
// a commit.
func TestFactsFromRecordedResponses(t *testing.T) {
	codeowners, err := os.ReadFile("testdata/codeowners.nodejs-node.txt")
	if err != nil {
		t.Fatal(err)
	}
	content, _ := json.Marshal(map[string]any{"type": "file", "encoding": "base64", "path": "CODEOWNERS",
		"content": base64.StdEncoding.EncodeToString(codeowners)})
	pull, err := os.ReadFile("testdata/pulls-get.owners-bot-pr35.json")
	if err != nil {
		t.Fatal(err)
	}
	sha := "9272f18514cbd3fa935b3ced62ae1c2bf6efa76d"
	f := newFake(t, "", map[string]stub{
		"GET /repos/erwinmombay/github-owners-bot-test-repo/pulls/35/files" + q1:                   {status: 200, body: "@pulls-list-files.owners-bot-pr35.json"},
		"GET /repos/erwinmombay/github-owners-bot-test-repo/pulls/35/commits" + q1:                 {status: 200, body: "@pulls-list-commits.hub4j-pr473.json"},
		"GET /orgs/hub4j-test-org/teams/dummy-team/members" + q1:                                   {status: 200, body: "@teams-list-members-in-org.hub4j.json"},
		"GET /orgs/acme/teams/secret/members" + q1:                                                 {status: 403, body: `{"message":"Resource not accessible by integration"}`},
		"GET /repos/erwinmombay/github-owners-bot-test-repo/contents/.github/CODEOWNERS?ref=main":  {status: 404, body: `{"message":"Not Found"}`},
		"GET /repos/erwinmombay/github-owners-bot-test-repo/contents/CODEOWNERS?ref=main":          {status: 200, body: string(content)},
		"GET /repos/erwinmombay/github-owners-bot-test-repo/commits/" + sha + "/pulls" + q1:        {status: 200, body: "[" + string(pull) + "]"},
		"GET /repos/erwinmombay/github-owners-bot-test-repo/contents/.github/CODEOWNERS?ref=other": {status: 404, body: `{"message":"Not Found"}`},
		"GET /repos/erwinmombay/github-owners-bot-test-repo/contents/CODEOWNERS?ref=other":         {status: 404, body: `{"message":"Not Found"}`},
		"GET /repos/erwinmombay/github-owners-bot-test-repo/contents/docs/CODEOWNERS?ref=other":    {status: 404, body: `{"message":"Not Found"}`},
	})
	c := f.client(t, "")

	files, err := c.Files(ctx, pr35)
	if err != nil || len(files) != 1 || files[0] != (workbench.File{Filename: "dir2/dir1/dir1/file.txt", Status: "modified", Additions: 1, Changes: 1}) {
		t.Errorf("files %+v, %v", files, err)
	}

	commits, err := c.Commits(ctx, pr35)
	if err != nil || len(commits) != 3 {
		t.Fatalf("commits %+v, %v", commits, err)
	}
	first, second := commits[0], commits[1]
	if first.Verified || !second.Verified || first.Author.Login != "bitwiseman" || second.Author.Login != "farmdawgnation" ||
		first.Author.Email != "bitwiseman@gmail.com" || !first.Author.Date.Equal(time.Date(2019, 9, 6, 23, 38, 37, 0, time.UTC)) || second.Committer.Login != "web-flow" {
		t.Errorf("commits %+v", commits)
	}

	members, err := c.TeamMembers(ctx, workbench.Team{Org: "hub4j-test-org", Slug: "dummy-team"})
	if err != nil || !slices.Equal(members, []string{"gsmet", "bitwiseman"}) {
		t.Errorf("members %v, %v", members, err)
	}
	if _, err := c.TeamMembers(ctx, workbench.Team{Org: "acme", Slug: "secret"}); !errors.Is(err, workbench.ErrFactUnavailable) || !strings.Contains(err.Error(), "403") {
		t.Errorf("a team the App may not read: %v", err)
	}

	owners, err := c.CodeownersFile(ctx, repo, "main")
	if err != nil || owners.Path != "CODEOWNERS" || string(owners.Data) != string(codeowners) {
		t.Errorf("CODEOWNERS %q, %v", owners.Path, err)
	}
	if _, err := c.CodeownersFile(ctx, repo, "other"); !errors.Is(err, workbench.ErrNotFound) {
		t.Errorf("a branch without CODEOWNERS: %v", err)
	}

	prs, err := c.PullRequestsOf(ctx, repo, sha)
	if err != nil || len(prs) != 1 || prs[0].Number != 35 || prs[0].HeadSHA != sha || prs[0].Title == "" {
		t.Errorf("pull requests of %s: %+v, %v", sha, prs, err)
	}
	if _, err := c.PullRequestsOf(ctx, repo, "../../app"); err == nil {
		t.Error("a sha that is not one went into a path")
	}
	f.verify()
}
