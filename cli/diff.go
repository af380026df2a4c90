package cli

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/gitpoli/gitpoli/workbench"
	"github.com/gitpoli/gitpoli/workbench/session"
)

type diffOptions struct {
	format       string
	failOnChange bool
}

func runDiffCmd(ctx context.Context, args []string, env Env) error {
	fs := newFlagSet("diff", env)
	var opts diffOptions
	fs.StringVar(&opts.format, "format", "text", "output format: text, json or markdown")
	fs.BoolVar(&opts.failOnChange, "fail-on-change", false, "exit 1 when a decision or test changes")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), `Usage: gitpoli diff [BASE [HEAD]] [--format text|json|markdown] [--fail-on-change]

Decides every fixture and runs every OPA test with the policies, config and
fixtures of BASE and of HEAD, and lists what differs. BASE defaults to the
merge-base with the default branch, HEAD to the working tree. The working tree
is never touched: other revisions are read from git objects.`)
		fs.PrintDefaults()
	}
	rest, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	switch opts.format {
	case "text", "json", "markdown":
	default:
		return usagef("--format: want text, json or markdown, got %q", opts.format)
	}
	if len(rest) > 2 {
		return usagef("unexpected argument %q", rest[2])
	}
	dir := env.Dir
	if dir == "" {
		dir = "."
	}
	base, head := "", ""
	if len(rest) > 0 {
		base = rest[0]
	}
	if len(rest) > 1 {
		head = rest[1]
	}
	if base == "" {
		if base, err = session.MergeBase(ctx, dir); err != nil {
			return &usageError{err}
		}
	}
	baseSnap, err := session.AtRevision(ctx, dir, base, env.Defaults, env.engineOptions()...)
	if errors.Is(err, session.ErrUnknownRevision) {
		return &usageError{err}
	}
	if err != nil {
		return err
	}
	headLabel := head
	if head == "" {
		headLabel = "working tree"
	}
	headSnap, err := session.AtRevision(ctx, dir, head, env.Defaults, env.engineOptions()...)
	if errors.Is(err, session.ErrUnknownRevision) {
		return &usageError{err}
	}
	if err != nil {
		return err
	}
	changes := session.Diff(baseSnap, headSnap)
	if changes == nil {
		changes = []session.Change{}
	}
	switch opts.format {
	case "json":
		err = writeJSON(env.Stdout, map[string]any{"base": base, "head": headLabel, "changes": changes,
			"base_problems": baseSnap.Problems, "head_problems": headSnap.Problems})
	case "markdown":
		writeDiffMarkdown(env.Stdout, base, headLabel, changes, headSnap.Problems)
	default:
		for _, c := range changes {
			mark := "~"
			if c.Flipped {
				mark = "!"
			}
			fmt.Fprintf(env.Stdout, "%s %s %s: %s → %s\n", mark, c.Kind, c.Name, orNone(c.Before), orNone(c.After))
		}
		for _, p := range headSnap.Problems {
			fmt.Fprintf(env.Stdout, "problem at %s: %s\n", headLabel, p)
		}
		fmt.Fprintf(env.Stdout, "%s → %s: %d changed\n", base, headLabel, len(changes))
	}
	if err != nil {
		return err
	}
	if opts.failOnChange && (len(changes) > 0 || len(headSnap.Problems) > 0) {
		return errDeny
	}
	return nil
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

// writeDiffMarkdown writes changes as a Markdown table, then the problems
// at head (nil when the caller lists them already).
func writeDiffMarkdown(w io.Writer, base, head string, changes []session.Change, problems workbench.Problems) {
	fmt.Fprintf(w, "**gitpoli diff** `%s` → `%s`: %d changed\n\n", base, head, len(changes))
	if len(changes) > 0 {
		fmt.Fprintln(w, "| | kind | name | before | after |\n|---|---|---|---|---|")
		for _, c := range changes {
			mark := ""
			if c.Flipped {
				mark = "⚠️"
			}
			fmt.Fprintf(w, "| %s | %s | `%s` | %s | %s |\n", mark, c.Kind, c.Name, orNone(c.Before), orNone(c.After))
		}
	}
	if len(problems) > 0 {
		fmt.Fprintln(w, "\nProblems:")
		for _, p := range problems {
			fmt.Fprintf(w, "- `%s`\n", p)
		}
	}
}
