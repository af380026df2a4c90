package session

import (
	"github.com/gitpoli/gitpoli/internal/testrepo"

	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestSessionRunAndDiff(t *testing.T) {
	root := testrepo.Copy(t, "../..")
	s := New(Workspace{Root: root})
	ctx := context.Background()
	first, err := s.Run(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !first.OK() || len(first.Tests) < 60 || len(first.Fixtures) < 25 {
		pass, fail := first.TestCounts()
		t.Fatalf("first run: ok=%v problems=%v tests %d/%d fixtures %d", first.OK(), first.Problems, pass, fail, len(first.Fixtures))
	}

	// Require three approvals for pull requests: tests still pass (they
	// carry their own config), fixtures that were allowed flip to deny.
	testrepo.Edit(t, filepath.Join(root, ".repol/pullrequest.yaml"), "approvals_required: 1", "approvals_required: 3")
	second, err := s.Run(ctx)
	if err != nil {
		t.Fatal(err)
	}
	changes := Diff(first, second)
	var flipped []string
	for _, c := range changes {
		if c.Flipped && c.Kind == "fixture" {
			flipped = append(flipped, c.Name)
		}
	}
	if len(flipped) == 0 {
		t.Fatalf("no fixture flipped after raising approvals: %+v", changes)
	}
	for _, name := range flipped {
		if !strings.Contains(name, "pull_request") {
			t.Errorf("%s flipped, but only pull-request fixtures use that config", name)
		}
	}

	// Break the Rego: the snapshot is stale, keeps the last results, and
	// the problem has its file and line.
	testrepo.Edit(t, filepath.Join(root, "policies/deploy.rego"), "allow if count(violations) == 0", "allow if count(violations) == ")
	third, err := s.Run(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !third.Stale || len(third.Tests) != len(second.Tests) || len(third.Problems) == 0 ||
		!strings.HasPrefix(third.Problems[0].String(), "policies/deploy.rego:") {
		t.Errorf("broken policy: stale=%v tests=%d problems=%v", third.Stale, len(third.Tests), third.Problems)
	}
	if len(Diff(second, third)) != 0 {
		t.Errorf("a stale snapshot reports changes: %v", Diff(second, third))
	}
}

func TestSessionReportsBadFixture(t *testing.T) {
	root := testrepo.Copy(t, "../..")
	if err := os.WriteFile(filepath.Join(root, "fixtures/zz.json"), []byte("{\n  \"event\": 1\n}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	snap, err := New(Workspace{Root: root}).Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(snap.Problems) != 1 || snap.Problems[0].String() != "fixtures/zz.json:2:12: event: want string, got number" {
		t.Errorf("problems %v", snap.Problems)
	}
}

func TestSessionCancelled(t *testing.T) {
	s := New(Workspace{Root: testrepo.Copy(t, "../..")})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.Run(ctx); err == nil {
		t.Error("a cancelled run succeeded")
	}
	if s.Last() != nil {
		t.Error("a cancelled run replaced the last snapshot")
	}
}

// TestWatcherEditRevert drives the real watcher: a breaking edit is seen
// and fails a test, the revert is seen and all is green again.
func TestWatcherEditRevert(t *testing.T) {
	root := testrepo.Copy(t, "../..")
	w, err := Watch(root, 20*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	s := New(Workspace{Root: root})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := s.Run(ctx); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(root, "policies/deploy.rego")
	original, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// Save by rename, as vim and JetBrains do.
	broken := strings.Replace(string(original), "done >= max", "done > max", 1)
	tmp := path + ".tmp~"
	if err := os.WriteFile(tmp, []byte(broken), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
	if err := w.WaitChange(ctx); err != nil {
		t.Fatal("no change seen after the edit:", err)
	}
	snap, err := s.Run(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, fail := snap.TestCounts(); fail == 0 {
		t.Fatal("the breaking edit failed no test")
	}
	// A new subdirectory, created after the watch began, is watched too.
	sub := filepath.Join(root, "policies/extra")
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := w.WaitChange(ctx); err != nil {
		t.Fatal("no change seen for a new directory:", err)
	}
	if err := os.WriteFile(path, original, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := w.WaitChange(ctx); err != nil {
		t.Fatal("no change seen after the revert:", err)
	}
	snap, err = s.Run(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !snap.OK() {
		t.Errorf("after the revert: problems %v, tests %v", snap.Problems, snap.Tests)
	}
	if err := os.WriteFile(filepath.Join(sub, "more.rego"), []byte("package extra\n\nx := 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := w.WaitChange(ctx); err != nil {
		t.Fatal("no change seen in the new directory:", err)
	}
}

// BenchmarkSaveConfig measures a save of .repol/pullrequest.yaml: write
// the file, wait for the watcher, build the snapshot.
func BenchmarkSaveConfig(b *testing.B) {
	benchSave(b, ".repol/pullrequest.yaml", "approvals_required: 1", "approvals_required: 2")
}

// BenchmarkSavePolicy measures a save of policies/deploy.rego, which
// recompiles the policies and re-runs the OPA tests.
func BenchmarkSavePolicy(b *testing.B) {
	benchSave(b, "policies/deploy.rego", `"Missing input.environment"`, `"Missing input.environment."`)
}

func benchSave(b *testing.B, file, old, new string) {
	root := testrepo.Copy(b, "../..")
	w, err := Watch(root, DefaultDebounce)
	if err != nil {
		b.Fatal(err)
	}
	defer w.Close()
	s := New(Workspace{Root: root})
	ctx := context.Background()
	if _, err := s.Run(ctx); err != nil {
		b.Fatal(err)
	}
	path := filepath.Join(root, file)
	original, err := os.ReadFile(path)
	if err != nil {
		b.Fatal(err)
	}
	variants := [][]byte{original, []byte(strings.Replace(string(original), old, new, 1))}
	i := 0
	for b.Loop() {
		i++
		if err := os.WriteFile(path, variants[i%2], 0o644); err != nil {
			b.Fatal(err)
		}
		if err := w.WaitChange(ctx); err != nil {
			b.Fatal(err)
		}
		if _, err := s.Run(ctx); err != nil {
			b.Fatal(err)
		}
	}
}

// TestDiffLeavesOutFixturesWithoutTheFacts: the pull-request policy
// starts reading input.files, which no fixture recorded. Its fixtures are
// not decided again (they say which recording they lack), and none
// counts as a flip, though each now denies for want of the files.
func TestDiffLeavesOutFixturesWithoutTheFacts(t *testing.T) {
	root := testrepo.Copy(t, "../..")
	s := New(Workspace{Root: root})
	ctx := context.Background()
	first, err := s.Run(ctx)
	if err != nil {
		t.Fatal(err)
	}
	rule := `

violations contains {"code": "infra.changed", "msg": "infra/ changed"} if {
	some f in input.files
	startswith(f.filename, "infra/")
}
`
	f, err := os.OpenFile(filepath.Join(root, "policies/pullrequest.rego"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(rule)
	f.Close()
	second, err := s.Run(ctx)
	if err != nil {
		t.Fatal(err)
	}
	unfit := 0
	for _, c := range Diff(first, second) {
		if c.Flipped && c.Kind == "fixture" {
			t.Errorf("%s flipped: %s → %s", c.Name, c.Before, c.After)
		}
		if strings.HasPrefix(c.After, "not decided: no recording of GET /repos/") && strings.Contains(c.After, "/files?") {
			unfit++
		}
	}
	if unfit < 10 {
		t.Errorf("%d fixtures said to lack the files; want every pull-request fixture", unfit)
	}
}

// TestSessionWarnsOfUnknownInputKeys: a rule reading an input key that no
// delivery or fact has is a warning of the snapshot, at its line, not a
// problem (the rule's tests and fixtures say what it costs).
func TestSessionWarnsOfUnknownInputKeys(t *testing.T) {
	root := testrepo.Copy(t, "../..")
	testrepo.Edit(t, filepath.Join(root, "policies/pullrequest.rego"), `["workflow_meta", "signed_off"]`, `["workflow_meta", "signedoff"]`)
	snap, err := New(Workspace{Root: root}).Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(snap.Problems) != 0 || len(snap.Warnings) != 1 || !strings.Contains(snap.Warnings[0].String(), `policies/pullrequest.rego:141:2: input.workflow_meta.signedoff`) {
		t.Errorf("problems %v, warnings %v", snap.Problems, snap.Warnings)
	}
	if f := snap.Findings(); len(f) != 1 || f[0] != snap.Warnings[0] {
		t.Errorf("findings %v", f)
	}
}
