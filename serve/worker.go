package serve

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/google/go-github/v66/github"

	"github.com/gitpoli/gitpoli/serve/audit"
	"github.com/gitpoli/gitpoli/workbench"
	"github.com/gitpoli/gitpoli/workbench/ghfacts"
	"github.com/gitpoli/gitpoli/workbench/markdown"
)

// work processes queued deliveries until ctx ends.
func (s *Server) work(ctx context.Context) {
	for {
		d, err := s.store.Claim(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			s.log.Error("claim failed", "error", err.Error())
		}
		if d == nil {
			select {
			case <-ctx.Done():
				return
			case <-s.wake:
			case <-time.After(time.Second):
			}
			continue
		}
		// A delivery in hand is finished even while shutting down: its
		// answer to GitHub should not be cut in half.
		s.process(context.WithoutCancel(ctx), d)
	}
}

// process decides one delivery and answers GitHub. Errors from GitHub are
// recorded with the decision, which then rejects (fail closed).
func (s *Server) process(ctx context.Context, d *audit.Delivery) {
	log := s.log.With(keyDelivery, d.ID, keyEvent, d.Event)
	// Finishing gets its own time: a delivery that ran out of time
	// deciding is still marked failed, not left to be claimed again.
	finish := func(msg string) {
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if ferr := s.store.Finish(fctx, d, msg); ferr != nil {
			log.Error("finish failed", "error", ferr.Error())
		}
	}
	if d.Attempts-d.AnswerTries > maxClaims {
		// Every worker that took it died or hung: stop passing it on.
		s.metrics.deliveries.WithLabelValues(d.Event, "failed").Inc()
		msg := fmt.Sprintf("abandoned after %d claims that did not finish", d.Attempts-d.AnswerTries-1)
		log.Error("delivery failed", "error", msg)
		finish(msg)
		return
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	ctx, stopRenew := s.keepLease(ctx, d, log)
	err := s.safeDecide(ctx, d, log)
	stopRenew()
	var pa *pendingAnswer
	if errors.As(err, &pa) {
		// GitHub did not take the answer: the delivery waits and is
		// claimed again, to be answered with what it recorded.
		wait := s.retryWait(d.AnswerTries)
		age := s.now().Sub(d.ReceivedAt)
		s.metrics.answerTries.Inc()
		args := []any{"error", err.Error(), "tries", d.AnswerTries + 1, "next_try_in", wait.Round(time.Second).String(), "waiting_for", age.Round(time.Second).String()}
		if age >= time.Hour {
			log.Warn("an answer GitHub has not taken for over an hour", args...)
		} else {
			log.Info("answer not taken by GitHub: tried again later", args...)
		}
		wctx, wcancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer wcancel()
		if werr := s.store.Wait(wctx, d, wait, err.Error()); werr != nil {
			log.Error("could not keep the delivery for a later try", "error", werr.Error())
		}
		return
	}
	// Calls to GitHub were already retried with backoff; a delivery that
	// still failed is recorded as failed (its decision, if one was made,
	// is in the audit log as an "error" outcome) rather than decided again.
	msg := ""
	if err != nil {
		msg = err.Error()
		s.metrics.deliveries.WithLabelValues(d.Event, "failed").Inc()
		log.Error("delivery failed", "error", msg)
	} else {
		s.metrics.deliveries.WithLabelValues(d.Event, "processed").Inc()
	}
	finish(msg)
}

// maxClaims bounds how often a delivery is claimed again after its
// worker died or hung.
const maxClaims = 5

// keepLease renews the claim on d while it is worked on, so that no other
// worker or replica takes it over; a worker that dies stops renewing and
// the delivery goes to another once the lease runs out. When the claim is
// lost (or cannot be renewed for a whole lease) the returned context is
// cancelled: this worker stops, since another may be deciding d.
func (s *Server) keepLease(ctx context.Context, d *audit.Delivery, log logger) (context.Context, func()) {
	work, lost := context.WithCancelCause(ctx)
	renewCtx, stopRenew := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(s.cfg.Lease / 3)
		defer t.Stop()
		renewed := time.Now()
		for {
			select {
			case <-renewCtx.Done():
				return
			case <-t.C:
				err := s.store.Renew(renewCtx, d)
				switch {
				case err == nil:
					renewed = time.Now()
				case renewCtx.Err() != nil:
					return
				case errors.Is(err, audit.ErrLeaseLost) || time.Since(renewed) >= s.cfg.Lease:
					log.Error("lost the claim on the delivery; stopping", "error", err.Error())
					lost(err)
					return
				default:
					log.Error("lease renewal failed", "error", err.Error())
				}
			}
		}
	}()
	return work, func() { stopRenew(); <-done; lost(nil) }
}

// earlier returns the decision an earlier claim of d already recorded for
// this subject and policy, if any. A delivery is claimed again only when
// its worker died mid-way; it is then answered with the decision made,
// never decided a second time (a second approval would count twice
// against a daily limit), and not answered again when the answer was
// recorded.
func (s *Server) earlier(ctx context.Context, d *audit.Delivery, subj workbench.Subject, policy workbench.Policy) (*audit.Record, error) {
	if d.Attempts <= 1 {
		return nil, nil
	}
	recs, err := s.store.ForDelivery(ctx, d.ID)
	if err != nil {
		return nil, err
	}
	env := ""
	if subj.Environment != nil {
		env = *subj.Environment
	}
	// The latest: a decision made again after facts came back supersedes
	// the one made without them.
	for i := len(recs) - 1; i >= 0; i-- {
		r := &recs[i]
		if r.Policy == string(policy) && r.Repo == subj.Repo.String() && r.Environment == env && r.SHA == subj.SHA && !decidedIn(r.Detail).Superseded {
			return r, nil
		}
	}
	return nil, nil
}

// answered reports whether a record's answer reached GitHub (sent),
// could not be sent and never will be (failed: the record is an error),
// or is still to be tried again (pending).
func answered(r *audit.Record) (sent, failed, pending bool) {
	var d struct {
		Answer  map[string]any `json:"answer"`
		Error   string         `json:"error"`
		Pending bool           `json:"pending"`
	}
	json.Unmarshal(r.Detail, &d)
	switch {
	case d.Pending:
		return false, false, true
	case d.Answer != nil && d.Error == "":
		return true, false, false
	}
	return false, d.Error != "", false
}

// madeWithoutFacts reports whether a recorded decision lacked a fact:
// when its answer waited for GitHub to be back, it is decided again
// rather than sent as it was.
func madeWithoutFacts(r *audit.Record) bool {
	var vs []workbench.Violation
	_ = json.Unmarshal(r.Violations, &vs)
	for _, v := range vs {
		if v.Code == workbench.CodeFactUnavailable {
			return true
		}
	}
	return false
}

// safeDecide turns a panic while deciding into a failed delivery, so one
// bad delivery cannot stop the server.
func (s *Server) safeDecide(ctx context.Context, d *audit.Delivery, log logger) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("panic while deciding: %v", r)
		}
	}()
	return s.decideDelivery(ctx, d, log)
}

type payloadInstallation struct {
	Installation struct {
		ID int64 `json:"id"`
	} `json:"installation"`
}

func (s *Server) decideDelivery(ctx context.Context, d *audit.Delivery, log logger) error {
	// The installation names whose token answers: anything but a
	// positive number ("abc" decoded as 0) is refused before a request.
	var inst payloadInstallation
	if err := json.Unmarshal(d.Payload, &inst); err != nil || inst.Installation.ID <= 0 {
		return errors.New("installation.id is missing or not a positive integer: nothing was asked of GitHub or answered")
	}
	client := s.app.installationClient(inst.Installation.ID)
	facts, err := ghfacts.New(client, s.cfg.APIURL, s.apiCache)
	if err != nil {
		return err
	}
	// One engine for the whole delivery: the policies that decide it are
	// the policies that answer it, though a reload lands meanwhile.
	e := s.engine.Load()
	delivery := workbench.Delivery{Event: d.Event, ID: d.ID, Payload: d.Payload}
	g, err := workbench.Gather(ctx, delivery, facts, workbench.GatherOptions{CountLater: true})
	if err != nil {
		return err
	}
	g.Subjects = slices.DeleteFunc(g.Subjects, func(gs workbench.GatheredSubject) bool {
		// This App's own check suite completing is its own answer: deciding
		// on it would answer itself for ever.
		own := gs.Subject.AppID != 0 && gs.Subject.AppID == s.cfg.AppID
		return own || (gs.Subject.Event == "check_suite" && s.cfg.AppID == 0)
	})
	if len(g.Subjects) == 0 && g.Ignored == "" {
		g.Ignored = d.Event + " of this App's own checks"
	}
	if reason := e.Undecided(g); reason != "" {
		log.Info("decides nothing", "reason", reason)
		return nil
	}
	g.Prepare(ctx, e, nil)
	var errs []error
	defer func() {
		for _, gs := range g.Subjects {
			r := gs.Requests()
			s.metrics.githubRequests.WithLabelValues("sent").Add(float64(r.Sent - r.NotModified))
			s.metrics.githubRequests.WithLabelValues("not_modified").Add(float64(r.NotModified))
		}
	}()
	for _, gs := range g.Subjects {
		specs := e.PoliciesFor(gs.Subject)
		if gs.Subject.IsDeployment() {
			// Every policy of a deployment decides under its gate, with
			// the day's count: record policies as the deployment ones.
			if err := s.decideDeployment(ctx, d, e, gs, specs, client, log); err != nil {
				errs = append(errs, err)
			}
			continue
		}
		for _, spec := range specs {
			if err := s.decidePullRequest(ctx, d, e, gs, spec, client, log); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

type logger interface {
	Info(msg string, args ...any)
	Warn(msg string, args ...any)
	Error(msg string, args ...any)
}

// logPrior says how a decision recorded before a restart ended.
func logPrior(log logger, prior *audit.Record) {
	args := []any{keyRepo, prior.Repo, "policy", prior.Policy, "audit_id", prior.ID}
	switch sent, failed, _ := answered(prior); {
	case failed:
		log.Warn("already decided before a restart, and recorded as an error: its answer could not be sent to GitHub then", args...)
	case sent:
		log.Info("already decided and answered before a restart", args...)
	default:
		log.Info("already decided before a restart", args...)
	}
}

// decidePullRequest decides the subject with one policy of a pull
// request, records the decision, and for a check policy posts its check
// run on the head (a record policy tells GitHub nothing).
func (s *Server) decidePullRequest(ctx context.Context, d *audit.Delivery, e *workbench.Engine, gs workbench.GatheredSubject, spec *workbench.PolicySpec, client *http.Client, log logger) error {
	prior, err := s.earlier(ctx, d, gs.Subject, spec.Name)
	if err != nil {
		return err
	}
	var superseded *audit.Record
	if prior != nil {
		_, _, pending := answered(prior)
		if !pending {
			// A check's or a record's decision is written once its answer
			// was posted or could not be: either way that was its answer.
			logPrior(log, prior)
			return nil
		}
		later, err := s.store.Latest(ctx, prior.Repo, prior.SHA, prior.Policy)
		switch {
		case err != nil:
			return err
		case later != nil && later.ID != prior.ID:
			// A later delivery decided this check on this commit, and its
			// answer is the one to stand: this one is not sent after it.
			s.supersede(ctx, prior, "a later decision on this commit answers it", log)
			return nil
		case !madeWithoutFacts(prior) || e.LacksFacts(ctx, gs, spec):
			return s.answerCheckAgain(ctx, d, *prior, gs.Subject, spec, client, log)
		}
		// Made while GitHub could not give its facts, which it gives now:
		// decided again, and the old decision marked once the new one is.
		superseded = prior
	}
	start := time.Now()
	o := e.DecideSubject(ctx, gs, spec, nil)
	s.metrics.decisionSeconds.WithLabelValues(string(spec.Name)).Observe(time.Since(start).Seconds())
	rec := s.subjectRecord(e, d, o)
	rec.ID = audit.NewID() // a check run's summary names it
	rec.Shadow = s.shadowDecision(ctx, gs, o.Decision)
	var answer map[string]any
	var answerErr error
	pending := false
	if spec.Answer == workbench.AnswerCheck {
		answer, answerErr = s.postCheckRun(ctx, client, o, rec.ID)
		pending = s.willRetry(d, answer, answerErr)
		if answerErr != nil && !pending {
			rec.Decision = "error"
		}
	}
	how := decidedOf(o)
	if answer != nil {
		how.Tries = 1
	}
	rec.Detail = detail(how, answer, answerErr, pending)
	if err := s.store.Insert(ctx, &rec); err != nil {
		return err
	}
	if superseded != nil {
		s.supersede(ctx, superseded, "decided again once GitHub gave the facts it lacked", log)
	}
	s.logDecision(log, rec)
	if pending {
		return &pendingAnswer{answerErr}
	}
	return answerErr
}

// answerCheckAgain posts a check run decided before and not yet taken by
// GitHub, as it was decided: the run of that name on the head is updated
// if it is there, so GitHub never gets two.
func (s *Server) answerCheckAgain(ctx context.Context, d *audit.Delivery, prior audit.Record, subj workbench.Subject, spec *workbench.PolicySpec, client *http.Client, log logger) error {
	o, err := recordedOutcome(prior, subj)
	if err != nil {
		return err
	}
	o.CheckName, o.Answer = spec.CheckName, spec.Answer
	answer, answerErr := s.postCheckRun(ctx, client, o, prior.ID)
	pending := s.willRetry(d, answer, answerErr)
	decision := ""
	if answerErr != nil && !pending {
		decision = "error"
	}
	how := decidedIn(prior.Detail)
	how.Tries++
	if err := s.store.Annotate(ctx, prior.ID, decision, detail(how, answer, answerErr, pending)); err != nil {
		return err
	}
	switch {
	case pending:
		return &pendingAnswer{answerErr}
	case answerErr != nil:
		return answerErr
	}
	log.Info("answered with the decision GitHub could not take before", keyRepo, prior.Repo, "policy", prior.Policy, "audit_id", prior.ID, "tries", d.AnswerTries+1)
	return nil
}

// supersede marks a decision never answered that another replaced: an
// error, kept as history, never answered, and passed over by earlier.
func (s *Server) supersede(ctx context.Context, prior *audit.Record, why string, log logger) {
	how := decidedIn(prior.Detail)
	how.Superseded = true
	if err := s.store.Annotate(ctx, prior.ID, "error", detail(how, nil, errors.New(why), false)); err != nil {
		log.Error("record superseded decision failed", "error", err.Error())
	}
}

// decideDeployment decides a deployment with every policy that decides
// it, under the daily-count gate, then gives GitHub one answer: approved
// when every deployment policy allows (record policies are recorded only).
// After a restart, what an earlier claim decided stands, and only a policy
// it did not decide (one a reload added) is decided now.
func (s *Server) decideDeployment(ctx context.Context, d *audit.Delivery, e *workbench.Engine, gs workbench.GatheredSubject, specs []*workbench.PolicySpec, client *http.Client, log logger) error {
	subj := gs.Subject
	priors := map[workbench.Policy]audit.Record{}
	var todo []*workbench.PolicySpec
	for _, spec := range specs {
		prior, err := s.earlier(ctx, d, subj, spec.Name)
		if err != nil {
			return err
		}
		if prior != nil {
			priors[spec.Name] = *prior
		} else {
			todo = append(todo, spec)
		}
	}
	for _, prior := range priors {
		if sent, failed, _ := answered(&prior); sent || failed {
			// GitHub had this delivery's answer, or never will: nothing
			// is decided or sent again.
			logPrior(log, &prior)
			return nil
		}
	}
	var superseded []audit.Record
	for name, prior := range priors {
		spec := specs[slices.IndexFunc(specs, func(sp *workbench.PolicySpec) bool { return sp.Name == name })]
		if _, _, pending := answered(&prior); pending && madeWithoutFacts(&prior) && !e.LacksFacts(ctx, gs, spec) {
			// Made while GitHub could not give its facts, which it gives
			// now, and never taken by it: decided again, under the gate;
			// the old decision is marked once the new one is recorded.
			superseded = append(superseded, prior)
			delete(priors, name)
			todo = append(todo, spec)
		}
	}
	env := ""
	if subj.Environment != nil {
		env = *subj.Environment
	}
	var counted, recorded []string
	for _, spec := range specs {
		if spec.Answer == workbench.AnswerDeployment {
			counted = append(counted, string(spec.Name))
		} else {
			recorded = append(recorded, string(spec.Name))
		}
	}
	if len(counted) == 0 {
		// Record policies alone (a limit being tried before it is
		// enforced): what they would have approved is the count.
		counted = recorded
	}
	decided := map[workbench.Policy]workbench.Outcome{}
	var recs []audit.Record
	if len(todo) > 0 {
		err := func() error {
			s.deployMu.Lock()
			defer s.deployMu.Unlock()
			gate, err := s.store.BeginDeploy(ctx, d)
			if err != nil {
				return err
			}
			// After Commit this does nothing; after an error, or a panic
			// that safeDecide recovers, it ends the gate and gives back
			// the store's turn to write, which every other write waits for.
			defer gate.Rollback()
			n, err := gate.ApprovedToday(ctx, subj.Repo.String(), env, counted, d.ID)
			if err == nil {
				gs, err = gs.WithDeploymentsToday(n)
			}
			if err != nil {
				return err
			}
			for _, spec := range todo {
				start := time.Now()
				o := e.DecideSubject(ctx, gs, spec, nil)
				s.metrics.decisionSeconds.WithLabelValues(string(spec.Name)).Observe(time.Since(start).Seconds())
				rec := s.subjectRecord(e, d, o)
				rec.Detail = detail(decidedOf(o), nil, nil, false)
				if err := gate.Insert(ctx, &rec); err != nil {
					return err
				}
				decided[spec.Name] = o
				recs = append(recs, rec)
			}
			return gate.Commit()
		}()
		if err != nil {
			return err
		}
		for i := range superseded {
			s.supersede(ctx, &superseded[i], "decided again once GitHub gave the facts it lacked", log)
		}
		for _, rec := range recs {
			if decided[workbench.Policy(rec.Policy)].Answer != workbench.AnswerDeployment {
				s.logDecision(log, rec) // the answered ones once GitHub took the answer, or not
			}
			// The candidates decide on the same input (the day's count
			// included), outside the gate: their evaluation holds no lock.
			if sh := s.shadowDecision(ctx, gs, decided[workbench.Policy(rec.Policy)].Decision); sh != nil {
				if err := s.store.SetShadow(ctx, rec.ID, sh); err != nil {
					log.Error("record shadow decision failed", "error", err.Error())
				}
			}
		}
	}
	// The answer: every deployment policy's decision, made now or before
	// a restart.
	var outcomes []workbench.Outcome
	var answering []audit.Record
	for _, spec := range specs {
		if spec.Answer != workbench.AnswerDeployment {
			continue
		}
		if prior, ok := priors[spec.Name]; ok {
			o, err := recordedOutcome(prior, subj)
			if err != nil {
				return err
			}
			outcomes, answering = append(outcomes, o), append(answering, prior)
			continue
		}
		outcomes = append(outcomes, decided[spec.Name])
		for _, rec := range recs {
			if rec.Policy == string(spec.Name) {
				answering = append(answering, rec)
			}
		}
	}
	if len(outcomes) == 0 {
		return nil // record policies only: GitHub is told nothing
	}
	// Whether a deployment policy had decided before a restart: only then
	// may GitHub have had an answer already.
	answeredBefore := false
	for _, spec := range specs {
		_, prior := priors[spec.Name]
		answeredBefore = answeredBefore || (prior && spec.Answer == workbench.AnswerDeployment)
	}
	if answeredBefore {
		log.Info("answering with the decisions recorded before a restart", keyRepo, subj.Repo.String(), keyDecision, markdown.DeploymentState(outcomes), "audit_id", answering[0].ID)
	}
	var answer map[string]any
	var answerErr error
	moved := ""
	if answeredBefore {
		// Whether GitHub still waits for an answer, where the run says
		// so: a run that went on (approved before the restart, or
		// rejected, cancelled or timed out) is not answered again. A run
		// that cannot be read is answered: GitHub refuses a second answer.
		moved = s.runMovedOn(ctx, client, subj)
	}
	if moved == "" {
		answer, answerErr = s.answerDeployment(ctx, client, subj, outcomes, answering)
	} else {
		answer = map[string]any{"not_sent": "the workflow run no longer waits (" + moved + ")"}
	}
	if status, _ := answer["status"].(int); moved != "" || (answeredBefore && answerErr != nil && status >= 400 && status < 500) {
		// GitHub has an answer: the first one reached it before the
		// restart, or the run went on without it. The recorded decisions
		// stand as they were told; one a reload added since was never
		// GitHub's answer.
		log.Info("GitHub already has the answer given before the restart", keyRepo, subj.Repo.String(), "status", status, "run", moved)
		for _, rec := range answering {
			if _, _, pending := answered(&rec); pending {
				// GitHub never took it, and the run went on without it:
				// never given, so an error, not counted.
				s.recordAnswer(ctx, []audit.Record{rec}, answer, errors.New("not sent: the workflow run no longer waits for it"), false)
				continue
			}
			if _, prior := priors[workbench.Policy(rec.Policy)]; prior {
				if err := s.store.Annotate(ctx, rec.ID, "", detail(decidedIn(rec.Detail), answer, nil, false)); err != nil {
					log.Error("record answer failed", "error", err.Error())
				}
				continue
			}
			s.recordAnswer(ctx, []audit.Record{rec}, answer, errors.New("not GitHub's answer: it had the one given before a restart"), false)
			rec.Decision = "error"
			s.logDecision(log, rec)
		}
		return nil
	}
	pending := s.willRetry(d, answer, answerErr)
	if answerErr != nil {
		if pending {
			log.Warn("deployment answer not taken by GitHub: it is tried again later", keyRepo, subj.Repo.String(), "error", answerErr.Error(), "tries", d.AnswerTries+1)
		} else {
			log.Error("deployment answer failed", keyRepo, subj.Repo.String(), "error", answerErr.Error())
		}
	}
	s.recordAnswer(ctx, answering, answer, answerErr, pending)
	for _, rec := range recs {
		if decided[workbench.Policy(rec.Policy)].Answer == workbench.AnswerDeployment {
			if answerErr != nil && !pending {
				rec.Decision = "error" // as recordAnswer recorded it
			}
			s.logDecision(log, rec)
		}
	}
	if pending {
		return &pendingAnswer{answerErr}
	}
	return answerErr
}

// recordedOutcome is a decision recorded before a restart, as an outcome
// to answer with.
func recordedOutcome(prior audit.Record, subj workbench.Subject) (workbench.Outcome, error) {
	o := workbench.Outcome{Subject: subj, Decision: workbench.Decision{Policy: workbench.Policy(prior.Policy), Allow: prior.Decision == "allow"}}
	if err := json.Unmarshal(prior.Violations, &o.Decision.Violations); err != nil {
		return o, fmt.Errorf("recorded decision %s: %w", prior.ID, err)
	}
	o.Config = decidedIn(prior.Detail).Config
	return o, nil
}

// recordAnswer keeps what GitHub was told beside each decision; an answer
// that failed for good makes the records error outcomes (the deployment
// is not approved, so it does not count against the daily limit either).
// One still to be tried again keeps its decision: an approval on its way
// counts.
func (s *Server) recordAnswer(ctx context.Context, recs []audit.Record, answer map[string]any, answerErr error, pending bool) {
	decision := ""
	if answerErr != nil && !pending {
		decision = "error"
	}
	// Recorded even when the answer ran out of time: an approval GitHub
	// never got must not count against the daily limit.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	for _, rec := range recs {
		how := decidedIn(rec.Detail)
		how.Tries++
		if err := s.store.Annotate(ctx, rec.ID, decision, detail(how, answer, answerErr, pending)); err != nil {
			s.log.Error("record answer failed", keyDelivery, rec.DeliveryID, "error", err.Error())
		}
	}
}

// shadowDecision decides the subject with the candidate policies, if any,
// and says whether they disagree with the enforced decision.
func (s *Server) shadowDecision(ctx context.Context, gs workbench.GatheredSubject, live workbench.Decision) *audit.Shadow {
	sh := s.shadow.Load()
	if sh == nil {
		return nil
	}
	spec, err := sh.Policy(string(live.Policy))
	if err != nil {
		// The candidate set has no such policy: nothing to compare.
		return nil
	}
	o := sh.DecideSubject(ctx, gs, spec, nil)
	violations, _ := json.Marshal(o.Decision.Violations)
	decision := "deny"
	if o.Decision.Allow {
		decision = "allow"
	}
	disagree := workbench.Change(live.Verdict(), o.Decision.Verdict()) != ""
	if disagree {
		s.metrics.shadowDisagreements.WithLabelValues(string(live.Policy)).Inc()
	}
	return &audit.Shadow{Decision: decision, Violations: violations, PolicyHash: sh.Hash(), Disagree: disagree}
}

func (s *Server) logDecision(log logger, rec audit.Record) {
	log.Info("decided", keyRepo, rec.Repo, keyDecision, rec.Decision, "policy", rec.Policy, "audit_id", rec.ID)
	s.metrics.decisions.WithLabelValues(rec.Policy, rec.Decision, rec.Source).Inc()
}

func (s *Server) subjectRecord(e *workbench.Engine, d *audit.Delivery, o workbench.Outcome) audit.Record {
	rec := decisionRecord(e, o.Decision, o.Input)
	rec.DeliveryID, rec.Event, rec.Source = d.ID, d.Event, "webhook"
	rec.Repo, rec.SHA = o.Subject.Repo.String(), o.Subject.SHA
	if o.Subject.Environment != nil {
		rec.Environment = *o.Subject.Environment
	}
	if o.Subject.Ref != nil {
		rec.Ref = *o.Subject.Ref
	} else if o.Subject.PR != nil {
		rec.Ref = o.Subject.PR.BaseRef
	}
	return rec
}

// decisionRecord turns a decision into an audit record.
func decisionRecord(e *workbench.Engine, d workbench.Decision, in workbench.Input) audit.Record {
	violations, _ := json.Marshal(d.Violations)
	input, _ := in.MarshalJSON() // compact already: json.Marshal would scan it again
	decision := "deny"
	if d.Allow {
		decision = "allow"
	}
	return audit.Record{Policy: string(d.Policy), Decision: decision, Violations: violations, Input: input, PolicyHash: e.Hash()}
}

// decided is what a record's detail says of how its decision was made.
type decided struct {
	Config string `json:"config"`
	// Requests is what gathering the facts cost up to the decision.
	Requests *workbench.Requests `json:"requests,omitempty"`
	// Superseded says the decision was made again (it lacked facts).
	Superseded bool `json:"superseded,omitempty"`
	// Tries counts the tries at its answer so far.
	Tries int `json:"tries,omitempty"`
}

func decidedOf(o workbench.Outcome) decided {
	r := o.Requests
	return decided{Config: o.Config, Requests: &r}
}

// decidedIn reads back what a record's detail says of its decision.
func decidedIn(detail json.RawMessage) decided {
	var d decided
	_ = json.Unmarshal(detail, &d)
	return d
}

func detail(how decided, answer map[string]any, err error, pending bool) json.RawMessage {
	m := map[string]any{"config": how.Config}
	if how.Requests != nil {
		m["requests"] = how.Requests
	}
	if how.Superseded {
		m["superseded"] = true
	}
	if how.Tries > 0 {
		m["tries"] = how.Tries
	}
	if pending {
		m["pending"] = true
	}
	if answer != nil {
		m["answer"] = answer
	}
	if err != nil {
		m["error"] = err.Error()
	}
	data, _ := json.Marshal(m)
	return data
}

// answerDeployment approves or rejects the deployment, with go-github. The
// URL is built from the API root and ids from the payload, never taken
// from it.
func (s *Server) answerDeployment(ctx context.Context, client *http.Client, subj workbench.Subject, outcomes []workbench.Outcome, recs []audit.Record) (map[string]any, error) {
	if len(subj.Invalid) > 0 {
		// Its identifiers would go into an API path with the token.
		return nil, fmt.Errorf("not answered: the delivery is invalid (%s)", strings.Join(subj.Invalid, "; "))
	}
	if subj.RunID == 0 {
		return nil, errors.New("the delivery names no workflow run of this repository to answer")
	}
	env := ""
	if subj.Environment != nil {
		env = *subj.Environment
	}
	gh, err := s.gitHub(client)
	if err != nil {
		return nil, err
	}
	state := markdown.DeploymentState(outcomes)
	ids := make([]string, len(recs))
	for i, r := range recs {
		ids[i] = r.ID
	}
	resp, err := gh.Actions.ReviewCustomDeploymentProtectionRule(ctx, subj.Repo.Owner, subj.Repo.Name, subj.RunID,
		&github.ReviewCustomDeploymentProtectionRuleRequest{EnvironmentName: env, State: state, Comment: markdown.DeploymentComment(outcomes, ids)})
	answer := map[string]any{"url": fmt.Sprintf("%srepos/%s/%s/actions/runs/%d/deployment_protection_rule", s.cfg.APIURL, subj.Repo.Owner, subj.Repo.Name, subj.RunID), "state": state}
	if resp != nil {
		answer["status"] = resp.StatusCode
	}
	if err != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		if status != 0 {
			return answer, fmt.Errorf("GitHub answered %d to the deployment protection review", status)
		}
		return answer, err
	}
	return answer, nil
}

// runMovedOn says how the deployment's workflow run stands when it no
// longer waits for protection rules ("completed/success", ...), or ""
// when it still waits or cannot be read.
func (s *Server) runMovedOn(ctx context.Context, client *http.Client, subj workbench.Subject) string {
	if len(subj.Invalid) > 0 || subj.RunID == 0 {
		return ""
	}
	gh, err := s.gitHub(client)
	if err != nil {
		return ""
	}
	run, _, err := gh.Actions.GetWorkflowRunByID(ctx, subj.Repo.Owner, subj.Repo.Name, subj.RunID)
	if err != nil || run.GetStatus() == "" || run.GetStatus() == "waiting" {
		return ""
	}
	return strings.Trim(run.GetStatus()+"/"+run.GetConclusion(), "/")
}

// gitHub is a go-github client on the API root, over client.
func (s *Server) gitHub(client *http.Client) (*github.Client, error) {
	gh := github.NewClient(client)
	base, err := url.Parse(s.cfg.APIURL)
	if err != nil {
		return nil, err
	}
	gh.BaseURL = base
	return gh, nil
}

// postCheckRun creates the policy's check run on the head commit, or
// updates the one gitpoli already posted there under that name (a re-run,
// a new review), so a pull request shows one check per policy.
func (s *Server) postCheckRun(ctx context.Context, client *http.Client, o workbench.Outcome, auditID string) (map[string]any, error) {
	subj := o.Subject
	if len(subj.Invalid) > 0 || !workbench.ValidSHA(subj.SHA) {
		// Its identifiers would go into an API path with the token.
		return nil, fmt.Errorf("not answered: the delivery is invalid (%s)", strings.Join(subj.Invalid, "; "))
	}
	conclusion, title := "failure", "Policy violations found"
	if o.Decision.Allow {
		conclusion, title = "success", "Policy passed"
	}
	output := &github.CheckRunOutput{Title: github.String(title), Summary: github.String(markdown.CheckSummary(o.Decision, auditID))}
	gh, err := s.gitHub(client)
	if err != nil {
		return nil, err
	}
	owner, repo := subj.Repo.Owner, subj.Repo.Name
	answer := map[string]any{"conclusion": conclusion, "name": o.CheckName}
	list := &github.ListCheckRunsOptions{
		CheckName: github.String(o.CheckName),
		Filter:    github.String("latest"),
	}
	if s.cfg.AppID != 0 {
		// Only this App's run of that name is ours to update: another
		// app's, or a workflow job's, is not.
		list.AppID = github.Int64(s.cfg.AppID)
	}
	existing, _, err := gh.Checks.ListCheckRunsForRef(ctx, owner, repo, subj.SHA, list)
	if err == nil && existing != nil && len(existing.CheckRuns) > 0 {
		id := existing.CheckRuns[0].GetID()
		_, resp, err := gh.Checks.UpdateCheckRun(ctx, owner, repo, id, github.UpdateCheckRunOptions{
			Name:       o.CheckName,
			Status:     github.String("completed"),
			Conclusion: github.String(conclusion),
			Output:     output,
		})
		answer["updated"], answer["check_run_id"] = true, id
		if resp != nil {
			answer["status"] = resp.StatusCode
		}
		return answer, err
	}
	run, resp, err := gh.Checks.CreateCheckRun(ctx, owner, repo, github.CreateCheckRunOptions{
		Name:       o.CheckName,
		HeadSHA:    subj.SHA,
		Status:     github.String("completed"),
		Conclusion: github.String(conclusion),
		Output:     output,
	})
	if resp != nil {
		answer["status"] = resp.StatusCode
	}
	if run != nil {
		answer["check_run_id"] = run.GetID()
	}
	return answer, err
}
