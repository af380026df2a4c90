package irvm

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/storage/inmem"
	"github.com/open-policy-agent/opa/v1/topdown"
	"github.com/open-policy-agent/opa/v1/util"
)

// evalCase is a policy, a query and inputs; irvm must give the result
// topdown gives for each input, or fail where topdown fails.
type evalCase struct {
	name   string
	module string
	query  string
	inputs []string
}

var evalCases = []evalCase{
	{
		// Arrays of constants are made once, when the plan is compiled,
		// and shared by every evaluation: none may change one.
		name: "constant arrays",
		module: `package t
path := ["a", "b"]
got := object.get(input, ["a", "b"], "none")
joined := array.concat(["x", "y"], [v | some v in input.more])
grown := [v | some v in ["p", "q"]] if input.grow
doc := {"path": ["a", "b"], "flags": [true, false]}
`,
		query:  "p := data.t.path; g := data.t.got; j := data.t.joined; r := data.t.grown; d := data.t.doc",
		inputs: []string{`{"a": {"b": 1}, "more": ["z"], "grow": true}`, `{"more": ["w", "v"]}`, `{"a": {"b": [2]}, "more": []}`, `{}`},
	},
	{
		name: "complete rules, defaults and else",
		module: `package t
default allow := false
allow if input.user == "admin"
level := "high" if input.n > 10
else := "mid" if input.n > 5
else := "low"
`,
		query:  "a := data.t.allow; l := data.t.level",
		inputs: []string{`{"user": "admin", "n": 11}`, `{"user": "bob", "n": 6}`, `{"n": "x"}`, `{}`, `[]`, `null`},
	},
	{
		name: "partial sets and objects, comprehensions",
		module: `package t
names contains lower(u.name) if {
	some u in input.users
	u.active
}
by_team[u.team] contains u.name if some u in input.users
count_active := count(names)
arr := [x | some x in input.nums; x > 1]
obj := {k: v | some k, v in input.kv; v != null}
set_of := {y | some x in input.nums; y := x * 2}
`,
		query: "n := data.t.names; b := data.t.by_team; c := data.t.count_active; a := data.t.arr; o := data.t.obj; s := data.t.set_of",
		inputs: []string{
			`{"users": [{"name": "A", "active": true, "team": "x"}, {"name": "b", "active": false, "team": "x"}, {"name": "C", "active": true, "team": "y"}], "nums": [1, 2, 3.5], "kv": {"a": 1, "b": null}}`,
			`{"users": "nope", "nums": {"a": 3}, "kv": [1, 2]}`,
			`{}`,
		},
	},
	{
		name: "negation, every, some, in, membership",
		module: `package t
import rego.v1
all_strings if every x in input.xs { is_string(x) }
no_admin if not "admin" in input.roles
has_two if 2 in input.xs
pairs contains [i, x] if some i, x in input.xs
member if input.k in {"a", "b"}
`,
		query: "s := data.t.all_strings; n := data.t.no_admin; h := data.t.has_two; p := data.t.pairs; m := data.t.member",
		inputs: []string{
			`{"xs": ["a", "b"], "roles": ["dev"], "k": "a"}`,
			`{"xs": ["a", 2], "roles": ["admin"], "k": "c"}`,
			`{"xs": [], "roles": null}`,
			`{"xs": {"q": 2}}`,
		},
	},
	{
		name: "functions, multiple bodies, recursion through data",
		module: `package t
f(x) := x * 2 if is_number(x)
f(x) := concat("", [x, x]) if is_string(x)
g(x, y) if x == y
g(x, y) if x == -y
out := [f(x) | some x in input.xs]
same if g(input.a, input.b)
`,
		query:  "o := data.t.out; s := data.t.same",
		inputs: []string{`{"xs": [1, "ab", true], "a": 2, "b": -2}`, `{"xs": [], "a": 1, "b": 2}`},
	},
	{
		name: "built-ins: strings, glob, regex, sprintf, json, object.get, walk",
		module: `package t
msg := sprintf("%s has %d items: %v", [input.name, count(input.items), input.items])
g if glob.match("refs/heads/release-*", ["/"], input.ref)
r if regex.match("^v[0-9]+$", input.tag)
j := json.marshal(input.items)
og := object.get(input, ["a", "b", "c"], "default")
paths contains p if {
	walk(input.items, [p, v])
	is_number(v)
}
trimmed := trim_space(upper(input.name))
parts := split(input.ref, "/")
`,
		query: "m := data.t.msg; g := data.t.g; r := data.t.r; j := data.t.j; og := data.t.og; p := data.t.paths; t := data.t.trimmed; s := data.t.parts",
		inputs: []string{
			`{"name": " bob ", "items": [1, "x", [2]], "ref": "refs/heads/release-1", "tag": "v12", "a": {"b": {"c": 3}}}`,
			`{"name": "al", "items": [], "ref": "refs/tags/v1", "tag": "x1"}`,
		},
	},
	{
		name: "with replaces input and data",
		module: `package t
inner := input.x
outer := y if y := inner with input.x as 42
patched := z if z := inner with input as {"x": "replaced"}
deep := d if d := data.t.reads with input.a.b as 7
reads := input.a.b
`,
		query:  "o := data.t.outer; p := data.t.patched; d := data.t.deep; i := data.t.inner",
		inputs: []string{`{"x": 1, "a": {"b": 1, "c": 2}}`, `{}`},
	},
	{
		name: "with replaces rules and functions",
		module: `package t
base := 1
double(x) := x * 2
triple(x) := x * 3
uses_base := base + 1
patched_rule := v if v := uses_base with base as 10
patched_fn := v if v := double(input.n) with double as triple
patched_builtin := v if v := count(input.xs) with count as 42
`,
		query:  "r := data.t.patched_rule; f := data.t.patched_fn; b := data.t.patched_builtin; u := data.t.uses_base",
		inputs: []string{`{"n": 2, "xs": [1]}`, `{}`},
	},
	{
		name: "dynamic references into rules",
		module: `package t
rules.a := 1
rules.b := 2
pick := rules[input.k]
all := rules
`,
		query:  "p := data.t.pick; a := data.t.all",
		inputs: []string{`{"k": "a"}`, `{"k": "z"}`, `{"k": 1}`},
	},
	{
		name: "numbers",
		module: `package t
big := input.n * 1000000000000
third := input.n / 3
cmp if input.n == 1.0
round_ := round(input.f)
`,
		query:  "b := data.t.big; d := data.t.third; c := data.t.cmp; r := data.t.round_",
		inputs: []string{`{"n": 1, "f": 2.5}`, `{"n": 123456789012345678901234567890, "f": -1.5}`},
	},
	{
		name: "conflicts and built-in errors fail",
		module: `package t
x := input.a
x := input.b
o[k] := v if some k, v in input.kv
o[k] := 1 if some k in input.ks
e := to_number(input.s)
`,
		query:  "x := data.t.x; o := data.t.o; e := data.t.e",
		inputs: []string{`{"a": 1, "b": 1, "kv": {}, "ks": [], "s": "1"}`, `{"a": 1, "b": 2}`, `{"kv": {"q": 2}, "ks": ["q"]}`, `{"s": "x"}`},
	},
	{
		name: "undefined input",
		module: `package t
default d := "none"
d := "some" if input
`,
		query:  "d := data.t.d",
		inputs: []string{``, `false`, `{}`},
	},
}

func TestAgreesWithTopdown(t *testing.T) {
	for _, tc := range evalCases {
		t.Run(tc.name, func(t *testing.T) {
			compiler := compile(t, map[string]string{"t.rego": tc.module})
			prog, err := Plan(context.Background(), compiler, tc.query)
			if err != nil {
				t.Fatalf("Plan: %v", err)
			}
			for _, raw := range tc.inputs {
				want, werr := topdownEval(t, compiler, tc.query, raw)
				var input ast.Value
				if raw != "" {
					input = ast.MustParseTerm(raw).Value
				}
				got, gerr := prog.EvalInput(context.Background(), input, Options{})
				if (werr != nil) != (gerr != nil) {
					t.Fatalf("input %s: topdown error %v, irvm error %v", raw, werr, gerr)
				}
				if werr != nil {
					continue
				}
				got, err := asTopdownSees(got)
				if err != nil {
					t.Fatal(err)
				}
				if got.Compare(want) != 0 {
					t.Errorf("input %s:\nirvm    %v\ntopdown %v", raw, got, want)
				}
			}
		})
	}
}

// TestHTTPSend: built-ins that need the evaluator's context (http.send
// records timings in its metrics) work as under topdown.
func TestHTTPSend(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"approved": true}`)
	}))
	defer srv.Close()
	compiler, prog := mustPlan(t, "t.rego", "package t\n\nr := http.send({\"method\": \"get\", \"url\": input.url}).body\n", "r := data.t.r")
	raw := `{"url": "` + srv.URL + `"}`
	got, err := prog.EvalInput(context.Background(), ast.MustParseTerm(raw).Value, Options{})
	if err != nil {
		t.Fatal(err)
	}
	want, err := topdownEval(t, compiler, "r := data.t.r", raw)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ = asTopdownSees(got); got.Compare(want) != 0 || !strings.Contains(got.String(), "approved") {
		t.Errorf("irvm %v, topdown %v", got, want)
	}
}

// TestErrorsNameTheRule checks that an error says where in the policy it
// happened, as topdown's do.
func TestErrorsNameTheRule(t *testing.T) {
	_, prog := mustPlan(t, "p/t.rego", "package t\n\ne := to_number(input.s)\n", "e := data.t.e")
	_, err := prog.EvalInput(context.Background(), ast.MustParseTerm(`{"s": "x"}`).Value, Options{})
	if err == nil || !strings.Contains(err.Error(), "p/t.rego:3") {
		t.Fatalf("error %v does not name p/t.rego:3", err)
	}
}

// TestPanicIsAnError: a built-in that panics fails the evaluation.
func TestPanicIsAnError(t *testing.T) {
	_, prog := mustPlan(t, "t.rego", "package t\n\nx := upper(input.s)\n", "x := data.t.x")
	n := 0
	for _, f := range prog.funcs {
		for _, b := range f.blocks {
			for i := range b.instrs {
				if in := &b.instrs[i]; in.op == opCallBuiltin && in.bi.name == "upper" {
					in.bi = &builtin{name: "upper", fn: func(topdown.BuiltinContext, []*ast.Term, func(*ast.Term) error) error {
						panic("boom")
					}}
					n++
				}
			}
		}
	}
	if n == 0 {
		t.Fatal("no call of upper in the plan")
	}
	_, err := prog.EvalInput(context.Background(), ast.MustParseTerm(`{"s": "a"}`).Value, Options{})
	if err == nil || !strings.Contains(err.Error(), "boom") {
		t.Fatalf("got %v, want the panic as an error", err)
	}
}

// TestDeadlineStopsBuiltins: a built-in that runs long (numbers.range of
// twenty million) stops at the deadline, and a late result is an error.
func TestDeadlineStopsBuiltins(t *testing.T) {
	_, prog := mustPlan(t, "t.rego", "package t\n\ndefault allow := false\n\nallow if count(numbers.range(1, 20000000)) > 0\n", "allow := data.t.allow")
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	rs, err := prog.EvalInput(ctx, ast.NewObject(), Options{})
	if err == nil {
		t.Fatalf("past its deadline, the evaluation returned %v", rs)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("stopped after %s", took)
	}
}

// TestOverlappingRulesAreRefused: where rules of different shapes can
// define the same document, topdown's conflict check decides (an error);
// the plan would merge them, so planning fails and the caller keeps
// topdown.
func TestOverlappingRulesAreRefused(t *testing.T) {
	for _, module := range []string{
		"package t\n\nadmins := {\"alice\"}\n\nroles.admins := admins\n\nroles[name] contains user if {\n\tname := input.role\n\tuser := input.user\n}\n",
		"package t\n\na[k] := input.o if k := input.k\n\na.c.d := 1\n",
	} {
		compiler := compile(t, map[string]string{"t.rego": module})
		if _, err := Plan(context.Background(), compiler, "x := data.t"); err == nil || !strings.Contains(err.Error(), "different shapes") {
			t.Errorf("planned %q: %v", module, err)
		}
	}
	// Rules of one shape may share a document: partial sets, else chains.
	compiler := compile(t, map[string]string{"t.rego": "package t\n\np contains x if some x in input.a\n\np contains x if some x in input.b\n\nq[k] := 1 if some k in input.a\n\nq[k] := 1 if some k in input.b\n"})
	if _, err := Plan(context.Background(), compiler, "p := data.t.p; q := data.t.q"); err != nil {
		t.Errorf("rules of one shape refused: %v", err)
	}
}

func TestCancelled(t *testing.T) {
	_, prog := mustPlan(t, "t.rego", "package t\n\nn := count([x | some x in numbers.range(1, 100000)])\n", "n := data.t.n")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := prog.EvalInput(ctx, ast.NewObject(), Options{}); err == nil {
		t.Fatal("a cancelled evaluation finished")
	}
}

// asTopdownSees puts a result set through the conversion rego applies to
// topdown's results (sets become arrays, say), so that the two compare.
func asTopdownSees(rs ast.Set) (ast.Set, error) {
	out := ast.NewSet()
	for _, r := range rs.Slice() {
		v, err := ast.JSON(r.Value)
		if err != nil {
			return nil, err
		}
		val, err := ast.InterfaceToValue(v)
		if err != nil {
			return nil, err
		}
		out.Add(ast.NewTerm(val))
	}
	return out, nil
}

// mustPlan compiles one module, as file, and plans query against it.
func mustPlan(t testing.TB, file, module, query string) (*ast.Compiler, *Program) {
	t.Helper()
	compiler := compile(t, map[string]string{file: module})
	prog, err := Plan(context.Background(), compiler, query)
	if err != nil {
		t.Fatal(err)
	}
	return compiler, prog
}

func compile(t testing.TB, files map[string]string) *ast.Compiler {
	t.Helper()
	modules := map[string]*ast.Module{}
	for name, src := range files {
		m, err := ast.ParseModuleWithOpts(name, src, ast.ParserOptions{RegoVersion: ast.RegoV1})
		if err != nil {
			t.Fatal(err)
		}
		modules[name] = m
	}
	c := ast.NewCompiler().WithStrict(true)
	c.Compile(modules)
	if c.Failed() {
		t.Fatal(c.Errors)
	}
	return c
}

// topdownEval is the reference: the result set as a set of binding
// objects, as irvm returns it.
func topdownEval(t testing.TB, compiler *ast.Compiler, query, raw string) (ast.Set, error) {
	t.Helper()
	opts := []rego.EvalOption{}
	if raw != "" {
		opts = append(opts, rego.EvalParsedInput(ast.MustParseTerm(raw).Value))
	}
	pq, err := rego.New(
		rego.Compiler(compiler),
		rego.Store(inmem.New()),
		rego.Query(query),
		rego.StrictBuiltinErrors(true),
	).PrepareForEval(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	rs, err := pq.Eval(context.Background(), opts...)
	if err != nil {
		return nil, err
	}
	out := ast.NewSet()
	for _, r := range rs {
		obj := ast.NewObject()
		for k, v := range r.Bindings {
			val, err := ast.InterfaceToValue(util.Reference(v))
			if err != nil {
				return nil, fmt.Errorf("binding %s: %w", k, err)
			}
			obj.Insert(ast.StringTerm(k), ast.NewTerm(val))
		}
		out.Add(ast.NewTerm(obj))
	}
	return out, nil
}
