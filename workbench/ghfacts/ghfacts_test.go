package ghfacts

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/gitpoli/gitpoli/workbench"
)

// stub is one expected request and its canned response.
type stub struct {
	status  int
	headers map[string]string
	body    string // literal body, or "@file" for testdata/file
}

// fakeGitHub is an httptest server that answers only the requests it was
// given, fails the test on any other, and on Verify fails for stubs never
// requested.
type fakeGitHub struct {
	t     *testing.T
	srv   *httptest.Server
	mu    sync.Mutex
	stubs map[string]stub
	used  map[string]bool
	auth  []string
}

func newFake(t *testing.T, prefix string, stubs map[string]stub) *fakeGitHub {
	f := &fakeGitHub{t: t, stubs: stubs, used: map[string]bool{}}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key := r.Method + " " + strings.TrimPrefix(r.URL.Path, prefix)
		if r.URL.RawQuery != "" {
			key += "?" + r.URL.Query().Encode()
		}
		f.mu.Lock()
		s, ok := f.stubs[key]
		f.used[key] = true
		f.auth = append(f.auth, r.Header.Get("Authorization"))
		f.mu.Unlock()
		if !ok {
			t.Errorf("unexpected request %s", key)
			http.Error(w, "no stub", http.StatusNotImplemented)
			return
		}
		body := s.body
		if strings.HasPrefix(body, "@") {
			data, err := os.ReadFile("testdata/" + body[1:])
			if err != nil {
				t.Fatal(err)
			}
			body = string(data)
		}
		for k, v := range s.headers {
			w.Header().Set(k, strings.ReplaceAll(v, "{url}", f.srv.URL+prefix))
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(s.status)
		fmt.Fprint(w, body)
	}))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeGitHub) verify() {
	f.t.Helper()
	for k := range f.stubs {
		if !f.used[k] {
			f.t.Errorf("stub never requested: %s", k)
		}
	}
}

func (f *fakeGitHub) client(t *testing.T, apiPath string) *Client {
	t.Helper()
	c, err := New(f.srv.Client(), f.srv.URL+apiPath)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

var (
	repo = workbench.Repo{Owner: "erwinmombay", Name: "github-owners-bot-test-repo"}
	pr35 = workbench.PR{Repo: repo, Number: 35}
	ctx  = context.Background()
)

const q1 = "?page=1&per_page=100"

func TestReviewsPaginated(t *testing.T) {
	f := newFake(t, "", map[string]stub{
		"GET /repos/erwinmombay/github-owners-bot-test-repo/pulls/35/reviews" + q1: {status: 200, body: "@pulls-list-reviews.owners-bot-pr17.json",
			headers: map[string]string{"Link": `<{url}/repos/erwinmombay/github-owners-bot-test-repo/pulls/35/reviews?page=2&per_page=100>; rel="next", <{url}/repos/erwinmombay/github-owners-bot-test-repo/pulls/35/reviews?page=2&per_page=100>; rel="last"`}},
		"GET /repos/erwinmombay/github-owners-bot-test-repo/pulls/35/reviews?page=2&per_page=100": {status: 200, body: "@pulls-list-reviews.owners-bot-pr35.json"},
	})
	reviews, err := f.client(t, "").Reviews(ctx, pr35)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range reviews {
		got = append(got, r.User+":"+r.State)
	}
	want := []string{"donttrustthisbot:CHANGES_REQUESTED", "donttrustthisbot:APPROVED", "erwinmombay:APPROVED"}
	if !slices.Equal(got, want) {
		t.Errorf("reviews %v, want %v", got, want)
	}
	f.verify()
}

func TestPullRequestCommitsChecks(t *testing.T) {
	sha := "9272f18514cbd3fa935b3ced62ae1c2bf6efa76d"
	f := newFake(t, "/api/v3", map[string]stub{
		"GET /repos/erwinmombay/github-owners-bot-test-repo/pulls/35":                                                         {status: 200, body: "@pulls-get.owners-bot-pr35.json"},
		"GET /repos/erwinmombay/github-owners-bot-test-repo/pulls/35/commits" + q1:                                            {status: 200, body: "@pulls-list-commits.rest-api-description.json"},
		"GET /repos/erwinmombay/github-owners-bot-test-repo/commits/" + sha + "/check-runs?filter=latest&page=1&per_page=100": {status: 200, body: "@checks-list-for-ref.owners-bot-pr35.json"},
		"GET /repos/erwinmombay/github-owners-bot-test-repo/commits/" + sha + "/status" + q1:                                  {status: 200, body: `{"state":"success","statuses":[{"context":"ci/travis","state":"success"},{"context":"ci/lint","state":"pending"}]}`},
		"GET /repos/erwinmombay/github-owners-bot-test-repo/environments" + q1:                                                {status: 200, body: `{"total_count":2,"environments":[{"name":"staging"},{"name":"production"}]}`},
	})
	// GitHub Enterprise: the API lives under /api/v3.
	c := f.client(t, "/api/v3")
	info, err := c.PullRequest(ctx, pr35)
	if err != nil {
		t.Fatal(err)
	}
	if info.Author != "ampprojectbot" || info.HeadSHA != sha || info.BaseRef != "master" || info.FromFork() {
		t.Errorf("pull request %+v", info)
	}
	commits, err := c.Commits(ctx, pr35)
	if err != nil || len(commits) != 1 || commits[0].Message != "Fix all the bugs" {
		t.Errorf("commits %+v, %v", commits, err)
	}
	checks, err := c.Checks(ctx, repo, sha)
	if err != nil {
		t.Fatal(err)
	}
	want := []workbench.CheckRun{
		{Name: "ampproject/owners-check", Status: "completed", Conclusion: "failure", Type: "check_run"},
		{Name: "ci/travis", Status: "completed", Conclusion: "success", Type: "status"},
		{Name: "ci/lint", Status: "in_progress", Type: "status"},
	}
	if !slices.Equal(checks, want) {
		t.Errorf("checks %+v, want %+v", checks, want)
	}
	envs, err := c.Environments(ctx, repo)
	if err != nil || !slices.Equal(envs, []string{"staging", "production"}) {
		t.Errorf("environments %v, %v", envs, err)
	}
	f.verify()
}

func TestConfigFile(t *testing.T) {
	f := newFake(t, "", map[string]stub{
		"GET /repos/erwinmombay/github-owners-bot-test-repo/contents/.repol/deploy.yaml?ref=main":      {status: 200, body: "@repos-get-content-file.honey-badger.json"},
		"GET /repos/erwinmombay/github-owners-bot-test-repo/contents/.repol/pullrequest.yaml?ref=main": {status: 404, body: `{"message":"Not Found"}`},
	})
	c := f.client(t, "")
	data, err := c.ConfigFile(ctx, repo, "main", "deploy.yaml")
	if err != nil || !strings.HasPrefix(string(data), "name: \"CodeQL Scan\"\n") {
		t.Errorf("content %q, %v", data, err)
	}
	_, err = c.ConfigFile(ctx, repo, "main", "pullrequest.yaml")
	if !errors.Is(err, workbench.ErrNotFound) {
		t.Errorf("missing file: %v, want ErrNotFound", err)
	}
	f.verify()
}

func TestAPIErrors(t *testing.T) {
	path := "GET /repos/erwinmombay/github-owners-bot-test-repo/pulls/35/reviews" + q1
	tests := []struct {
		name string
		stub stub
		want string
	}{
		{"bad credentials", stub{status: 401, body: `{"message":"Bad credentials"}`}, "401 bad credentials (check the token)"},
		{"rate limit", stub{status: 403, body: `{"message":"API rate limit exceeded"}`,
			headers: map[string]string{"X-RateLimit-Limit": "5000", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "1798200000"}},
			"rate limit exceeded (resets at 2026-12-25T12:00:00Z)"},
		{"secondary rate limit", stub{status: 403, body: `{"message":"You have exceeded a secondary rate limit","documentation_url":"https://docs.github.com/rest/overview/resources-in-the-rest-api#secondary-rate-limits"}`,
			headers: map[string]string{"Retry-After": "60"}}, "secondary rate limit, retry after 1m0s"},
		{"not found", stub{status: 404, body: `{"message":"Not Found"}`}, "404 not found"},
		{"server error", stub{status: 502, body: `{"message":"Server Error"}`}, "502 Server Error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t, "", map[string]stub{path: tt.stub})
			_, err := f.client(t, "").Reviews(ctx, pr35)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v, want it to say %q", err, tt.want)
			}
			if !errors.Is(err, workbench.ErrFactUnavailable) && !errors.Is(err, workbench.ErrNotFound) {
				t.Errorf("error %v wraps neither ErrFactUnavailable nor ErrNotFound", err)
			}
		})
	}
}

func TestNewRejectsBadURL(t *testing.T) {
	for _, u := range []string{"ftp://x", "::", "/relative"} {
		if _, err := New(&http.Client{}, u); err == nil {
			t.Errorf("New(%q) accepted", u)
		}
	}
}
