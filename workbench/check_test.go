package workbench

import (
	"context"
	"os"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/charmbracelet/x/exp/golden"
)

func TestCheckRepository(t *testing.T) {
	_, problems, err := Check(context.Background(), repoSources())
	if err != nil {
		t.Fatal(err)
	}
	if len(problems) != 0 {
		t.Errorf("the repository's own files have problems:\n%v", problems)
	}
}

// TestCheckReportsEverything breaks a policy's formatting, a policy's
// compile, and a config value at once: every problem is reported.
func TestCheckReportsEverything(t *testing.T) {
	deployYAML, err := os.ReadFile("../internal/testrepo/testdata/.repol/deploy.yaml")
	if err != nil {
		t.Fatal(err)
	}
	src := repoSources()
	src.Policies = Dir{Name: "policies", FS: fstest.MapFS{
		"deploy.rego":      {Data: []byte(deployHeader + "package github.deploy\n\nallow   := true\n\nviolations := set()\n")},
		"pullrequest.rego": {Data: []byte(pullRequestHeader + "package github.pullrequest\n\nallow if {\n\tx := input.y\n\ttrue\n}\n\nviolations := set()\n")},
	}}
	src.Config = Dir{Name: ".repol", FS: fstest.MapFS{
		"deploy.yaml": {Data: []byte(strings.Replace(string(deployYAML), "tests_passed: true", "tests_passed: 1", 1))},
	}}
	e, problems, err := Check(context.Background(), src)
	if err != nil {
		t.Fatal(err)
	}
	if e != nil {
		t.Error("Check returned an engine for policies that do not compile")
	}
	golden.RequireEqual(t, problems.Error()+"\n")
}

func TestCheckBrokenTestFile(t *testing.T) {
	src := failingSources()
	fsys := src.Policies.FS.(fstest.MapFS)
	fsys["broken_test.rego"] = &fstest.MapFile{Data: []byte("package github.deploy_test\n\ntest_unused if {\n\tx := 1\n\ttrue\n}\n")}
	_, problems, err := Check(context.Background(), src)
	if err != nil {
		t.Fatal(err)
	}
	if len(problems) != 1 || problems[0].String() != "policies/broken_test.rego:4:2: rego_compile_error: assigned var x unused" {
		t.Errorf("problems: %v", problems)
	}
	mustEngine(t, src) // a broken test file does not stop the engine
	if _, err := TestDir(context.Background(), src.Policies, TestOptions{}); err == nil || !strings.Contains(err.Error(), "broken_test.rego:4") {
		t.Errorf("Test with a broken test file: %v", err)
	}
}
