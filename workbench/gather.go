package workbench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/hmarr/codeowners"
)

// FactKeys are the input keys whose values GitHub's API gives, each for
// requests of its own; every other key comes from the delivery itself. A
// fact is gathered only for a subject some policy deciding it can read
// its key (readsOf), once, however many policies read it.
var FactKeys = []string{
	"workflow_meta", "repo_environments", "files", "commits", "reviews",
	"checks", "teams", "codeowners", "pull_requests",
}

// Gathered is a delivery normalized into the subjects it asks to be
// decided. The facts of each subject are gathered as the policies that
// decide it need them, and kept: a replay after a policy change fetches
// only what the changed policies read and nothing read before.
type Gathered struct {
	// Ignored says why the delivery decides nothing; then there are no
	// subjects.
	Ignored  string
	Subjects []GatheredSubject
}

// GatheredSubject is one subject with the facts gathered for it so far.
type GatheredSubject struct {
	Subject Subject
	st      *subjectState
	// today, when set, replaces the deployment count of the input: serve
	// counts under its own lock, after gathering.
	today *int
}

// Gather normalizes a delivery. Facts are gathered when a policy first
// needs them (Prepare, or deciding). An ignored delivery is a Gathered
// with Ignored set, not an error; a payload that is not a JSON object is
// an error. The pull request a check run or a commit status names is
// fetched now: what is decided depends on it.
func Gather(ctx context.Context, d Delivery, facts Facts, opts GatherOptions) (*Gathered, error) {
	subjects, err := Normalize(d)
	var npe *NotPolicyEvent
	if errors.As(err, &npe) {
		return &Gathered{Ignored: npe.Reason}, nil
	}
	if err != nil {
		return nil, err
	}
	g := &Gathered{}
	for _, s := range subjects {
		g.Subjects = append(g.Subjects, newSubjectState(ctx, s, facts, opts)...)
	}
	if len(subjects) > 0 && len(g.Subjects) == 0 {
		return &Gathered{Ignored: fmt.Sprintf("%s: no open pull request has %s as its head", d.Event, subjects[0].SHA)}, nil
	}
	return g, nil
}

// GatherAll gathers every fact of every subject, teams only those owning
// a changed file (the others are named by configs): what a recording
// keeps, so that it replays with any policy later.
func (g *Gathered) GatherAll(ctx context.Context) {
	all := inputReads{anyKey: true}
	for _, gs := range g.Subjects {
		gs.st.gather(ctx, all, nil)
	}
}

// Input is the subject's input document as gathered so far.
func (gs GatheredSubject) Input() Input {
	gs.st.mu.Lock()
	in := gs.st.input
	gs.st.mu.Unlock()
	if gs.today != nil {
		in = in.withDeploymentsToday(*gs.today)
	}
	return in
}

// Requests is what gathering the subject's facts has cost so far.
func (gs GatheredSubject) Requests() Requests { return gs.st.tally.load() }

// WithDeploymentsToday returns the subject with the day's deployment count
// in its input: the count is taken under the caller's lock, after the slow
// gathering.
func (gs GatheredSubject) WithDeploymentsToday(n int) (GatheredSubject, error) {
	gs.today = &n
	return gs, nil
}

// subjectState is what has been gathered for a subject; copies of a
// GatheredSubject share it.
type subjectState struct {
	facts Facts
	opts  GatherOptions
	tally *requestTally

	mu      sync.Mutex
	subject Subject
	doc     map[string]any // the input document so far
	extra   []Violation    // fact.unavailable and delivery.invalid
	done    map[string]bool
	input   Input         // doc, converted; nil obj when doc changed since
	teams   map[Team]bool // fetched, or failed to be
	named   *namedTeams   // the teams the last engine's configs name

	configs *repoConfigs

	reviews    memo[[]Review]
	commits    memo[[]Commit]
	checks     memo[[]CheckRun]
	files      memo[[]File]
	codeowners memo[Codeowners]
}

// memo holds one fetch's result. A fetch whose context ended is not
// GitHub's answer and is tried again.
type memo[T any] struct {
	done bool
	v    T
	err  error
}

func (m *memo[T]) get(ctx context.Context, fetch func(context.Context) (T, error)) (T, error) {
	if !m.done {
		v, err := fetch(ctx)
		if ctx.Err() != nil {
			return v, err
		}
		m.v, m.err, m.done = v, err, true
	}
	return m.v, m.err
}

// newSubjectState starts a subject's gathering: the pull request a
// subject names only by number is fetched, and a commit status's subject
// becomes one per open pull request with that head.
func newSubjectState(ctx context.Context, s Subject, facts Facts, opts GatherOptions) []GatheredSubject {
	if len(s.Invalid) > 0 {
		// What the payload names cannot be trusted into an API path: no
		// request is sent for it, and the decision denies.
		facts = refusedFacts{fmt.Errorf("%w: not asked, the delivery is invalid (%s)", ErrFactUnavailable, strings.Join(s.Invalid, "; "))}
	}
	tally := &requestTally{}
	tctx := withTally(ctx, tally)
	var extra []Violation
	unavailable := func(err error, what string, keys ...string) {
		extra = append(extra, Violation{Code: CodeFactUnavailable, Msg: fmt.Sprintf("%s: %v", what, err), inputKeys: keys})
	}
	for _, msg := range s.Invalid {
		extra = append(extra, Violation{Code: CodeDeliveryInvalid, Msg: msg})
	}
	if s.PR == nil && s.PRRef != nil && s.PRRef.Number > 0 {
		pr, err := facts.PullRequest(tctx, *s.PRRef)
		if err != nil {
			// Without the pull request nothing about it is known: every
			// policy deciding it is denied, whatever it reads.
			unavailable(err, "pull request "+s.PRRef.String())
		} else {
			s.PR = &pr
			if s.SHA == "" {
				s.SHA = pr.HeadSHA
			}
			if s.ConfigRef == "" {
				s.ConfigRef = pr.BaseRef
			}
		}
	}
	if s.byHeadSHA && len(s.Invalid) == 0 {
		// A commit status names a commit, not a pull request: each open
		// pull request whose head it is is decided again.
		prs, err := facts.PullRequestsOf(tctx, s.Repo, s.SHA)
		if err != nil {
			unavailable(err, "pull requests of "+s.SHA)
		} else {
			var out []GatheredSubject
			for _, pr := range prs {
				if pr.State != "open" || pr.HeadSHA != s.SHA {
					continue
				}
				ps := s
				ps.PR, ps.ConfigRef = &pr, pr.BaseRef
				out = append(out, newState(ps, facts, opts, tally, extra))
			}
			return out
		}
	}
	return []GatheredSubject{newState(s, facts, opts, tally, extra)}
}

func newState(s Subject, facts Facts, opts GatherOptions, tally *requestTally, extra []Violation) GatheredSubject {
	st := &subjectState{facts: facts, opts: opts, tally: tally, subject: s, doc: eventInput(s),
		extra: slices.Clone(extra), done: map[string]bool{}, teams: map[Team]bool{}}
	if !opts.LocalConfig {
		st.configs = &repoConfigs{facts: facts, subject: s, got: map[string]*repoConfig{}, tally: tally}
	}
	return GatheredSubject{Subject: s, st: st}
}

// gather gathers the facts of keys not yet gathered, and the members of
// teams not yet fetched, and returns the input document and what could
// not be had.
func (st *subjectState) gather(ctx context.Context, keys inputReads, teams []Team) (Input, []Violation) {
	st.mu.Lock()
	defer st.mu.Unlock()
	ctx = withTally(ctx, st.tally)
	changed := st.input.obj == nil
	for _, key := range FactKeys {
		if !keys.has(key) || st.done[key] || key == "teams" {
			continue
		}
		before := len(st.extra)
		st.gatherKey(ctx, key)
		if ctx.Err() != nil {
			// Not GitHub's answer: a later decision tries again.
			st.extra = st.extra[:before]
			continue
		}
		st.done[key] = true
		changed = true
	}
	if keys.has("teams") {
		if keys.has("codeowners") {
			teams = append(slices.Clone(teams), st.ownerTeams()...)
		}
		for _, t := range teams {
			if _, fetched := st.teams[t]; !fetched {
				before := len(st.extra)
				st.teamMembers(ctx, t)
				if ctx.Err() != nil {
					st.extra = st.extra[:before]
				}
				changed = true
			}
		}
		if _, ok := st.doc["teams"]; !ok {
			st.doc["teams"] = map[string]any{}
			changed = true
		}
	}
	if changed {
		in, err := NewInput(st.doc)
		if err != nil {
			st.extra = append(st.extra, Violation{Code: CodeFactUnavailable, Msg: "input: " + err.Error()})
		}
		st.input = in
	}
	return st.input, slices.Clone(st.extra)
}

// unavailable records a fact that could not be had. keys are the input
// keys it would have filled: only a policy that can read one of them is
// denied for it (none: every policy is).
func (st *subjectState) unavailable(err error, what string, keys ...string) {
	msg := err.Error()
	if what != "" {
		msg = what + ": " + msg
	}
	v := Violation{Code: CodeFactUnavailable, Msg: msg, inputKeys: keys}
	st.extra = append(st.extra, v)
}

func (st *subjectState) gatherKey(ctx context.Context, key string) {
	s := st.subject
	pr := s.PR
	switch key {
	case "workflow_meta":
		st.workflowMeta(ctx)
	case "repo_environments":
		if !s.IsDeployment() || s.Repo.Owner == "" {
			return
		}
		envs, err := st.facts.Environments(ctx, s.Repo)
		if err != nil {
			st.unavailable(err, "environments of "+s.Repo.String(), key)
			return
		}
		st.doc[key] = anySlice(envs)
	case "files":
		if pr == nil {
			st.unavailable(errors.New("no pull request behind this "+s.Event), "files", key)
			return
		}
		if files, ok := st.fileList(ctx, key); ok {
			out := make([]any, len(files))
			for i, f := range files {
				m := map[string]any{"filename": f.Filename, "status": f.Status,
					"additions": f.Additions, "deletions": f.Deletions, "changes": f.Changes}
				if f.PreviousFilename != "" {
					m["previous_filename"] = f.PreviousFilename
				}
				out[i] = m
			}
			st.doc[key] = out
		}
	case "commits":
		commits, err := st.commitList(ctx)
		if err != nil {
			st.unavailable(err, "", key)
			return
		}
		out := make([]any, len(commits))
		for i, c := range commits {
			out[i] = map[string]any{"sha": c.SHA, "message": c.Message,
				"author": personInput(c.Author), "committer": personInput(c.Committer),
				"verified": c.Verified, "signed_off": hasSignOff(c.Message)}
		}
		st.doc[key] = out
	case "reviews":
		if pr == nil && s.IsDeployment() {
			// A push deployment has no pull request and so no reviews.
			st.doc[key] = []any{}
			return
		}
		if pr == nil {
			st.unavailable(errors.New("no pull request to read them of"), "reviews", key)
			return
		}
		reviews, err := st.reviews.get(ctx, func(ctx context.Context) ([]Review, error) { return st.facts.Reviews(ctx, pr.PR) })
		if err != nil {
			st.unavailable(err, "reviews of "+pr.PR.String(), key)
			return
		}
		st.doc[key] = latestReviews(reviews, pr.Author, pr.HeadSHA)
	case "checks":
		checks, err := st.checkList(ctx)
		if err != nil {
			st.unavailable(err, "", key)
			return
		}
		out := []any{}
		for _, c := range checks {
			if IsOwnCheck(c.Name) {
				continue
			}
			out = append(out, map[string]any{"name": c.Name, "status": c.Status, "conclusion": c.Conclusion, "type": c.Type})
		}
		st.doc[key] = out
	case "codeowners":
		st.codeownersInput(ctx)
	case "pull_requests":
		if !s.IsDeployment() || s.Repo.Owner == "" || s.SHA == "" {
			return
		}
		prs, err := st.facts.PullRequestsOf(ctx, s.Repo, s.SHA)
		if err != nil {
			st.unavailable(err, "pull requests of "+s.SHA, key)
			return
		}
		out := make([]any, len(prs))
		for i := range prs {
			out[i] = prInput(&prs[i])
		}
		st.doc[key] = out
	}
}

// workflowMeta is the seed's input.workflow_meta: approvers and sign-off,
// and for a deployment its checks and the day's count.
func (st *subjectState) workflowMeta(ctx context.Context) {
	const key = "workflow_meta"
	s := st.subject
	meta := map[string]any{}
	if s.PR != nil {
		pr := *s.PR
		reviews, err := st.reviews.get(ctx, func(ctx context.Context) ([]Review, error) { return st.facts.Reviews(ctx, pr.PR) })
		if err != nil {
			st.unavailable(err, "reviews of "+pr.PR.String(), key)
		} else {
			meta["approvers"] = anySlice(latestApprovers(reviews, pr.Author))
		}
	} else if s.IsDeployment() && s.SHA != "" && s.Repo.Owner != "" {
		// A push deployment has no pull request and so no reviews: no
		// approvers.
		meta["approvers"] = []any{}
	}
	if s.PR != nil || (s.IsDeployment() && s.SHA != "" && s.Repo.Owner != "") {
		commits, err := st.commitList(ctx)
		if err != nil {
			st.unavailable(err, "", key)
		} else {
			meta["signed_off"] = signedOff(commits)
		}
	}
	if s.IsDeployment() {
		if s.SHA != "" && s.Repo.Owner != "" {
			checks, err := st.checkList(ctx)
			if err != nil {
				st.unavailable(err, "", key)
			} else {
				meta["checks"] = map[string]any{"tests": testsPassed(checks)}
			}
		}
		switch {
		case st.opts.DeploymentsToday != nil:
			meta["deployments_today"] = *st.opts.DeploymentsToday
		case !st.opts.CountLater:
			st.unavailable(errors.New("not supplied"), "deployments today", key)
		}
	}
	st.doc[key] = meta
}

// commitList is the pull request's commits, or a push deployment's one
// commit.
func (st *subjectState) commitList(ctx context.Context) ([]Commit, error) {
	s := st.subject
	return st.commits.get(ctx, func(ctx context.Context) ([]Commit, error) {
		switch {
		case s.PR != nil:
			commits, err := st.facts.Commits(ctx, s.PR.PR)
			if err != nil {
				return nil, fmt.Errorf("commits of %s: %w", s.PR.PR, err)
			}
			// The payload's count may be older than the list: only the
			// list's own length says it was cut.
			if len(commits) >= MaxListedCommits {
				return nil, fmt.Errorf("commits of %s: %w: GitHub lists at most %d commits of a pull request, and this one may have more", s.PR.PR, ErrFactUnavailable, MaxListedCommits)
			}
			return commits, nil
		case s.IsDeployment() && s.SHA != "" && s.Repo.Owner != "":
			// A push deployment's one commit.
			c, err := st.facts.Commit(ctx, s.Repo, s.SHA)
			if err != nil {
				return nil, fmt.Errorf("commit %s: %w", s.SHA, err)
			}
			return []Commit{c}, nil
		}
		return nil, fmt.Errorf("commits: %w: the delivery names no pull request or commit", ErrFactUnavailable)
	})
}

// checkList is the checks on the commit decided: a pull request's head
// or the deployed commit.
func (st *subjectState) checkList(ctx context.Context) ([]CheckRun, error) {
	s := st.subject
	sha := s.SHA
	if s.PR != nil && s.PR.HeadSHA != "" {
		sha = s.PR.HeadSHA
	}
	return st.checks.get(ctx, func(ctx context.Context) ([]CheckRun, error) {
		if sha == "" || s.Repo.Owner == "" {
			return nil, fmt.Errorf("checks: %w: the delivery names no commit", ErrFactUnavailable)
		}
		checks, err := st.facts.Checks(ctx, s.Repo, sha)
		if err != nil {
			return nil, fmt.Errorf("checks of %s: %w", sha, err)
		}
		return checks, nil
	})
}

func (st *subjectState) fileList(ctx context.Context, key string) ([]File, bool) {
	pr := st.subject.PR
	files, err := st.files.get(ctx, func(ctx context.Context) ([]File, error) {
		files, err := st.facts.Files(ctx, pr.PR)
		if err != nil {
			return nil, err
		}
		if len(files) >= MaxListedFiles {
			return nil, fmt.Errorf("%w: GitHub lists at most %d files of a pull request, and this one may change more", ErrFactUnavailable, MaxListedFiles)
		}
		return files, nil
	})
	if err != nil {
		st.unavailable(err, "files of "+pr.PR.String(), key)
		return nil, false
	}
	return files, true
}

// codeownersInput maps each changed file to its owners, as the
// CODEOWNERS file on the base branch names them ("@login", "@org/team",
// or an email); a file no rule matches has none. With no CODEOWNERS
// file, no file has an owner.
func (st *subjectState) codeownersInput(ctx context.Context) {
	const key = "codeowners"
	s := st.subject
	if s.PR == nil {
		st.unavailable(errors.New("no pull request behind this "+s.Event), key, key)
		return
	}
	files, ok := st.fileList(ctx, key)
	if !ok {
		return
	}
	rules, err := st.codeownersRules(ctx)
	if err != nil {
		st.unavailable(err, key, key)
		return
	}
	out := make(map[string]any, len(files))
	for _, f := range files {
		owners := []any{}
		if rule, err := rules.Match(f.Filename); err == nil && rule != nil {
			for _, o := range rule.Owners {
				owners = append(owners, o.String())
			}
		}
		out[f.Filename] = owners
	}
	st.doc[key] = out
}

func (st *subjectState) codeownersRules(ctx context.Context) (codeowners.Ruleset, error) {
	s := st.subject
	file, err := st.codeowners.get(ctx, func(ctx context.Context) (Codeowners, error) {
		if s.Repo.Owner == "" || s.ConfigRef == "" {
			return Codeowners{}, fmt.Errorf("%w: the delivery names no base branch", ErrFactUnavailable)
		}
		return st.facts.CodeownersFile(ctx, s.Repo, s.ConfigRef)
	})
	if errors.Is(err, ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("CODEOWNERS of %s@%s: %w", s.Repo, s.ConfigRef, err)
	}
	rules, err := codeowners.ParseFile(bytes.NewReader(file.Data))
	if err != nil {
		return nil, fmt.Errorf("%s@%s:%s: %w", s.Repo, s.ConfigRef, file.Path, err)
	}
	return rules, nil
}

// ownerTeams lists the teams that own a changed file: a team's approval
// is a member's.
func (st *subjectState) ownerTeams() []Team {
	owners, _ := st.doc["codeowners"].(map[string]any)
	set := map[Team]bool{}
	for _, list := range owners {
		for _, o := range list.([]any) {
			if t, err := ParseTeam(o.(string)); err == nil {
				set[t] = true
			}
		}
	}
	return sortedTeams(set)
}

// teamMembers fetches a team's members into input.teams["org/slug"].
func (st *subjectState) teamMembers(ctx context.Context, t Team) {
	members, err := st.facts.TeamMembers(ctx, t)
	if ctx.Err() == nil {
		st.teams[t] = true
	}
	if err != nil {
		what := "members of team " + t.String()
		if errors.Is(err, ErrNotFound) || strings.Contains(err.Error(), "403") {
			what += " (a GitHub App needs the organization's members: read permission)"
		}
		st.unavailable(err, what, "teams")
		return
	}
	m, _ := st.doc["teams"].(map[string]any)
	if m == nil {
		m = map[string]any{}
	}
	// A new map: inputs already made from the old one stay as they were.
	out := make(map[string]any, len(m)+1)
	for k, v := range m {
		out[k] = v
	}
	out[t.String()] = anySlice(members)
	st.doc["teams"] = out
}

// teamsNamed lists the teams a config document names: each string of a
// "teams" list, or a "team" string, at any depth.
func teamsNamed(v any, into map[Team]bool) {
	switch v := v.(type) {
	case map[string]any:
		for k, x := range v {
			switch k {
			case "teams":
				if list, ok := x.([]any); ok {
					for _, item := range list {
						if s, ok := item.(string); ok {
							if t, err := ParseTeam(s); err == nil {
								into[t] = true
							}
						}
					}
					continue
				}
			case "team":
				if s, ok := x.(string); ok {
					if t, err := ParseTeam(s); err == nil {
						into[t] = true
					}
					continue
				}
			}
			teamsNamed(x, into)
		}
	case []any:
		for _, x := range v {
			teamsNamed(x, into)
		}
	}
}

func sortedTeams(set map[Team]bool) []Team {
	out := make([]Team, 0, len(set))
	for t := range set {
		out = append(out, t)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].String() < out[j].String() })
	return out
}

func personInput(p Person) map[string]any {
	m := map[string]any{"login": p.Login, "name": p.Name, "email": p.Email}
	if !p.Date.IsZero() {
		m["date"] = p.Date.UTC().Format(time.RFC3339)
	}
	return m
}

// latestReviews is input.reviews: each reviewer's latest review that
// says something (APPROVED, CHANGES_REQUESTED or DISMISSED; a later
// COMMENTED one does not cancel an approval, as on GitHub), or their
// latest comment when that is all they gave. The author's own never
// count; a pending review is not yet given.
func latestReviews(reviews []Review, author, head string) []any {
	type entry struct {
		r     Review
		final bool
	}
	latest := map[string]entry{}
	var order []string
	for _, r := range reviews {
		user := strings.ToLower(r.User)
		if user == "" || strings.EqualFold(r.User, author) {
			continue
		}
		state := strings.ToUpper(r.State)
		final := state == "APPROVED" || state == "CHANGES_REQUESTED" || state == "DISMISSED"
		if !final && state != "COMMENTED" {
			continue
		}
		prev, seen := latest[user]
		if !seen {
			order = append(order, user)
		}
		if final || !prev.final {
			latest[user] = entry{r, final}
		}
	}
	out := make([]any, 0, len(order))
	for _, u := range order {
		r := latest[u].r
		m := map[string]any{"user": map[string]any{"login": r.User}, "state": strings.ToUpper(r.State),
			"commit_id": r.CommitID, "on_head": head != "" && r.CommitID == head}
		if !r.SubmittedAt.IsZero() {
			m["submitted_at"] = r.SubmittedAt.UTC().Format(time.RFC3339)
		}
		out = append(out, m)
	}
	return out
}

// MissingFacts lists the facts policy p can read that a recorded input
// document lacks: a decision made before p read them (or before gitpoli
// gathered them). Deciding such a record again says nothing about p: it
// would deny for want of facts GitHub had.
func (e *Engine) MissingFacts(p Policy, in Input) []string {
	reads := e.reads[p]
	deployment := in.Has("deployment")
	var out []string
	for _, key := range FactKeys {
		switch {
		case !reads.has(key) || in.Has(key):
		case !deployment && (key == "repo_environments" || key == "pull_requests"):
			// Never a pull request's fact.
		default:
			out = append(out, key)
		}
	}
	return out
}

// Prefilter is Prefilter, and says too when no policy of e decides the
// delivery's event and action: a commit status or another App's check
// run, of which a busy repository sends many, is then not queued, and
// costs no request.
func (e *Engine) Prefilter(d Delivery) error {
	if err := Prefilter(d); err != nil {
		return err
	}
	action, _ := PayloadAction(d.Payload)
	for _, spec := range e.policies {
		if spec.Decides(d.Event, action) || (d.Event == "check_run" && action == "rerequested" && spec.Answer == AnswerCheck) {
			return nil
		}
	}
	return &NotPolicyEvent{Reason: strings.TrimSpace(fmt.Sprintf("no policy decides %s %s", d.Event, action))}
}
