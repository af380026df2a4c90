package workbench

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
)

// GatherOptions says what a delivery's facts take from outside the
// delivery and GitHub.
type GatherOptions struct {
	// DeploymentsToday is the number of deployments to the environment
	// already made today; serve counts them in its audit log. Nil means
	// unknown: the fact is reported unavailable.
	DeploymentsToday *int
	// LocalConfig says the decision will use the workbench's own config,
	// so the repository's is not read.
	LocalConfig bool
	// CountLater says the caller supplies the deployment count after
	// gathering (WithDeploymentsToday), under its own lock.
	CountLater bool
}

// DeliveryOptions adds to GatherOptions how a delivery is decided.
type DeliveryOptions struct {
	GatherOptions
	// Config, when set, decides with this .repol config (the workbench's
	// own, for the repository being edited). When nil, the repository's
	// config, read through Facts from the subject's ConfigRef, decides.
	Config *Config
}

// Outcome is the decision of one policy on one subject of a delivery,
// with the input document it was made on.
type Outcome struct {
	Subject  Subject  `json:"subject"`
	Input    Input    `json:"input"`
	Decision Decision `json:"decision"`
	// Answer is how the policy answers GitHub.
	Answer Answer `json:"answer"`
	// CheckName is the check run an AnswerCheck policy posts.
	CheckName string `json:"check_name,omitempty"`
	// Config says where the policy's config came from: the repository's
	// file, the default (the server's or the workbench's .repol), or why
	// there was none.
	Config string `json:"config,omitempty"`
	// Requests counts the GitHub API requests gathering the subject's
	// facts has made so far, for every policy that decides it.
	Requests Requests `json:"requests"`
}

// Gathered is a delivery normalized, with the facts each subject needs
// fetched. It does not depend on policies, config or schemas, so a replay
// after a policy change decides it again without fetching anything (the
// repository's config files are read when a policy first asks for one,
// and kept).
type Gathered struct {
	// Ignored says why the delivery decides nothing; then there are no
	// subjects.
	Ignored  string
	Subjects []GatheredSubject
}

// GatheredSubject is one subject with its input document (before config)
// and the violations found while gathering.
type GatheredSubject struct {
	Subject Subject
	Input   Input
	doc     map[string]any
	extra   []Violation
	// configs reads the repository's .repol files at the subject's
	// ConfigRef, each once; nil when the decision uses a local config.
	configs *repoConfigs
	tally   *requestTally
}

// Gather normalizes a delivery and gathers the facts each subject needs.
// An ignored delivery is a Gathered with Ignored set, not an error; a
// payload that is not a JSON object is an error. Facts that cannot be had
// are left out of the input (so the policy denies for want of them) and
// reported as fact.unavailable violations.
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
		g.Subjects = append(g.Subjects, gatherSubject(ctx, s, facts, opts))
	}
	return g, nil
}

// ReadConfigs reads now the repository config files that the policies of
// e deciding g will read, so that deciding does no I/O (serve decides a
// deployment under a lock).
func (g *Gathered) ReadConfigs(ctx context.Context, e *Engine) {
	for _, gs := range g.Subjects {
		if gs.configs == nil {
			continue
		}
		for _, spec := range e.PoliciesFor(gs.Subject) {
			if spec.Config != "" {
				gs.configs.read(ctx, spec.Config)
			}
		}
	}
}

// DecideGathered decides every gathered subject with each policy that
// decides it. With local set, every policy's config is local's; otherwise
// it is the repository's own file, or, where the repository has none, the
// engine's (the server's default, or the workbench's .repol). A delivery
// that no policy decides gives no outcomes.
func (e *Engine) DecideGathered(ctx context.Context, g *Gathered, local *Config) []Outcome {
	var out []Outcome
	for _, gs := range g.Subjects {
		for _, spec := range e.PoliciesFor(gs.Subject) {
			out = append(out, e.DecideSubject(ctx, gs, spec, local))
		}
	}
	return out
}

// Undecided says why a gathered delivery gets no decision from e: it is
// ignored, or no policy decides its event.
func (e *Engine) Undecided(g *Gathered) string {
	if g.Ignored != "" {
		return g.Ignored
	}
	for _, gs := range g.Subjects {
		if len(e.PoliciesFor(gs.Subject)) > 0 {
			return ""
		}
	}
	if len(g.Subjects) == 0 {
		return "no subject to decide"
	}
	s := g.Subjects[0].Subject
	if s.CheckName != "" {
		return fmt.Sprintf("check_run rerequested for %q, which no policy posts", s.CheckName)
	}
	return fmt.Sprintf("no policy decides %s %s", s.Event, s.Action)
}

// DecideDelivery gathers and decides a delivery. It returns a
// *NotPolicyEvent error for a delivery that asks for no decision.
func (e *Engine) DecideDelivery(ctx context.Context, d Delivery, facts Facts, opts DeliveryOptions) ([]Outcome, error) {
	gopts := opts.GatherOptions
	gopts.LocalConfig = gopts.LocalConfig || opts.Config != nil
	g, err := Gather(ctx, d, facts, gopts)
	if err != nil {
		return nil, err
	}
	if reason := e.Undecided(g); reason != "" {
		return nil, &NotPolicyEvent{Reason: reason}
	}
	return e.DecideGathered(ctx, g, opts.Config), nil
}

func gatherSubject(ctx context.Context, s Subject, facts Facts, opts GatherOptions) GatheredSubject {
	if len(s.Invalid) > 0 {
		// What the payload names cannot be trusted into an API path: no
		// request is sent for it, and the decision denies.
		facts = refusedFacts{fmt.Errorf("%w: not asked, the delivery is invalid (%s)", ErrFactUnavailable, strings.Join(s.Invalid, "; "))}
	}
	tally := &requestTally{}
	ctx = withTally(ctx, tally)
	g := gatherer{ctx: ctx, facts: facts}
	for _, msg := range s.Invalid {
		g.extra = append(g.extra, Violation{Code: CodeDeliveryInvalid, Msg: msg})
	}
	if s.PR == nil && s.PRRef != nil && s.PRRef.Number > 0 {
		pr, err := facts.PullRequest(ctx, *s.PRRef)
		if g.ok(err, "pull request "+s.PRRef.String(), "pull_request", "head_ref", "base_ref", "workflow_meta") {
			s.PR = &pr
			if s.SHA == "" {
				s.SHA = pr.HeadSHA
			}
			if s.ConfigRef == "" {
				s.ConfigRef = pr.BaseRef
			}
		}
	}
	doc := eventInput(s)
	if s.IsDeployment() {
		g.deployInput(doc, s, opts)
	} else {
		g.pullRequestInput(doc, s)
	}
	gs := GatheredSubject{Subject: s, tally: tally}
	if !opts.LocalConfig {
		gs.configs = &repoConfigs{facts: facts, subject: s, got: map[string]*repoConfig{}, tally: tally}
	}
	in, err := NewInput(doc)
	if err != nil {
		g.ok(err, "input")
	}
	gs.Input, gs.doc, gs.extra = in, doc, g.extra
	return gs
}

// WithDeploymentsToday returns the subject with the day's deployment count
// in its input: the count is taken under the caller's lock, after the slow
// gathering.
func (gs GatheredSubject) WithDeploymentsToday(n int) (GatheredSubject, error) {
	meta, ok := gs.doc["workflow_meta"].(map[string]any)
	if !ok {
		return gs, nil
	}
	doc := make(map[string]any, len(gs.doc))
	for k, v := range gs.doc {
		doc[k] = v
	}
	m := make(map[string]any, len(meta)+1)
	for k, v := range meta {
		m[k] = v
	}
	m["deployments_today"] = n
	doc["workflow_meta"] = m
	in, err := NewInput(doc)
	if err != nil {
		return gs, err
	}
	gs.doc, gs.Input = doc, in
	return gs, nil
}

// DecideSubject decides one gathered subject with one policy. Its config
// is local's when local is set; else the repository's own file; else,
// when GitHub says the repository has none, the engine's own (the
// server's default); and none when the repository's could not be read (a
// fact.unavailable, so the decision denies).
func (e *Engine) DecideSubject(ctx context.Context, gs GatheredSubject, spec *PolicySpec, local *Config) Outcome {
	s := gs.Subject
	// A fact that could not be had denies the policies that can read it.
	reads := e.reads[spec.Name]
	var extra []Violation
	for _, v := range gs.extra {
		if v.inputKeys == nil || slices.ContainsFunc(v.inputKeys, reads.has) {
			extra = append(extra, v)
		}
	}
	var cfg *ConfigFile
	source := ""
	switch {
	case spec.Config == "":
	case local != nil || gs.configs == nil:
		if local == nil {
			local = e.config
		}
		cfg = local.For(spec)
		source = "local " + local.Dir.file(spec.ConfigFile())
		if cfg == nil {
			source = "none: no " + local.Dir.file(spec.ConfigFile())
		}
	default:
		rc := gs.configs.read(ctx, spec.Config)
		switch {
		case rc.data != nil:
			var err error
			cfg, err = parseConfigFile(rc.file, rc.data, e.schemas.byName[spec.Config], e.schemas.problems[spec.Config])
			if err != nil {
				extra = append(extra, Violation{Code: CodeFactUnavailable, Msg: err.Error()})
			}
			source = "repository " + rc.file
		case rc.missing:
			cfg = e.config.For(spec)
			source = "default " + e.config.Dir.file(spec.ConfigFile())
			if cfg == nil {
				source = "none: neither the repository nor the default has " + spec.ConfigFile()
			}
		default:
			extra = append(extra, Violation{Code: CodeFactUnavailable, Msg: fmt.Sprintf("config %s: %v", rc.file, rc.err)})
			source = "unavailable: the repository's " + rc.file + " could not be read"
		}
	}
	d, _ := e.decide(ctx, spec.Name, gs.Input, cfg, extra, nil)
	o := Outcome{Subject: s, Input: gs.Input, Decision: d, Answer: spec.Answer, Config: source, Requests: gs.tally.load()}
	if spec.Answer == AnswerCheck {
		o.CheckName = spec.CheckName
	}
	return o
}

// repoConfigs reads a subject's repository config files, each once.
type repoConfigs struct {
	facts   Facts
	subject Subject
	mu      sync.Mutex
	got     map[string]*repoConfig
	tally   *requestTally
}

// repoConfig is one config file of a repository, as read: its data, or
// GitHub's word that there is none, or why it could not be read.
type repoConfig struct {
	file    string
	data    []byte
	missing bool
	err     error
}

// read reads .repol/<name>.yaml at the subject's ConfigRef. No file means
// the default applies; a failure to read it is a fact unavailable.
func (rc *repoConfigs) read(ctx context.Context, name string) *repoConfig {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if c, ok := rc.got[name]; ok {
		return c
	}
	s := rc.subject
	c := &repoConfig{file: fmt.Sprintf("%s@%s:.repol/%s", s.Repo, s.ConfigRef, configFile(name))}
	if s.Repo.Owner == "" || s.ConfigRef == "" {
		c.err = errors.New("the delivery names no repository or branch to read it from")
	} else {
		data, err := rc.facts.ConfigFile(withTally(ctx, rc.tally), s.Repo, s.ConfigRef, configFile(name))
		switch {
		case errors.Is(err, ErrNotFound):
			c.missing = true
		case err != nil:
			c.err = err
		default:
			c.data = data
		}
	}
	// A cancelled read is not GitHub's answer: a later decision tries again.
	if ctx.Err() == nil {
		rc.got[name] = c
	}
	return c
}

// gatherer collects facts for one subject, turning each failure into a
// fact.unavailable violation.
type gatherer struct {
	ctx   context.Context
	facts Facts
	extra []Violation
}

// ok reports whether err is nil; otherwise it records a fact.unavailable
// violation for what could not be had. keys are the input keys the fact
// would have filled: only a policy that can read one of them is denied for
// it (none: every policy is).
func (g *gatherer) ok(err error, what string, keys ...string) bool {
	if err == nil {
		return true
	}
	g.extra = append(g.extra, Violation{Code: CodeFactUnavailable, Msg: fmt.Sprintf("%s: %v", what, err), inputKeys: keys})
	return false
}

// eventInput is what the delivery itself says, for every policy and at
// no request: input.event, input.repository, and input.pull_request or
// input.deployment, named as GitHub's REST API names them.
func eventInput(s Subject) map[string]any {
	event := map[string]any{"name": s.Event}
	if s.Action != "" {
		event["action"] = s.Action
	}
	if s.DeliveryID != "" {
		event["delivery_id"] = s.DeliveryID
	}
	if s.Sender != "" {
		event["sender"] = map[string]any{"login": s.Sender}
	}
	doc := map[string]any{"event": event}
	if r := s.Repository; r != nil {
		doc["repository"] = map[string]any{
			"full_name": r.FullName, "owner": r.Owner, "name": r.Name, "default_branch": r.DefaultBranch,
			"private": r.Private, "visibility": r.Visibility, "topics": anySlice(r.Topics),
		}
	}
	if s.PR != nil {
		doc["pull_request"] = prInput(s.PR)
	}
	if d := s.Deployment; d != nil {
		dep := map[string]any{"environment": d.Environment, "ref": d.Ref, "sha": d.SHA, "task": d.Task}
		if d.ID != 0 {
			dep["id"] = d.ID
		}
		if d.Creator != "" {
			dep["creator"] = map[string]any{"login": d.Creator}
		}
		doc["deployment"] = dep
	}
	return doc
}

func prInput(pr *PullRequestInfo) map[string]any {
	labels := make([]any, len(pr.Labels))
	for i, l := range pr.Labels {
		labels[i] = map[string]any{"name": l}
	}
	head := map[string]any{"ref": pr.HeadRef, "sha": pr.HeadSHA, "label": pr.HeadLabel}
	if pr.HeadRepo != "" {
		head["repo"] = map[string]any{"full_name": pr.HeadRepo}
	}
	out := map[string]any{
		"number": pr.Number, "title": pr.Title, "body": pr.Body, "draft": pr.Draft, "state": pr.State,
		"labels":             labels,
		"user":               map[string]any{"login": pr.Author},
		"author_association": pr.AuthorAssociation,
		"head":               head,
		"base":               map[string]any{"ref": pr.BaseRef, "sha": pr.BaseSHA},
		"fork":               pr.FromFork(),
	}
	for key, n := range map[string]*int{"additions": pr.Additions, "deletions": pr.Deletions, "changed_files": pr.ChangedFiles} {
		if n != nil {
			out[key] = *n
		}
	}
	return out
}

// pullRequestInput adds the seed's pull request facts: head_ref, base_ref
// and workflow_meta.
func (g *gatherer) pullRequestInput(doc map[string]any, s Subject) {
	if s.PR == nil {
		return
	}
	pr := *s.PR
	// A fork's branch is not one of ours: its "main" must not pass for
	// main. The owner-qualified label says where it lives.
	head := pr.HeadRef
	if pr.FromFork() && pr.HeadLabel != "" {
		head = pr.HeadLabel
	}
	if head != "" {
		doc["head_ref"] = head
	}
	if pr.BaseRef != "" {
		doc["base_ref"] = pr.BaseRef
	}
	meta := map[string]any{}
	if approvers, ok := g.approvers(pr); ok {
		meta["approvers"] = approvers
	}
	if signed, ok := g.prSignedOff(pr); ok {
		meta["signed_off"] = signed
	}
	doc["workflow_meta"] = meta
}

func (g *gatherer) approvers(pr PullRequestInfo) ([]any, bool) {
	reviews, err := g.facts.Reviews(g.ctx, pr.PR)
	if !g.ok(err, "reviews of "+pr.PR.String(), "workflow_meta") {
		return nil, false
	}
	return anySlice(latestApprovers(reviews, pr.Author)), true
}

func (g *gatherer) prSignedOff(pr PullRequestInfo) (bool, bool) {
	commits, err := g.facts.Commits(g.ctx, pr.PR)
	if !g.ok(err, "commits of "+pr.PR.String(), "workflow_meta") {
		return false, false
	}
	return signedOff(commits), true
}

// deployInput adds the seed's deployment facts: environment, ref,
// repo_environments and workflow_meta.
func (g *gatherer) deployInput(doc map[string]any, s Subject, opts GatherOptions) {
	if s.Environment != nil {
		doc["environment"] = *s.Environment
	}
	if s.Ref != nil && *s.Ref != "" {
		doc["ref"] = *s.Ref
	}
	if s.Repo.Owner != "" {
		envs, err := g.facts.Environments(g.ctx, s.Repo)
		if g.ok(err, "environments of "+s.Repo.String(), "repo_environments") {
			doc["repo_environments"] = anySlice(envs)
		}
	}
	meta := map[string]any{}
	if s.PR != nil {
		if approvers, ok := g.approvers(*s.PR); ok {
			meta["approvers"] = approvers
		}
		if signed, ok := g.prSignedOff(*s.PR); ok {
			meta["signed_off"] = signed
		}
	} else if s.SHA != "" && s.Repo.Owner != "" {
		// A push deployment has no pull request and so no reviews: no
		// approvers. Its sign-off is the deployed commit's.
		meta["approvers"] = []any{}
		c, err := g.facts.Commit(g.ctx, s.Repo, s.SHA)
		if g.ok(err, "commit "+s.SHA, "workflow_meta") {
			meta["signed_off"] = signedOff([]Commit{c})
		}
	}
	if s.SHA != "" && s.Repo.Owner != "" {
		checks, err := g.facts.Checks(g.ctx, s.Repo, s.SHA)
		if g.ok(err, "checks of "+s.SHA, "workflow_meta") {
			meta["checks"] = map[string]any{"tests": testsPassed(checks)}
		}
	}
	switch {
	case opts.DeploymentsToday != nil:
		meta["deployments_today"] = *opts.DeploymentsToday
	case !opts.CountLater:
		g.ok(errors.New("not supplied"), "deployments today", "workflow_meta")
	}
	doc["workflow_meta"] = meta
}

func anySlice(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}

// NoFacts asks GitHub nothing: every fact is unavailable, for err's reason
// (which should wrap ErrFactUnavailable). A raw payload replayed offline
// and an invalid delivery are decided on what they carry alone.
func NoFacts(err error) Facts { return refusedFacts{err} }

type refusedFacts struct{ err error }

func (f refusedFacts) PullRequest(context.Context, PR) (PullRequestInfo, error) {
	return PullRequestInfo{}, f.err
}
func (f refusedFacts) Reviews(context.Context, PR) ([]Review, error)        { return nil, f.err }
func (f refusedFacts) Commits(context.Context, PR) ([]Commit, error)        { return nil, f.err }
func (f refusedFacts) Commit(context.Context, Repo, string) (Commit, error) { return Commit{}, f.err }
func (f refusedFacts) Checks(context.Context, Repo, string) ([]CheckRun, error) {
	return nil, f.err
}
func (f refusedFacts) Environments(context.Context, Repo) ([]string, error) { return nil, f.err }
func (f refusedFacts) ConfigFile(context.Context, Repo, string, string) ([]byte, error) {
	return nil, f.err
}
