package cli

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/gitpoli/gitpoli/backtest"
	"github.com/gitpoli/gitpoli/serve/audit"
)

type backtestOptions struct {
	sources    *sourceFlags
	format     string
	db         string
	since      string
	repo       string
	policy     string
	failOnFlip bool
	disagree   bool
}

func runBacktestCmd(ctx context.Context, args []string, env Env) error {
	fs := newFlagSet("backtest", env)
	opts := backtestOptions{sources: addSourceFlags(fs)}
	fs.StringVar(&opts.format, "format", "text", "output format: text, json or markdown")
	fs.StringVar(&opts.db, "db", "gitpoli.db", "audit database to replay, a SQLite file or a postgres:// URL (opened read-only)")
	fs.StringVar(&opts.since, "since", "", "only decisions at or after this time (RFC 3339, or a duration such as 168h)")
	fs.StringVar(&opts.repo, "repo", "", "only decisions about this repository (owner/name)")
	fs.StringVar(&opts.policy, "policy", "", "only this policy (deploy or pullrequest)")
	fs.BoolVar(&opts.failOnFlip, "fail-on-flip", false, "exit 1 when any decision flips")
	fs.BoolVar(&opts.disagree, "disagree", false, "only decisions the shadow policies (serve --shadow-policies) disagreed with")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "Usage: gitpoli backtest --db gitpoli.db|postgres://... [--policies DIR] [--config DIR] [--since T] [--repo R] [--format text|json|markdown] [--fail-on-flip]")
		fmt.Fprintln(fs.Output(), "\nDecides every recorded decision of the audit log again with these policies and\nconfig, and lists the ones that would flip. The database is never written.")
		fs.PrintDefaults()
	}
	if err := parseNoArgs(fs, args); err != nil {
		return err
	}
	switch opts.format {
	case "text", "json", "markdown":
	default:
		return usagef("--format: want text, json or markdown, got %q", opts.format)
	}
	f := audit.Filter{Repo: opts.repo, Policy: opts.policy, Disagree: opts.disagree}
	if opts.since != "" {
		t, err := audit.ParseSince(opts.since, time.Now())
		if err != nil {
			return usagef("--since: %v", err)
		}
		f.Since = t
	}
	e, err := opts.sources.engine(ctx, env)
	if err != nil {
		return err
	}
	store, err := openAudit(ctx, env, opts.db)
	if err != nil {
		return err
	}
	defer store.Close()
	rep, err := backtest.Run(ctx, e, store, backtest.Options{Filter: f})
	if err != nil {
		return err
	}
	switch opts.format {
	case "json":
		if err := writeJSON(env.Stdout, rep); err != nil {
			return err
		}
	case "markdown":
		io.WriteString(env.Stdout, rep.Markdown())
	default:
		for _, fl := range rep.Flips {
			fmt.Fprintf(env.Stdout, "%s  %s  %s %s  %s: [%s] → [%s]\n", fl.AuditID, fl.Repo, fl.Policy,
				strings.TrimSpace(fl.Environment+" "+fl.Ref), fl.Direction, strings.Join(fl.Before, " "), strings.Join(fl.After, " "))
		}
		if unfit := rep.UnfitText(); unfit != "" {
			fmt.Fprintln(env.Stdout, unfit)
		}
		fmt.Fprintf(env.Stdout, "%d decided again, %d flipped, %d skipped (error outcomes, policies no longer in the set) in %s\n",
			rep.Decided, len(rep.Flips), rep.Skipped, rep.Took.Round(time.Millisecond))
	}
	if opts.failOnFlip && len(rep.Flips) > 0 {
		return errDeny
	}
	return nil
}
