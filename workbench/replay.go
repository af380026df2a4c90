package workbench

import (
	"context"
	"errors"
	"fmt"
	"slices"
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

// Prepare gathers now the facts and reads the repository config files
// that the policies of e deciding g will read, so that deciding does no
// I/O (serve decides a deployment under a lock). With local set, the
// policies' configs are local's, as DecideGathered's are.
func (g *Gathered) Prepare(ctx context.Context, e *Engine, local *Config) {
	for _, gs := range g.Subjects {
		e.subjectInput(ctx, gs, nil, local)
		if local == nil && gs.st.configs != nil {
			for _, spec := range e.PoliciesFor(gs.Subject) {
				if spec.Config != "" {
					gs.st.configs.read(ctx, spec.Config)
				}
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

// DecideSubject decides one gathered subject with one policy. Its config
// is local's when local is set; else the repository's own file; else,
// when GitHub says the repository has none, the engine's own (the
// server's default); and none when the repository's could not be read (a
// fact.unavailable, so the decision denies). The facts that the policies
// of e deciding the subject read are gathered first, if they were not
// yet: every policy of a delivery decides on one input.
func (e *Engine) DecideSubject(ctx context.Context, gs GatheredSubject, spec *PolicySpec, local *Config) Outcome {
	in, gathered := e.subjectInput(ctx, gs, spec, local)
	cfg, source, extra := e.policyConfig(ctx, gs, spec, local)
	// A fact that could not be had denies the policies that can read it,
	// each once however many keys it would have filled.
	reads := e.reads[spec.Name]
	seen := map[string]bool{}
	for _, v := range gathered {
		if (v.inputKeys == nil || slices.ContainsFunc(v.inputKeys, reads.has)) && !seen[v.Code+"\x00"+v.Msg] {
			seen[v.Code+"\x00"+v.Msg] = true
			extra = append(extra, v)
		}
	}
	d, _ := e.decide(ctx, spec.Name, in, cfg, extra, nil)
	o := Outcome{Subject: gs.st.subject, Input: in, Decision: d, Answer: spec.Answer, Config: source, Requests: gs.Requests()}
	if spec.Answer == AnswerCheck {
		o.CheckName = spec.CheckName
	}
	return o
}

// subjectInput gathers the facts that the policies of e deciding the
// subject (and spec, when given) can read, and returns its input and the
// violations found gathering.
func (e *Engine) subjectInput(ctx context.Context, gs GatheredSubject, spec *PolicySpec, local *Config) (Input, []Violation) {
	specs := e.PoliciesFor(gs.Subject)
	if spec != nil && !slices.Contains(specs, spec) {
		specs = append(specs, spec)
	}
	keys := inputReads{}
	for _, sp := range specs {
		for k := range e.reads[sp.Name] {
			keys[k] = true
		}
	}
	var teams []Team
	if keys.has("teams") {
		teams = e.teamsNamed(ctx, gs, specs, local)
	}
	in, extra := gs.st.gather(ctx, keys, teams)
	if gs.today != nil {
		in = in.withDeploymentsToday(*gs.today)
	}
	return in, extra
}

// teamsNamed lists the teams the configs of the policies that read teams
// name, worked out once per engine and config for a subject: every
// policy deciding it would parse the same files again.
func (e *Engine) teamsNamed(ctx context.Context, gs GatheredSubject, specs []*PolicySpec, local *Config) []Team {
	st := gs.st
	st.mu.Lock()
	named := st.named
	st.mu.Unlock()
	if named != nil && named.e == e && named.local == local && len(named.specs) == len(specs) {
		return named.teams
	}
	set := map[Team]bool{}
	for _, sp := range specs {
		if e.reads[sp.Name].has("teams") && sp.Config != "" {
			if cfg, _, _ := e.policyConfig(ctx, gs, sp, local); cfg != nil {
				teamsNamed(cfg.Value, set)
			}
		}
	}
	teams := sortedTeams(set)
	if ctx.Err() == nil {
		st.mu.Lock()
		st.named = &namedTeams{e: e, local: local, specs: specs, teams: teams}
		st.mu.Unlock()
	}
	return teams
}

// namedTeams is the teams an engine's policies name for a subject.
type namedTeams struct {
	e     *Engine
	local *Config
	specs []*PolicySpec
	teams []Team
}

// policyConfig is the config a policy decides the subject with, where it
// came from, and why it could not be had.
func (e *Engine) policyConfig(ctx context.Context, gs GatheredSubject, spec *PolicySpec, local *Config) (*ConfigFile, string, []Violation) {
	switch {
	case spec.Config == "":
		return nil, "", nil
	case local != nil || gs.st.configs == nil:
		if local == nil {
			local = e.config
		}
		if cfg := local.For(spec); cfg != nil {
			return cfg, "local " + local.Dir.file(spec.ConfigFile()), nil
		}
		return nil, "none: no " + local.Dir.file(spec.ConfigFile()), nil
	}
	rc := gs.st.configs.read(ctx, spec.Config)
	switch {
	case rc.data != nil:
		cfg, err := parseConfigFile(rc.file, rc.data, e.schemas.byName[spec.Config], e.schemas.problems[spec.Config])
		var extra []Violation
		if err != nil {
			extra = append(extra, Violation{Code: CodeFactUnavailable, Msg: err.Error()})
		}
		return cfg, "repository " + rc.file, extra
	case rc.missing:
		if cfg := e.config.For(spec); cfg != nil {
			return cfg, "default " + e.config.Dir.file(spec.ConfigFile()), nil
		}
		return nil, "none: neither the repository nor the default has " + spec.ConfigFile(), nil
	}
	return nil, "unavailable: the repository's " + rc.file + " could not be read",
		[]Violation{{Code: CodeFactUnavailable, Msg: fmt.Sprintf("config %s: %v", rc.file, rc.err)}}
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
	if pr := s.PR; pr != nil {
		doc["pull_request"] = prInput(pr)
		// The seed's head_ref and base_ref. A fork's branch is not one of
		// ours: its "main" must not pass for main. The owner-qualified
		// label says where it lives.
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
	}
	if s.IsDeployment() {
		// The seed's environment and ref.
		if s.Environment != nil {
			doc["environment"] = *s.Environment
		}
		if s.Ref != nil && *s.Ref != "" {
			doc["ref"] = *s.Ref
		}
	}
	if m := s.MergeGroup; m != nil {
		doc["merge_group"] = map[string]any{"head_sha": m.HeadSHA, "head_ref": m.HeadRef, "base_sha": m.BaseSHA, "base_ref": m.BaseRef}
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
	for key, n := range map[string]*int{"additions": pr.Additions, "deletions": pr.Deletions, "changed_files": pr.ChangedFiles, "commits": pr.Commits} {
		if n != nil {
			out[key] = *n
		}
	}
	return out
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
func (f refusedFacts) Files(context.Context, PR) ([]File, error)           { return nil, f.err }
func (f refusedFacts) TeamMembers(context.Context, Team) ([]string, error) { return nil, f.err }
func (f refusedFacts) CodeownersFile(context.Context, Repo, string) (Codeowners, error) {
	return Codeowners{}, f.err
}
func (f refusedFacts) PullRequestsOf(context.Context, Repo, string) ([]PullRequestInfo, error) {
	return nil, f.err
}

// LacksFacts reports whether deciding the subject with spec now would
// still lack a fact it can read (fact.unavailable): a decision made
// while GitHub could not give its facts is made again only once it can.
func (e *Engine) LacksFacts(ctx context.Context, gs GatheredSubject, spec *PolicySpec) bool {
	_, extra := e.subjectInput(ctx, gs, spec, nil)
	reads := e.reads[spec.Name]
	for _, v := range extra {
		if v.Code == CodeFactUnavailable && (v.inputKeys == nil || slices.ContainsFunc(v.inputKeys, reads.has)) {
			return true
		}
	}
	return false
}
