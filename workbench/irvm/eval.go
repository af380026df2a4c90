// Package irvm evaluates a query planned by OPA's planner (the intermediate
// representation OPA compiles to Wasm) directly in Go.
//
// OPA's own evaluator (topdown) unifies terms at run time, through bindings
// kept in hash maps and continuations for every expression. The planner has
// already decided the order of every step, so a loop over its statements
// does the same work with a fraction of the cost: a decision of gitpoli's
// default deploy policy takes a few tens of microseconds here against a few
// hundred in topdown.
//
// Built-in functions are OPA's own implementations, called as topdown calls
// them, so they behave identically. The engine checks this evaluator against
// topdown on every fixture (see the workbench tests), and keeps topdown for
// what this package does not run: tracing, explanations, and any plan with a
// statement or built-in it does not know.
package irvm

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/ir"
	"github.com/open-policy-agent/opa/v1/metrics"
	"github.com/open-policy-agent/opa/v1/topdown"
	"github.com/open-policy-agent/opa/v1/topdown/builtins"
)

// Options are the per-evaluation settings built-ins may read.
type Options struct {
	// Time is "now" for time.now_ns; zero means the wall clock at the start
	// of the evaluation.
	Time time.Time
	// Data is the data document; nil means an empty one.
	Data ast.Value
}

// Error is an evaluation error, with where in the policy it happened.
type Error struct {
	Loc *ast.Location
	Msg string
	Err error
}

func (e *Error) Error() string {
	msg := e.Msg
	if e.Err != nil {
		msg = e.Err.Error()
	}
	if e.Loc != nil && e.Loc.File != "" && !strings.HasPrefix(msg, e.Loc.File) {
		return fmt.Sprintf("%s:%d: %s", e.Loc.File, e.Loc.Row, msg)
	}
	return msg
}

func (e *Error) Unwrap() error { return e.Err }

// EvalInput evaluates the plan on input (nil: undefined input) and returns
// its result set: one object of the query's variable bindings per result.
func (p *Program) EvalInput(ctx context.Context, input ast.Value, opts Options) (_ ast.Set, err error) {
	// A built-in that panics (one reading a setting this machine leaves
	// unset, say) fails this evaluation, and so denies, rather than the
	// process.
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("irvm: evaluation panicked: %v", r)
		}
	}()
	now := opts.Time
	if now.IsZero() {
		now = time.Now()
	}
	data := opts.Data
	if data == nil {
		data = ast.NewObject()
	}
	// Built-ins that can run long (numbers.range, regex.replace, ...)
	// stop when Cancel says so, as they do under topdown.
	cancel := topdown.NewCancel()
	stop := context.AfterFunc(ctx, cancel.Cancel)
	defer stop()
	m := &machine{
		prog:    p,
		ctx:     ctx,
		results: ast.NewSet(),
		memo:    make([]*ast.Term, len(p.funcs)),
		bctx: topdown.BuiltinContext{
			Context: ctx,
			Metrics: noMetrics,
			Cancel:  cancel,
			Time:    ast.NewTerm(ast.Number(strconv.FormatInt(now.UnixNano(), 10))),
			Seed:    rand.Reader,
			Cache:   builtins.Cache{},
		},
	}
	stack := stacks.Get().(*[]*ast.Term)
	m.stack = (*stack)[:0]
	defer func() { putStack(stack, m.stack) }()
	m.iter = m.output
	locals := m.push(p.nlocals)
	if input != nil {
		locals[ir.Input] = ast.NewTerm(input)
	}
	locals[ir.Data] = ast.NewTerm(data)
	for _, b := range p.plan {
		r, err := m.block(locals, b)
		if err != nil {
			return nil, err
		}
		if r == ret {
			break
		}
	}
	// A built-in that ignores Cancel may have run past the deadline: a
	// late result is not a result.
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return m.results, nil
}

// noMetrics serves the built-ins that record timings (http.send).
var noMetrics = metrics.NoOp()

// ret is what a block returns to unwind to the enclosing function when a
// ReturnLocalStmt ran; done is what it returns when it ran to its end. Any
// other result n ≥ 0 is a break: leave this block and n blocks around it.
const (
	done = -1
	ret  = -2
)

// machine is the state of one evaluation. Locals are terms, so that values
// read from the input reach built-ins without being wrapped again.
type machine struct {
	prog    *Program
	ctx     context.Context
	results ast.Set
	memo    []*ast.Term // by function index
	bctx    topdown.BuiltinContext
	steps   int
	rv      *ast.Term // the value a ReturnLocalStmt returned

	// stack holds the locals of every active function call.
	stack []*ast.Term
	// args is scratch space for a built-in's operands: a built-in never
	// calls back into the machine, so one buffer serves every call.
	args []*ast.Term

	iter     func(*ast.Term) error // m.output, bound once
	relation bool
	out      *ast.Term
	all      []*ast.Term
}

// push returns n fresh locals on the stack.
func (m *machine) push(n int) []*ast.Term {
	start := len(m.stack)
	if cap(m.stack)-start < n {
		// Grow into a new array: frames below keep the old one.
		next := make([]*ast.Term, start, 2*cap(m.stack)+n)
		copy(next, m.stack)
		m.stack = next
	}
	m.stack = m.stack[:start+n]
	frame := m.stack[start : start+n : start+n]
	clear(frame)
	return frame
}

func (m *machine) pop(n int) { m.stack = m.stack[:len(m.stack)-n] }

// stacks keeps the locals' stacks of finished evaluations: a decision
// allocated 2 KB for one, a tenth of what a request to gitpoli serve
// allocates.
var stacks = sync.Pool{New: func() any { s := make([]*ast.Term, 0, 256); return &s }}

// putStack gives back s, the stack as the evaluation left it (grown,
// maybe, into a new array), in the pool's box.
func putStack(box *[]*ast.Term, s []*ast.Term) {
	s = s[:cap(s)]
	clear(s) // keep no terms of this evaluation alive
	*box = s[:0]
	stacks.Put(box)
}

func (m *machine) output(t *ast.Term) error {
	if t == nil { // a void built-in (print) has no output
		m.out = ast.InternedTerm(true)
		return nil
	}
	if m.relation {
		m.all = append(m.all, t)
		return nil
	}
	m.out = t
	return nil
}

func get(locals []*ast.Term, o operand) *ast.Term {
	if o.k != nil {
		return o.k
	}
	return locals[o.local]
}

func compare(a, b *ast.Term) int {
	if a == b {
		return 0
	}
	return a.Value.Compare(b.Value)
}

func failAt(in *instr, format string, args ...any) error {
	return &Error{Loc: in.loc, Msg: fmt.Sprintf(format, args...)}
}

// block runs the instructions of b on locals. One that is undefined ends
// the block, as a break out of it does.
func (m *machine) block(locals []*ast.Term, b *block) (int, error) {
	m.steps++
	if m.steps&1023 == 0 {
		if err := m.ctx.Err(); err != nil {
			return 0, err
		}
	}
	for i := range b.instrs {
		in := &b.instrs[i]
		switch in.op {
		case opReturn:
			m.rv = locals[in.a.local]
			return ret, nil

		case opResultAdd:
			m.results.Add(locals[in.a.local])

		case opBlocks:
			for _, b := range in.blocks {
				r, err := m.block(locals, b)
				if err != nil || r == ret {
					return r, err
				}
				if r > 0 {
					return r - 1, nil
				}
			}

		case opBreak:
			return in.n, nil

		case opNot:
			r, err := m.block(locals, in.body)
			if err != nil || r == ret {
				return r, err
			}
			switch {
			case r == done:
				return 0, nil
			case r > 0:
				return r - 1, nil
			}

		case opScan:
			r, err := m.scan(locals, in)
			if err != nil || r == ret {
				return r, err
			}
			if r > 0 {
				return r - 1, nil
			}

		case opWith:
			r, err := m.with(locals, in)
			if err != nil || r == ret {
				return r, err
			}
			switch {
			case r == 0:
				return 0, nil
			case r > 0:
				return r - 1, nil
			}

		case opCall:
			n := len(in.args)
			args := m.push(n)
			for j, a := range in.args {
				args[j] = get(locals, a)
			}
			v, err := m.invoke(in.fn, args)
			m.pop(n)
			if err != nil {
				return 0, err
			}
			if v == nil {
				return 0, nil
			}
			locals[in.dst] = v

		case opCallBuiltin:
			v, err := m.callBuiltin(locals, in)
			if err != nil {
				return 0, err
			}
			if v == nil {
				return 0, nil
			}
			locals[in.dst] = v

		case opCallDynamic:
			path := make([]string, 0, len(in.args)-in.n)
			for _, o := range in.args[in.n:] {
				t := get(locals, o)
				if t == nil {
					return 0, nil
				}
				str, ok := t.Value.(ast.String)
				if !ok {
					return 0, nil
				}
				path = append(path, string(str))
			}
			f := m.prog.byPath[strings.Join(path, "\x00")]
			if f == nil {
				return 0, nil
			}
			args := make([]*ast.Term, in.n)
			for j, a := range in.args[:in.n] {
				args[j] = get(locals, a)
			}
			v, err := m.invoke(f, args)
			if err != nil {
				return 0, err
			}
			if v == nil {
				return 0, nil
			}
			locals[in.dst] = v

		case opAssign:
			locals[in.dst] = get(locals, in.a)

		case opAssignOnce:
			v := get(locals, in.a)
			if old := locals[in.dst]; old != nil && v != nil && compare(old, v) != 0 {
				return 0, failAt(in, "eval_conflict_error: complete rules must not produce multiple outputs")
			}
			locals[in.dst] = v

		case opReset:
			locals[in.dst] = nil

		case opNop:

		case opDot:
			v := dot(get(locals, in.a), get(locals, in.b))
			if v == nil {
				return 0, nil
			}
			locals[in.dst] = v

		case opLen:
			n, ok := length(get(locals, in.a))
			if !ok {
				return 0, failAt(in, "length of a value that has none")
			}
			locals[in.dst] = ast.InternedTerm(n)

		case opEqual:
			a, b := get(locals, in.a), get(locals, in.b)
			if a == nil || b == nil || compare(a, b) != 0 {
				return 0, nil
			}

		case opNotEqual:
			a, b := get(locals, in.a), get(locals, in.b)
			if a == nil || b == nil || compare(a, b) == 0 {
				return 0, nil
			}

		case opIsArray:
			if !is[*ast.Array](get(locals, in.a)) {
				return 0, nil
			}

		case opIsObject:
			if !is[ast.Object](get(locals, in.a)) {
				return 0, nil
			}

		case opIsSet:
			if !is[ast.Set](get(locals, in.a)) {
				return 0, nil
			}

		case opIsDefined:
			if locals[in.a.local] == nil {
				return 0, nil
			}

		case opIsUndefined:
			if locals[in.a.local] != nil {
				return 0, nil
			}

		case opMakeArray:
			locals[in.dst] = ast.NewTerm(ast.NewArrayWithCapacity(in.n))

		case opArrayLiteral:
			elems := make([]*ast.Term, len(in.args), max(in.n, len(in.args)))
			for j, a := range in.args {
				if elems[j] = get(locals, a); elems[j] == nil {
					return 0, failAt(in, "undefined array element")
				}
			}
			locals[in.dst] = ast.ArrayTerm(elems...)

		case opMakeObject:
			locals[in.dst] = ast.NewTerm(ast.NewObject())

		case opMakeSet:
			locals[in.dst] = ast.NewTerm(ast.NewSet())

		case opArrayAppend:
			arr, ok := valueOf(locals[in.dst]).(*ast.Array)
			v := get(locals, in.a)
			if !ok || v == nil {
				return 0, failAt(in, "append to a value that is not an array")
			}
			locals[in.dst] = ast.NewTerm(arr.Append(v))

		case opObjectInsert:
			obj, ok := valueOf(locals[in.dst]).(ast.Object)
			k, v := get(locals, in.a), get(locals, in.b)
			if !ok || k == nil || v == nil {
				return 0, failAt(in, "insert into a value that is not an object")
			}
			obj.Insert(k, v)

		case opObjectInsertOnce:
			obj, ok := valueOf(locals[in.dst]).(ast.Object)
			k, v := get(locals, in.a), get(locals, in.b)
			if !ok || k == nil || v == nil {
				return 0, failAt(in, "insert into a value that is not an object")
			}
			if old := obj.Get(k); old != nil {
				if compare(old, v) != 0 {
					return 0, failAt(in, "eval_conflict_error: object keys must be unique")
				}
				continue
			}
			obj.Insert(k, v)

		case opObjectMerge:
			v := merge(valueOf(locals[in.a.local]), valueOf(locals[in.b.local]))
			if v == nil {
				return 0, nil
			}
			locals[in.dst] = ast.NewTerm(v)

		case opSetAdd:
			set, ok := valueOf(locals[in.dst]).(ast.Set)
			v := get(locals, in.a)
			if !ok || v == nil {
				return 0, failAt(in, "add to a value that is not a set")
			}
			set.Add(v)

		default:
			return 0, failAt(in, "instruction %d not supported", in.op)
		}
	}
	return done, nil
}

// is reports whether t is defined and holds a T.
func is[T ast.Value](t *ast.Term) bool {
	if t == nil {
		return false
	}
	_, ok := t.Value.(T)
	return ok
}

func valueOf(t *ast.Term) ast.Value {
	if t == nil {
		return nil
	}
	return t.Value
}

// scan runs in.body for each key (local in.b) and value (local in.dst)
// of the collection in local in.a.
func (m *machine) scan(locals []*ast.Term, in *instr) (int, error) {
	src := locals[in.a.local]
	if src == nil {
		return done, nil
	}
	key, val := in.b.local, in.dst
	switch x := src.Value.(type) {
	case *ast.Array:
		for i := range x.Len() {
			locals[key], locals[val] = ast.InternedTerm(i), x.Elem(i)
			if r, err := m.block(locals, in.body); err != nil || r == ret || r > 0 {
				return r, err
			}
		}
	case ast.Object:
		for _, k := range x.Keys() {
			locals[key], locals[val] = k, x.Get(k)
			if r, err := m.block(locals, in.body); err != nil || r == ret || r > 0 {
				return r, err
			}
		}
	case ast.Set:
		for _, e := range x.Slice() {
			locals[key], locals[val] = e, e
			if r, err := m.block(locals, in.body); err != nil || r == ret || r > 0 {
				return r, err
			}
		}
	}
	return done, nil
}

// with runs in.body with the value in.a put into local in.dst at in.path,
// and a fresh memo, since rules may now evaluate differently.
func (m *machine) with(locals []*ast.Term, in *instr) (int, error) {
	saved, savedMemo := locals[in.dst], m.memo
	v := get(locals, in.a)
	if len(in.path) == 0 {
		locals[in.dst] = v
	} else {
		locals[in.dst] = ast.NewTerm(upsert(valueOf(saved), in.path, v))
	}
	m.memo = make([]*ast.Term, len(m.prog.funcs))
	r, err := m.block(locals, in.body)
	locals[in.dst], m.memo = saved, savedMemo
	return r, err
}

// upsert returns a copy of doc with v at path, creating objects on the way.
func upsert(doc ast.Value, path []*ast.Term, v *ast.Term) ast.Value {
	if len(path) == 0 {
		return valueOf(v)
	}
	obj, ok := doc.(ast.Object)
	var out ast.Object
	if ok {
		out = obj.Copy()
	} else {
		out = ast.NewObject()
	}
	out.Insert(path[0], ast.NewTerm(upsert(valueOf(out.Get(path[0])), path[1:], v)))
	return out
}

// callBuiltin calls a built-in as topdown calls it: with its operands, and
// the output reported to an iterator.
func (m *machine) callBuiltin(locals []*ast.Term, in *instr) (*ast.Term, error) {
	args := m.args[:0]
	for _, a := range in.args {
		t := get(locals, a)
		if t == nil {
			return nil, nil
		}
		args = append(args, t)
	}
	m.args = args
	m.bctx.Location = in.loc
	m.out, m.all, m.relation = nil, nil, in.bi.relation
	if err := in.bi.fn(m.bctx, args, m.iter); err != nil {
		var halt topdown.Halt
		if errors.As(err, &halt) {
			return nil, halt.Err
		}
		return nil, &Error{Loc: in.loc, Err: err}
	}
	if in.bi.relation {
		return ast.ArrayTerm(m.all...), nil
	}
	return m.out, nil
}

// invoke calls a planned function. Rules (functions of input and data
// only) are memoized for the evaluation.
func (m *machine) invoke(f *function, args []*ast.Term) (*ast.Term, error) {
	if f.memo {
		if v := m.memo[f.index]; v != nil {
			return v, nil
		}
	}
	locals := m.push(f.nlocals)
	defer m.pop(f.nlocals)
	for i, p := range f.params {
		if i < len(args) {
			locals[p] = args[i]
		}
	}
	var rv *ast.Term
	for _, b := range f.blocks {
		r, err := m.block(locals, b)
		if err != nil {
			return nil, err
		}
		if r == ret {
			rv = m.rv
			m.rv = nil
			break
		}
	}
	if f.memo && rv != nil {
		m.memo[f.index] = rv
	}
	return rv, nil
}

// dot is x[k]: an object's value at key k, an array's element at index k,
// or k itself when it is a member of the set x.
func dot(x, k *ast.Term) *ast.Term {
	if x == nil || k == nil {
		return nil
	}
	switch x := x.Value.(type) {
	case ast.Object:
		return x.Get(k)
	case *ast.Array:
		n, ok := k.Value.(ast.Number)
		if !ok {
			return nil
		}
		i, ok := n.Int()
		if !ok || i < 0 || i >= x.Len() {
			return nil
		}
		return x.Elem(i)
	case ast.Set:
		if x.Contains(k) {
			return k
		}
	}
	return nil
}

func length(t *ast.Term) (int, bool) {
	if t == nil {
		return 0, false
	}
	switch x := t.Value.(type) {
	case *ast.Array:
		return x.Len(), true
	case ast.Object:
		return x.Len(), true
	case ast.Set:
		return x.Len(), true
	case ast.String:
		return len([]rune(string(x))), true
	}
	return 0, false
}

// merge merges object b into object a, recursively where both hold an
// object at a key; any other clash leaves the result undefined.
func merge(a, b ast.Value) ast.Value {
	if a == nil {
		return b
	}
	if b == nil {
		return a
	}
	ao, ok1 := a.(ast.Object)
	bo, ok2 := b.(ast.Object)
	if !ok1 || !ok2 {
		return nil
	}
	out := ao.Copy()
	for _, k := range bo.Keys() {
		bv := bo.Get(k).Value
		if av := out.Get(k); av != nil {
			mv := merge(av.Value, bv)
			if mv == nil {
				return nil
			}
			out.Insert(k, ast.NewTerm(mv))
			continue
		}
		out.Insert(k, ast.NewTerm(bv))
	}
	return out
}
