package cli

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"
	regofmt "github.com/open-policy-agent/opa/v1/format"
)

func runFmtCmd(_ context.Context, args []string, env Env) error {
	flags := newFlagSet("fmt", env)
	write := flags.Bool("w", false, "write the formatted source back to each file")
	flags.Usage = func() {
		fmt.Fprintln(flags.Output(), "Usage: gitpoli fmt [-w] [FILE|DIR ...]")
		fmt.Fprintln(flags.Output(), "\nFormats Rego as opa fmt does (the same code, OPA's format package), so that\ngitpoli check and opa fmt accept it. Lists the files it would change (default:\nthe policies directory), exit 1 when there are any; -w rewrites them.")
		flags.PrintDefaults()
	}
	paths, err := parseInterspersed(flags, args)
	if err != nil {
		return err
	}
	if len(paths) == 0 {
		paths = []string{"policies"}
	}
	var changed []string
	for _, p := range paths {
		root := env.path(p)
		err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() || (path != root && filepath.Ext(path) != ".rego") {
				return nil
			}
			src, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			name := filepath.Join(p, strings.TrimPrefix(path, root))
			out, err := regofmt.SourceWithOpts(name, src, regofmt.Opts{RegoVersion: ast.RegoV1})
			if err != nil {
				return fmt.Errorf("%s does not parse, so it cannot be formatted: %w", name, err)
			}
			if string(out) == string(src) {
				return nil
			}
			changed = append(changed, name)
			if *write {
				info, err := d.Info()
				if err != nil {
					return err
				}
				return os.WriteFile(path, out, info.Mode().Perm())
			}
			return nil
		})
		if err != nil {
			return &usageError{fmt.Errorf("fmt %s: %w", p, pathErr(err))}
		}
	}
	for _, name := range changed {
		fmt.Fprintln(env.Stdout, filepath.ToSlash(name))
	}
	if len(changed) > 0 && !*write {
		return errDeny
	}
	return nil
}
