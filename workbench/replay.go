package workbench

import (
	"context"
	"errors"
	"fmt"
)

// DeliveryOptions says what a delivery's decision takes from outside the
// delivery and GitHub.
type DeliveryOptions struct {
	// Config, when set, decides with this .repol config (the workbench's
	// own, for the repository being edited). When nil, the repository's
	// config is read through Facts from the subject's ConfigRef.
	Config *Config
	// DeploymentsToday is the number of deployments to the environment
	// already made today; serve counts them in its audit log. Nil means
	// unknown: the fact is reported unavailable.
	DeploymentsToday *int
}

// Outcome is the decision for one subject of a delivery, with the input
// document it was made on.
type Outcome struct {
	Subject  Subject  `json:"subject"`
	Input    Input    `json:"input"`
	Decision Decision `json:"decision"`
}

// DecideDelivery normalizes a delivery, gathers the facts each subject
// needs, and decides. It returns a *NotPolicyEvent error for a delivery
// that asks for no decision. Facts that cannot be had are left out of the
// input (so the policy denies for want of them) and reported as
// fact.unavailable violations.
func (e *Engine) DecideDelivery(ctx context.Context, d Delivery, facts Facts, opts DeliveryOptions) ([]Outcome, error) {
	subjects, err := Normalize(d)
	if err != nil {
		return nil, err
	}
	out := make([]Outcome, 0, len(subjects))
	for _, s := range subjects {
		out = append(out, e.decideSubject(ctx, s, facts, opts))
	}
	return out, nil
}

func (e *Engine) decideSubject(ctx context.Context, s Subject, facts Facts, opts DeliveryOptions) Outcome {
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
	var cfg *ConfigFile
	if opts.Config != nil {
		cfg = opts.Config.Files[s.Policy]
	} else {
		cfg = g.repoConfig(e, s)
	}
	in, err := NewInput(doc)
	if err != nil {
		d := errorDecision(s.Policy, err)
		return Outcome{Subject: s, Decision: d}
	}
	d, _ := e.decide(ctx, s.Policy, in, cfg, g.extra, nil)
	return Outcome{Subject: s, Input: in, Decision: d}
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

func (g *gatherer) deployInput(s Subject, opts DeliveryOptions) map[string]any {
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
	if opts.DeploymentsToday != nil {
		meta["deployments_today"] = *opts.DeploymentsToday
	} else {
		g.ok(errors.New("not supplied"), "deployments today")
	}
	doc["workflow_meta"] = meta
	return doc
}

// repoConfig reads the subject's policy config from its repository at
// ConfigRef. No file means no config (the policy denies for that); a
// failure to read it is a fact unavailable.
func (g *gatherer) repoConfig(e *Engine, s Subject) *ConfigFile {
	if s.Repo.Owner == "" || s.ConfigRef == "" {
		return nil
	}
	name := s.Policy.ConfigFile()
	data, err := g.facts.ConfigFile(g.ctx, s.Repo, s.ConfigRef, name)
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	file := fmt.Sprintf("%s@%s:.repol/%s", s.Repo, s.ConfigRef, name)
	if !g.ok(err, "config "+file) {
		return nil
	}
	cfg, err := parseConfigFile(file, data, e.schemas.byPolicy[s.Policy], e.schemas.problems[s.Policy])
	if !g.ok(err, "config "+file) {
		return nil
	}
	return cfg
}

func anySlice(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}
