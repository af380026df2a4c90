package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gitpoli/gitpoli/internal/testrepo"
)

// TestInit: gitpoli init writes a policy repository in which check and
// test pass at once, and refuses to write over one.
func TestInit(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "policies-repo")
	stdout, stderr, code := run(t, "", "", "init", dir)
	if code != 0 {
		t.Fatalf("init: exit %d\n%s%s", code, stdout, stderr)
	}
	for _, name := range []string{"policies/deploy.rego", "policies/pullrequest_test.rego", "policies/lib/helpers.rego",
		".repol/deploy.yaml", "schemas/pullrequest.schema.json", "fixtures/SOURCES.md", ".github/workflows/gitpoli.yml"} {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			t.Errorf("init wrote no %s", name)
		}
	}
	sources, _ := os.ReadFile(filepath.Join(dir, "fixtures/SOURCES.md"))
	if strings.Count(string(sources), "| `") != 1 || !strings.Contains(string(sources), initFixture) {
		t.Errorf("SOURCES.md keeps other rows than its fixture's:\n%s", sources)
	}
	for _, args := range [][]string{{"check"}, {"test"}, {"policies"}} {
		stdout, stderr, code := run(t, dir, "", args...)
		if code != 0 {
			t.Errorf("%s in the new repository: exit %d\n%s%s", args[0], code, stdout, stderr)
		}
		if args[0] == "test" && !strings.Contains(stdout, "PASS  fixture fixtures/"+initFixture) {
			t.Errorf("test does not replay the fixture:\n%s", stdout)
		}
	}
	_, stderr, code = run(t, "", "", "init", dir)
	if code != 2 || !strings.Contains(stderr, "already has .github/workflows/gitpoli.yml") {
		t.Errorf("init over a repository: exit %d, %q", code, stderr)
	}
}

// TestOwnPoliciesGetNoBuiltinFiles: a directory with policies of its own
// gets none of gitpoli's built-in config, schemas or fixtures: what it
// lacks is reported, and its tests run alone.
func TestOwnPoliciesGetNoBuiltinFiles(t *testing.T) {
	dir := t.TempDir()
	if err := os.CopyFS(filepath.Join(dir, "policies"), os.DirFS(filepath.Join(testrepo.Root(".."), "policies"))); err != nil {
		t.Fatal(err)
	}
	stdout, _, code := run(t, dir, "", "check")
	if code != 1 || !strings.Contains(stdout, ".repol/deploy.yaml: missing: policy deploy") || !strings.Contains(stdout, "schemas/deploy.schema.json: cannot validate config deploy.yaml") {
		t.Errorf("check: exit %d\n%s", code, stdout)
	}
	stdout, _, code = run(t, dir, "", "test")
	if code != 0 || strings.Contains(stdout, "fixture") {
		t.Errorf("test runs fixtures that are not the repository's: exit %d\n%s", code, stdout)
	}
}
