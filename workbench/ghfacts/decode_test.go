package ghfacts

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"testing"

	"github.com/google/go-github/v66/github"

	"github.com/gitpoli/gitpoli/workbench"
)

// FuzzDecodeAsGoGitHub holds what ghfacts reads of a response to what
// go-github's own types and getters read of it: whenever go-github
// decodes a body, decode must too, into the same facts. kind picks the
// response. Seeds: the recorded bodies of testdata/ and of the fixtures.
func FuzzDecodeAsGoGitHub(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.json")
	for _, name := range files {
		data, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		for kind := range uint8(len(responseKinds)) {
			f.Add(kind, data)
		}
	}
	// A null after a value of the same key resets a pointer, not a string.
	f.Add(uint8(0), []byte(`{"state":"open","state":null,"user":{"login":"a"},"user":{"login":null},"head":{"ref":"x"},"head":null}`))
	f.Add(uint8(1), []byte(`[{"user":{"login":"mallory"},"user":null,"state":"approved"}]`))
	f.Add(uint8(2), []byte(`[{"sha":"1","commit":{"message":"Signed-off-by: a"},"commit":null}]`))
	f.Add(uint8(3), []byte(`{"check_runs":[{"name":"t","conclusion":"success","conclusion":null}]}`))
	fixtures, _ := filepath.Glob("../../internal/testrepo/testdata/fixtures/*.json")
	for _, name := range fixtures {
		data, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		var fx struct {
			Responses map[string]struct {
				Body json.RawMessage `json:"body"`
			} `json:"responses"`
		}
		if err := json.Unmarshal(data, &fx); err != nil {
			f.Fatalf("%s: %v", name, err)
		}
		for key, r := range fx.Responses {
			for kind, k := range responseKinds {
				if k.path.MatchString(key) {
					f.Add(uint8(kind), []byte(r.Body))
				}
			}
		}
	}
	f.Fuzz(func(t *testing.T, kind uint8, body []byte) {
		k := responseKinds[int(kind)%len(responseKinds)]
		want, ok := k.goGitHub(body)
		if !ok {
			return // go-github refuses it; so may decode, or not
		}
		got, err := k.ghfacts(body)
		if err != nil {
			t.Fatalf("%s %q: go-github decodes it, decode says %v", k.path, body, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%s %q:\nghfacts reads   %#v\ngo-github reads %#v", k.path, body, got, want)
		}
	})
}

// responseKinds are the responses ghfacts reads, each decoded both ways.
var responseKinds = []struct {
	path     *regexp.Regexp // its recordings' keys
	ghfacts  func([]byte) (any, error)
	goGitHub func([]byte) (any, bool)
}{
	{regexp.MustCompile(`/pulls/\d+$`), func(b []byte) (any, error) {
		var p apiPullRequest
		err := decode(b, &p)
		return p.info(workbench.PR{}), err
	}, goGitHub(func(p *github.PullRequest) any { return goGitHubPullRequest(p, workbench.PR{}) })},
	{regexp.MustCompile(`/pulls/\d+/reviews\?`), func(b []byte) (any, error) {
		var rs []*apiReview
		err := decode(b, &rs)
		var out []workbench.Review
		for _, r := range rs {
			out = append(out, r.review())
		}
		return out, err
	}, goGitHub(func(rs []*github.PullRequestReview) any { return goGitHubReviews(rs) })},
	{regexp.MustCompile(`/pulls/\d+/commits\?`), func(b []byte) (any, error) {
		var cs []*apiCommit
		err := decode(b, &cs)
		var out []workbench.Commit
		for _, c := range cs {
			out = append(out, c.commit())
		}
		return out, err
	}, goGitHub(func(cs []*github.RepositoryCommit) any { return goGitHubCommits(cs) })},
	{regexp.MustCompile(`/check-runs\?`), func(b []byte) (any, error) {
		var res apiCheckRuns
		err := decode(b, &res)
		return res.checks(), err
	}, goGitHub(func(res *github.ListCheckRunsResults) any { return goGitHubCheckRuns(res) })},
	{regexp.MustCompile(`/status\?`), func(b []byte) (any, error) {
		var st apiCombinedStatus
		err := decode(b, &st)
		return st.checks(), err
	}, goGitHub(func(st *github.CombinedStatus) any { return goGitHubStatuses(st) })},
	{regexp.MustCompile(`/environments\?`), func(b []byte) (any, error) {
		var res apiEnvironments
		err := decode(b, &res)
		return res.names(), err
	}, goGitHub(func(res *github.EnvResponse) any { return goGitHubEnvironments(res) })},
}

// goGitHub decodes a body into go-github's type T, as go-github's client
// does, and reads it with read; false when go-github refuses the body.
func goGitHub[T any](read func(T) any) func([]byte) (any, bool) {
	return func(b []byte) (any, bool) {
		var v T
		if json.Unmarshal(b, &v) != nil {
			return nil, false
		}
		return read(v), true
	}
}
