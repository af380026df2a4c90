package irvm

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/ir"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/storage/inmem"
)

// target is the rego target under which OPA hands its plan of a query to
// this package: the planner is internal to OPA, and a target plugin is
// its public way out.
const target = "gitpoli-irvm"

func init() { rego.RegisterPlugin(target, plugin{}) }

type plugin struct{}

func (plugin) IsTarget(t string) bool { return t == target }

type planSlot struct{ prog *Program }

type slotKey struct{}

func (plugin) PrepareForEval(ctx context.Context, p *ir.Policy, _ ...rego.PrepareOption) (rego.TargetPluginEval, error) {
	prog, err := Compile(p)
	if err != nil {
		return nil, err
	}
	if slot, ok := ctx.Value(slotKey{}).(*planSlot); ok {
		slot.prog = prog
	}
	return prog, nil
}

// Eval lets a Program serve as the evaluator of a rego target plugin.
func (p *Program) Eval(ctx context.Context, ectx *rego.EvalContext, _ ast.Value) (ast.Value, error) {
	return p.EvalInput(ctx, ectx.ParsedInput(), Options{Time: ectx.Time()})
}

// Plan plans query against the modules of compiler and readies the plan
// for evaluation. The compiler must have compiled without errors.
func Plan(ctx context.Context, compiler *ast.Compiler, query string) (prog *Program, err error) {
	if err := overlappingRules(compiler); err != nil {
		return nil, err
	}
	slot := &planSlot{}
	defer func() {
		// OPA switches the shared compiler to IR mode for a plugin target;
		// topdown queries prepared on it later want their indices back.
		compiler.WithEvalMode(ast.EvalModeTopdown)
		if r := recover(); r != nil {
			err = fmt.Errorf("irvm: plan %s: %v", query, r)
		}
	}()
	_, err = rego.New(
		rego.Compiler(compiler),
		rego.Store(inmem.New()),
		rego.Query(query),
		rego.Target(target),
	).PrepareForEval(context.WithValue(ctx, slotKey{}, slot))
	if err != nil {
		return nil, fmt.Errorf("irvm: plan %s: %w", query, err)
	}
	if slot.prog == nil {
		return nil, errors.New("irvm: OPA produced no plan")
	}
	return slot.prog, nil
}

// overlappingRules refuses policies in which rules of different shapes
// can define the same document, such as
//
//	roles.admins := {"alice"}
//	roles[name] contains user if ...
//
// topdown reports the clash at run time as a conflict (an error, which
// denies); the plan instead builds one value out of both, and can even add
// to the first rule's value. Such policies are left to topdown.
func overlappingRules(compiler *ast.Compiler) error {
	// open holds the prefixes that a rule extends with a variable; most
	// policies have none, and then no two rules can clash this way.
	var open []string
	for _, m := range compiler.Modules {
		ast.WalkRules(m, func(r *ast.Rule) bool {
			if ref := r.Ref().GroundPrefix(); len(ref) < len(r.Ref()) {
				open = append(open, r.Module.Package.Path.Extend(ref).String())
			}
			return false
		})
	}
	if len(open) == 0 {
		return nil
	}
	// shapes holds, for every prefix of every rule's full reference, the
	// shapes of the rules under it.
	shapes := map[string]map[string]*ast.Rule{}
	for _, m := range compiler.Modules {
		ast.WalkRules(m, func(r *ast.Rule) bool {
			full := r.Module.Package.Path.Extend(r.Ref())
			shape := fmt.Sprint(r.Head.RuleKind()) + ":" + shapeOf(full)
			for i := len(r.Module.Package.Path); i <= len(full); i++ {
				key := full[:i].String()
				if shapes[key] == nil {
					shapes[key] = map[string]*ast.Rule{}
				}
				shapes[key][shape] = r
			}
			return false
		})
	}
	for _, key := range open {
		if len(shapes[key]) > 1 {
			var rules []string
			for _, r := range shapes[key] {
				rules = append(rules, fmt.Sprintf("%s:%d", r.Location.File, r.Location.Row))
			}
			slices.Sort(rules)
			return fmt.Errorf("irvm: rules of different shapes define %s (%s): only topdown checks them for conflicts", key, strings.Join(rules, ", "))
		}
	}
	return nil
}

// shapeOf writes ref with every variable as the same placeholder.
func shapeOf(ref ast.Ref) string {
	parts := make([]string, len(ref))
	for i, t := range ref {
		if t.IsGround() {
			parts[i] = t.String()
		} else {
			parts[i] = "_"
		}
	}
	return strings.Join(parts, ".")
}
