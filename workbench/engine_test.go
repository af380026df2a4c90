package workbench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/fstest"

	"github.com/gitpoli/gitpoli/workbench/irvm"
)

// TestDecideCases runs the seed-compatible cases: inputs that carry their
// own repo_policy, with the allow and codes the policy contract gives.
// The rows of the contract's fail-open table must all deny.
func TestDecideCases(t *testing.T) {
	e := mustEngine(t, repoSources())
	for _, tt := range decideCases(t) {
		t.Run(tt.Name, func(t *testing.T) {
			in, err := ParseInput(tt.Input)
			if err != nil {
				t.Fatal(err)
			}
			d, err := e.Decide(context.Background(), tt.Policy, in)
			if err != nil && !slices.Equal(tt.Codes, []string{CodeEngineError}) {
				t.Fatalf("Decide: %v", err)
			}
			codes := slices.Compact(d.Codes())
			if d.Allow != tt.Allow || !slices.Equal(codes, tt.Codes) {
				t.Errorf("got allow=%v codes=%v, want allow=%v codes=%v", d.Allow, codes, tt.Allow, tt.Codes)
			}
			for _, v := range d.Violations {
				if v.Rule == nil && v.Code != CodeEngineError {
					t.Errorf("%s: no rule position", v.Code)
				}
				if v.Config != nil {
					t.Errorf("%s: config position %s for an inline repo_policy", v.Code, v.Config)
				}
			}
		})
	}
}

type decideCase struct {
	Name   string          `json:"name"`
	Policy Policy          `json:"policy"`
	Input  json.RawMessage `json:"input"`
	Allow  bool            `json:"allow"`
	Codes  []string        `json:"codes"`
}

func decideCases(tb testing.TB) []decideCase {
	tb.Helper()
	data, err := os.ReadFile("testdata/cases.json")
	if err != nil {
		tb.Fatal(err)
	}
	var cases []decideCase
	if err := json.Unmarshal(data, &cases); err != nil {
		tb.Fatal(err)
	}
	return cases
}

// TestEvaluatorsAgree decides every case, and every case with each of its
// input's leaves removed or retyped, with the planned decisions and with
// topdown: the decisions must be the same.
func TestEvaluatorsAgree(t *testing.T) {
	e := mustEngine(t, repoSources())
	for _, p := range []Policy{Deploy, PullRequest} {
		if ev, err := e.Evaluator(p); ev != "irvm" {
			t.Fatalf("%s is decided by %s (%v), not by the planned evaluator", p, ev, err)
		}
	}
	ref := e.Topdown()
	var inputs []json.RawMessage
	for _, c := range decideCases(t) {
		inputs = append(inputs, c.Input)
	}
	for _, file := range []string{"testdata/input/deploy-production.json", "testdata/input/pullrequest-feature.json"} {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		inputs = append(inputs, data)
	}
	n := 0
	for _, raw := range inputs {
		for _, variant := range variants(t, raw) {
			in, err := ParseInput(variant)
			if err != nil {
				continue
			}
			for _, p := range []Policy{Deploy, PullRequest} {
				got, gerr := e.Decide(context.Background(), p, in)
				want, werr := ref.Decide(context.Background(), p, in)
				if msg := disagreement(got, gerr, want, werr); msg != "" {
					t.Errorf("%s on %s: %s", p, variant, msg)
				}
				n++
			}
		}
	}
	t.Logf("%d decisions agree", n)
}

// disagreement describes how two decisions differ, or is empty. Two
// engine errors agree whatever their messages.
func disagreement(got Decision, gerr error, want Decision, werr error) string {
	if (gerr != nil) != (werr != nil) {
		return fmt.Sprintf("error %v, reference error %v", gerr, werr)
	}
	if gerr != nil {
		return ""
	}
	a, _ := json.Marshal(got)
	b, _ := json.Marshal(want)
	if string(a) != string(b) {
		return fmt.Sprintf("\n got  %s\n want %s", a, b)
	}
	return ""
}

// variants returns raw and, for each leaf of it, raw with that leaf
// removed and with it replaced by values of other types.
func variants(t *testing.T, raw []byte) [][]byte {
	var doc any
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	out := [][]byte{raw}
	var walk func(v any, set func(any), del func())
	add := func() {
		b, err := json.Marshal(doc)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
	}
	walk = func(v any, set func(any), del func()) {
		switch v := v.(type) {
		case map[string]any:
			for _, k := range slices.Sorted(maps.Keys(v)) {
				child := v[k]
				walk(child, func(x any) { v[k] = x }, func() { delete(v, k) })
				v[k] = child
			}
		case []any:
			for i := range v {
				child := v[i]
				walk(child, func(x any) { v[i] = x }, nil)
				v[i] = child
			}
		}
		for _, x := range []any{nil, "x", 0.5, -1, true, []any{}, map[string]any{}} {
			set(x)
			add()
		}
		set(v)
		if del != nil {
			del()
			add()
			set(v)
		}
	}
	walk(doc, func(x any) { doc = x }, nil)
	return out
}

func TestDecideWithRepoConfig(t *testing.T) {
	e := mustEngine(t, repoSources())
	in := mustInput(t, "testdata/input/deploy-production.json")
	d, err := e.Decide(context.Background(), Deploy, in)
	if err != nil || !d.Allow {
		t.Fatalf("Decide = %+v, %v; want allow", d, err)
	}
	in, err = ParseInput([]byte(`{"environment":"production","ref":"refs/heads/main","repo_environments":["production"],
		"workflow_meta":{"approvers":["alice"],"checks":{"tests":true},"signed_off":true,"deployments_today":0}}`))
	if err != nil {
		t.Fatal(err)
	}
	d, err = e.Decide(context.Background(), Deploy, in)
	if err != nil {
		t.Fatal(err)
	}
	if d.Allow || len(d.Violations) != 1 {
		t.Fatalf("got %+v, want one violation", d)
	}
	v := d.Violations[0]
	if v.Code != "approvals.insufficient" ||
		v.Rule == nil || !strings.HasPrefix(v.Rule.String(), "policies/deploy.rego:") ||
		v.Config == nil || v.Config.String() != ".repol/deploy.yaml:9:29" ||
		v.ConfigPath != "policy.environments.production.rules.approvals_required" {
		t.Errorf("got %+v (rule %v, config %v)", v, v.Rule, v.Config)
	}
}

func TestDecideInvalidConfigDenies(t *testing.T) {
	valid, err := os.ReadFile("../internal/testrepo/testdata/.repol/deploy.yaml")
	if err != nil {
		t.Fatal(err)
	}
	// 2000 deployments a day breaks the schema but not the Rego: only the
	// schema check stands between it and an allow.
	broken := strings.Replace(string(valid), "max_deployments_per_day: 5", "max_deployments_per_day: 2000", 1)
	e := mustEngine(t, configSources("deploy.yaml", broken))
	d, err := e.Decide(context.Background(), Deploy, mustInput(t, "testdata/input/deploy-production.json"))
	if err != nil {
		t.Fatal(err)
	}
	if d.Allow || !slices.Equal(d.Codes(), []string{CodeConfigInvalid}) {
		t.Fatalf("got %+v, want a config.invalid deny", d)
	}
	if got := d.Violations[0].Config.String(); got != ".repol/deploy.yaml:13:34" {
		t.Errorf("config position %s, want .repol/deploy.yaml:13:34", got)
	}
}

func TestDecideMissingConfigDenies(t *testing.T) {
	src := repoSources()
	src.Config = Dir{FS: fstest.MapFS{}, Name: ".repol"}
	e := mustEngine(t, src)
	d, _ := e.Decide(context.Background(), Deploy, mustInput(t, "testdata/input/deploy-production.json"))
	if d.Allow || !slices.Contains(d.Codes(), "schema.policy.missing_repo_policy") {
		t.Errorf("deploy without config: %+v", d)
	}
	d, _ = e.Decide(context.Background(), PullRequest, mustInput(t, "testdata/input/pullrequest-feature.json"))
	if d.Allow || !slices.Contains(d.Codes(), "policy.missing") {
		t.Errorf("pull request without config: %+v", d)
	}
}

// policySources replaces the deploy policy with src, keeping the rest.
func policySources(t *testing.T, deploy string) Sources {
	t.Helper()
	pr, err := os.ReadFile("../internal/testrepo/testdata/policies/pullrequest.rego")
	if err != nil {
		t.Fatal(err)
	}
	helpers, err := os.ReadFile("../internal/testrepo/testdata/policies/lib/helpers.rego")
	if err != nil {
		t.Fatal(err)
	}
	src := repoSources()
	src.Policies = Dir{Name: "policies", FS: fstest.MapFS{
		"deploy.rego":      {Data: []byte(deploy)},
		"pullrequest.rego": {Data: pr},
		"lib/helpers.rego": {Data: helpers},
	}}
	return src
}

func TestDecideFailsClosed(t *testing.T) {
	tests := []struct {
		name   string
		policy string
	}{
		{"conflicting values", deployHeader + "package github.deploy\n\nallow := true\n\nallow := false if input.environment\n\nviolations := set()\n"},
		{"violation without code", deployHeader + "package github.deploy\n\ndefault allow := false\n\nallow if count(violations) == 0\n\nviolations contains \"no code\" if true\n"},
		{"allow not boolean", deployHeader + "package github.deploy\n\nallow := \"yes\"\n\nviolations := set()\n"},
		{"builtin error", deployHeader + "package github.deploy\n\ndefault allow := false\n\nallow if count(violations) == 0\n\nviolations contains {\"code\": \"x\", \"msg\": \"m\"} if to_number(input.environment) > 1\n"},
		{"allow undefined", deployHeader + "package github.deploy\n\nallow if false\n\nviolations := set()\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, err := New(context.Background(), policySources(t, tt.policy))
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			d, err := e.Decide(context.Background(), Deploy, mustInput(t, "testdata/input/deploy-production.json"))
			if d.Allow {
				t.Fatalf("decision allows: %+v", d)
			}
			if err != nil && !slices.Equal(d.Codes(), []string{CodeEngineError}) {
				t.Errorf("error %v, but codes %v", err, d.Codes())
			}
		})
	}
}

// TestPlanErrorsAreDecidedByTopdown: topdown stops once a result is
// settled, so an error past that point (in a second body of allow, in a
// later element of a some) is no error to it. The planned decision
// evaluates everything; its errors are handed to topdown, which decides.
func TestPlanErrorsAreDecidedByTopdown(t *testing.T) {
	tests := []struct {
		name, policy string
		allow        bool
	}{
		{"second body of a rule that already holds", deployHeader + "package github.deploy\n\ndefault allow := false\n\nallow if input.environment == \"production\"\n\nallow if to_number(input.ref) > 0\n\nviolations := set()\n", true},
		{"later element of a some under not", deployHeader + "package github.deploy\n\ndefault allow := false\n\nallow if not any_number\n\nany_number if {\n\tsome x in [\"1\", input.ref]\n\tto_number(x) > 0\n}\n\nviolations := set()\n", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, err := New(context.Background(), policySources(t, tt.policy))
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			if ev, err := e.Evaluator(Deploy); ev != "irvm" {
				t.Fatalf("decided by %s (%v)", ev, err)
			}
			in := mustInput(t, "testdata/input/deploy-production.json")
			if _, err := e.progs[Deploy].EvalInput(context.Background(), in.with(e.config.Files["deploy"].value, "repo_policy", "config"), irvm.Options{}); err == nil {
				t.Fatal("the plan does not fail here; the test proves nothing")
			}
			d, err := e.Decide(context.Background(), Deploy, in)
			want, werr := e.Topdown().Decide(context.Background(), Deploy, in)
			if err != nil || werr != nil || d.Allow != tt.allow || d.Allow != want.Allow {
				t.Errorf("decided %+v (%v); topdown %+v (%v); want allow=%v", d, err, want, werr, tt.allow)
			}
		})
	}
}

func TestDecideCancelled(t *testing.T) {
	e := mustEngine(t, repoSources())
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	d, err := e.Decide(ctx, Deploy, mustInput(t, "testdata/input/deploy-production.json"))
	if err == nil || d.Allow || d.Codes()[0] != CodeEngineError {
		t.Fatalf("cancelled decision: %+v, %v", d, err)
	}
}

func TestNewRejectsBrokenPolicies(t *testing.T) {
	tests := []struct {
		name   string
		policy string
		want   string
	}{
		{"syntax", deployHeader + "package github.deploy\n\nallow if {\n", "policies/deploy.rego:10"},
		{"unused variable (strict)", deployHeader + "package github.deploy\n\nallow if {\n\tx := 1\n\ttrue\n}\n\nviolations := set()\n", "policies/deploy.rego:10"},
		{"no allow rule", deployHeader + "package github.deploy\n\nviolations := set()\n", "defines no \"allow\" rule"},
		{"not annotated", "package github.deploys\n\nallow := true\n\nviolations := set()\n", "policies/deploy.rego:1: package github.deploys defines allow or violations but has no METADATA annotation"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(context.Background(), policySources(t, tt.policy))
			var ps Problems
			if !errors.As(err, &ps) {
				t.Fatalf("New error %v, want Problems", err)
			}
			if !strings.Contains(ps.Error(), tt.want) {
				t.Errorf("problems %q do not mention %q", ps.Error(), tt.want)
			}
		})
	}
}

func TestParseInput(t *testing.T) {
	tests := []struct {
		in, wantErr string
	}{
		{`{"a": 1}`, ""},
		{"  {}\n", ""},
		{"", "input is empty"},
		{"[1]", "must be a JSON object (got array)"},
		{"null", "must be a JSON object (got null)"},
		{"{\n\"a\": }", "line 2, column 6"},
		{`{"a": 1} {"b": 2}`, "not valid JSON"},
	}
	for _, tt := range tests {
		_, err := ParseInput([]byte(tt.in))
		switch {
		case tt.wantErr == "" && err != nil:
			t.Errorf("ParseInput(%q) = %v", tt.in, err)
		case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
			t.Errorf("ParseInput(%q) = %v, want error containing %q", tt.in, err, tt.wantErr)
		}
	}
}

func TestExplain(t *testing.T) {
	e := mustEngine(t, repoSources())
	in, err := ParseInput([]byte(`{"environment":"production","ref":"refs/heads/dev","repo_environments":["production"],
		"workflow_meta":{"approvers":["alice", "ALICE"],"checks":{"tests":true},"signed_off":true,"deployments_today":0}}`))
	if err != nil {
		t.Fatal(err)
	}
	x, err := e.Explain(context.Background(), Deploy, in)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range x.Fired {
		var facts []string
		for _, fact := range f.Facts {
			b, _ := json.Marshal(fact.Value)
			facts = append(facts, fact.Path+"="+string(b))
		}
		got = append(got, f.Code+" "+strings.Join(facts, " "))
		if !strings.HasPrefix(f.Rule.String(), "policies/deploy.rego:") {
			t.Errorf("%s fired at %s", f.Code, f.Rule)
		}
	}
	want := []string{
		`approvals.insufficient environment="production" workflow_meta.approvers=["alice","ALICE"]`,
		`ref.denied environment="production" ref="refs/heads/dev"`,
	}
	if !slices.Equal(got, want) {
		t.Errorf("fired:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if !slices.Equal(x.Decision.Codes(), []string{"approvals.insufficient", "ref.denied"}) {
		t.Errorf("decision codes %v", x.Decision.Codes())
	}
}

// TestEngineDependencies keeps the engine free of front-end dependencies:
// terminals and databases belong to tui and serve.
func TestEngineDependencies(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go list")
	}
	out, err := exec.Command("go", "list", "-deps", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, dep := range strings.Fields(string(out)) {
		for _, banned := range []string{"charmbracelet", "sqlite", "pgx", "bubbletea", "lipgloss"} {
			if strings.Contains(dep, banned) {
				t.Errorf("workbench depends on %s", dep)
			}
		}
	}
}

// TestParseModuleReusesUnchangedText: a file parsed again with the same
// text is the same module, not shared with the caller before; changed
// text is parsed anew, and errors are kept like modules.
func TestParseModuleReusesUnchangedText(t *testing.T) {
	const name = "policies/reuse_test_only.rego"
	a, err := parseModule(name, []byte("package x\n\np := 1\n"))
	if err != nil {
		t.Fatal(err)
	}
	a.Rules = nil // the caller's to change
	b, err := parseModule(name, []byte("package x\n\np := 1\n"))
	if err != nil || len(b.Rules) != 1 {
		t.Fatalf("reparse of the same text: %v, %d rules", err, len(b.Rules))
	}
	c, err := parseModule(name, []byte("package x\n\np := 1\n\nq := 2\n"))
	if err != nil || len(c.Rules) != 2 {
		t.Fatalf("changed text: %v, %d rules", err, len(c.Rules))
	}
	for range 2 {
		if _, err := parseModule(name, []byte("package x\n\np := \n")); err == nil {
			t.Fatal("a parse error was lost")
		}
	}
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			src := fmt.Sprintf("package x\n\np := %d\n", i%2)
			if m, err := parseModule(name, []byte(src)); err != nil || m.Rules[0].Head.Value.String() != fmt.Sprint(i%2) {
				t.Errorf("%q: %v", src, err)
			}
		})
	}
	wg.Wait()
}
