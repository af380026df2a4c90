// Package ghfacts implements workbench.Facts on the GitHub REST API with
// go-github. Replay runs this same code over recorded responses (see
// workbench/fixture), so what is replayed is what the server runs.
package ghfacts

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/google/go-github/v66/github"

	"github.com/gitpoli/gitpoli/workbench"
)

// DefaultAPIURL is GitHub.com's REST API.
const DefaultAPIURL = "https://api.github.com/"

// Client reads facts from one GitHub API.
type Client struct {
	gh *github.Client
}

var _ workbench.Facts = (*Client)(nil)

// New returns a client for the API at apiURL (DefaultAPIURL when empty;
// GitHub Enterprise's is https://HOST/api/v3) over httpClient, which
// carries the authentication.
func New(httpClient *http.Client, apiURL string) (*Client, error) {
	if httpClient == nil {
		return nil, errors.New("ghfacts: no http client")
	}
	if apiURL == "" {
		apiURL = DefaultAPIURL
	}
	if !strings.HasSuffix(apiURL, "/") {
		apiURL += "/"
	}
	base, err := url.Parse(apiURL)
	if err != nil || (base.Scheme != "https" && base.Scheme != "http") || base.Host == "" {
		return nil, fmt.Errorf("GitHub API URL %q is not an http(s) URL", apiURL)
	}
	gh := github.NewClient(httpClient)
	gh.BaseURL = base
	return &Client{gh: gh}, nil
}

// BearerTransport authenticates every request with a token (a personal
// or Actions token). It goes only where the ghfacts client sends it: the
// API URL it was built with.
type BearerTransport struct {
	Token string
	Next  http.RoundTripper // http.DefaultTransport when nil
}

// RoundTrip implements http.RoundTripper.
func (t *BearerTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	req = req.Clone(req.Context())
	req.Header.Set("Authorization", "Bearer "+t.Token)
	req.Header.Set("X-GitHub-Api-Version", "2022-11-28")
	next := t.Next
	if next == nil {
		next = http.DefaultTransport
	}
	return next.RoundTrip(req)
}

// perPage is the largest page GitHub serves.
const perPage = 100

// apiError turns a go-github error into one that says what went wrong in
// a user's terms, wrapping workbench.ErrNotFound or
// workbench.ErrFactUnavailable.
func apiError(err error) error {
	var rl *github.RateLimitError
	var abuse *github.AbuseRateLimitError
	var er *github.ErrorResponse
	switch {
	case errors.As(err, &rl):
		return fmt.Errorf("%w: GitHub API rate limit exceeded (resets at %s)", workbench.ErrFactUnavailable, rl.Rate.Reset.Time.UTC().Format(time.RFC3339))
	case errors.As(err, &abuse):
		retry := ""
		if abuse.RetryAfter != nil {
			retry = fmt.Sprintf(", retry after %s", abuse.RetryAfter.Round(time.Second))
		}
		return fmt.Errorf("%w: GitHub API secondary rate limit%s", workbench.ErrFactUnavailable, retry)
	case errors.As(err, &er) && er.Response != nil:
		switch er.Response.StatusCode {
		case http.StatusNotFound:
			return fmt.Errorf("%w: %s %s: 404 not found", workbench.ErrNotFound, er.Response.Request.Method, er.Response.Request.URL.Path)
		case http.StatusUnauthorized:
			return fmt.Errorf("%w: GitHub API: 401 bad credentials (check the token)", workbench.ErrFactUnavailable)
		case http.StatusForbidden:
			return fmt.Errorf("%w: GitHub API: 403 forbidden: %s", workbench.ErrFactUnavailable, er.Message)
		}
		return fmt.Errorf("%w: GitHub API: %d %s", workbench.ErrFactUnavailable, er.Response.StatusCode, er.Message)
	}
	return fmt.Errorf("%w: %w", workbench.ErrFactUnavailable, err)
}

// paginate calls fetch for each page until the last.
func paginate(fetch func(page int) (*github.Response, error)) error {
	page := 1
	for {
		resp, err := fetch(page)
		if err != nil {
			return apiError(err)
		}
		if resp.NextPage == 0 {
			return nil
		}
		page = resp.NextPage
	}
}

// PullRequest fetches a pull request.
func (c *Client) PullRequest(ctx context.Context, pr workbench.PR) (workbench.PullRequestInfo, error) {
	p, _, err := c.gh.PullRequests.Get(ctx, pr.Repo.Owner, pr.Repo.Name, pr.Number)
	if err != nil {
		return workbench.PullRequestInfo{}, apiError(err)
	}
	return workbench.PullRequestInfo{
		PR:        pr,
		Author:    p.GetUser().GetLogin(),
		HeadRef:   p.GetHead().GetRef(),
		HeadLabel: p.GetHead().GetLabel(),
		HeadRepo:  p.GetHead().GetRepo().GetFullName(),
		HeadSHA:   p.GetHead().GetSHA(),
		BaseRef:   p.GetBase().GetRef(),
		State:     p.GetState(),
	}, nil
}

// Reviews lists every review of a pull request, oldest first.
func (c *Client) Reviews(ctx context.Context, pr workbench.PR) ([]workbench.Review, error) {
	var out []workbench.Review
	err := paginate(func(page int) (*github.Response, error) {
		rs, resp, err := c.gh.PullRequests.ListReviews(ctx, pr.Repo.Owner, pr.Repo.Name, pr.Number, &github.ListOptions{Page: page, PerPage: perPage})
		for _, r := range rs {
			out = append(out, workbench.Review{
				User:        r.GetUser().GetLogin(),
				State:       strings.ToUpper(r.GetState()),
				SubmittedAt: r.GetSubmittedAt().Time,
				CommitID:    r.GetCommitID(),
			})
		}
		return resp, err
	})
	return out, err
}

// Commits lists the commits of a pull request (GitHub serves at most 250).
func (c *Client) Commits(ctx context.Context, pr workbench.PR) ([]workbench.Commit, error) {
	var out []workbench.Commit
	err := paginate(func(page int) (*github.Response, error) {
		cs, resp, err := c.gh.PullRequests.ListCommits(ctx, pr.Repo.Owner, pr.Repo.Name, pr.Number, &github.ListOptions{Page: page, PerPage: perPage})
		for _, rc := range cs {
			out = append(out, workbench.Commit{SHA: rc.GetSHA(), Message: rc.GetCommit().GetMessage()})
		}
		return resp, err
	})
	return out, err
}

// Commit fetches one commit.
func (c *Client) Commit(ctx context.Context, repo workbench.Repo, sha string) (workbench.Commit, error) {
	rc, _, err := c.gh.Repositories.GetCommit(ctx, repo.Owner, repo.Name, sha, nil)
	if err != nil {
		return workbench.Commit{}, apiError(err)
	}
	return workbench.Commit{SHA: rc.GetSHA(), Message: rc.GetCommit().GetMessage()}, nil
}

// Checks lists the latest check runs and the commit statuses of a commit;
// a status counts as a completed check unless it is pending.
func (c *Client) Checks(ctx context.Context, repo workbench.Repo, sha string) ([]workbench.CheckRun, error) {
	var out []workbench.CheckRun
	err := paginate(func(page int) (*github.Response, error) {
		res, resp, err := c.gh.Checks.ListCheckRunsForRef(ctx, repo.Owner, repo.Name, sha, &github.ListCheckRunsOptions{
			Filter:      github.String("latest"),
			ListOptions: github.ListOptions{Page: page, PerPage: perPage},
		})
		if res != nil {
			for _, cr := range res.CheckRuns {
				out = append(out, workbench.CheckRun{Name: cr.GetName(), Status: cr.GetStatus(), Conclusion: cr.GetConclusion()})
			}
		}
		return resp, err
	})
	if err != nil {
		return nil, err
	}
	err = paginate(func(page int) (*github.Response, error) {
		st, resp, err := c.gh.Repositories.GetCombinedStatus(ctx, repo.Owner, repo.Name, sha, &github.ListOptions{Page: page, PerPage: perPage})
		if st != nil {
			for _, s := range st.Statuses {
				check := workbench.CheckRun{Name: s.GetContext(), Status: "completed", Conclusion: s.GetState()}
				if s.GetState() == "pending" {
					check.Status, check.Conclusion = "in_progress", ""
				}
				out = append(out, check)
			}
		}
		return resp, err
	})
	return out, err
}

// Environments lists the names of a repository's deployment environments.
func (c *Client) Environments(ctx context.Context, repo workbench.Repo) ([]string, error) {
	out := []string{}
	err := paginate(func(page int) (*github.Response, error) {
		res, resp, err := c.gh.Repositories.ListEnvironments(ctx, repo.Owner, repo.Name, &github.EnvironmentListOptions{
			ListOptions: github.ListOptions{Page: page, PerPage: perPage},
		})
		if res != nil {
			for _, e := range res.Environments {
				out = append(out, e.GetName())
			}
		}
		return resp, err
	})
	return out, err
}

// ConfigFile reads .repol/<name> from the repository at ref.
func (c *Client) ConfigFile(ctx context.Context, repo workbench.Repo, ref, name string) ([]byte, error) {
	file, _, _, err := c.gh.Repositories.GetContents(ctx, repo.Owner, repo.Name, ".repol/"+name, &github.RepositoryContentGetOptions{Ref: ref})
	if err != nil {
		return nil, apiError(err)
	}
	if file == nil {
		return nil, fmt.Errorf("%w: .repol/%s is a directory", workbench.ErrFactUnavailable, name)
	}
	content, err := file.GetContent()
	if err != nil {
		return nil, fmt.Errorf("%w: decode .repol/%s: %w", workbench.ErrFactUnavailable, name, err)
	}
	return []byte(content), nil
}
