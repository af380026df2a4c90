package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
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
	e, err := workbench.New(ctx, src)
	if err != nil {
		return nil, compileError(err)
	}
	return e, nil
}

func (s *sourceFlags) resolve(env Env) (workbench.Sources, error) {
	var src workbench.Sources
	var err error
	if src.Policies, err = resolveDir(env, s.policies, "policies"); err != nil {
		return src, err
	}
	if src.Config, err = resolveDir(env, s.config, ".repol"); err != nil {
		return src, err
	}
	if src.Schemas, err = resolveDir(env, s.schemas, "schemas"); err != nil {
		return src, err
	}
	return src, nil
}

// resolveDir picks the directory given by a flag (which must exist), or
// the working directory's default one, or the embedded one.
func resolveDir(env Env, flagValue, name string) (workbench.Dir, error) {
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
	local := name
	if env.Dir != "" {
		local = filepath.Join(env.Dir, name)
	}
	if info, err := os.Stat(local); err == nil && info.IsDir() {
		return workbench.Dir{FS: os.DirFS(local), Name: name}, nil
	}
	if env.Defaults == nil {
		return workbench.Dir{}, fmt.Errorf("no %s directory here and no built-in one", name)
	}
	sub, err := fs.Sub(env.Defaults, name)
	if err != nil {
		return workbench.Dir{}, fmt.Errorf("built-in %s: %w", name, err)
	}
	return workbench.Dir{FS: sub, Name: name, Embedded: true}, nil
}

func flagName(dir string) string {
	if dir == ".repol" {
		return "config"
	}
	return dir
}

// loadFixtureDir loads the fixtures of --fixtures, ./fixtures or the
// built-in corpus. A directory with none is not an error.
func (s *sourceFlags) loadFixtureDir(env Env) ([]*fixture.Fixture, error) {
	d, err := resolveDir(env, s.fixtures, "fixtures")
	if err != nil {
		return nil, err
	}
	fixtures, err := fixture.Load(d.FS, d.Name)
	if err != nil {
		return nil, &usageError{err}
	}
	return fixtures, nil
}

func pathErr(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
