package cli

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/gitpoli/gitpoli/workbench"
	"github.com/gitpoli/gitpoli/workbench/fixture"
)

// sourceFlags are the flags that say where policies, config and schemas
// come from. An empty flag means: the directory of that name in the
// working directory if there is one, else the copy built into gitpoli.
type sourceFlags struct {
	policies, config, schemas, fixtures string
}

func addSourceFlags(fs *flag.FlagSet) *sourceFlags {
	s := &sourceFlags{}
	fs.StringVar(&s.policies, "policies", "", "directory of Rego policies and tests (default ./policies, else built in)")
	fs.StringVar(&s.config, "config", "", "directory of .repol config (default ./.repol, else built in)")
	fs.StringVar(&s.schemas, "schemas", "", "directory of config JSON Schemas (default ./schemas, else built in)")
	return s
}

// addFixturesFlag adds --fixtures for the commands that replay fixtures.
func (s *sourceFlags) addFixturesFlag(fs *flag.FlagSet) {
	fs.StringVar(&s.fixtures, "fixtures", "", "directory of recorded fixtures (default ./fixtures, else built in)")
}

// engine resolves the sources and builds the engine; policies that do not
// compile are an input error that lists every problem.
func (s *sourceFlags) engine(ctx context.Context, env Env) (*workbench.Engine, error) {
	src, err := s.resolve(env)
	if err != nil {
		return nil, err
	}
	e, err := workbench.New(ctx, src, env.engineOptions()...)
	if err != nil {
		return nil, compileError(err)
	}
	return e, nil
}

func (s *sourceFlags) resolve(env Env) (workbench.Sources, error) {
	var src workbench.Sources
	var err error
	own := s.ownPolicies(env)
	if src.Policies, err = resolveDir(env, s.policies, "policies", own); err != nil {
		return src, err
	}
	if src.Config, err = resolveDir(env, s.config, ".repol", own); err != nil {
		return src, err
	}
	if src.Schemas, err = resolveDir(env, s.schemas, "schemas", own); err != nil {
		return src, err
	}
	return src, nil
}

// resolveDir picks the directory given by a flag (which must exist), or
// the working directory's own, or, in a directory without policies of its
// own, the built-in one (workbench.WorkspaceDir).
func resolveDir(env Env, flagValue, name string, ownPolicies bool) (workbench.Dir, error) {
	if flagValue != "" {
		path := env.path(flagValue)
		info, err := os.Stat(path)
		if err != nil {
			return workbench.Dir{}, usagef("--%s %s: %v", flagName(name), flagValue, pathErr(err))
		}
		if !info.IsDir() {
			return workbench.Dir{}, usagef("--%s %s: not a directory", flagName(name), flagValue)
		}
		return workbench.Dir{FS: os.DirFS(path), Name: filepath.ToSlash(flagValue)}, nil
	}
	return workbench.WorkspaceDir(cmp.Or(env.Dir, "."), name, env.Defaults, ownPolicies)
}

// ownPolicies reports whether the policies are the user's: named by
// --policies, or a policies directory in the working directory.
func (s *sourceFlags) ownPolicies(env Env) bool {
	return s.policies != "" || workbench.HasPolicies(cmp.Or(env.Dir, "."))
}

func flagName(dir string) string {
	if dir == ".repol" {
		return "config"
	}
	return dir
}

// loadFixtureDir loads the fixtures of --fixtures, ./fixtures or the
// built-in corpus. A directory with none is not an error; a file that
// does not parse is a failed result, and the others are still loaded.
func (s *sourceFlags) loadFixtureDir(env Env) ([]*fixture.Fixture, []fixture.Result, error) {
	d, err := resolveDir(env, s.fixtures, "fixtures", s.ownPolicies(env))
	if err != nil {
		return nil, nil, err
	}
	fixtures, err := fixture.Load(d.FS, d.Name)
	if err == nil {
		return fixtures, nil, nil
	}
	files, ok := fixture.FileErrors(err)
	if !ok {
		return nil, nil, &usageError{err}
	}
	return fixtures, brokenResults(files), nil
}

// brokenResults are failed results for fixture files that do not parse.
func brokenResults(files []*fixture.FileError) []fixture.Result {
	out := make([]fixture.Result, len(files))
	for i, fe := range files {
		out[i] = fixture.Result{Fixture: fe.File, Error: fe.Err.Error(), Mismatch: "error: " + fe.Err.Error()}
	}
	return out
}

func pathErr(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// engineOptions are the engine's options from the environment:
// GITPOLI_EVALUATOR=topdown decides everything with OPA's topdown.
func (e Env) engineOptions() []workbench.Option {
	if e.Getenv("GITPOLI_EVALUATOR") == "topdown" {
		return []workbench.Option{workbench.TopdownOnly()}
	}
	return nil
}
