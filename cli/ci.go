package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/gitpoli/gitpoli/workbench"
	"github.com/gitpoli/gitpoli/workbench/ghfacts"
	"github.com/gitpoli/gitpoli/workbench/markdown"
	"github.com/gitpoli/gitpoli/workbench/session"
)

// runCICmd is gitpoli inside a GitHub Actions job: it checks the
// repository's own policies and config, decides the event that started
// the workflow, and reports with workflow commands and a job summary.
func runCICmd(ctx context.Context, args []string, env Env) error {
	fs := newFlagSet("ci", env)
	sources := addSourceFlags(fs)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), `Usage: gitpoli ci

In a GitHub Actions job: checks policies/ and .repol/ (errors as ::error annotations
on the right lines), decides the triggering pull request or deployment with the
config of its base branch, and writes a Markdown summary to $GITHUB_STEP_SUMMARY
(with, when the pull request changes policies/ or .repol/, the decisions that
change over the fixtures). Reads GITHUB_EVENT_NAME, GITHUB_EVENT_PATH,
GITHUB_TOKEN and GITHUB_API_URL. Exit 1 on a deny or a problem.`)
		fs.PrintDefaults()
	}
	if err := parseNoArgs(fs, args); err != nil {
		return err
	}
	event, eventPath := env.Getenv("GITHUB_EVENT_NAME"), env.Getenv("GITHUB_EVENT_PATH")
	if event == "" || eventPath == "" {
		return usagef("GITHUB_EVENT_NAME and GITHUB_EVENT_PATH are not set: gitpoli ci runs inside GitHub Actions")
	}
	payload, err := os.ReadFile(eventPath)
	if err != nil {
		return usagef("GITHUB_EVENT_PATH: %v", pathErr(err))
	}
	src, err := sources.resolve(env)
	if err != nil {
		return err
	}
	var summary strings.Builder
	summary.WriteString("## gitpoli\n\n")
	failed := false

	// 1. The repository's own policies and config.
	e, problems, err := workbench.Check(ctx, src)
	if err != nil {
		return err
	}
	for _, p := range problems {
		fmt.Fprintln(env.Stdout, workflowError(p.File, p.Line, p.Col, p.String()))
	}
	if len(problems) > 0 {
		failed = true
		fmt.Fprintf(&summary, "**%s** in policies and config:\n\n", plural(len(problems), "problem", "problems"))
		for _, p := range problems {
			fmt.Fprintf(&summary, "- `%s`\n", p)
		}
		summary.WriteString("\n")
	}

	// 2. The event that started the workflow.
	if e != nil {
		d, ok := workbench.ActionsDelivery(event, payload)
		if !ok {
			fmt.Fprintf(&summary, "The `%s` event decides nothing.\n\n", event)
		} else {
			facts, how := ciFacts(env)
			outcomes, err := e.DecideDelivery(ctx, d, facts, workbench.DeliveryOptions{})
			var npe *workbench.NotPolicyEvent
			switch {
			case errors.As(err, &npe):
				fmt.Fprintf(&summary, "Not a policy event: %s.\n\n", npe.Reason)
			case err != nil:
				return &usageError{err}
			}
			for _, o := range outcomes {
				writeCIOutcome(&summary, env.Stdout, o, how)
				failed = failed || !o.Decision.Allow
			}
		}
	}

	// 3. What a change to the policies does to the recorded cases.
	if base := ciBaseRef(event, payload); base != "" {
		writeCIDiff(ctx, &summary, env, base)
	}

	if path := env.Getenv("GITHUB_STEP_SUMMARY"); path != "" {
		f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
		if err != nil {
			return fmt.Errorf("GITHUB_STEP_SUMMARY: %w", err)
		}
		_, err = io.WriteString(f, summary.String())
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("GITHUB_STEP_SUMMARY: %w", err)
		}
	} else {
		io.WriteString(env.Stdout, summary.String())
	}
	if failed {
		return errDeny
	}
	return nil
}

// workflowError is an ::error workflow command; GitHub puts it on the
// file's line in the pull request.
// https://docs.github.com/actions/reference/workflow-commands-for-github-actions#setting-an-error-message
func workflowError(file string, line, col int, msg string) string {
	esc := strings.NewReplacer("%", "%25", "\r", "%0D", "\n", "%0A")
	props := esc.Replace(file)
	var b strings.Builder
	b.WriteString("::error")
	if file != "" {
		fmt.Fprintf(&b, " file=%s", strings.NewReplacer(",", "%2C", ":", "%3A").Replace(props))
		if line > 0 {
			fmt.Fprintf(&b, ",line=%d", line)
		}
		if col > 0 {
			fmt.Fprintf(&b, ",col=%d", col)
		}
	}
	b.WriteString("::")
	b.WriteString(esc.Replace(msg))
	return b.String()
}

// errCINoToken says what a workflow needs for gitpoli ci to read facts.
var errCINoToken = fmt.Errorf("%w: the job has no GITHUB_TOKEN (the gitpoli action passes ${{ github.token }}; give the workflow permissions: contents: read, pull-requests: read, checks: read, statuses: read)", workbench.ErrFactUnavailable)

// ciFacts asks GitHub with the job's token, or answers nothing without one.
func ciFacts(env Env) (workbench.Facts, string) {
	token := env.Getenv("GITHUB_TOKEN")
	if token == "" {
		return workbench.NoFacts(errCINoToken), "no GITHUB_TOKEN: facts from the API are unavailable"
	}
	client := &http.Client{Timeout: 30 * time.Second, Transport: &ghfacts.BearerTransport{Token: token}}
	facts, err := ghfacts.New(client, env.Getenv("GITHUB_API_URL"))
	if err != nil {
		return workbench.NoFacts(fmt.Errorf("%w: %v", workbench.ErrFactUnavailable, err)), err.Error()
	}
	return facts, "facts from the GitHub API"
}

func writeCIOutcome(summary io.Writer, out io.Writer, o workbench.Outcome, how string) {
	verdict := "✅ allow"
	if !o.Decision.Allow {
		verdict = "❌ deny"
	}
	what := o.Subject.Repo.String()
	if o.Subject.PR != nil {
		what = o.Subject.PR.PR.String()
	}
	if o.Subject.Environment != nil {
		what += " → " + *o.Subject.Environment
	}
	fmt.Fprintf(summary, "**%s** %s: %s (%s)\n\n", o.Decision.Policy, what, verdict, how)
	if len(o.Decision.Violations) > 0 {
		io.WriteString(summary, markdown.Violations(o.Decision.Violations))
		for _, v := range o.Decision.Violations {
			file, line := "", 0
			if v.Config != nil && !strings.Contains(v.Config.File, "@") {
				file, line = v.Config.File, v.Config.Line
			}
			fmt.Fprintln(out, workflowError(file, line, 0, v.Code+": "+v.Msg))
		}
		fmt.Fprintln(summary)
	}
}

// ciBaseRef is the base branch of a pull request, when the event is one.
func ciBaseRef(event string, payload []byte) string {
	if !strings.HasPrefix(event, "pull_request") {
		return ""
	}
	var p struct {
		PullRequest struct {
			Base struct {
				Ref string `json:"ref"`
			} `json:"base"`
		} `json:"pull_request"`
	}
	_ = json.Unmarshal(payload, &p)
	return p.PullRequest.Base.Ref
}

// writeCIDiff adds, when the pull request changes policies/ or .repol/,
// the decisions over the fixtures that differ from its base.
func writeCIDiff(ctx context.Context, summary io.Writer, env Env, base string) {
	dir := env.Dir
	if dir == "" {
		dir = "."
	}
	ref := "origin/" + base
	mb, err := session.Git(ctx, dir, "merge-base", ref, "HEAD")
	if err != nil {
		fmt.Fprintf(summary, "The base branch `%s` is not fetched, so the fixtures were not compared (use `actions/checkout` with `fetch-depth: 0`).\n", base)
		return
	}
	baseRev := strings.TrimSpace(string(mb))
	changed, err := session.Git(ctx, dir, "diff", "--name-only", baseRev, "--", "policies", ".repol", "schemas", "fixtures")
	if err != nil || len(strings.TrimSpace(string(changed))) == 0 {
		return
	}
	before, err := session.AtRevision(ctx, dir, baseRev, env.Defaults, env.engineOptions()...)
	if err != nil {
		fmt.Fprintf(summary, "Could not replay the fixtures at `%s`: %v\n", base, err)
		return
	}
	root, _ := filepath.Abs(dir)
	after, err := session.New(session.Workspace{Root: root, Defaults: env.Defaults, EngineOptions: env.engineOptions()}).Run(ctx)
	if err != nil {
		fmt.Fprintf(summary, "Could not replay the fixtures: %v\n", err)
		return
	}
	changes := session.Diff(before, after)
	if changes == nil {
		changes = []session.Change{}
	}
	fmt.Fprintln(summary)
	// The problems at the head are at the top of the summary already.
	writeDiffMarkdown(summary, base, "this pull request", changes, nil)
}
