package cli

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
)

// initFixture is the one recorded delivery a new policy repository starts
// with: a pull request the starter policies allow.
const initFixture = "pull_request.opened.feature-approved.json"

// initWorkflow runs gitpoli ci on every pull request and review, with the
// permissions its facts need (action.yml builds gitpoli from source).
const initWorkflow = `# Checks the policies and .repol config on every pull request, decides the
# pull request with them, and shows which recorded fixtures a policy change
# decides differently. See gitpoli's README, "gitpoli ci".
name: gitpoli
on:
  pull_request:
  pull_request_review:
permissions:
  contents: read       # .repol config of the base branch
  pull-requests: read  # reviews and commits
  checks: read         # check runs on the head
  statuses: read       # commit statuses on the head
jobs:
  gitpoli:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
        with:
          fetch-depth: 0 # the base branch, for the fixture comparison
      - uses: gitpoli/gitpoli@main
`

func runInitCmd(_ context.Context, args []string, env Env) error {
	flags := newFlagSet("init", env)
	flags.Usage = func() {
		fmt.Fprintln(flags.Output(), "Usage: gitpoli init [DIR]")
		fmt.Fprintln(flags.Output(), "\nWrites a policy repository into DIR (default: the working directory): the\nstarter policies and their tests (policies/), their config (.repol/) and\nschemas (schemas/), one recorded fixture (fixtures/), and a GitHub Actions\nworkflow that runs gitpoli ci. gitpoli test is green in it at once. Files that\nexist already are never overwritten: init refuses and names them.")
		flags.PrintDefaults()
	}
	rest, err := parseInterspersed(flags, args)
	if err != nil {
		return err
	}
	if len(rest) > 1 {
		return usagef("unexpected argument %q", rest[1])
	}
	dir := "."
	if len(rest) == 1 {
		dir = rest[0]
	}
	if env.Defaults == nil {
		return errors.New("this gitpoli has no built-in starter files")
	}
	files, err := starterFiles(env.Defaults)
	if err != nil {
		return err
	}
	root := env.path(dir)
	var exist []string
	for name := range files {
		if _, err := os.Lstat(filepath.Join(root, filepath.FromSlash(name))); err == nil {
			exist = append(exist, name)
		}
	}
	if len(exist) > 0 {
		slices.Sort(exist)
		return usagef("%s already has %s: init writes only into a repository without them", dir, strings.Join(exist, ", "))
	}
	names := make([]string, 0, len(files))
	for name := range files {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		p := filepath.Join(root, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, files[name], 0o644); err != nil {
			return err
		}
	}
	fmt.Fprintf(env.Stdout, "wrote %d files into %s:\n", len(names), dir)
	for _, name := range names {
		fmt.Fprintf(env.Stdout, "  %s\n", name)
	}
	fmt.Fprintf(env.Stdout, "\nNext: cd %s && gitpoli test (green), then gitpoli for the workbench.\n", dir)
	return nil
}

// starterFiles are the files init writes, by slash path.
func starterFiles(defaults fs.FS) (map[string][]byte, error) {
	files := map[string][]byte{}
	for _, dir := range []string{"policies", ".repol", "schemas"} {
		err := fs.WalkDir(defaults, dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			data, err := fs.ReadFile(defaults, p)
			files[p] = data
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("built-in %s: %w", dir, err)
		}
	}
	fixture, err := fs.ReadFile(defaults, path.Join("fixtures", initFixture))
	if err != nil {
		return nil, fmt.Errorf("built-in fixture: %w", err)
	}
	files["fixtures/"+initFixture] = fixture
	// The fixture's payload is a published example: keep its attribution.
	sources, err := fs.ReadFile(defaults, "fixtures/SOURCES.md")
	if err != nil {
		return nil, fmt.Errorf("built-in fixtures/SOURCES.md: %w", err)
	}
	files["fixtures/SOURCES.md"] = fixtureSources(sources, initFixture)
	files[".github/workflows/gitpoli.yml"] = []byte(initWorkflow)
	return files, nil
}

// fixtureSources keeps of SOURCES.md its text and the table row of one
// fixture.
func fixtureSources(all []byte, name string) []byte {
	var b bytes.Buffer
	sc := bufio.NewScanner(bytes.NewReader(all))
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "| `") && !strings.HasPrefix(line, "| `"+name+"`") {
			continue
		}
		b.WriteString(line)
		b.WriteByte('\n')
	}
	return b.Bytes()
}
