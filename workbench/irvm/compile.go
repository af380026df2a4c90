package irvm

import (
	"errors"
	"fmt"
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/ir"
	"github.com/open-policy-agent/opa/v1/topdown"
)

// Program is a planned query ready to evaluate. It is immutable and safe
// for concurrent use.
type Program struct {
	plan    []*block
	nlocals int // locals the plan itself uses
	funcs   []*function
	byPath  map[string]*function
}

type function struct {
	params  []int32
	blocks  []*block
	nlocals int
	memo    bool // a rule: a function of input and data only
	index   int  // in the memo
}

// builtin is one of OPA's built-in functions, called as topdown calls it.
type builtin struct {
	name     string
	fn       topdown.BuiltinFunc
	relation bool // all its outputs, collected in an array
}

// The statements of the plan become instructions: the same steps, with
// operands, callees and constants resolved once, so that evaluating one
// does no lookups.
type block struct {
	instrs []instr
}

type opcode uint8

const (
	opReturn opcode = iota
	opResultAdd
	opBlocks
	opBreak
	opNot
	opScan
	opWith
	opCall
	opCallBuiltin
	opCallDynamic
	opAssign
	opAssignOnce
	opReset
	opNop
	opDot
	opLen
	opEqual
	opNotEqual
	opIsArray
	opIsObject
	opIsSet
	opIsDefined
	opIsUndefined
	opMakeArray
	opMakeObject
	opMakeSet
	opArrayAppend
	opArrayLiteral // MakeArray followed by appends to it, as one step
	opObjectInsert
	opObjectInsertOnce
	opObjectMerge
	opSetAdd
)

// operand is a local, or a constant when k is not nil.
type operand struct {
	local int32
	k     *ast.Term
}

type instr struct {
	op     opcode
	a, b   operand // sources
	dst    int32   // target local
	n      int     // break index, array capacity
	blocks []*block
	body   *block
	fn     *function
	bi     *builtin
	args   []operand
	path   []*ast.Term // a with statement's path
	loc    *ast.Location
}

// Compile readies the single plan of p. It fails for a statement or a
// built-in it cannot run, so that the caller can keep topdown instead.
func Compile(p *ir.Policy) (*Program, error) {
	if p.Plans == nil || len(p.Plans.Plans) != 1 {
		return nil, errors.New("irvm: want exactly one plan")
	}
	c := &compiler{
		prog:      &Program{byPath: map[string]*function{}},
		funcs:     map[string]*function{},
		builtins:  map[string]*builtin{},
		relations: map[string]bool{},
	}
	if p.Static != nil {
		for _, s := range p.Static.Strings {
			c.strings = append(c.strings, ast.StringTerm(s.Value))
		}
		for _, f := range p.Static.Files {
			c.files = append(c.files, f.Value)
		}
		for _, b := range p.Static.BuiltinFuncs {
			if decl, ok := ast.BuiltinMap[b.Name]; ok && decl.Relation {
				c.relations[b.Name] = true
			}
		}
	}
	var funcs []*ir.Func
	if p.Funcs != nil {
		funcs = p.Funcs.Funcs
	}
	// Declare every function first: calls may come before definitions.
	for _, fn := range funcs {
		f := &function{memo: len(fn.Params) == 2, index: len(c.prog.funcs)}
		for _, l := range fn.Params {
			f.params = append(f.params, int32(l))
		}
		c.funcs[fn.Name] = f
		c.prog.funcs = append(c.prog.funcs, f)
		if fn.Path != nil {
			c.prog.byPath[strings.Join(fn.Path, "\x00")] = f
		}
	}
	for _, fn := range funcs {
		f := c.funcs[fn.Name]
		c.maxLocal = int(fn.Return)
		for _, l := range fn.Params {
			c.maxLocal = max(c.maxLocal, int(l))
		}
		c.appends = countAppends(fn)
		for _, b := range fn.Blocks {
			f.blocks = append(f.blocks, c.block(b))
		}
		f.nlocals = c.maxLocal + 1
	}
	c.maxLocal = int(ir.Data)
	c.appends = countAppends(p.Plans.Plans[0])
	for _, b := range p.Plans.Plans[0].Blocks {
		c.prog.plan = append(c.prog.plan, c.block(b))
	}
	c.prog.nlocals = c.maxLocal + 1
	if c.err != nil {
		return nil, c.err
	}
	return c.prog, nil
}

type compiler struct {
	prog      *Program
	strings   []*ast.Term
	files     []string
	funcs     map[string]*function
	builtins  map[string]*builtin
	relations map[string]bool // the built-ins that are relations (walk)
	// appends counts, in the function being compiled, the statements that
	// append to each local.
	appends  map[ir.Local]int
	maxLocal int
	err      error
}

func (c *compiler) fail(format string, args ...any) {
	if c.err == nil {
		c.err = fmt.Errorf("irvm: "+format, args...)
	}
}

func allConstant(ops []operand) bool {
	for _, o := range ops {
		if o.k == nil {
			return false
		}
	}
	return true
}

// countAppends counts the ArrayAppendStmts to each local in x.
func countAppends(x any) map[ir.Local]int {
	v := appendCounter{}
	ir.Walk(v, x)
	return v
}

type appendCounter map[ir.Local]int

func (v appendCounter) Before(any) {}
func (v appendCounter) After(any)  {}
func (v appendCounter) Visit(x any) (ir.Visitor, error) {
	if s, ok := x.(*ir.ArrayAppendStmt); ok {
		v[s.Array]++
	}
	return v, nil
}

func (c *compiler) local(l ir.Local) int32 {
	c.maxLocal = max(c.maxLocal, int(l))
	return int32(l)
}

func (c *compiler) operand(o ir.Operand) operand {
	switch v := o.Value.(type) {
	case ir.Local:
		return operand{local: c.local(v)}
	case ir.StringIndex:
		if int(v) >= len(c.strings) {
			c.fail("string constant %d out of range", v)
			return operand{k: ast.StringTerm("")}
		}
		return operand{k: c.strings[v]}
	case ir.Bool:
		return operand{k: ast.InternedTerm(bool(v))}
	}
	c.fail("operand %T not supported", o.Value)
	return operand{k: ast.InternedNullTerm}
}

func (c *compiler) location(l *ir.Location) *ast.Location {
	loc := &ast.Location{Row: l.Row, Col: l.Col}
	if l.File >= 0 && l.File < len(c.files) {
		loc.File = c.files[l.File]
	}
	return loc
}

func (c *compiler) builtin(name string) *builtin {
	if b, ok := c.builtins[name]; ok {
		return b
	}
	fn := topdown.GetBuiltin(name)
	if fn == nil {
		c.fail("no built-in %q", name)
		return nil
	}
	b := &builtin{name: name, fn: fn, relation: c.relations[name]}
	c.builtins[name] = b
	return b
}

func (c *compiler) block(b *ir.Block) *block {
	out := &block{}
	if b == nil {
		return out
	}
	stmts := b.Stmts
	for i := 0; i < len(stmts); i++ {
		s := stmts[i]
		in := instr{loc: c.location(s.GetLocation())}
		switch s := s.(type) {
		case *ir.ReturnLocalStmt:
			in.op, in.a = opReturn, operand{local: c.local(s.Source)}
		case *ir.ResultSetAddStmt:
			in.op, in.a = opResultAdd, operand{local: c.local(s.Value)}
		case *ir.BlockStmt:
			in.op = opBlocks
			for _, b := range s.Blocks {
				in.blocks = append(in.blocks, c.block(b))
			}
		case *ir.BreakStmt:
			in.op, in.n = opBreak, int(s.Index)
		case *ir.NotStmt:
			in.op, in.body = opNot, c.block(s.Block)
		case *ir.ScanStmt:
			in.op, in.body = opScan, c.block(s.Block)
			in.a = operand{local: c.local(s.Source)}
			in.b = operand{local: c.local(s.Key)}
			in.dst = c.local(s.Value)
		case *ir.WithStmt:
			in.op, in.body = opWith, c.block(s.Block)
			in.dst, in.a = c.local(s.Local), c.operand(s.Value)
			for _, idx := range s.Path {
				if idx < 0 || idx >= len(c.strings) {
					c.fail("with path constant %d out of range", idx)
					continue
				}
				in.path = append(in.path, c.strings[idx])
			}
		case *ir.CallStmt:
			for _, a := range s.Args {
				in.args = append(in.args, c.operand(a))
			}
			in.dst = c.local(s.Result)
			if f, ok := c.funcs[s.Func]; ok {
				in.op, in.fn = opCall, f
			} else {
				in.op, in.bi = opCallBuiltin, c.builtin(s.Func)
			}
		case *ir.CallDynamicStmt:
			in.op, in.dst = opCallDynamic, c.local(s.Result)
			for _, a := range s.Args {
				in.args = append(in.args, operand{local: c.local(a)})
			}
			// The path operands ride in args after the arguments; n says
			// where they start.
			in.n = len(in.args)
			for _, o := range s.Path {
				in.args = append(in.args, c.operand(o))
			}
		case *ir.AssignVarStmt:
			in.op, in.a, in.dst = opAssign, c.operand(s.Source), c.local(s.Target)
		case *ir.AssignVarOnceStmt:
			in.op, in.a, in.dst = opAssignOnce, c.operand(s.Source), c.local(s.Target)
		case *ir.AssignIntStmt:
			in.op, in.a, in.dst = opAssign, operand{k: ast.InternedTerm(s.Value)}, c.local(s.Target)
		case *ir.MakeNumberIntStmt:
			in.op, in.a, in.dst = opAssign, operand{k: ast.InternedTerm(s.Value)}, c.local(s.Target)
		case *ir.MakeNumberRefStmt:
			if s.Index < 0 || s.Index >= len(c.strings) {
				c.fail("number constant %d out of range", s.Index)
				continue
			}
			num := ast.NewTerm(ast.Number(c.strings[s.Index].Value.(ast.String)))
			in.op, in.a, in.dst = opAssign, operand{k: num}, c.local(s.Target)
		case *ir.MakeNullStmt:
			in.op, in.a, in.dst = opAssign, operand{k: ast.InternedNullTerm}, c.local(s.Target)
		case *ir.ResetLocalStmt:
			in.op, in.dst = opReset, c.local(s.Target)
		case *ir.NopStmt:
			in.op = opNop
		case *ir.DotStmt:
			in.op, in.a, in.b, in.dst = opDot, c.operand(s.Source), c.operand(s.Key), c.local(s.Target)
		case *ir.LenStmt:
			in.op, in.a, in.dst = opLen, c.operand(s.Source), c.local(s.Target)
		case *ir.EqualStmt:
			in.op, in.a, in.b = opEqual, c.operand(s.A), c.operand(s.B)
		case *ir.NotEqualStmt:
			in.op, in.a, in.b = opNotEqual, c.operand(s.A), c.operand(s.B)
		case *ir.IsArrayStmt:
			in.op, in.a = opIsArray, c.operand(s.Source)
		case *ir.IsObjectStmt:
			in.op, in.a = opIsObject, c.operand(s.Source)
		case *ir.IsSetStmt:
			in.op, in.a = opIsSet, c.operand(s.Source)
		case *ir.IsDefinedStmt:
			in.op, in.a = opIsDefined, operand{local: c.local(s.Source)}
		case *ir.IsUndefinedStmt:
			in.op, in.a = opIsUndefined, operand{local: c.local(s.Source)}
		case *ir.MakeArrayStmt:
			in.op, in.dst, in.n = opMakeArray, c.local(s.Target), int(s.Capacity)
			// An array built element by element right away (the arguments
			// of object.get, say) is made in one step.
			for j := i + 1; j < len(stmts); j++ {
				app, ok := stmts[j].(*ir.ArrayAppendStmt)
				if !ok || app.Array != s.Target {
					break
				}
				if l, ok := app.Value.Value.(ir.Local); ok && l == s.Target {
					break
				}
				in.args = append(in.args, c.operand(app.Value))
				i = j
			}
			if len(in.args) > 0 {
				in.op = opArrayLiteral
				// An array of constants that nothing appends to later (the
				// paths given to object.get, mostly) is made once, here:
				// making it for each decision took a third of the
				// allocations of one.
				if c.appends[s.Target] == len(in.args) && allConstant(in.args) {
					elems := make([]*ast.Term, len(in.args))
					for j, a := range in.args {
						elems[j] = a.k
					}
					in.op, in.a, in.args = opAssign, operand{k: ast.ArrayTerm(elems...)}, nil
				}
			}
		case *ir.MakeObjectStmt:
			in.op, in.dst = opMakeObject, c.local(s.Target)
		case *ir.MakeSetStmt:
			in.op, in.dst = opMakeSet, c.local(s.Target)
		case *ir.ArrayAppendStmt:
			in.op, in.a, in.dst = opArrayAppend, c.operand(s.Value), c.local(s.Array)
		case *ir.ObjectInsertStmt:
			in.op, in.a, in.b, in.dst = opObjectInsert, c.operand(s.Key), c.operand(s.Value), c.local(s.Object)
		case *ir.ObjectInsertOnceStmt:
			in.op, in.a, in.b, in.dst = opObjectInsertOnce, c.operand(s.Key), c.operand(s.Value), c.local(s.Object)
		case *ir.ObjectMergeStmt:
			in.op = opObjectMerge
			in.a, in.b, in.dst = operand{local: c.local(s.A)}, operand{local: c.local(s.B)}, c.local(s.Target)
		case *ir.SetAddStmt:
			in.op, in.a, in.dst = opSetAdd, c.operand(s.Value), c.local(s.Set)
		default:
			c.fail("statement %T not supported", s)
			continue
		}
		out.instrs = append(out.instrs, in)
	}
	return out
}
