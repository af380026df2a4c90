package workbench

import (
	"github.com/open-policy-agent/opa/v1/ast"
)

// inputReads is the set of top-level input keys a policy's rules can
// read, following its references through rules and functions of other
// packages (policies/lib); anyKey stands for a read of the whole input or
// of a key only known at run time.
type inputReads map[string]bool

const anyKey = "*"

// has reports whether the policy can read the top-level input key.
func (r inputReads) has(key string) bool { return r[anyKey] || r[key] }

// readsOf finds the input keys the rules at pkg can read.
func readsOf(c *ast.Compiler, pkg ast.Ref) inputReads {
	a := &readAnalysis{c: c, reads: inputReads{}, seen: map[*ast.Rule]bool{}, refs: map[string]bool{}}
	for _, r := range c.GetRulesDynamicWithOpts(pkg, ast.RulesOptions{}) {
		a.rule(r)
	}
	return a.reads
}

type readAnalysis struct {
	c     *ast.Compiler
	reads inputReads
	seen  map[*ast.Rule]bool
	refs  map[string]bool // data refs already followed
}

func (a *readAnalysis) rule(r *ast.Rule) {
	for ; r != nil; r = r.Else {
		if a.seen[r] {
			return
		}
		a.seen[r] = true
		// The compiler passes input to a call through a local it assigns
		// first (__local1__ = input; object.get(__local1__, ...)), in the
		// rule's body or in a nested one (a comprehension, every); its
		// locals are unique within the rule.
		aliases := map[ast.Var]bool{}
		ast.WalkExprs(r, func(expr *ast.Expr) bool {
			if v, ok := inputAlias(expr); ok {
				aliases[v] = true
			}
			return false
		})
		a.walk(r.Head, aliases)
		a.walk(r.Body, aliases)
	}
}

// inputAlias reports whether expr is `v = input`, and v.
func inputAlias(expr *ast.Expr) (ast.Var, bool) {
	if !expr.IsEquality() || expr.Negated || len(expr.With) > 0 {
		return "", false
	}
	a, b := expr.Operand(0), expr.Operand(1)
	for _, pair := range [][2]*ast.Term{{a, b}, {b, a}} {
		v, ok := pair[0].Value.(ast.Var)
		if ref, isRef := pair[1].Value.(ast.Ref); ok && isRef && ref.Equal(ast.InputRootRef) {
			return v, true
		}
	}
	return "", false
}

func (a *readAnalysis) walk(x any, aliases map[ast.Var]bool) {
	isInput := func(t *ast.Term) bool {
		if v, ok := t.Value.(ast.Var); ok {
			return aliases[v]
		}
		ref, ok := t.Value.(ast.Ref)
		return ok && ref.Equal(ast.InputRootRef)
	}
	ast.NewGenericVisitor(func(x any) bool {
		switch x := x.(type) {
		case *ast.Expr:
			if _, ok := inputAlias(x); ok {
				return true // judged by how the alias is used
			}
			// object.get(input, "key" or ["key", ...], default): the idiom
			// for reading input that fails closed reads one key, though
			// it names the whole input.
			if terms, ok := x.Terms.([]*ast.Term); ok && len(terms) >= 3 && terms[0].Value.Compare(ast.ObjectGet.Ref()) == 0 && isInput(terms[1]) {
				if key, ok := constantKey(terms[2]); ok {
					a.reads[key] = true
					for _, t := range terms[2:] {
						a.walk(t, aliases)
					}
					return true
				}
			}
		case ast.Var:
			if aliases[x] {
				a.reads[anyKey] = true
			}
		case ast.Ref:
			a.ref(x)
		}
		return false
	}).Walk(x)
}

// constantKey is the top-level key object.get(input, key, …) reads, when
// the key (or the path's first key) is a constant.
func constantKey(key *ast.Term) (string, bool) {
	switch k := key.Value.(type) {
	case ast.String:
		return string(k), true
	case *ast.Array:
		if k.Len() > 0 {
			if s, ok := k.Elem(0).Value.(ast.String); ok {
				return string(s), true
			}
		}
	}
	return "", false
}

func (a *readAnalysis) ref(ref ast.Ref) {
	switch {
	case ref.HasPrefix(ast.InputRootRef):
		if len(ref) > 1 {
			if s, ok := ref[1].Value.(ast.String); ok {
				a.reads[string(s)] = true
				return
			}
		}
		a.reads[anyKey] = true
	case ref.HasPrefix(ast.DefaultRootRef):
		// The rules a ref can reach depend on its constant prefix only:
		// the policies call the same helpers from many rules.
		key := ref.ConstantPrefix().String()
		if a.refs[key] {
			return
		}
		a.refs[key] = true
		for _, r := range a.c.GetRulesDynamicWithOpts(ref.ConstantPrefix(), ast.RulesOptions{}) {
			a.rule(r)
		}
	}
}
