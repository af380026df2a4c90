package ghfacts

import (
	"context"
	"net/http"
	"strings"

	"github.com/google/go-github/v66/github"

	"github.com/gitpoli/gitpoli/workbench"
)

// GoGitHubFacts is ghfacts as it was before it decoded only what it
// reads: go-github's typed methods, types and getters throughout. The
// tests hold Client to it: FuzzDecodeAsGoGitHub response by response,
// TestGatherAsGoGitHubDecodes (gather_test.go) fixture by fixture.
type GoGitHubFacts struct{ c *Client }

// NewGoGitHubFacts is New for GoGitHubFacts.
func NewGoGitHubFacts(httpClient *http.Client, apiURL string) (workbench.Facts, error) {
	c, err := New(httpClient, apiURL)
	return GoGitHubFacts{c}, err
}

func (g GoGitHubFacts) PullRequest(ctx context.Context, pr workbench.PR) (workbench.PullRequestInfo, error) {
	p, _, err := g.c.gh.PullRequests.Get(ctx, pr.Repo.Owner, pr.Repo.Name, pr.Number)
	if err != nil {
		return workbench.PullRequestInfo{}, apiError(err)
	}
	return goGitHubPullRequest(p, pr), nil
}

func (g GoGitHubFacts) Reviews(ctx context.Context, pr workbench.PR) ([]workbench.Review, error) {
	var out []workbench.Review
	err := paginate(func(page int) (*github.Response, error) {
		rs, resp, err := g.c.gh.PullRequests.ListReviews(ctx, pr.Repo.Owner, pr.Repo.Name, pr.Number, &github.ListOptions{Page: page, PerPage: perPage})
		out = append(out, goGitHubReviews(rs)...)
		return resp, err
	})
	return out, err
}

func (g GoGitHubFacts) Commits(ctx context.Context, pr workbench.PR) ([]workbench.Commit, error) {
	var out []workbench.Commit
	err := paginate(func(page int) (*github.Response, error) {
		cs, resp, err := g.c.gh.PullRequests.ListCommits(ctx, pr.Repo.Owner, pr.Repo.Name, pr.Number, &github.ListOptions{Page: page, PerPage: perPage})
		out = append(out, goGitHubCommits(cs)...)
		return resp, err
	})
	return out, err
}

func (g GoGitHubFacts) Commit(ctx context.Context, repo workbench.Repo, sha string) (workbench.Commit, error) {
	rc, _, err := g.c.gh.Repositories.GetCommit(ctx, repo.Owner, repo.Name, sha, nil)
	if err != nil {
		return workbench.Commit{}, apiError(err)
	}
	return goGitHubCommits([]*github.RepositoryCommit{rc})[0], nil
}

func (g GoGitHubFacts) Checks(ctx context.Context, repo workbench.Repo, sha string) ([]workbench.CheckRun, error) {
	var out []workbench.CheckRun
	err := paginate(func(page int) (*github.Response, error) {
		res, resp, err := g.c.gh.Checks.ListCheckRunsForRef(ctx, repo.Owner, repo.Name, sha, &github.ListCheckRunsOptions{
			Filter: github.String("latest"), ListOptions: github.ListOptions{Page: page, PerPage: perPage}})
		out = append(out, goGitHubCheckRuns(res)...)
		return resp, err
	})
	if err != nil {
		return nil, err
	}
	err = paginate(func(page int) (*github.Response, error) {
		st, resp, err := g.c.gh.Repositories.GetCombinedStatus(ctx, repo.Owner, repo.Name, sha, &github.ListOptions{Page: page, PerPage: perPage})
		out = append(out, goGitHubStatuses(st)...)
		return resp, err
	})
	return out, err
}

// The facts Client reads with go-github's own methods and types already.
func (g GoGitHubFacts) Files(ctx context.Context, pr workbench.PR) ([]workbench.File, error) {
	return g.c.Files(ctx, pr)
}
func (g GoGitHubFacts) TeamMembers(ctx context.Context, t workbench.Team) ([]string, error) {
	return g.c.TeamMembers(ctx, t)
}
func (g GoGitHubFacts) CodeownersFile(ctx context.Context, repo workbench.Repo, ref string) (workbench.Codeowners, error) {
	return g.c.CodeownersFile(ctx, repo, ref)
}
func (g GoGitHubFacts) PullRequestsOf(ctx context.Context, repo workbench.Repo, sha string) ([]workbench.PullRequestInfo, error) {
	return g.c.PullRequestsOf(ctx, repo, sha)
}

func (g GoGitHubFacts) Environments(ctx context.Context, repo workbench.Repo) ([]string, error) {
	out := []string{}
	err := paginate(func(page int) (*github.Response, error) {
		res, resp, err := g.c.gh.Repositories.ListEnvironments(ctx, repo.Owner, repo.Name, &github.EnvironmentListOptions{
			ListOptions: github.ListOptions{Page: page, PerPage: perPage}})
		out = append(out, goGitHubEnvironments(res)...)
		return resp, err
	})
	return out, err
}

// ConfigFile was and is go-github's GetContents.
func (g GoGitHubFacts) ConfigFile(ctx context.Context, repo workbench.Repo, ref, name string) ([]byte, error) {
	return g.c.ConfigFile(ctx, repo, ref, name)
}

// What each response gave through go-github's getters.

func goGitHubPullRequest(p *github.PullRequest, pr workbench.PR) workbench.PullRequestInfo {
	return pullRequestInfo(p, pr)
}

func goGitHubReviews(rs []*github.PullRequestReview) []workbench.Review {
	var out []workbench.Review
	for _, r := range rs {
		out = append(out, workbench.Review{User: r.GetUser().GetLogin(), State: strings.ToUpper(r.GetState()),
			SubmittedAt: r.GetSubmittedAt().Time, CommitID: r.GetCommitID()})
	}
	return out
}

func goGitHubCommits(cs []*github.RepositoryCommit) []workbench.Commit {
	var out []workbench.Commit
	for _, c := range cs {
		commit := workbench.Commit{SHA: c.GetSHA(), Message: c.GetCommit().GetMessage(), Verified: c.GetCommit().GetVerification().GetVerified()}
		commit.Author = workbench.Person{Login: c.GetAuthor().GetLogin(), Name: c.GetCommit().GetAuthor().GetName(),
			Email: c.GetCommit().GetAuthor().GetEmail(), Date: c.GetCommit().GetAuthor().GetDate().Time}
		commit.Committer = workbench.Person{Login: c.GetCommitter().GetLogin(), Name: c.GetCommit().GetCommitter().GetName(),
			Email: c.GetCommit().GetCommitter().GetEmail(), Date: c.GetCommit().GetCommitter().GetDate().Time}
		out = append(out, commit)
	}
	return out
}

func goGitHubCheckRuns(res *github.ListCheckRunsResults) []workbench.CheckRun {
	var out []workbench.CheckRun
	if res != nil {
		for _, cr := range res.CheckRuns {
			out = append(out, workbench.CheckRun{Name: cr.GetName(), Status: cr.GetStatus(), Conclusion: cr.GetConclusion(), Type: "check_run"})
		}
	}
	return out
}

func goGitHubStatuses(st *github.CombinedStatus) []workbench.CheckRun {
	var out []workbench.CheckRun
	if st != nil {
		for _, s := range st.Statuses {
			check := workbench.CheckRun{Name: s.GetContext(), Status: "completed", Conclusion: s.GetState(), Type: "status"}
			if s.GetState() == "pending" {
				check.Status, check.Conclusion = "in_progress", ""
			}
			out = append(out, check)
		}
	}
	return out
}

func goGitHubEnvironments(res *github.EnvResponse) []string {
	var out []string
	if res != nil {
		for _, e := range res.Environments {
			out = append(out, e.GetName())
		}
	}
	return out
}
