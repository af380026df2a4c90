package cli

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/gitpoli/gitpoli/workbench"
	"github.com/gitpoli/gitpoli/workbench/session"
)

func runBuildCmd(ctx context.Context, args []string, env Env) error {
	fs := newFlagSet("build", env)
	sources := addSourceFlags(fs)
	out := fs.String("o", "bundle.tar.gz", "bundle file to write")
	revision := fs.String("revision", "", "bundle revision (default: the git commit, with -dirty when policies, .repol or schemas differ from it; else the policy hash)")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "Usage: gitpoli build [-o bundle.tar.gz] [--revision R] [--policies DIR] [--config DIR]\n\nWrites a standard OPA bundle of the policies, with the .repol config and schemas\nas data: loadable by opa run -b and gitpoli serve --bundle.")
		fs.PrintDefaults()
	}
	if err := parseNoArgs(fs, args); err != nil {
		return err
	}
	e, err := sources.engine(ctx, env) // refuse to bundle what does not compile
	if err != nil {
		return err
	}
	rev := *revision
	if rev == "" {
		dir := env.Dir
		if dir == "" {
			dir = "."
		}
		if head, err := session.Git(ctx, dir, "rev-parse", "HEAD"); err == nil {
			rev = strings.TrimSpace(string(head))
			// Files the commit does not hold are not that commit's bundle.
			src := e.Sources()
			paths := []string{"status", "--porcelain", "--"}
			for _, d := range []workbench.Dir{src.Policies, src.Config, src.Schemas} {
				if !d.Embedded {
					paths = append(paths, d.Name) // as named: relative to dir
				}
			}
			if st, err := session.Git(ctx, dir, paths...); err != nil || len(bytes.TrimSpace(st)) > 0 {
				rev += "-dirty"
			}
		} else {
			rev = e.Hash()
		}
	}
	var buf bytes.Buffer
	if err := workbench.WriteBundle(&buf, e.Sources(), rev); err != nil {
		return compileError(err)
	}
	path := env.path(*out)
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		return fmt.Errorf("write bundle: %w", err)
	}
	fmt.Fprintf(env.Stdout, "wrote %s (revision %s)\n", *out, rev)
	return nil
}
