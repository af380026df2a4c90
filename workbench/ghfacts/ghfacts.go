// Package ghfacts implements workbench.Facts on the GitHub REST API with
// go-github. Replay runs this same code over recorded responses (see
// workbench/fixture), so what is replayed is what the server runs.
//
// The facts every starter policy reads (the pull request, reviews,
// commits, checks, environments) are decoded field by field into small
// types of go-github's field types: replaying the fixture corpus cold
// takes 10.8 ms that way and 16.0 ms (+48%) through go-github's own
// types and methods (BenchmarkReplayCorpusCold, workbench/fixture, eight
// runs each, benchstat). The facts added since (files, teams, CODEOWNERS,
// a commit's pull requests) use go-github's own: no figure is at stake.
package ghfacts

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-github/v66/github"

	"github.com/gitpoli/gitpoli/workbench"
	"github.com/gitpoli/gitpoli/workbench/jsontext"
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
// carries the authentication. With a cache, requests are conditional on
// what it holds (see Cache).
func New(httpClient *http.Client, apiURL string, cache ...*Cache) (*Client, error) {
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
	counted := *httpClient
	counted.Transport = countingTransport{next: httpClient.Transport}
	if len(cache) > 0 && cache[0] != nil {
		counted.Transport = cache[0].transport(counted.Transport)
	}
	gh := github.NewClient(&counted)
	gh.BaseURL = base
	return &Client{gh: gh}, nil
}

// countingTransport counts each response GitHub gives for the decision
// whose facts are being gathered (workbench.CountRequest).
type countingTransport struct{ next http.RoundTripper }

func (t countingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	next := t.next
	if next == nil {
		next = http.DefaultTransport
	}
	resp, err := next.RoundTrip(req)
	if err == nil {
		workbench.CountRequest(req.Context(), resp.StatusCode)
	}
	return resp, err
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

// get fetches path (relative to the API URL) with go-github, which sends
// the request and turns GitHub's errors, rate limits and pagination into
// its own, and decodes into v only the members of the body that v's type
// names. Each type below is what gitpoli reads of one response, the
// fields and types of go-github's own (a pointer where go-github has
// one); go-github's types decode everything, and a pull request's commit
// list is ~4 KB a commit of which gitpoli reads the SHA and the message.
// jsontext.Trim cuts the rest before encoding/json scans it. The body
// must be one JSON value: go-github's decoder also took an empty body (as
// nothing) or text after the value, which now leave the fact unavailable.
func (c *Client) get(ctx context.Context, path string, query url.Values, v any) (*github.Response, error) {
	if len(query) > 0 {
		path += "?" + query.Encode()
	}
	req, err := c.gh.NewRequest(http.MethodGet, path, nil)
	if err != nil {
		return nil, err
	}
	var body bytes.Buffer
	resp, err := c.gh.Do(ctx, req, &body)
	if err != nil {
		return resp, err
	}
	if err := decode(body.Bytes(), v); err != nil {
		return resp, fmt.Errorf("decode %s: %w", req.URL.Path, err)
	}
	return resp, nil
}

// decode unmarshals into v, a pointer to one of the types below, the
// members of data its type reads.
func decode(data []byte, v any) error {
	if trimmed, ok := jsontext.Trim(data, reflect.TypeOf(v).Elem()); ok {
		data = trimmed
	}
	return json.Unmarshal(data, v)
}

// refPath escapes each segment of a ref for a URL path, as go-github does.
func refPath(ref string) string {
	parts := strings.Split(ref, "/")
	for i, p := range parts {
		parts[i] = url.PathEscape(p)
	}
	return strings.Join(parts, "/")
}

// pageQuery asks for one page of a list, the largest GitHub serves.
func pageQuery(page int) url.Values {
	return url.Values{"page": {strconv.Itoa(page)}, "per_page": {strconv.Itoa(perPage)}}
}

// Each field is a pointer where go-github's is, as all of these are: a
// JSON null then resets it, where it would leave a string or a struct as
// an earlier duplicate key set it.
type (
	apiUser struct {
		Login *string `json:"login"`
	}
	apiRepo struct {
		FullName *string `json:"full_name"`
	}
	apiBranch struct {
		Label *string  `json:"label"`
		Ref   *string  `json:"ref"`
		SHA   *string  `json:"sha"`
		Repo  *apiRepo `json:"repo"`
	}
	apiLabel struct {
		Name *string `json:"name"`
	}
	apiPullRequest struct {
		State             *string     `json:"state"`
		Title             *string     `json:"title"`
		Body              *string     `json:"body"`
		Draft             *bool       `json:"draft"`
		Labels            []*apiLabel `json:"labels"`
		AuthorAssociation *string     `json:"author_association"`
		Additions         *int        `json:"additions"`
		Deletions         *int        `json:"deletions"`
		ChangedFiles      *int        `json:"changed_files"`
		Commits           *int        `json:"commits"`
		User              *apiUser    `json:"user"`
		Head              *apiBranch  `json:"head"`
		Base              *apiBranch  `json:"base"`
	}
	apiReview struct {
		User        *apiUser          `json:"user"`
		State       *string           `json:"state"`
		SubmittedAt *github.Timestamp `json:"submitted_at"`
		CommitID    *string           `json:"commit_id"`
	}
	apiCommitPerson struct {
		Name  *string           `json:"name"`
		Email *string           `json:"email"`
		Date  *github.Timestamp `json:"date"`
	}
	apiVerification struct {
		Verified *bool `json:"verified"`
	}
	apiCommitDetail struct {
		Message      *string          `json:"message"`
		Author       *apiCommitPerson `json:"author"`
		Committer    *apiCommitPerson `json:"committer"`
		Verification *apiVerification `json:"verification"`
	}
	apiCommit struct {
		SHA       *string          `json:"sha"`
		Commit    *apiCommitDetail `json:"commit"`
		Author    *apiUser         `json:"author"`
		Committer *apiUser         `json:"committer"`
	}
	apiCheckRun struct {
		Name       *string `json:"name"`
		Status     *string `json:"status"`
		Conclusion *string `json:"conclusion"`
	}
	apiCheckRuns struct {
		CheckRuns []*apiCheckRun `json:"check_runs"`
	}
	apiStatus struct {
		State   *string `json:"state"`
		Context *string `json:"context"`
	}
	apiCombinedStatus struct {
		Statuses []*apiStatus `json:"statuses"`
	}
	apiEnvironment struct {
		Name *string `json:"name"`
	}
	apiEnvironments struct {
		Environments []*apiEnvironment `json:"environments"`
	}
)

// str is the text p points to, or "" as go-github's getters give.
func str(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

func (u *apiUser) login() string {
	if u == nil {
		return ""
	}
	return str(u.Login)
}

func (b *apiBranch) get() (label, ref, sha, repo string) {
	if b == nil {
		return "", "", "", ""
	}
	if b.Repo != nil {
		repo = str(b.Repo.FullName)
	}
	return str(b.Label), str(b.Ref), str(b.SHA), repo
}

// PullRequest fetches a pull request.
func (c *Client) PullRequest(ctx context.Context, pr workbench.PR) (workbench.PullRequestInfo, error) {
	var p apiPullRequest
	if _, err := c.get(ctx, fmt.Sprintf("repos/%v/%v/pulls/%d", pr.Repo.Owner, pr.Repo.Name, pr.Number), nil, &p); err != nil {
		return workbench.PullRequestInfo{}, apiError(err)
	}
	return p.info(pr), nil
}

func (p *apiPullRequest) info(pr workbench.PR) workbench.PullRequestInfo {
	if p == nil {
		return workbench.PullRequestInfo{PR: pr}
	}
	headLabel, headRef, headSHA, headRepo := p.Head.get()
	_, baseRef, baseSHA, _ := p.Base.get()
	labels := []string{}
	for _, l := range p.Labels {
		if l != nil {
			labels = append(labels, str(l.Name))
		}
	}
	return workbench.PullRequestInfo{
		PR:                pr,
		Author:            p.User.login(),
		AuthorAssociation: str(p.AuthorAssociation),
		Title:             str(p.Title),
		Body:              str(p.Body),
		Draft:             p.Draft != nil && *p.Draft,
		Labels:            labels,
		HeadRef:           headRef,
		HeadLabel:         headLabel,
		HeadRepo:          headRepo,
		HeadSHA:           headSHA,
		BaseRef:           baseRef,
		BaseSHA:           baseSHA,
		State:             str(p.State),
		Additions:         p.Additions,
		Deletions:         p.Deletions,
		ChangedFiles:      p.ChangedFiles,
		Commits:           p.Commits,
	}
}

// Reviews lists every review of a pull request, oldest first.
func (c *Client) Reviews(ctx context.Context, pr workbench.PR) ([]workbench.Review, error) {
	var out []workbench.Review
	err := paginate(func(page int) (*github.Response, error) {
		var rs []*apiReview
		resp, err := c.get(ctx, fmt.Sprintf("repos/%v/%v/pulls/%d/reviews", pr.Repo.Owner, pr.Repo.Name, pr.Number), pageQuery(page), &rs)
		for _, r := range rs {
			out = append(out, r.review())
		}
		return resp, err
	})
	return out, err
}

func (r *apiReview) review() workbench.Review {
	if r == nil {
		return workbench.Review{}
	}
	review := workbench.Review{User: r.User.login(), State: strings.ToUpper(str(r.State)), CommitID: str(r.CommitID)}
	if r.SubmittedAt != nil {
		review.SubmittedAt = r.SubmittedAt.Time
	}
	return review
}

// Commits lists the commits of a pull request (GitHub serves at most 250).
func (c *Client) Commits(ctx context.Context, pr workbench.PR) ([]workbench.Commit, error) {
	var out []workbench.Commit
	err := paginate(func(page int) (*github.Response, error) {
		var cs []*apiCommit
		resp, err := c.get(ctx, fmt.Sprintf("repos/%v/%v/pulls/%d/commits", pr.Repo.Owner, pr.Repo.Name, pr.Number), pageQuery(page), &cs)
		for _, rc := range cs {
			out = append(out, rc.commit())
		}
		return resp, err
	})
	return out, err
}

// Commit fetches one commit.
func (c *Client) Commit(ctx context.Context, repo workbench.Repo, sha string) (workbench.Commit, error) {
	var rc apiCommit
	if _, err := c.get(ctx, fmt.Sprintf("repos/%v/%v/commits/%v", repo.Owner, repo.Name, sha), nil, &rc); err != nil {
		return workbench.Commit{}, apiError(err)
	}
	return rc.commit(), nil
}

func (c *apiCommit) commit() workbench.Commit {
	if c == nil {
		return workbench.Commit{}
	}
	out := workbench.Commit{SHA: str(c.SHA)}
	out.Author.Login, out.Committer.Login = c.Author.login(), c.Committer.login()
	if d := c.Commit; d != nil {
		out.Message = str(d.Message)
		d.Author.into(&out.Author)
		d.Committer.into(&out.Committer)
		if d.Verification != nil && d.Verification.Verified != nil {
			out.Verified = *d.Verification.Verified
		}
	}
	return out
}

func (p *apiCommitPerson) into(out *workbench.Person) {
	if p == nil {
		return
	}
	out.Name, out.Email = str(p.Name), str(p.Email)
	if p.Date != nil {
		out.Date = p.Date.Time
	}
}

// Checks lists the latest check runs and the commit statuses of a commit;
// a status counts as a completed check unless it is pending.
func (c *Client) Checks(ctx context.Context, repo workbench.Repo, sha string) ([]workbench.CheckRun, error) {
	var out []workbench.CheckRun
	err := paginate(func(page int) (*github.Response, error) {
		q := pageQuery(page)
		q.Set("filter", "latest")
		var res apiCheckRuns
		resp, err := c.get(ctx, fmt.Sprintf("repos/%v/%v/commits/%v/check-runs", repo.Owner, repo.Name, refPath(sha)), q, &res)
		out = append(out, res.checks()...)
		return resp, err
	})
	if err != nil {
		return nil, err
	}
	err = paginate(func(page int) (*github.Response, error) {
		var st apiCombinedStatus
		resp, err := c.get(ctx, fmt.Sprintf("repos/%v/%v/commits/%v/status", repo.Owner, repo.Name, refPath(sha)), pageQuery(page), &st)
		out = append(out, st.checks()...)
		return resp, err
	})
	return out, err
}

func (res apiCheckRuns) checks() []workbench.CheckRun {
	var out []workbench.CheckRun
	for _, cr := range res.CheckRuns {
		if cr == nil {
			cr = &apiCheckRun{}
		}
		out = append(out, workbench.CheckRun{Name: str(cr.Name), Status: str(cr.Status), Conclusion: str(cr.Conclusion), Type: "check_run"})
	}
	return out
}

func (st apiCombinedStatus) checks() []workbench.CheckRun {
	var out []workbench.CheckRun
	for _, s := range st.Statuses {
		if s == nil {
			s = &apiStatus{}
		}
		check := workbench.CheckRun{Name: str(s.Context), Status: "completed", Conclusion: str(s.State), Type: "status"}
		if str(s.State) == "pending" {
			check.Status, check.Conclusion = "in_progress", ""
		}
		out = append(out, check)
	}
	return out
}

// Environments lists the names of a repository's deployment environments.
func (c *Client) Environments(ctx context.Context, repo workbench.Repo) ([]string, error) {
	out := []string{}
	err := paginate(func(page int) (*github.Response, error) {
		var res apiEnvironments
		resp, err := c.get(ctx, fmt.Sprintf("repos/%v/%v/environments", repo.Owner, repo.Name), pageQuery(page), &res)
		out = append(out, res.names()...)
		return resp, err
	})
	return out, err
}

func (res apiEnvironments) names() []string {
	var out []string
	for _, e := range res.Environments {
		if e == nil {
			e = &apiEnvironment{}
		}
		out = append(out, str(e.Name))
	}
	return out
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

// Files lists the files a pull request changes: GitHub lists at most
// workbench.MaxListedFiles, 100 a page.
func (c *Client) Files(ctx context.Context, pr workbench.PR) ([]workbench.File, error) {
	var out []workbench.File
	err := paginate(func(page int) (*github.Response, error) {
		files, resp, err := c.gh.PullRequests.ListFiles(ctx, pr.Repo.Owner, pr.Repo.Name, pr.Number, &github.ListOptions{Page: page, PerPage: perPage})
		for _, f := range files {
			out = append(out, workbench.File{Filename: f.GetFilename(), Status: f.GetStatus(), PreviousFilename: f.GetPreviousFilename(),
				Additions: f.GetAdditions(), Deletions: f.GetDeletions(), Changes: f.GetChanges()})
		}
		return resp, err
	})
	return out, err
}

// TeamMembers lists a team's members (child teams' included, as GitHub
// lists them). Reading them needs the App's members: read permission.
func (c *Client) TeamMembers(ctx context.Context, team workbench.Team) ([]string, error) {
	if _, err := workbench.ParseTeam(team.String()); err != nil {
		return nil, fmt.Errorf("%w: %w", workbench.ErrFactUnavailable, err)
	}
	out := []string{}
	err := paginate(func(page int) (*github.Response, error) {
		users, resp, err := c.gh.Teams.ListTeamMembersBySlug(ctx, team.Org, team.Slug,
			&github.TeamListTeamMembersOptions{ListOptions: github.ListOptions{Page: page, PerPage: perPage}})
		for _, u := range users {
			out = append(out, u.GetLogin())
		}
		return resp, err
	})
	return out, err
}

// codeownersPaths are where GitHub looks for CODEOWNERS, in its order: the
// first found is used.
var codeownersPaths = []string{".github/CODEOWNERS", "CODEOWNERS", "docs/CODEOWNERS"}

// CodeownersFile reads the CODEOWNERS file GitHub uses on ref.
func (c *Client) CodeownersFile(ctx context.Context, repo workbench.Repo, ref string) (workbench.Codeowners, error) {
	for _, path := range codeownersPaths {
		file, _, _, err := c.gh.Repositories.GetContents(ctx, repo.Owner, repo.Name, path, &github.RepositoryContentGetOptions{Ref: ref})
		if err != nil {
			if err = apiError(err); errors.Is(err, workbench.ErrNotFound) {
				continue
			}
			return workbench.Codeowners{}, err
		}
		if file == nil {
			continue // a directory
		}
		content, err := file.GetContent()
		if err != nil {
			return workbench.Codeowners{}, fmt.Errorf("%w: decode %s: %w", workbench.ErrFactUnavailable, path, err)
		}
		return workbench.Codeowners{Path: path, Data: []byte(content)}, nil
	}
	return workbench.Codeowners{}, fmt.Errorf("%w: no CODEOWNERS file on %s", workbench.ErrNotFound, ref)
}

// PullRequestsOf lists the pull requests that contain a commit.
func (c *Client) PullRequestsOf(ctx context.Context, repo workbench.Repo, sha string) ([]workbench.PullRequestInfo, error) {
	if !workbench.ValidSHA(sha) {
		return nil, fmt.Errorf("%w: %q is not a commit SHA", workbench.ErrFactUnavailable, sha)
	}
	var out []workbench.PullRequestInfo
	err := paginate(func(page int) (*github.Response, error) {
		prs, resp, err := c.gh.PullRequests.ListPullRequestsWithCommit(ctx, repo.Owner, repo.Name, sha, &github.ListOptions{Page: page, PerPage: perPage})
		for _, p := range prs {
			out = append(out, pullRequestInfo(p, workbench.PR{Repo: repo, Number: p.GetNumber()}))
		}
		return resp, err
	})
	return out, err
}

// pullRequestInfo is what a decision reads of go-github's pull request.
func pullRequestInfo(p *github.PullRequest, pr workbench.PR) workbench.PullRequestInfo {
	labels := []string{}
	for _, l := range p.Labels {
		labels = append(labels, l.GetName())
	}
	return workbench.PullRequestInfo{
		PR: pr, Author: p.GetUser().GetLogin(), AuthorAssociation: p.GetAuthorAssociation(),
		Title: p.GetTitle(), Body: p.GetBody(), Draft: p.GetDraft(), Labels: labels,
		HeadRef: p.GetHead().GetRef(), HeadLabel: p.GetHead().GetLabel(), HeadRepo: p.GetHead().GetRepo().GetFullName(),
		HeadSHA: p.GetHead().GetSHA(), BaseRef: p.GetBase().GetRef(), BaseSHA: p.GetBase().GetSHA(), State: p.GetState(),
		Additions: p.Additions, Deletions: p.Deletions, ChangedFiles: p.ChangedFiles, Commits: p.Commits,
	}
}
