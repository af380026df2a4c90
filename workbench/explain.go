package workbench

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/topdown"
)

// Explanation is a decision with the reasons behind it: which rules fired
// and which input facts each one read.
type Explanation struct {
	Decision Decision    `json:"decision"`
	Fired    []FiredRule `json:"fired"`
}

// FiredRule is one violation rule that fired during a decision.
type FiredRule struct {
	Code  string `json:"code"`
	Rule  Pos    `json:"rule"`
	Facts []Fact `json:"facts,omitempty"`
}

// Fact is an input value a rule read, as the rule saw it.
type Fact struct {
	// Path is the value's place in the input document, e.g.
	// workflow_meta.approvers.
	Path    string `json:"path"`
	Present bool   `json:"present"`
	Value   any    `json:"value,omitempty"`
}

// ValueString renders the fact's value as compact JSON for people, cut
// at a hundred characters; "(absent)" when the input lacks it.
func (f Fact) ValueString() string {
	if !f.Present {
		return "(absent)"
	}
	data, err := json.Marshal(f.Value)
	if err != nil {
		return fmt.Sprint(f.Value)
	}
	s := string(data)
	if len(s) > 100 {
		s = s[:97] + "..."
	}
	return s
}

// Explain decides like Decide, tracing the evaluation to report exactly
// which rules fired. It is slower than Decide and meant for people, not
// for the hot path.
func (e *Engine) Explain(ctx context.Context, p Policy, in Input) (Explanation, error) {
	tracer := topdown.NewBufferTracer()
	d, err := e.decide(ctx, p, in, e.configFor(p, in), nil, []rego.EvalOption{rego.EvalQueryTracer(tracer)})
	x := Explanation{Decision: d}
	if err != nil {
		return x, err
	}
	// Traced rules are compiled copies; the rules as written (with their
	// codes and original expressions) are found by position.
	written := map[Pos]*ast.Rule{}
	for _, r := range e.violationRules(p) {
		written[Pos{File: r.Location.File, Line: r.Location.Row}] = r
	}
	seen := map[Pos]bool{}
	for _, ev := range *tracer {
		if ev.Op != topdown.ExitOp {
			continue
		}
		r, ok := ev.Node.(*ast.Rule)
		if !ok || r.Location == nil {
			continue
		}
		pos := Pos{File: r.Location.File, Line: r.Location.Row}
		w, ok := written[pos]
		if !ok || seen[pos] {
			continue
		}
		seen[pos] = true
		code, _ := ruleCode(w)
		x.Fired = append(x.Fired, FiredRule{Code: code, Rule: pos, Facts: facts(w, in)})
	}
	slices.SortFunc(x.Fired, func(a, b FiredRule) int {
		return cmp.Or(cmp.Compare(a.Code, b.Code), comparePos(a.Rule, b.Rule))
	})
	return x, nil
}

// facts lists the input values a rule's body reads, other than the
// repository config (which a violation already locates in its file).
func facts(r *ast.Rule, in Input) []Fact {
	var paths [][]string
	add := func(p []string) {
		if len(p) == 0 || p[0] == "repo_policy" {
			return
		}
		for _, q := range paths {
			if slices.Equal(p, q) {
				return
			}
		}
		paths = append(paths, p)
	}
	ast.WalkTerms(r.Body, func(t *ast.Term) bool {
		switch v := t.Value.(type) {
		case ast.Call:
			// object.get(input..., path, default): the fact is input path + path.
			if len(v) >= 3 && v[0].String() == "object.get" {
				if base, ok := inputPath(v[1]); ok {
					add(append(base, keyPath(v[2])...))
					return true
				}
			}
		case ast.Ref:
			// Keep walking: input.a[input.b] reads input.b too.
			if p, ok := inputPath(t); ok {
				add(p)
			}
		}
		return false
	})
	// A rule that checks workflow_meta is an object and then reads
	// workflow_meta.approvers read the latter: keep the most specific.
	paths = slices.DeleteFunc(paths, func(p []string) bool {
		for _, q := range paths {
			if len(q) > len(p) && slices.Equal(q[:len(p)], p) {
				return true
			}
		}
		return false
	})
	out := make([]Fact, 0, len(paths))
	for _, p := range paths {
		f := Fact{Path: strings.Join(p, ".")}
		if v := in.lookup(p); v != nil {
			f.Present = true
			f.Value, _ = ast.JSON(v)
		}
		out = append(out, f)
	}
	slices.SortFunc(out, func(a, b Fact) int { return cmp.Compare(a.Path, b.Path) })
	return out
}

// inputPath returns the string keys of a reference into input, up to the
// first key that is not a constant string.
func inputPath(t *ast.Term) ([]string, bool) {
	switch v := t.Value.(type) {
	case ast.Var:
		return []string{}, v.Equal(ast.InputRootDocument.Value)
	case ast.Ref:
		if !v[0].Equal(ast.InputRootDocument) {
			return nil, false
		}
		return keyPath(ast.ArrayTerm(v[1:]...)), true
	}
	return nil, false
}

// keyPath turns a constant key or array of keys into a path.
func keyPath(t *ast.Term) []string {
	switch v := t.Value.(type) {
	case ast.String:
		return []string{string(v)}
	case *ast.Array:
		var out []string
		for i := range v.Len() {
			s, ok := v.Elem(i).Value.(ast.String)
			if !ok {
				break
			}
			out = append(out, string(s))
		}
		return out
	}
	return nil
}

// ViolationFacts returns the input facts read by the rules that raise v's
// code: what the workbench shows beside a violation. It evaluates nothing.
func (e *Engine) ViolationFacts(p Policy, v Violation, in Input) []Fact {
	var out []Fact
	seen := map[string]bool{}
	for _, r := range e.rules[p][v.Code] {
		for _, f := range facts(r, in) {
			if !seen[f.Path] {
				seen[f.Path] = true
				out = append(out, f)
			}
		}
	}
	slices.SortFunc(out, func(a, b Fact) int { return cmp.Compare(a.Path, b.Path) })
	return out
}
