package workbench

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/gitpoli/gitpoli/workbench/jsontext"
)

// Delivery is one GitHub webhook delivery: the X-GitHub-Event and
// X-GitHub-Delivery headers and the raw body.
type Delivery struct {
	Event   string          `json:"event"`
	ID      string          `json:"delivery_id"`
	Payload json.RawMessage `json:"payload"`
}

// Subject is what a delivery asks to be decided: a pull request's head
// or a deployment. Every policy whose "on" names the subject's event and
// action decides it.
type Subject struct {
	// Event and Action are the delivery's; DeliveryID and Sender too.
	Event      string `json:"event"`
	Action     string `json:"action,omitempty"`
	DeliveryID string `json:"delivery_id,omitempty"`
	Sender     string `json:"sender,omitempty"`
	// CheckName is set for a re-run of a check run: only the policy that
	// posts a check of that name decides it.
	CheckName string `json:"check_name,omitempty"`
	Repo      Repo   `json:"repo"`
	// Repository is what the payload says of the repository, for the
	// input's repository key.
	Repository *RepositoryInfo `json:"-"`
	// PR is the pull request decided on, or for a deployment the pull
	// request it deploys (nil for a push deployment).
	PR *PullRequestInfo `json:"pull_request,omitempty"`
	// PRRef is set when only the number is known (check_run): the pull
	// request is then fetched.
	PRRef *PR `json:"-"`
	// SHA is the commit decided on: the pull request head, or the deployed
	// commit.
	SHA string `json:"sha,omitempty"`
	// Deployment fields.
	Environment *string         `json:"environment,omitempty"`
	Ref         *string         `json:"ref,omitempty"`
	RunID       int64           `json:"run_id,omitempty"`
	Deployment  *DeploymentInfo `json:"-"`
	// ConfigRef is the branch whose .repol config applies: the pull
	// request's base, or the default branch for a deployment. Never the
	// head, which the pull request's author controls.
	ConfigRef string `json:"config_ref,omitempty"`
	// MergeGroup is the merge queue's group whose head the check is
	// posted on; PR is then the pull request the group's head merges.
	MergeGroup *MergeGroupInfo `json:"merge_group,omitempty"`
	// AppID is the GitHub App whose check run or check suite completed:
	// serve never re-decides on its own.
	AppID int64 `json:"app_id,omitempty"`
	// Invalid lists what the payload lacks; each becomes a
	// delivery.invalid violation.
	Invalid []string `json:"invalid,omitempty"`

	// byHeadSHA says the pull requests decided are those whose head is
	// SHA (a commit status names no pull request).
	byHeadSHA bool
}

// MergeGroupInfo is what a merge_group payload says of the group.
type MergeGroupInfo struct {
	HeadSHA string `json:"head_sha"`
	HeadRef string `json:"head_ref"`
	BaseSHA string `json:"base_sha"`
	BaseRef string `json:"base_ref"`
}

// IsDeployment reports whether the subject is a deployment waiting for
// its protection rule's answer.
func (s Subject) IsDeployment() bool { return s.Event == "deployment_protection_rule" }

// RepositoryInfo is what a payload says of its repository.
type RepositoryInfo struct {
	FullName      string   `json:"full_name"`
	Owner         string   `json:"owner"`
	Name          string   `json:"name"`
	DefaultBranch string   `json:"default_branch"`
	Private       bool     `json:"private"`
	Visibility    string   `json:"visibility,omitempty"`
	Topics        []string `json:"topics"`
}

// DeploymentInfo is what a deployment_protection_rule payload says of the
// deployment.
type DeploymentInfo struct {
	ID          int64  `json:"id,omitempty"`
	Environment string `json:"environment,omitempty"`
	Ref         string `json:"ref,omitempty"`
	SHA         string `json:"sha,omitempty"`
	Task        string `json:"task,omitempty"`
	Creator     string `json:"creator,omitempty"`
}

// CodeDeliveryInvalid is the violation code for a delivery that lacks what
// its event must carry. It always denies.
const CodeDeliveryInvalid = "delivery.invalid"

// NotPolicyEvent is the result of normalizing a delivery that asks for no
// decision (a ping, a closed pull request, another app's check run).
type NotPolicyEvent struct{ Reason string }

func (n *NotPolicyEvent) Error() string { return "not a policy event: " + n.Reason }

// The payload shapes gitpoli reads. Only what is needed is declared;
// unknown fields are ignored, so new GitHub fields never break parsing.
type payloadRepo struct {
	FullName      string       `json:"full_name"`
	Name          string       `json:"name"`
	Owner         *payloadUser `json:"owner"`
	DefaultBranch string       `json:"default_branch"`
	Private       bool         `json:"private"`
	Visibility    string       `json:"visibility"`
	Topics        []string     `json:"topics"`
}

type payloadUser struct {
	Login string `json:"login"`
}

type payloadLabel struct {
	Name string `json:"name"`
}

type payloadBranch struct {
	Ref   string      `json:"ref"`
	Label string      `json:"label"`
	SHA   string      `json:"sha"`
	Repo  payloadRepo `json:"repo"`
}

type payloadPR struct {
	Number            int            `json:"number"`
	State             string         `json:"state"`
	Title             string         `json:"title"`
	Body              *string        `json:"body"`
	Draft             bool           `json:"draft"`
	Labels            []payloadLabel `json:"labels"`
	AuthorAssociation string         `json:"author_association"`
	Additions         *int           `json:"additions"`
	Deletions         *int           `json:"deletions"`
	ChangedFiles      *int           `json:"changed_files"`
	Commits           *int           `json:"commits"`
	User              payloadUser    `json:"user"`
	Head              payloadBranch  `json:"head"`
	Base              payloadBranch  `json:"base"`
}

type payload struct {
	Action      string       `json:"action"`
	Sender      payloadUser  `json:"sender"`
	Repository  *payloadRepo `json:"repository"`
	PullRequest *payloadPR   `json:"pull_request"`
	// deployment_protection_rule
	Environment           *string `json:"environment"`
	DeploymentCallbackURL string  `json:"deployment_callback_url"`
	Deployment            *struct {
		ID          int64       `json:"id"`
		Ref         *string     `json:"ref"`
		SHA         string      `json:"sha"`
		Task        string      `json:"task"`
		Environment string      `json:"environment"`
		Creator     payloadUser `json:"creator"`
	} `json:"deployment"`
	PullRequests []payloadPR `json:"pull_requests"`
	// check_run, check_suite
	CheckRun   *payloadCheck `json:"check_run"`
	CheckSuite *payloadCheck `json:"check_suite"`
	// status
	SHA     string `json:"sha"`
	Context string `json:"context"`
	// merge_group
	MergeGroup *struct {
		HeadSHA string `json:"head_sha"`
		HeadRef string `json:"head_ref"`
		BaseSHA string `json:"base_sha"`
		BaseRef string `json:"base_ref"`
	} `json:"merge_group"`
}

type payloadCheck struct {
	Name         string      `json:"name"`
	HeadSHA      string      `json:"head_sha"`
	PullRequests []payloadPR `json:"pull_requests"`
	App          *struct {
		ID int64 `json:"id"`
	} `json:"app"`
}

func (c *payloadCheck) appID() int64 {
	if c == nil || c.App == nil {
		return 0
	}
	return c.App.ID
}

var payloadType = reflect.TypeFor[payload]()

// Prefilter says cheaply whether a delivery may ask for a decision: it
// reads the event name and the payload's top-level "action" without
// decoding the rest. It returns a *NotPolicyEvent for a delivery that
// certainly asks for none, and an error for a payload that is not a JSON
// object; nil means "queue it", and Normalize decides.
func Prefilter(d Delivery) error {
	actions, ok := decidedActions[d.Event]
	if !ok {
		if d.Event == "" {
			return d.errorf("no event name")
		}
		return &NotPolicyEvent{Reason: d.Event + " events decide nothing"}
	}
	action, err := PayloadAction(d.Payload)
	if err != nil {
		return d.errorf("payload: %w", err)
	}
	if !slices.Contains(actions, action) {
		return &NotPolicyEvent{Reason: d.Event + " " + action}
	}
	return nil
}

// PayloadAction reads the "action" member of a JSON object as Normalize's
// decoding reads it: every member whose key is "action" in any case (as
// encoding/json matches keys) counts, a null one changes nothing, and the
// last one wins. That takes reading every top-level member, which
// jsontext does for a pull request's payload in some tens of
// microseconds; stopping at the first "action" (GitHub writes it first)
// ignored `{"ACTION":"opened"}`, which Normalize decides.
func PayloadAction(payload []byte) (string, error) {
	s := jsontext.Scanner{Data: payload}
	s.Space()
	if s.Peek() != '{' {
		return "", errors.New("not a JSON object")
	}
	var action string
	var actionErr error
	ok := s.Object(1, func(key []byte, start, end int) {
		if !isActionKey(key) {
			return
		}
		value := payload[start:end]
		if string(value) == "null" {
			return
		}
		var a string
		if err := json.Unmarshal(value, &a); err != nil {
			actionErr = fmt.Errorf("action: %w", err)
			return
		}
		action = a
	})
	s.Space()
	if !ok || s.I != len(payload) {
		return "", errors.New("not a JSON object")
	}
	return action, actionErr
}

// isActionKey reports whether a raw object key (escapes as written)
// names the payload's "action" field as encoding/json matches names.
func isActionKey(raw []byte) bool {
	if !bytes.ContainsRune(raw, '\\') {
		// No letter of "action" has a fold of another length (as the
		// Kelvin sign is one of k's), so only six bytes can match.
		return len(raw) == len("action") && strings.EqualFold(string(raw), "action")
	}
	var key string
	if json.Unmarshal(append(append([]byte{'"'}, raw...), '"'), &key) != nil {
		return false
	}
	return strings.EqualFold(key, "action")
}

// Normalize turns a delivery into the decisions it asks for. A delivery
// that asks for none returns a *NotPolicyEvent error; a payload that is not
// a JSON object is an error. A payload that lacks fields its event must
// carry still yields subjects, marked Invalid, so that it is denied.
func Normalize(d Delivery) ([]Subject, error) {
	if kind := jsonValueKind(d.Payload); kind != "object" {
		return nil, d.errorf("payload must be a JSON object (a webhook body), got %s", kind)
	}
	var p payload
	// The few fields read, out of tens of kilobytes: trimmed first, the
	// payload decodes as it would whole in a fraction of the time; the
	// whole payload again gives any error its own words.
	if trimmed, ok := jsontext.Trim(d.Payload, payloadType); !ok || json.Unmarshal(trimmed, &p) != nil {
		p = payload{}
		if err := json.Unmarshal(d.Payload, &p); err != nil {
			return nil, d.errorf("payload: %w", err)
		}
	}
	ignore := func(format string, args ...any) ([]Subject, error) {
		return nil, &NotPolicyEvent{Reason: fmt.Sprintf(format, args...)}
	}
	repo, repoErr := ParseRepo("")
	if p.Repository != nil {
		repo, repoErr = ParseRepo(p.Repository.FullName)
	}
	base := Subject{Event: d.Event, Action: p.Action, DeliveryID: d.ID, Sender: p.Sender.Login, Repo: repo}
	if p.Repository != nil {
		base.Repository = p.Repository.info()
	}
	if repoErr != nil {
		base.Invalid = append(base.Invalid, "repository.full_name is missing or not owner/name as GitHub names them")
	}
	switch d.Event {
	case "pull_request", "pull_request_review":
		if !slices.Contains(decidedActions[d.Event], p.Action) {
			return ignore("%s %s", d.Event, p.Action)
		}
		return []Subject{prSubject(base, p.PullRequest)}, nil
	case "check_run", "check_suite":
		check := p.CheckRun
		if d.Event == "check_suite" {
			check = p.CheckSuite
		}
		switch {
		case !slices.Contains(decidedActions[d.Event], p.Action):
			return ignore("%s %s", d.Event, p.Action)
		case check == nil:
			return ignore("%s %s without a %s", d.Event, p.Action, d.Event)
		case p.Action == "rerequested" && check.Name == "":
			// Only a re-run of one of gitpoli's checks asks for a
			// decision; which one is the engine's to say
			// (Engine.PoliciesFor).
			return ignore("check_run rerequested without a check name")
		case p.Action == "completed" && IsOwnCheck(check.Name):
			return ignore("%s completed: %q is gitpoli's own", d.Event, check.Name)
		case len(check.PullRequests) == 0:
			return ignore("%s %s with no pull request", d.Event, p.Action)
		}
		var subjects []Subject
		for _, pr := range check.PullRequests {
			s := base
			s.Invalid = slices.Clone(base.Invalid)
			s.SHA = check.HeadSHA
			if p.Action == "rerequested" {
				// GitHub sends a re-run only to the App that owns the
				// check: this App's own, to be decided again.
				s.CheckName = check.Name
			} else {
				s.AppID = check.appID()
			}
			if !ValidSHA(s.SHA) {
				s.Invalid = append(s.Invalid, d.Event+".head_sha is missing or not a commit SHA")
			}
			if pr.Number <= 0 {
				s.Invalid = append(s.Invalid, d.Event+".pull_requests[].number is missing")
			}
			s.PRRef = &PR{Repo: repo, Number: pr.Number}
			s.ConfigRef = pr.Base.Ref
			subjects = append(subjects, s)
		}
		return subjects, nil
	case "status":
		s := base
		s.SHA, s.byHeadSHA = p.SHA, true
		if !ValidSHA(s.SHA) {
			s.Invalid = append(slices.Clone(s.Invalid), "status.sha is missing or not a commit SHA")
		}
		return []Subject{s}, nil
	case "merge_group":
		if p.Action != "checks_requested" {
			return ignore("merge_group %s", p.Action)
		}
		return []Subject{mergeGroupSubject(base, p)}, nil
	case "deployment_protection_rule":
		if p.Action != "requested" {
			return ignore("deployment_protection_rule %s", p.Action)
		}
		return []Subject{deploySubject(base, p)}, nil
	case "":
		return nil, d.errorf("no event name")
	}
	return ignore("%s events decide nothing", d.Event)
}

// queueRef is the branch GitHub's merge queue makes for a group:
// gh-readonly-queue/<base>/pr-<number>-<base sha>, the number being the
// pull request the group's head merges.
var queueRef = regexp.MustCompile(`^(?:refs/heads/)?gh-readonly-queue/.+/pr-([0-9]{1,10})-[0-9a-f]{40,64}$`)

// mergeGroupSubject is a merge queue's group: the pull request its head
// merges is decided, and the check is posted on the group's head.
func mergeGroupSubject(s Subject, p payload) Subject {
	s.Invalid = slices.Clone(s.Invalid)
	m := p.MergeGroup
	if m == nil {
		s.Invalid = append(s.Invalid, "merge_group is missing")
		return s
	}
	s.MergeGroup = &MergeGroupInfo{HeadSHA: m.HeadSHA, HeadRef: m.HeadRef, BaseSHA: m.BaseSHA, BaseRef: m.BaseRef}
	s.SHA = m.HeadSHA
	if !ValidSHA(s.SHA) {
		s.Invalid = append(s.Invalid, "merge_group.head_sha is missing or not a commit SHA")
	}
	s.ConfigRef = strings.TrimPrefix(m.BaseRef, "refs/heads/")
	if s.ConfigRef == "" {
		s.Invalid = append(s.Invalid, "merge_group.base_ref is missing")
	}
	match := queueRef.FindStringSubmatch(m.HeadRef)
	n, err := 0, error(nil)
	if match != nil {
		n, err = strconv.Atoi(match[1])
	}
	if match == nil || err != nil || n <= 0 {
		s.Invalid = append(s.Invalid, "merge_group.head_ref names no pull request (want gh-readonly-queue/<base>/pr-<number>-<sha>)")
		return s
	}
	s.PRRef = &PR{Repo: s.Repo, Number: n}
	return s
}

func (r *payloadRepo) info() *RepositoryInfo {
	info := &RepositoryInfo{FullName: r.FullName, Name: r.Name, DefaultBranch: r.DefaultBranch,
		Private: r.Private, Visibility: r.Visibility, Topics: r.Topics}
	if r.Owner != nil {
		info.Owner = r.Owner.Login
	}
	if info.Topics == nil {
		info.Topics = []string{}
	}
	return info
}

func (p *payloadPR) info(repo Repo) PullRequestInfo {
	labels := make([]string, 0, len(p.Labels))
	for _, l := range p.Labels {
		labels = append(labels, l.Name)
	}
	pr := PullRequestInfo{
		PR:                PR{Repo: repo, Number: p.Number},
		Author:            p.User.Login,
		AuthorAssociation: p.AuthorAssociation,
		Title:             p.Title,
		Draft:             p.Draft,
		Labels:            labels,
		HeadRef:           p.Head.Ref,
		HeadLabel:         p.Head.Label,
		HeadRepo:          p.Head.Repo.FullName,
		HeadSHA:           p.Head.SHA,
		BaseRef:           p.Base.Ref,
		BaseSHA:           p.Base.SHA,
		State:             p.State,
		Additions:         p.Additions,
		Deletions:         p.Deletions,
		ChangedFiles:      p.ChangedFiles,
		Commits:           p.Commits,
	}
	if p.Body != nil {
		pr.Body = *p.Body
	}
	return pr
}

func prSubject(s Subject, p *payloadPR) Subject {
	s.Invalid = slices.Clone(s.Invalid)
	if p == nil {
		s.Invalid = append(s.Invalid, "pull_request is missing")
		return s
	}
	pr := p.info(s.Repo)
	if pr.Number <= 0 {
		s.Invalid = append(s.Invalid, "pull_request.number is missing")
	}
	if !ValidSHA(pr.HeadSHA) {
		s.Invalid = append(s.Invalid, "pull_request.head.sha is missing or not a commit SHA")
	}
	if pr.BaseRef == "" {
		s.Invalid = append(s.Invalid, "pull_request.base.ref is missing")
	}
	s.PR, s.SHA, s.ConfigRef = &pr, pr.HeadSHA, pr.BaseRef
	return s
}

// jsonValueKind names the kind of JSON value data begins with.
func jsonValueKind(data []byte) string {
	t := bytes.TrimLeft(data, " \t\r\n")
	if len(t) == 0 {
		return "nothing"
	}
	switch t[0] {
	case '{':
		return "object"
	case '[':
		return "an array"
	case '"':
		return "a string"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	}
	return "a number"
}

// maxEnvironment is GitHub's limit on an environment's name, in
// characters.
const maxEnvironment = 255

// cutRunes keeps at most n characters of s, never half of one.
func cutRunes(s string, n int) string {
	for i := range s {
		if n == 0 {
			return s[:i]
		}
		n--
	}
	return s
}

// callbackPath is the only shape a deployment callback URL may have.
var callbackPath = regexp.MustCompile(`^/(?:api/v3/)?repos/([^/]+)/([^/]+)/actions/runs/([0-9]+)/deployment_protection_rule$`)

func deploySubject(s Subject, p payload) Subject {
	s.Invalid = slices.Clone(s.Invalid)
	s.Environment = p.Environment
	// GitHub's environment names are at most 255 characters; a longer one
	// is no environment of a repository, and would be stored with every
	// decision.
	if s.Environment != nil && utf8.RuneCountInString(*s.Environment) > maxEnvironment {
		s.Invalid = append(s.Invalid, fmt.Sprintf("environment is longer than GitHub's %d characters", maxEnvironment))
		short := cutRunes(*s.Environment, maxEnvironment)
		s.Environment = &short
	}
	if p.Repository != nil {
		s.ConfigRef = p.Repository.DefaultBranch
	}
	if s.ConfigRef == "" {
		s.Invalid = append(s.Invalid, "repository.default_branch is missing")
	}
	if dep := p.Deployment; dep != nil {
		s.SHA = dep.SHA
		if !ValidSHA(dep.SHA) {
			s.Invalid = append(s.Invalid, "deployment.sha is missing or not a commit SHA")
		}
		s.Deployment = &DeploymentInfo{ID: dep.ID, Environment: dep.Environment, SHA: dep.SHA, Task: dep.Task, Creator: dep.Creator.Login}
		s.Deployment.Environment = cutRunes(dep.Environment, maxEnvironment)
		if dep.Ref != nil {
			ref := deploymentRef(*dep.Ref, s.SHA)
			s.Ref = &ref
			s.Deployment.Ref = *dep.Ref
		}
	}
	// The run id appears only in the callback URL. It must name this
	// repository: the URL comes from the payload. Zero means there is no
	// run to answer, which the server treats as a failure of its own.
	if u, err := url.Parse(p.DeploymentCallbackURL); err == nil {
		if m := callbackPath.FindStringSubmatch(u.Path); m != nil && strings.EqualFold(m[1]+"/"+m[2], s.Repo.String()) {
			s.RunID, _ = strconv.ParseInt(m[3], 10, 64)
		}
	}
	if len(p.PullRequests) > 0 {
		pr := p.PullRequests[0].info(s.Repo)
		s.PR = &pr
	}
	return s
}

var fullSHA = regexp.MustCompile(`^[0-9a-f]{40}$`)

// deploymentRef turns a deployment's ref into the full ref the policy
// matches. GitHub gives a short branch name ("develop"); a full ref is kept;
// a commit SHA is kept as it is, so that no branch rule can admit it.
func deploymentRef(ref, sha string) string {
	switch {
	case strings.HasPrefix(ref, "refs/"):
		return ref
	case fullSHA.MatchString(ref) || (ref != "" && ref == sha):
		return ref
	case ref == "":
		return ""
	}
	return "refs/heads/" + ref
}

// errorf is an error about the delivery, naming it when it has an id.
func (d Delivery) errorf(format string, args ...any) error {
	err := fmt.Errorf(format, args...)
	if d.ID == "" {
		return err
	}
	return fmt.Errorf("delivery %s: %w", d.ID, err)
}
