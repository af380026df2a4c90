package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/gitpoli/gitpoli/workbench"
)

type evalOptions struct {
	sources *sourceFlags
	format  *format
	policy  string
	input   string
	explain bool
}

func runEvalCmd(ctx context.Context, args []string, env Env) error {
	fs := newFlagSet("eval", env)
	opts := evalOptions{sources: addSourceFlags(fs), format: addFormatFlag(fs)}
	fs.StringVar(&opts.input, "input", "", "input document: a JSON file, or - for standard input (required)")
	fs.BoolVar(&opts.explain, "explain", false, "also show which rules fired, where, and the input facts each read")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "Usage: gitpoli eval POLICY --input FILE|- [--config DIR] [--explain] [--format text|json]")
		fmt.Fprintln(fs.Output(), "\nDecides one input document with one policy (gitpoli policies lists them). An\ninput with repo_policy or config is judged with that config as is; otherwise\nthe policy's .repol config is added. Exit 0 allow, 1 deny.")
		fs.PrintDefaults()
	}
	rest, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	switch len(rest) {
	case 0:
		return usagef("name a policy: gitpoli eval POLICY --input FILE (gitpoli policies lists them)")
	case 1:
	default:
		return usagef("unexpected argument %q", rest[1])
	}
	opts.policy = rest[0]
	if opts.input == "" {
		return usagef("--input is required (a JSON file, or - for standard input)")
	}
	return runEval(ctx, opts, env)
}

func runEval(ctx context.Context, opts evalOptions, env Env) error {
	data, err := readInput(opts.input, env)
	if err != nil {
		return err
	}
	in, err := workbench.ParseInput(data)
	if err != nil {
		return usagef("%s: %v", inputName(opts.input), err)
	}
	if in.Has("payload") && in.Has("expect") {
		// A fixture wrapper is no input document: deciding it would judge
		// the wrapper and say nothing of the case.
		return usagef("%s is a fixture, not an input document: replay it with gitpoli replay %s", inputName(opts.input), opts.input)
	}
	e, err := opts.sources.engine(ctx, env)
	if err != nil {
		return err
	}
	spec, err := e.Policy(opts.policy)
	if err != nil {
		return &usageError{err}
	}
	var d workbench.Decision
	var x workbench.Explanation
	if opts.explain {
		x, err = e.Explain(ctx, spec.Name, in)
		d = x.Decision
	} else {
		d, err = e.Decide(ctx, spec.Name, in)
	}
	if err != nil {
		// The decision already denies with engine.error; say why on stderr too.
		fmt.Fprintf(env.Stderr, "gitpoli eval: %v\n", err)
		err = nil
	}
	switch {
	case *opts.format == "json" && opts.explain:
		err = writeJSON(env.Stdout, x)
	case *opts.format == "json":
		err = writeJSON(env.Stdout, d)
	default:
		writeDecisionText(env.Stdout, d)
		if opts.explain {
			writeExplanationText(env.Stdout, x)
		}
	}
	if err != nil {
		return err
	}
	if !d.Allow {
		return errDeny
	}
	return nil
}

// maxInput bounds an input document; decisions are about small documents.
const maxInput = 32 << 20

func readInput(name string, env Env) ([]byte, error) {
	var r io.Reader
	if name == "-" {
		r = env.Stdin
	} else {
		path := env.path(name)
		f, err := os.Open(path)
		if err != nil {
			return nil, usagef("--input %s: %v", name, pathErr(err))
		}
		defer f.Close()
		r = f
	}
	data, err := io.ReadAll(io.LimitReader(r, maxInput+1))
	if err != nil {
		return nil, usagef("read %s: %v", inputName(name), err)
	}
	if len(data) > maxInput {
		return nil, usagef("%s: larger than %d MiB", inputName(name), maxInput>>20)
	}
	return data, nil
}

func inputName(name string) string {
	if name == "-" {
		return "standard input"
	}
	return name
}

func writeDecisionText(w io.Writer, d workbench.Decision) {
	verdict := "deny"
	if d.Allow {
		verdict = "allow"
	}
	fmt.Fprintf(w, "%s: %s", d.Policy, verdict)
	if n := len(d.Violations); n > 0 {
		fmt.Fprintf(w, " (%s)", plural(n, "violation", "violations"))
	}
	fmt.Fprintln(w)
	for _, v := range d.Violations {
		fmt.Fprintf(w, "  %s: %s\n", v.Code, v.Msg)
		var where []string
		if v.Rule != nil {
			where = append(where, "rule "+v.Rule.String())
		}
		if v.Config != nil {
			c := "config " + v.Config.String()
			if v.ConfigPath != "" {
				c += " (" + v.ConfigPath + ")"
			}
			where = append(where, c)
		}
		if len(where) > 0 {
			fmt.Fprintf(w, "    %s\n", strings.Join(where, ", "))
		}
	}
}

func writeExplanationText(w io.Writer, x workbench.Explanation) {
	fmt.Fprintln(w)
	if len(x.Fired) == 0 {
		fmt.Fprintln(w, "no violation rule fired")
		return
	}
	fmt.Fprintln(w, "rules that fired:")
	for _, f := range x.Fired {
		fmt.Fprintf(w, "  %s  %s\n", f.Rule, f.Code)
		for _, fact := range f.Facts {
			fmt.Fprintf(w, "    input.%s = %s\n", fact.Path, fact.ValueString())
		}
	}
}
