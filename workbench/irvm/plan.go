package irvm

import (
	"context"
	"errors"
	"fmt"

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
