package workbench

import (
	"context"
	"regexp"
	"strings"
	"testing"
	"testing/fstest"
)

func TestRepositoryPolicyTestsPass(t *testing.T) {
	report, err := TestDir(context.Background(), repoSources().Policies, TestOptions{Coverage: true})
	if err != nil {
		t.Fatal(err)
	}
	pass, fail, _ := report.Counts()
	if fail != 0 || pass < 60 {
		t.Errorf("got %d passed, %d failed; want every one of the repository's tests to pass", pass, fail)
	}
	for _, r := range report.Results {
		if r.Status != TestPass {
			t.Errorf("%s: %s %s %s", r.FullName(), r.Status, r.FailedExpr, r.Error)
		}
		if r.Pos.Line == 0 || !strings.HasSuffix(r.Pos.File, "_test.rego") {
			t.Errorf("%s: position %s", r.FullName(), r.Pos)
		}
	}
	if report.Coverage == nil {
		t.Fatal("no coverage report")
	}
	for _, f := range report.Coverage.Files {
		if f.Coverage < 90 {
			t.Errorf("%s: %.1f%% covered, lines %v not", f.File, f.Coverage, f.Uncovered)
		}
	}
}

// failingSources is a policy with one passing and one failing test.
func failingSources() Sources {
	src := repoSources()
	src.Policies = Dir{Name: "policies", FS: fstest.MapFS{
		"deploy.rego":      {Data: []byte(deployHeader + "package github.deploy\n\ndefault allow := false\n\nallow if count(violations) == 0\n\nviolations contains {\"code\": \"c\", \"msg\": \"m\"} if input.x\n")},
		"pullrequest.rego": {Data: []byte(pullRequestHeader + "package github.pullrequest\n\nallow := true\n\nviolations := set()\n")},
		"deploy_test.rego": {Data: []byte(`package github.deploy_test

import data.github.deploy

test_allows_empty if {
	deploy.allow with input as {}
}

test_denies_x if {
	doc := {"x": true}
	print("checking", doc)
	deploy.allow with input as doc
}
`)},
	}}
	return src
}

func TestTestReportsFailureLocation(t *testing.T) {
	report, err := TestDir(context.Background(), failingSources().Policies, TestOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !report.Failed() {
		t.Fatal("report does not fail")
	}
	var failed *TestResult
	for i, r := range report.Results {
		if r.Name == "test_denies_x" {
			failed = &report.Results[i]
		}
	}
	if failed == nil || failed.Status != TestFail {
		t.Fatalf("test_denies_x: %+v", failed)
	}
	if failed.FailedAt == nil || failed.FailedAt.String() != "policies/deploy_test.rego:12:2" {
		t.Errorf("failed at %v, want policies/deploy_test.rego:12:2", failed.FailedAt)
	}
	if failed.FailedExpr != "deploy.allow with input as doc" {
		t.Errorf("failed expression %q", failed.FailedExpr)
	}
	if !strings.Contains(failed.Output, "checking") {
		t.Errorf("print output %q not captured", failed.Output)
	}
}

func TestTestRunFilter(t *testing.T) {
	report, err := TestDir(context.Background(), failingSources().Policies, TestOptions{Run: regexp.MustCompile("allows_empty")})
	if err != nil {
		t.Fatal(err)
	}
	if len(report.Results) != 1 || report.Results[0].Name != "test_allows_empty" || report.Failed() {
		t.Errorf("filtered run: %+v", report.Results)
	}
}
