package cli

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gitpoli/gitpoli/workbench"
	"github.com/gitpoli/gitpoli/workbench/fixture"
)

type replayOptions struct {
	sources          *sourceFlags
	format           *format
	event            string
	deliveryID       string
	deploymentsToday int
	environment      string
	record           string
	targets          []string
}

func runReplayCmd(ctx context.Context, args []string, env Env) error {
	fs := newFlagSet("replay", env)
	opts := replayOptions{sources: addSourceFlags(fs), format: addFormatFlag(fs)}
	opts.sources.addFixturesFlag(fs)
	fs.StringVar(&opts.event, "event", "", "treat FILE as a raw webhook payload of this event (X-GitHub-Event)")
	fs.StringVar(&opts.deliveryID, "delivery-id", "", "delivery id of a raw payload (X-GitHub-Delivery)")
	fs.IntVar(&opts.deploymentsToday, "deployments-today", -1, "deployments to the environment already made today (raw payloads and live pull requests)")
	fs.StringVar(&opts.environment, "environment", "", "live pull request: decide a deployment of its head to this environment")
	fs.StringVar(&opts.record, "record", "", "live pull request: write what was fetched as a fixture to this file")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), `Usage:
  gitpoli replay [PATH...]                       replay fixtures (default: fixtures/)
  gitpoli replay FILE --event NAME               decide a raw webhook payload offline
  gitpoli replay owner/repo#N [--environment E] [--record FILE]
                                                 decide a live pull request (needs GITHUB_TOKEN)

Fixtures are compared with their expectations: exit 1 on any mismatch.`)
		fs.PrintDefaults()
	}
	rest, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	opts.targets = rest
	e, err := opts.sources.engine(ctx, env)
	if err != nil {
		return err
	}
	switch {
	case opts.event != "":
		if len(rest) != 1 {
			return usagef("--event takes exactly one payload file")
		}
		return replayRaw(ctx, e, opts, env)
	case len(rest) == 1 && isLivePR(rest[0]):
		return replayLive(ctx, e, opts, env)
	}
	if opts.environment != "" || opts.record != "" {
		return usagef("--environment and --record are for a live pull request (owner/repo#N)")
	}
	return replayFixtures(ctx, e, opts, env)
}

// replayFixtures replays fixture files and directories.
func replayFixtures(ctx context.Context, e *workbench.Engine, opts replayOptions, env Env) error {
	fixtures, broken, err := loadFixtures(env, opts.sources, opts.targets)
	if err != nil {
		return err
	}
	results, err := fixture.RunAll(ctx, e, fixtures)
	if err != nil {
		return err
	}
	// A fixture of the directory that does not parse fails; the others
	// still run.
	results = append(results, broken...)
	slices.SortFunc(results, func(a, b fixture.Result) int { return cmp.Compare(a.Fixture, b.Fixture) })
	if *opts.format == "json" {
		if err := writeJSON(env.Stdout, results); err != nil {
			return err
		}
	} else {
		writeReplayText(env.Stdout, results)
	}
	for _, r := range results {
		if !r.Pass {
			return errDeny
		}
	}
	return nil
}

// loadFixtures loads the named fixture files and directories, or else the
// fixtures directory, whose files that do not parse are failed results.
func loadFixtures(env Env, sources *sourceFlags, targets []string) ([]*fixture.Fixture, []fixture.Result, error) {
	if len(targets) == 0 {
		return sources.loadFixtureDir(env)
	}
	var out []*fixture.Fixture
	var broken []fixture.Result
	for _, t := range targets {
		p := env.path(t)
		info, err := os.Stat(p)
		if err != nil {
			return nil, nil, usagef("%s: %v", t, pathErr(err))
		}
		if info.IsDir() {
			fixtures, err := fixture.Load(os.DirFS(p), filepath.ToSlash(t))
			if err != nil {
				// A file of the directory that does not parse fails alone.
				files, ok := fixture.FileErrors(err)
				if !ok {
					return nil, nil, &usageError{err}
				}
				broken = append(broken, brokenResults(files)...)
			}
			out = append(out, fixtures...)
			continue
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return nil, nil, usagef("%s: %v", t, pathErr(err))
		}
		f, err := fixture.Parse(filepath.ToSlash(t), data)
		if err != nil {
			return nil, nil, &usageError{err}
		}
		out = append(out, f)
	}
	return out, broken, nil
}

func writeReplayText(w io.Writer, results []fixture.Result) {
	pass, fail := 0, 0
	for _, r := range results {
		status := "PASS"
		if r.Pass {
			pass++
		} else {
			status = "FAIL"
			fail++
		}
		event := r.Event
		if r.Action != "" {
			event += "." + r.Action
		}
		fmt.Fprintf(w, "%s  %s  %s  %s\n", status, r.Fixture, event, resultSummary(r))
		if r.Mismatch != "" {
			fmt.Fprintf(w, "      %s\n", r.Mismatch)
		}
	}
	fmt.Fprintf(w, "%d passed, %d failed\n", pass, fail)
}

// resultSummary is "ignored (reason)" or "allow" or "deny [codes]".
func resultSummary(r fixture.Result) string {
	if r.Error != "" {
		return "error"
	}
	if r.Ignored != "" {
		return "ignored (" + r.Ignored + ")"
	}
	var parts []string
	for _, o := range r.Outcomes {
		parts = append(parts, decisionSummary(o.Decision))
	}
	return strings.Join(parts, "; ")
}

func decisionSummary(d workbench.Decision) string {
	if d.Allow {
		return string(d.Policy) + " allow"
	}
	return fmt.Sprintf("%s deny [%s]", d.Policy, strings.Join(d.Verdict().Codes, " "))
}

var errOffline = fmt.Errorf("%w: offline (replay a live pull request, or record a fixture, to have it)", workbench.ErrFactUnavailable)

// replayRaw decides a raw webhook payload, as saved from GitHub's delivery
// log, with the local .repol config and no other facts.
func replayRaw(ctx context.Context, e *workbench.Engine, opts replayOptions, env Env) error {
	data, err := readInput(opts.targets[0], env)
	if err != nil {
		return err
	}
	if !json.Valid(data) {
		if _, err := workbench.ParseInput(data); err != nil {
			return usagef("%s: %v", opts.targets[0], strings.Replace(err.Error(), "input", "payload", 1))
		}
	}
	if _, err := fixture.Parse(opts.targets[0], data); err == nil {
		// A fixture's wrapper is no webhook payload: deciding it would
		// judge the wrapper and say nothing of the case.
		return usagef("%s is a fixture, not a raw payload: replay it without --event (gitpoli replay %s)", opts.targets[0], opts.targets[0])
	}
	d := workbench.Delivery{Event: opts.event, ID: opts.deliveryID, Payload: data}
	dopts := workbench.DeliveryOptions{Config: e.Config()}
	if opts.deploymentsToday >= 0 {
		dopts.DeploymentsToday = &opts.deploymentsToday
	}
	outcomes, err := e.DecideDelivery(ctx, d, workbench.NoFacts(errOffline), dopts)
	return writeOutcomes(env, opts, outcomes, err)
}

func writeOutcomes(env Env, opts replayOptions, outcomes []workbench.Outcome, err error) error {
	var npe *workbench.NotPolicyEvent
	if errors.As(err, &npe) {
		// The user named this delivery to have it decided: that nothing
		// decides it is an answer of no, not a success.
		if *opts.format == "json" {
			if err := writeJSON(env.Stdout, map[string]string{"ignored": npe.Reason}); err != nil {
				return err
			}
		} else {
			fmt.Fprintf(env.Stdout, "not a policy event: %s\n", npe.Reason)
		}
		return errDeny
	}
	if err != nil {
		return &usageError{err}
	}
	if *opts.format == "json" {
		if err := writeJSON(env.Stdout, outcomes); err != nil {
			return err
		}
	} else {
		last := ""
		for _, o := range outcomes {
			what := o.Subject.Repo.String()
			if o.Subject.PR != nil {
				what = o.Subject.PR.PR.String()
			}
			if o.Subject.Environment != nil {
				what += " → " + *o.Subject.Environment
			}
			// Every policy that decides the subject, under it once.
			if what != last {
				fmt.Fprintf(env.Stdout, "%s\n", what)
				last = what
			}
			writeDecisionText(env.Stdout, o.Decision)
		}
	}
	for _, o := range outcomes {
		if !o.Decision.Allow {
			return errDeny
		}
	}
	return nil
}

var (
	prShorthand = regexp.MustCompile(`^([A-Za-z0-9_.-]+)/([A-Za-z0-9_.-]+)#([0-9]+)$`)
	prURL       = regexp.MustCompile(`^https?://[^/]+/([A-Za-z0-9_.-]+)/([A-Za-z0-9_.-]+)/pull/([0-9]+)/?$`)
)

func isLivePR(s string) bool { return prShorthand.MatchString(s) || prURL.MatchString(s) }

func parseLivePR(s string) (workbench.PR, error) {
	m := prShorthand.FindStringSubmatch(s)
	if m == nil {
		m = prURL.FindStringSubmatch(s)
	}
	if m == nil {
		return workbench.PR{}, fmt.Errorf("%q is not owner/repo#N or a pull request URL", s)
	}
	n, err := strconv.Atoi(m[3])
	if err != nil || n <= 0 {
		return workbench.PR{}, fmt.Errorf("%q: bad pull request number", s)
	}
	return workbench.PR{Repo: workbench.Repo{Owner: m[1], Name: m[2]}, Number: n}, nil
}

// replayLive fetches a pull request and its facts from GitHub and decides
// it (or a deployment of its head with --environment). The token comes from
// the environment only, never from a flag (flags show in ps).
func replayLive(ctx context.Context, e *workbench.Engine, opts replayOptions, env Env) error {
	pr, err := parseLivePR(opts.targets[0])
	if err != nil {
		return &usageError{err}
	}
	token := env.Getenv("GITHUB_TOKEN")
	if token == "" {
		return usagef("replaying a live pull request needs a token: export GITHUB_TOKEN=<a token that can read %s>", pr.Repo)
	}
	lo := fixture.LiveOptions{Token: token, APIURL: env.Getenv("GITHUB_API_URL"), Environment: opts.environment, All: opts.record != ""}
	if opts.deploymentsToday >= 0 {
		lo.DeploymentsToday = &opts.deploymentsToday
	}
	live, err := fixture.FetchLive(ctx, e, pr, lo)
	if err != nil {
		return &usageError{err}
	}
	if opts.record != "" {
		data, err := live.Fixture(time.Now()).Marshal()
		if err != nil {
			return err
		}
		path := env.path(opts.record)
		if err := os.WriteFile(path, data, 0o644); err != nil {
			return fmt.Errorf("record fixture: %w", err)
		}
		fmt.Fprintf(env.Stderr, "recorded %s as %s\n", pr, opts.record)
	}
	return writeOutcomes(env, opts, live.Outcomes, nil)
}
