// Package cli is gitpoli's command line: it parses flags, calls the engine
// in workbench and renders results as text or JSON. It holds no policy
// logic of its own.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"path/filepath"
	"strings"

	"github.com/gitpoli/gitpoli/serve/audit"
)

// Exit codes, the contract scripts rely on.
const (
	ExitOK    = 0 // allow, all tests pass, no problems
	ExitDeny  = 1 // deny, failing tests, problems found
	ExitUsage = 2 // bad flags or unreadable input
)

// Env is everything a command takes from its process, so that tests can
// run commands in-process with buffers.
type Env struct {
	Getenv func(string) string
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
	// Defaults holds the embedded policies/, schemas/ and .repol/ used when
	// the working directory has none of its own.
	Defaults fs.FS
	// Dir is the working directory that default paths are resolved in;
	// empty means the process's own.
	Dir string
	// Terminal is true when standard input and output are a terminal:
	// then a bare gitpoli opens the workbench.
	Terminal bool
}

// usageError is a mistake in how a command was called, or input it cannot
// read: exit 2.
type usageError struct{ err error }

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

func usagef(format string, args ...any) error {
	return &usageError{fmt.Errorf(format, args...)}
}

// errDeny is the silent outcome of a command that ran and said no (a deny,
// a failing test, problems found): exit 1, with the reasons already
// printed as results.
var errDeny = errors.New("deny")

type command struct {
	name    string
	summary string
	run     func(ctx context.Context, args []string, env Env) error
}

func commands() []command {
	return []command{
		{"workbench", "the terminal workbench: re-runs everything on save (the default command)", runWorkbenchCmd},
		{"check", "compile policies strictly, check formatting, validate .repol config", runCheckCmd},
		{"test", "run the OPA unit tests beside the policies", runTestCmd},
		{"policies", "list the policies: the events each decides, its answer and its config", runPoliciesCmd},
		{"eval", "decide one input document with one policy: eval POLICY --input FILE", runEvalCmd},
		{"replay", "replay recorded deliveries (fixtures/), a raw payload, or a live pull request", runReplayCmd},
		{"diff", "what a change to policies, config or fixtures decides differently: diff [BASE [HEAD]]", runDiffCmd},
		{"backtest", "decide the audit log again with these policies: what would flip", runBacktestCmd},
		{"ci", "inside GitHub Actions: check, decide the triggering event, write the job summary", runCICmd},
		{"build", "write an OPA bundle of the policies, config and schemas", runBuildCmd},
		{"fmt", "format Rego as opa fmt does: fmt [-w] [FILE|DIR ...]", runFmtCmd},
		{"init", "write a policy repository: starter policies, tests, config, schemas, a fixture, CI", runInitCmd},
		{"serve", "the GitHub App backend: webhooks, deployment protection, PR checks, audit log", runServeCmd},
		{"reconcile", "take the webhook deliveries GitHub could not hand over to serve, once", runReconcileCmd},
		{"version", "print the version", runVersionCmd},
	}
}

// Run runs the command named by args[0] and returns the process exit code.
func Run(ctx context.Context, args []string, env Env) int {
	if env.Getenv == nil {
		env.Getenv = func(string) string { return "" }
	}
	if len(args) == 0 {
		// A bare gitpoli is the workbench: on a terminal the UI, otherwise
		// one run and a summary.
		return exitCode(runWorkbenchCmd(ctx, nil, env), env.Stderr, "workbench")
	}
	if args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		usage(env.Stdout)
		return ExitOK
	}
	if strings.HasPrefix(args[0], "-") {
		// Flags with no command are the workbench's (gitpoli --format json).
		return exitCode(runWorkbenchCmd(ctx, args, env), env.Stderr, "workbench")
	}
	for _, c := range commands() {
		if c.name == args[0] {
			return exitCode(c.run(ctx, args[1:], env), env.Stderr, c.name)
		}
	}
	fmt.Fprintf(env.Stderr, "gitpoli: unknown command %q (run gitpoli help)\n", args[0])
	return ExitUsage
}

func exitCode(err error, stderr io.Writer, name string) int {
	var ue *usageError
	switch {
	case err == nil:
		return ExitOK
	case errors.Is(err, errDeny):
		return ExitDeny
	case errors.Is(err, flag.ErrHelp):
		return ExitOK
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "gitpoli %s: %v\n", name, err)
		return ExitUsage
	default:
		fmt.Fprintf(stderr, "gitpoli %s: %v\n", name, err)
		return ExitDeny
	}
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "gitpoli: policy as code for GitHub deployments and pull requests")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Usage: gitpoli [<command>] [flags]   (no command: the workbench)")
	fmt.Fprintln(w)
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-8s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Run gitpoli <command> -h for a command's flags.")
	fmt.Fprintln(w, "Exit codes: 0 allow/ok, 1 deny/failures, 2 usage or unreadable input.")
}

// newFlagSet returns a flag set that reports errors instead of exiting.
// Its usage text goes to stdout when asked for with -h; a bad flag gets a
// one-line error instead (see parseInterspersed).
func newFlagSet(name string, env Env) *flag.FlagSet {
	fs := flag.NewFlagSet("gitpoli "+name, flag.ContinueOnError)
	fs.SetOutput(env.Stdout)
	return fs
}

// parseInterspersed parses flags that may come before or after positional
// arguments (gitpoli eval deploy --input x.json) and returns the
// positionals.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var positional []string
	out := fs.Output()
	for {
		fs.SetOutput(io.Discard)
		err := fs.Parse(args)
		fs.SetOutput(out)
		if errors.Is(err, flag.ErrHelp) {
			fs.Usage()
			return nil, err
		}
		if err != nil {
			return nil, usagef("%v (see %s -h)", err, fs.Name())
		}
		args = fs.Args()
		if len(args) == 0 {
			return positional, nil
		}
		if args[0] == "--" {
			return append(positional, args[1:]...), nil
		}
		positional = append(positional, args[0])
		args = args[1:]
	}
}

// parseNoArgs parses flags for a command that takes no positional
// arguments.
func parseNoArgs(fs *flag.FlagSet, args []string) error {
	rest, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return usagef("unexpected argument %q", rest[0])
	}
	return nil
}

// format is the --format flag: text or json.
type format string

func (f *format) String() string { return string(*f) }

func (f *format) Set(s string) error {
	switch s {
	case "text", "json":
		*f = format(s)
		return nil
	}
	return fmt.Errorf("want text or json, got %q", s)
}

func addFormatFlag(fs *flag.FlagSet) *format {
	f := format("text")
	fs.Var(&f, "format", "output format: text or json")
	return &f
}

func plural(n int, one, many string) string {
	if n == 1 {
		return fmt.Sprintf("%d %s", n, one)
	}
	return fmt.Sprintf("%d %s", n, many)
}

func indent(s, prefix string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	for i, l := range lines {
		lines[i] = prefix + l
	}
	return strings.Join(lines, "\n")
}

// path resolves a path given on the command line against the directory
// gitpoli runs in.
func (e Env) path(p string) string {
	if filepath.IsAbs(p) || e.Dir == "" {
		return p
	}
	return filepath.Join(e.Dir, p)
}

// openAudit opens an audit database of gitpoli serve read-only: a SQLite
// file, or a postgres:// URL.
func openAudit(ctx context.Context, env Env, dsn string) (*audit.Store, error) {
	if !audit.IsPostgres(dsn) {
		dsn = env.path(dsn)
	}
	store, err := audit.OpenReadOnly(ctx, dsn)
	if err != nil {
		return nil, &usageError{err}
	}
	return store, nil
}
