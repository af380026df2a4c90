package workbench

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

func TestNormalize(t *testing.T) {
	tests := []struct {
		name    string
		event   string
		payload string
		ignored bool
		policy  Policy
		invalid []string
		check   func(t *testing.T, s Subject)
	}{
		{name: "pull request opened", event: "pull_request",
			payload: `{"action":"opened","repository":{"full_name":"o/r"},"pull_request":{"number":7,"user":{"login":"ann"},"head":{"ref":"feature/x","label":"o:feature/x","sha":"0123456789abcdef0123456789abcdef01234567","repo":{"full_name":"o/r"}},"base":{"ref":"main"}}}`,
			policy:  PullRequest,
			check: func(t *testing.T, s Subject) {
				if s.PR == nil || s.PR.Number != 7 || s.PR.Author != "ann" || s.ConfigRef != "main" || s.SHA != "0123456789abcdef0123456789abcdef01234567" || s.PR.FromFork() {
					t.Errorf("subject %+v, pr %+v", s, s.PR)
				}
			}},
		{name: "fork", event: "pull_request",
			payload: `{"action":"synchronize","repository":{"full_name":"o/r"},"pull_request":{"number":7,"head":{"ref":"main","label":"fork:main","sha":"0123456789abcdef0123456789abcdef01234567","repo":{"full_name":"fork/r"}},"base":{"ref":"main"}}}`,
			policy:  PullRequest,
			check: func(t *testing.T, s Subject) {
				if !s.PR.FromFork() {
					t.Error("not seen as a fork")
				}
			}},
		{name: "edited title", event: "pull_request",
			payload: `{"action":"edited","changes":{"title":{"from":"x"}},"sender":{"login":"bob"},"repository":{"full_name":"o/r","name":"r","owner":{"login":"o"},"topics":["go"]},"pull_request":{"number":1,"title":"WIP: more","body":null,"draft":true,"labels":[{"name":"docs"}],"author_association":"MEMBER","head":{"sha":"0123456789abcdef0123456789abcdef01234567"},"base":{"ref":"main","sha":"b"}}}`,
			policy:  PullRequest,
			check: func(t *testing.T, s Subject) {
				pr := s.PR
				if s.Action != "edited" || s.Sender != "bob" || pr.Title != "WIP: more" || pr.Body != "" || !pr.Draft || !slices.Equal(pr.Labels, []string{"docs"}) ||
					pr.AuthorAssociation != "MEMBER" || pr.BaseSHA != "b" || s.Repository.Owner != "o" || !slices.Equal(s.Repository.Topics, []string{"go"}) {
					t.Errorf("subject %+v, pr %+v, repository %+v", s, pr, s.Repository)
				}
			}},
		{name: "labeled", event: "pull_request", payload: `{"action":"labeled","repository":{"full_name":"o/r"},"pull_request":{"number":1,"head":{"sha":"0123456789abcdef0123456789abcdef01234567"},"base":{"ref":"main"}}}`,
			policy: PullRequest},
		{name: "converted to draft", event: "pull_request", payload: `{"action":"converted_to_draft","repository":{"full_name":"o/r"},"pull_request":{"number":1,"head":{"sha":"0123456789abcdef0123456789abcdef01234567"},"base":{"ref":"main"}}}`,
			policy: PullRequest},
		{name: "edited base", event: "pull_request",
			payload: `{"action":"edited","changes":{"base":{"ref":{"from":"dev"}}},"repository":{"full_name":"o/r"},"pull_request":{"number":1,"head":{"sha":"0123456789abcdef0123456789abcdef01234567"},"base":{"ref":"main"}}}`,
			policy:  PullRequest},
		{name: "closed", event: "pull_request", payload: `{"action":"closed"}`, ignored: true},
		{name: "pull request without pull_request", event: "pull_request", payload: `{"action":"opened","repository":{"full_name":"o/r"}}`,
			policy: PullRequest, invalid: []string{"pull_request is missing"}},
		{name: "review without repository", event: "pull_request_review",
			payload: `{"action":"submitted","pull_request":{"number":1,"head":{"sha":"0123456789abcdef0123456789abcdef01234567"},"base":{"ref":"main"}}}`,
			policy:  PullRequest, invalid: []string{"repository.full_name is missing or not owner/name as GitHub names them"}},
		{name: "review edited", event: "pull_request_review",
			payload: `{"action":"edited","repository":{"full_name":"o/r"},"pull_request":{"number":1,"head":{"sha":"0123456789abcdef0123456789abcdef01234567"},"base":{"ref":"main"}}}`,
			policy:  PullRequest},
		{name: "review requested is no review", event: "pull_request_review", payload: `{"action":"requested"}`, ignored: true},
		{name: "another app's check run completed", event: "check_run",
			payload: `{"action":"completed","repository":{"full_name":"o/r"},"check_run":{"name":"ci / test","head_sha":"0123456789abcdef0123456789abcdef01234567","app":{"id":15368},"pull_requests":[{"number":4,"base":{"ref":"main"}}]}}`,
			policy:  PullRequest,
			check: func(t *testing.T, s Subject) {
				if s.PRRef == nil || s.PRRef.Number != 4 || s.CheckName != "" || s.AppID != 15368 || s.SHA != "0123456789abcdef0123456789abcdef01234567" {
					t.Errorf("subject %+v", s)
				}
			}},
		{name: "our own check run completed", event: "check_run",
			payload: `{"action":"completed","repository":{"full_name":"o/r"},"check_run":{"name":"gitpoli / PR Policy","head_sha":"0123456789abcdef0123456789abcdef01234567","pull_requests":[{"number":4}]}}`,
			ignored: true},
		{name: "check suite completed", event: "check_suite",
			payload: `{"action":"completed","repository":{"full_name":"o/r"},"check_suite":{"head_sha":"0123456789abcdef0123456789abcdef01234567","app":{"id":7},"pull_requests":[{"number":4,"base":{"ref":"main"}}]}}`,
			policy:  PullRequest},
		{name: "check suite requested", event: "check_suite", payload: `{"action":"requested"}`, ignored: true},
		{name: "status", event: "status", payload: `{"sha":"0123456789abcdef0123456789abcdef01234567","state":"success","context":"ci/travis","repository":{"full_name":"o/r"}}`,
			policy: PullRequest,
			check: func(t *testing.T, s Subject) {
				if !s.byHeadSHA || s.SHA != "0123456789abcdef0123456789abcdef01234567" {
					t.Errorf("subject %+v", s)
				}
			}},
		{name: "status without a sha", event: "status", payload: `{"state":"success","repository":{"full_name":"o/r"}}`,
			policy: PullRequest, invalid: []string{"status.sha is missing or not a commit SHA"}},
		{name: "merge group", event: "merge_group",
			payload: `{"action":"checks_requested","repository":{"full_name":"o/r"},"merge_group":{"head_sha":"0123456789abcdef0123456789abcdef01234567","head_ref":"refs/heads/gh-readonly-queue/main/pr-12-0123456789abcdef0123456789abcdef01234567","base_sha":"0123456789abcdef0123456789abcdef01234567","base_ref":"refs/heads/main"}}`,
			policy:  PullRequest,
			check: func(t *testing.T, s Subject) {
				if s.PRRef == nil || s.PRRef.Number != 12 || s.SHA != "0123456789abcdef0123456789abcdef01234567" || s.ConfigRef != "main" || s.MergeGroup == nil {
					t.Errorf("subject %+v", s)
				}
			}},
		{name: "merge group naming no pull request", event: "merge_group",
			payload: `{"action":"checks_requested","repository":{"full_name":"o/r"},"merge_group":{"head_sha":"0123456789abcdef0123456789abcdef01234567","head_ref":"refs/heads/elsewhere","base_ref":"refs/heads/main"}}`,
			policy:  PullRequest, invalid: []string{"merge_group.head_ref names no pull request (want gh-readonly-queue/<base>/pr-<number>-<sha>)"}},
		{name: "merge group destroyed", event: "merge_group", payload: `{"action":"destroyed"}`, ignored: true},
		{name: "our check rerequested", event: "check_run",
			payload: `{"action":"rerequested","repository":{"full_name":"o/r"},"check_run":{"name":"gitpoli / PR Policy","head_sha":"0123456789abcdef0123456789abcdef01234567","pull_requests":[{"number":3,"base":{"ref":"main"}}]}}`,
			policy:  PullRequest,
			check: func(t *testing.T, s Subject) {
				if s.PRRef == nil || s.PRRef.Number != 3 || s.SHA != "0123456789abcdef0123456789abcdef01234567" || s.ConfigRef != "main" {
					t.Errorf("subject %+v", s)
				}
			}},
		{name: "other check rerequested", event: "check_run", payload: `{"action":"rerequested","check_run":{"name":"lint"}}`, ignored: true},
		{name: "deployment", event: "deployment_protection_rule",
			payload: `{"action":"requested","environment":"prod","deployment_callback_url":"https://api.github.com/repos/o/r/actions/runs/42/deployment_protection_rule","deployment":{"ref":"main","sha":"0123456789abcdef0123456789abcdef01234567"},"repository":{"full_name":"o/r","default_branch":"trunk"}}`,
			policy:  Deploy,
			check: func(t *testing.T, s Subject) {
				if *s.Environment != "prod" || *s.Ref != "refs/heads/main" || s.RunID != 42 || s.ConfigRef != "trunk" || s.PR != nil {
					t.Errorf("subject %+v", s)
				}
			}},
		{name: "deployment callback for another repository", event: "deployment_protection_rule",
			payload: `{"action":"requested","environment":"prod","deployment_callback_url":"https://evil.example/repos/x/y/actions/runs/42/deployment_protection_rule","deployment":{"ref":"main","sha":"0123456789abcdef0123456789abcdef01234567"},"repository":{"full_name":"o/r","default_branch":"main"}}`,
			policy:  Deploy,
			check: func(t *testing.T, s Subject) {
				if s.RunID != 0 {
					t.Errorf("run id %d taken from a callback URL of another repository", s.RunID)
				}
			}},
		{name: "repository that climbs out of its path", event: "pull_request",
			payload: `{"action":"opened","repository":{"full_name":"../.."},"pull_request":{"number":1,"head":{"sha":"0123456789abcdef0123456789abcdef01234567"},"base":{"ref":"main"}}}`,
			policy:  PullRequest, invalid: []string{"repository.full_name is missing or not owner/name as GitHub names them"}},
		{name: "head sha that is a path", event: "pull_request",
			payload: `{"action":"opened","repository":{"full_name":"o/r"},"pull_request":{"number":1,"head":{"sha":"../../../app/installations/1/access_tokens"},"base":{"ref":"main"}}}`,
			policy:  PullRequest, invalid: []string{"pull_request.head.sha is missing or not a commit SHA"}},
		{name: "deployment sha that is a path", event: "deployment_protection_rule",
			payload: `{"action":"requested","environment":"prod","deployment":{"ref":"main","sha":"../x"},"repository":{"full_name":"o/r","default_branch":"main"}}`,
			policy:  Deploy, invalid: []string{"deployment.sha is missing or not a commit SHA"}},
		{name: "environment longer than GitHub allows", event: "deployment_protection_rule",
			payload: `{"action":"requested","environment":"` + strings.Repeat("e", 300) + `","deployment":{"ref":"main","sha":"0123456789abcdef0123456789abcdef01234567","environment":"` + strings.Repeat("e", 300) + `"},"repository":{"full_name":"o/r","default_branch":"main"}}`,
			policy:  Deploy, invalid: []string{"environment is longer than GitHub's 255 characters"},
			check: func(t *testing.T, s Subject) {
				if len(*s.Environment) != 255 || len(s.Deployment.Environment) != 255 {
					t.Errorf("environment kept at %d and %d bytes", len(*s.Environment), len(s.Deployment.Environment))
				}
			}},
		{name: "environment of 100 characters in 300 bytes", event: "deployment_protection_rule",
			payload: `{"action":"requested","environment":"` + strings.Repeat("環", 100) + `","deployment":{"ref":"main","sha":"0123456789abcdef0123456789abcdef01234567"},"repository":{"full_name":"o/r","default_branch":"main"}}`,
			policy:  Deploy},
		{name: "environment cut between characters", event: "deployment_protection_rule",
			payload: `{"action":"requested","environment":"` + strings.Repeat("環", 300) + `","deployment":{"ref":"main","sha":"0123456789abcdef0123456789abcdef01234567"},"repository":{"full_name":"o/r","default_branch":"main"}}`,
			policy:  Deploy, invalid: []string{"environment is longer than GitHub's 255 characters"},
			check: func(t *testing.T, s Subject) {
				if !utf8.ValidString(*s.Environment) || utf8.RuneCountInString(*s.Environment) != 255 {
					t.Errorf("environment cut to %q", *s.Environment)
				}
			}},
		{name: "ping", event: "ping", payload: `{"zen":"Design for failure."}`, ignored: true},
		{name: "push", event: "push", payload: `{"ref":"refs/heads/main"}`, ignored: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			subjects, err := Normalize(Delivery{Event: tt.event, ID: "1", Payload: []byte(tt.payload)})
			var npe *NotPolicyEvent
			if tt.ignored {
				if !errors.As(err, &npe) {
					t.Fatalf("got %v, %v; want ignored", subjects, err)
				}
				return
			}
			if err != nil || len(subjects) != 1 {
				t.Fatalf("got %v, %v", subjects, err)
			}
			s := subjects[0]
			kind := PullRequest
			if s.IsDeployment() {
				kind = Deploy
			}
			if kind != tt.policy || !slices.Equal(s.Invalid, tt.invalid) {
				t.Errorf("subject of %s invalid %q, want %s %q", kind, s.Invalid, tt.policy, tt.invalid)
			}
			if tt.check != nil {
				tt.check(t, s)
			}
		})
	}
}

func TestNormalizeBadPayload(t *testing.T) {
	for _, p := range []string{`not json`, `[1]`, `"x"`} {
		if _, err := Normalize(Delivery{Event: "pull_request", ID: "1", Payload: []byte(p)}); err == nil {
			t.Errorf("Normalize(%s) succeeded", p)
		}
	}
	if _, err := Normalize(Delivery{Payload: []byte(`{}`)}); err == nil {
		t.Error("a delivery without an event name was accepted")
	}
}

func TestDeploymentRef(t *testing.T) {
	sha := "8a7d3b7f56830f91e5c0c02ab44d3215b29ad086"
	tests := []struct{ ref, want string }{
		{"develop", "refs/heads/develop"},
		{"refs/tags/v1", "refs/tags/v1"},
		{sha, sha},
		{"", ""},
	}
	for _, tt := range tests {
		if got := deploymentRef(tt.ref, sha); got != tt.want {
			t.Errorf("deploymentRef(%q) = %q, want %q", tt.ref, got, tt.want)
		}
	}
}

func TestLatestApprovers(t *testing.T) {
	at := time.Now()
	r := func(user, state string) Review { return Review{User: user, State: state, SubmittedAt: at} }
	tests := []struct {
		name    string
		reviews []Review
		want    []string
	}{
		{"approved", []Review{r("a", "APPROVED")}, []string{"a"}},
		{"approval withdrawn", []Review{r("a", "APPROVED"), r("a", "CHANGES_REQUESTED")}, []string{}},
		{"changes then approved", []Review{r("a", "CHANGES_REQUESTED"), r("A", "APPROVED")}, []string{"a"}},
		{"comment keeps approval", []Review{r("a", "APPROVED"), r("a", "COMMENTED")}, []string{"a"}},
		{"dismissed", []Review{r("a", "APPROVED"), r("a", "DISMISSED")}, []string{}},
		{"author excluded", []Review{r("Author", "APPROVED"), r("b", "APPROVED")}, []string{"b"}},
		{"webhook case", []Review{r("a", "approved")}, []string{"a"}},
	}
	for _, tt := range tests {
		if got := latestApprovers(tt.reviews, "author"); !slices.Equal(got, tt.want) {
			t.Errorf("%s: got %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestSignedOff(t *testing.T) {
	signed := Commit{Message: "Fix\n\nSigned-off-by: Ann <ann@example.com>"}
	tests := []struct {
		name    string
		commits []Commit
		want    bool
	}{
		{"all signed", []Commit{signed, signed}, true},
		{"one unsigned", []Commit{signed, {Message: "Fix"}}, false},
		{"trailer without a name", []Commit{{Message: "Fix\n\nSigned-off-by:"}}, false},
		{"no commits", nil, false},
	}
	for _, tt := range tests {
		if got := signedOff(tt.commits); got != tt.want {
			t.Errorf("%s: got %v", tt.name, got)
		}
	}
}

func TestTestsPassed(t *testing.T) {
	c := func(name, status, conclusion string) CheckRun {
		return CheckRun{Name: name, Status: status, Conclusion: conclusion}
	}
	tests := []struct {
		name   string
		checks []CheckRun
		want   bool
	}{
		{"green", []CheckRun{c("build", "completed", "success"), c("lint", "completed", "neutral")}, true},
		{"red", []CheckRun{c("build", "completed", "success"), c("test", "completed", "failure")}, false},
		{"timed out", []CheckRun{c("test", "completed", "timed_out")}, false},
		{"only running", []CheckRun{c("deploy", "in_progress", "")}, false},
		{"running ignored", []CheckRun{c("deploy", "in_progress", ""), c("test", "completed", "success")}, true},
		{"our own check is not a test", []CheckRun{c(CheckRunName, "completed", "success")}, false},
		{"none", nil, false},
	}
	for _, tt := range tests {
		if got := testsPassed(tt.checks); got != tt.want {
			t.Errorf("%s: got %v", tt.name, got)
		}
	}
}

// TestEveryPayloadUnderEveryEvent feeds each recorded payload as each
// event gitpoli handles: whatever the mix, the result is a decision, an
// ignore or an error, never a panic, and never an allow without facts.
func TestEveryPayloadUnderEveryEvent(t *testing.T) {
	fixtures, err := os.ReadDir("../internal/testrepo/testdata/fixtures")
	if err != nil {
		t.Fatal(err)
	}
	e := mustEngine(t, repoSources())
	events := []string{"pull_request", "pull_request_review", "check_run", "deployment_protection_rule", "push", "ping", "unknown"}
	for _, de := range fixtures {
		if !strings.HasSuffix(de.Name(), ".json") {
			continue
		}
		data, err := os.ReadFile("../internal/testrepo/testdata/fixtures/" + de.Name())
		if err != nil {
			t.Fatal(err)
		}
		var f struct {
			Payload json.RawMessage `json:"payload"`
		}
		if err := json.Unmarshal(data, &f); err != nil || len(f.Payload) == 0 {
			continue
		}
		for _, ev := range events {
			// The cheap prefilter never drops what Normalize would decide.
			var pre, full *NotPolicyEvent
			if perr := Prefilter(Delivery{Event: ev, ID: "x", Payload: f.Payload}); errors.As(perr, &pre) {
				if _, nerr := Normalize(Delivery{Event: ev, ID: "x", Payload: f.Payload}); !errors.As(nerr, &full) {
					t.Errorf("%s as %s: prefilter ignores (%s), Normalize decides", de.Name(), ev, pre.Reason)
				}
			}
			outcomes, err := e.DecideDelivery(context.Background(), Delivery{Event: ev, ID: "x", Payload: f.Payload}, noFacts{}, DeliveryOptions{})
			var npe *NotPolicyEvent
			if err != nil && !errors.As(err, &npe) {
				t.Errorf("%s as %s: %v", de.Name(), ev, err)
			}
			for _, o := range outcomes {
				if o.Decision.Allow {
					t.Errorf("%s as %s: allowed with no facts at all", de.Name(), ev)
				}
			}
		}
	}
}

// noFacts answers nothing.
type noFacts struct{}

func (noFacts) PullRequest(context.Context, PR) (PullRequestInfo, error) {
	return PullRequestInfo{}, ErrFactUnavailable
}
func (noFacts) Reviews(context.Context, PR) ([]Review, error) { return nil, ErrFactUnavailable }
func (noFacts) Commits(context.Context, PR) ([]Commit, error) { return nil, ErrFactUnavailable }
func (noFacts) Commit(context.Context, Repo, string) (Commit, error) {
	return Commit{}, ErrFactUnavailable
}
func (noFacts) Checks(context.Context, Repo, string) ([]CheckRun, error) {
	return nil, ErrFactUnavailable
}
func (noFacts) Environments(context.Context, Repo) ([]string, error) { return nil, ErrFactUnavailable }
func (noFacts) Files(context.Context, PR) ([]File, error)            { return nil, ErrFactUnavailable }
func (noFacts) TeamMembers(context.Context, Team) ([]string, error)  { return nil, ErrFactUnavailable }
func (noFacts) CodeownersFile(context.Context, Repo, string) (Codeowners, error) {
	return Codeowners{}, ErrFactUnavailable
}
func (noFacts) PullRequestsOf(context.Context, Repo, string) ([]PullRequestInfo, error) {
	return nil, ErrFactUnavailable
}
func (noFacts) ConfigFile(context.Context, Repo, string, string) ([]byte, error) {
	return nil, ErrFactUnavailable
}
