package workbench

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"
)

// Repo names a GitHub repository.
type Repo struct {
	Owner string `json:"owner"`
	Name  string `json:"name"`
}

func (r Repo) String() string { return r.Owner + "/" + r.Name }

// ParseRepo parses "owner/name", each as GitHub allows it. The parts go
// into API paths with an installation's token: "..", a slash or an escape
// in either would reach another path of the API host.
func ParseRepo(s string) (Repo, error) {
	owner, name, ok := strings.Cut(s, "/")
	if !ok || !ownerName.MatchString(owner) || !repoName.MatchString(name) || name == "." || name == ".." {
		return Repo{}, fmt.Errorf("repository %q is not owner/name as GitHub names them", s)
	}
	return Repo{Owner: owner, Name: name}, nil
}

var (
	// GitHub's logins: letters, digits and hyphens (Enterprise managed
	// users add an underscore and a short code).
	ownerName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]{0,99}$`)
	// GitHub's repository names: letters, digits, '.', '-', '_', at most
	// 100.
	repoName = regexp.MustCompile(`^[A-Za-z0-9._-]{1,100}$`)
	// A commit SHA: SHA-1, or SHA-256 for a repository that uses it.
	commitSHA = regexp.MustCompile(`^(?:[0-9a-f]{40}|[0-9a-f]{64})$`)
)

// ValidSHA reports whether s is a full commit SHA, as the API paths that
// take one need it.
func ValidSHA(s string) bool { return commitSHA.MatchString(s) }

// PR names a pull request.
type PR struct {
	Repo   Repo `json:"repo"`
	Number int  `json:"number"`
}

func (p PR) String() string { return fmt.Sprintf("%s#%d", p.Repo, p.Number) }

// PullRequestInfo is what a decision needs to know about a pull request.
type PullRequestInfo struct {
	PR
	Author            string   `json:"author"`
	AuthorAssociation string   `json:"author_association,omitempty"`
	Title             string   `json:"title,omitempty"`
	Body              string   `json:"body,omitempty"`
	Draft             bool     `json:"draft,omitempty"`
	Labels            []string `json:"labels,omitempty"`
	HeadRef           string   `json:"head_ref"`
	// HeadLabel is owner:branch; it differs from the base repository's
	// owner for a pull request from a fork.
	HeadLabel string `json:"head_label"`
	HeadRepo  string `json:"head_repo"`
	HeadSHA   string `json:"head_sha"`
	BaseRef   string `json:"base_ref"`
	BaseSHA   string `json:"base_sha,omitempty"`
	State     string `json:"state"`
	// The size of the change, when GitHub said it (webhook payloads of
	// pull_request events and the pull request API do).
	Additions    *int `json:"additions,omitempty"`
	Deletions    *int `json:"deletions,omitempty"`
	ChangedFiles *int `json:"changed_files,omitempty"`
	Commits      *int `json:"commits,omitempty"`
}

// FromFork reports whether the head branch lives in another repository.
func (p PullRequestInfo) FromFork() bool {
	return p.HeadRepo != "" && !strings.EqualFold(p.HeadRepo, p.Repo.String())
}

// Review is one pull-request review. State is upper case, as the REST API
// gives it (APPROVED, CHANGES_REQUESTED, COMMENTED, DISMISSED, PENDING).
type Review struct {
	User        string    `json:"user"`
	State       string    `json:"state"`
	SubmittedAt time.Time `json:"submitted_at"`
	CommitID    string    `json:"commit_id"`
}

// Commit is one commit of a pull request or deployment.
type Commit struct {
	SHA     string `json:"sha"`
	Message string `json:"message"`
	// Author and Committer are git's, with the GitHub login where GitHub
	// could match the email to an account.
	Author    Person `json:"author"`
	Committer Person `json:"committer"`
	// Verified is GitHub's word that the commit's signature holds.
	Verified bool `json:"verified"`
}

// Person is a commit's author or committer.
type Person struct {
	Login string    `json:"login,omitempty"`
	Name  string    `json:"name,omitempty"`
	Email string    `json:"email,omitempty"`
	Date  time.Time `json:"date,omitzero"`
}

// CheckRun is one check run, or one commit status, on a commit.
type CheckRun struct {
	Name       string `json:"name"`
	Status     string `json:"status"`     // queued, in_progress, completed
	Conclusion string `json:"conclusion"` // success, failure, neutral, ... when completed
	// Type is "check_run" or "status" (a commit status, whose name is its
	// context).
	Type string `json:"type"`
}

// File is one file a pull request changes, as GitHub lists it.
type File struct {
	Filename         string `json:"filename"`
	Status           string `json:"status"` // added, removed, modified, renamed, copied, changed, unchanged
	PreviousFilename string `json:"previous_filename,omitempty"`
	Additions        int    `json:"additions"`
	Deletions        int    `json:"deletions"`
	Changes          int    `json:"changes"`
}

// Team names a GitHub team: an organization and the team's slug.
type Team struct {
	Org  string
	Slug string
}

func (t Team) String() string { return t.Org + "/" + t.Slug }

// ParseTeam parses "org/slug" or "@org/slug", as CODEOWNERS and configs
// name teams. Both parts go into an API path.
func ParseTeam(s string) (Team, error) {
	org, slug, ok := strings.Cut(strings.TrimPrefix(s, "@"), "/")
	if !ok || !ownerName.MatchString(org) || !teamSlug.MatchString(slug) {
		return Team{}, fmt.Errorf("team %q is not org/team-slug", s)
	}
	return Team{Org: strings.ToLower(org), Slug: strings.ToLower(slug)}, nil
}

// teamSlug is a team's slug: GitHub makes it of letters, digits, '-'
// and '_' from the team's name.
var teamSlug = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]{0,99}$`)

// Codeowners is a repository's CODEOWNERS file, as found on a branch.
type Codeowners struct {
	Path string // .github/CODEOWNERS, CODEOWNERS or docs/CODEOWNERS
	Data []byte
}

// MaxListedFiles is the most files GitHub lists of a pull request, and
// MaxListedCommits the most commits: past them a list is not the whole.
const (
	MaxListedFiles   = 3000
	MaxListedCommits = 250
)

// Facts is what GitHub knows that a webhook payload does not say. The live
// implementation (ghfacts) calls the REST API; replay runs the same code
// over recorded responses.
type Facts interface {
	PullRequest(ctx context.Context, pr PR) (PullRequestInfo, error)
	Reviews(ctx context.Context, pr PR) ([]Review, error)
	Commits(ctx context.Context, pr PR) ([]Commit, error)
	Commit(ctx context.Context, repo Repo, sha string) (Commit, error)
	Checks(ctx context.Context, repo Repo, sha string) ([]CheckRun, error)
	Environments(ctx context.Context, repo Repo) ([]string, error)
	// Files lists the files a pull request changes (GitHub lists at most
	// MaxListedFiles).
	Files(ctx context.Context, pr PR) ([]File, error)
	// TeamMembers lists the logins of a team's members, its child teams'
	// included.
	TeamMembers(ctx context.Context, team Team) ([]string, error)
	// CodeownersFile returns the CODEOWNERS file GitHub would use on ref,
	// or an error wrapping ErrNotFound when there is none.
	CodeownersFile(ctx context.Context, repo Repo, ref string) (Codeowners, error)
	// PullRequestsOf lists the pull requests that contain a commit.
	PullRequestsOf(ctx context.Context, repo Repo, sha string) ([]PullRequestInfo, error)
	// ConfigFile returns a file of the repository's .repol directory at
	// ref, or an error wrapping ErrNotFound when there is none.
	ConfigFile(ctx context.Context, repo Repo, ref, name string) ([]byte, error)
}

// ErrNotFound means GitHub answered that the thing asked for does not
// exist (404).
var ErrNotFound = errors.New("not found")

// ErrFactUnavailable means a fact could not be had: an API error, a
// network failure, or no recorded response. A decision that needed it
// denies.
var ErrFactUnavailable = errors.New("fact unavailable")

// CodeFactUnavailable is the violation code for a fact that could not be
// had. It always denies.
const CodeFactUnavailable = "fact.unavailable"

// latestApprovers returns the users whose latest review approves: a later
// CHANGES_REQUESTED or DISMISSED review cancels an approval, a COMMENTED
// one does not (as on GitHub). The author's own reviews never count.
func latestApprovers(reviews []Review, author string) []string {
	latest := map[string]string{}
	var order []string
	for _, r := range reviews {
		user := strings.ToLower(r.User)
		if user == "" || strings.EqualFold(r.User, author) {
			continue
		}
		switch strings.ToUpper(r.State) {
		case "APPROVED", "CHANGES_REQUESTED", "DISMISSED":
			if _, seen := latest[user]; !seen {
				order = append(order, user)
			}
			latest[user] = strings.ToUpper(r.State)
		}
	}
	approvers := []string{}
	for _, u := range order {
		if latest[u] == "APPROVED" {
			approvers = append(approvers, u)
		}
	}
	return approvers
}

// signedOff reports whether every commit carries a Signed-off-by trailer
// (the Developer Certificate of Origin). No commits means not signed off.
func signedOff(commits []Commit) bool {
	if len(commits) == 0 {
		return false
	}
	for _, c := range commits {
		if !hasSignOff(c.Message) {
			return false
		}
	}
	return true
}

func hasSignOff(message string) bool {
	for _, line := range strings.Split(message, "\n") {
		name, value, ok := strings.Cut(strings.TrimSpace(line), ":")
		if ok && strings.EqualFold(name, "Signed-off-by") && strings.TrimSpace(value) != "" {
			return true
		}
	}
	return false
}

// testsPassed reports whether the commit's checks pass: at least one
// completed check, and every completed one succeeded, was neutral or was
// skipped. Checks still running are the deploying workflow itself or will
// report later; gitpoli's own checks (named "gitpoli / …") are not tests.
func testsPassed(checks []CheckRun) bool {
	completed := 0
	for _, c := range checks {
		if IsOwnCheck(c.Name) || c.Status != "completed" {
			continue
		}
		completed++
		switch c.Conclusion {
		case "success", "neutral", "skipped":
		default:
			return false
		}
	}
	return completed > 0
}

// OwnCheckPrefix begins the name of every check run gitpoli posts by
// default ("gitpoli / <title>"). A check of that name is a policy's
// answer, never a test result.
const OwnCheckPrefix = "gitpoli / "

// IsOwnCheck reports whether a check run's name is one of gitpoli's.
func IsOwnCheck(name string) bool { return strings.HasPrefix(name, OwnCheckPrefix) }
