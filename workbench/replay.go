package workbench

import (
	"context"
	"errors"
	"fmt"
	"slices"
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

// Outcome is the decision for one subject of a delivery, with the input
// document it was made on.
type Outcome struct {
	Subject  Subject  `json:"subject"`
	Input    Input    `json:"input"`
	Decision Decision `json:"decision"`
}

// Gathered is a delivery normalized, with the facts each subject needs
// fetched. It does not depend on policies, config or schemas, so a replay
// after a policy change decides it again without fetching anything.
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
	// The repository's own config file, when one was read.
	repoConfigFile string
	repoConfig     []byte
	// repoConfigMissing: GitHub said the repository has none (404), as
	// opposed to not answering.
	repoConfigMissing bool
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

// DecideGathered decides every gathered subject, with the local config
// when it is not nil, else with the repository's own config as gathered.
func (e *Engine) DecideGathered(ctx context.Context, g *Gathered, local *Config) []Outcome {
	out := make([]Outcome, 0, len(g.Subjects))
	for _, gs := range g.Subjects {
		out = append(out, e.decideGathered(ctx, gs, local))
	}
	return out
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
	if g.Ignored != "" {
		return nil, &NotPolicyEvent{Reason: g.Ignored}
	}
	return e.DecideGathered(ctx, g, opts.Config), nil
}

func gatherSubject(ctx context.Context, s Subject, facts Facts, opts GatherOptions) GatheredSubject {
	g := gatherer{ctx: ctx, facts: facts}
	for _, msg := range s.Invalid {
		g.extra = append(g.extra, Violation{Code: CodeDeliveryInvalid, Msg: msg})
	}
	if s.PR == nil && s.PRRef != nil && s.PRRef.Number > 0 {
		pr, err := facts.PullRequest(ctx, *s.PRRef)
		if g.ok(err, "pull request "+s.PRRef.String()) {
			s.PR = &pr
			if s.SHA == "" {
				s.SHA = pr.HeadSHA
			}
			if s.ConfigRef == "" {
				s.ConfigRef = pr.BaseRef
			}
		}
	}
	var doc map[string]any
	if s.Policy == Deploy {
		doc = g.deployInput(s, opts)
	} else {
		doc = g.pullRequestInput(s)
	}
	gs := GatheredSubject{Subject: s}
	if !opts.LocalConfig {
		gs.repoConfigFile, gs.repoConfig, gs.repoConfigMissing = g.repoConfig(s)
	}
	in, err := NewInput(doc)
	if err != nil {
		g.ok(err, "input")
	}
	gs.Input, gs.doc, gs.extra = in, doc, g.extra
	return gs
}

// RepoConfigFound reports whether the repository has its own config file
// for the subject's policy (as read while gathering).
func (gs GatheredSubject) RepoConfigFound() bool { return gs.repoConfig != nil }

// RepoConfigMissing reports whether GitHub said the repository has no
// config file for the policy. A config that could not be read is neither
// found nor missing: the decision then fails closed.
func (gs GatheredSubject) RepoConfigMissing() bool { return gs.repoConfigMissing }

// RepoConfigFile names the repository config file read, when one was.
func (gs GatheredSubject) RepoConfigFile() string { return gs.repoConfigFile }

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

// DecideSubject decides one gathered subject with the repository's own
// config when it has one, with fallback (the server's default) when it has
// none, and with no config at all when it could not be read (the decision
// then denies).
func (e *Engine) DecideSubject(ctx context.Context, gs GatheredSubject, fallback *Config) Outcome {
	if gs.repoConfig != nil || !gs.repoConfigMissing {
		return e.decideGathered(ctx, gs, nil)
	}
	return e.decideGathered(ctx, gs, fallback)
}

func (e *Engine) decideGathered(ctx context.Context, gs GatheredSubject, local *Config) Outcome {
	s := gs.Subject
	extra := slices.Clone(gs.extra)
	var cfg *ConfigFile
	switch {
	case local != nil:
		cfg = local.Files[s.Policy]
	case gs.repoConfig != nil:
		var err error
		cfg, err = parseConfigFile(gs.repoConfigFile, gs.repoConfig, e.schemas.byPolicy[s.Policy], e.schemas.problems[s.Policy])
		if err != nil {
			extra = append(extra, Violation{Code: CodeFactUnavailable, Msg: err.Error()})
		}
	}
	d, _ := e.decide(ctx, s.Policy, gs.Input, cfg, extra, nil)
	return Outcome{Subject: s, Input: gs.Input, Decision: d}
}

// gatherer collects facts for one subject, turning each failure into a
// fact.unavailable violation.
type gatherer struct {
	ctx   context.Context
	facts Facts
	extra []Violation
}

func (g *gatherer) ok(err error, what string) bool {
	if err == nil {
		return true
	}
	g.extra = append(g.extra, Violation{Code: CodeFactUnavailable, Msg: fmt.Sprintf("%s: %v", what, err)})
	return false
}

func (g *gatherer) pullRequestInput(s Subject) map[string]any {
	doc := map[string]any{}
	if s.PR == nil {
		return doc
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
	return doc
}

func (g *gatherer) approvers(pr PullRequestInfo) ([]any, bool) {
	reviews, err := g.facts.Reviews(g.ctx, pr.PR)
	if !g.ok(err, "reviews of "+pr.PR.String()) {
		return nil, false
	}
	return anySlice(latestApprovers(reviews, pr.Author)), true
}

func (g *gatherer) prSignedOff(pr PullRequestInfo) (bool, bool) {
	commits, err := g.facts.Commits(g.ctx, pr.PR)
	if !g.ok(err, "commits of "+pr.PR.String()) {
		return false, false
	}
	return signedOff(commits), true
}

func (g *gatherer) deployInput(s Subject, opts GatherOptions) map[string]any {
	doc := map[string]any{}
	if s.Environment != nil {
		doc["environment"] = *s.Environment
	}
	if s.Ref != nil && *s.Ref != "" {
		doc["ref"] = *s.Ref
	}
	if s.Repo.Owner != "" {
		envs, err := g.facts.Environments(g.ctx, s.Repo)
		if g.ok(err, "environments of "+s.Repo.String()) {
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
		if g.ok(err, "commit "+s.SHA) {
			meta["signed_off"] = signedOff([]Commit{c})
		}
	}
	if s.SHA != "" && s.Repo.Owner != "" {
		checks, err := g.facts.Checks(g.ctx, s.Repo, s.SHA)
		if g.ok(err, "checks of "+s.SHA) {
			meta["checks"] = map[string]any{"tests": testsPassed(checks)}
		}
	}
	switch {
	case opts.DeploymentsToday != nil:
		meta["deployments_today"] = *opts.DeploymentsToday
	case !opts.CountLater:
		g.ok(errors.New("not supplied"), "deployments today")
	}
	doc["workflow_meta"] = meta
	return doc
}

// repoConfig reads the subject's policy config from its repository at
// ConfigRef. No file means no config (the policy denies for that); a
// failure to read it is a fact unavailable.
func (g *gatherer) repoConfig(s Subject) (file string, data []byte, missing bool) {
	if s.Repo.Owner == "" || s.ConfigRef == "" {
		return "", nil, false
	}
	name := s.Policy.ConfigFile()
	file = fmt.Sprintf("%s@%s:.repol/%s", s.Repo, s.ConfigRef, name)
	data, err := g.facts.ConfigFile(g.ctx, s.Repo, s.ConfigRef, name)
	if errors.Is(err, ErrNotFound) {
		return "", nil, true
	}
	if !g.ok(err, "config "+file) {
		return "", nil, false
	}
	return file, data, false
}

func anySlice(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}
