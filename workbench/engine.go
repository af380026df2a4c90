// Package workbench is gitpoli's engine: it loads policies, config and
// schemas, decides deployments and pull requests, and runs policy tests.
// The terminal UI, the CLI and the server are front ends over it, so a
// decision made in one is the decision made in the others.
package workbench

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/gitpoli/gitpoli/workbench/irvm"
	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/storage/inmem"
)

// DefaultDecisionTimeout bounds one decision when the caller's context has
// no deadline of its own.
const DefaultDecisionTimeout = 5 * time.Second

// Engine holds compiled policies and loaded config, ready to decide. It is
// immutable once built and safe for concurrent use; a reload builds a new
// Engine and swaps it in.
type Engine struct {
	src      Sources
	modules  map[string]*ast.Module // the policy files as written (tests excluded)
	sources  map[string][]byte
	compiler *ast.Compiler
	// policies are the discovered policies, by name; byName indexes them.
	policies []*PolicySpec
	byName   map[Policy]*PolicySpec
	queries  map[Policy]rego.PreparedEvalQuery
	// progs are the same decisions planned for irvm, which decides without
	// topdown's run-time unification; absent where planning failed (then
	// topdown decides, and planErrs says why) or with the Topdown option.
	progs    map[Policy]*irvm.Program
	planErrs map[Policy]error
	rules    map[Policy]map[string][]*ast.Rule // violation code → rules that emit it
	reads    map[Policy]inputReads             // the input keys each policy's rules can read
	config   *Config
	schemas  *schemaSet
	hash     string
}

// New loads and compiles the policies in src and prepares every decision
// once. Rego that does not parse or compile in strict mode is returned as
// Problems with file:line positions. Config problems do not stop the
// engine: they deny the affected policy's decisions (see Decide) and are
// listed by Config().Problems().
func New(ctx context.Context, src Sources, opts ...Option) (*Engine, error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	modules, sources, problems, err := parseModules(src.Policies, isPolicyFile)
	if err != nil {
		return nil, err
	}
	if len(problems) > 0 {
		return nil, problems
	}
	compiler := newCompiler()
	compiler.Compile(modules)
	if compiler.Failed() {
		return nil, regoProblems(compiler.Errors)
	}
	specs, problems := discoverPolicies(modules)
	if len(problems) > 0 {
		return nil, problems
	}
	e := &Engine{
		src:      src,
		modules:  modules,
		sources:  sources,
		compiler: compiler,
		policies: specs,
		byName:   make(map[Policy]*PolicySpec, len(specs)),
		queries:  map[Policy]rego.PreparedEvalQuery{},
		progs:    map[Policy]*irvm.Program{},
		planErrs: map[Policy]error{},
		rules:    map[Policy]map[string][]*ast.Rule{},
		reads:    map[Policy]inputReads{},
		hash:     hashSources(sources),
	}
	for _, spec := range specs {
		e.byName[spec.Name] = spec
		if err := e.prepare(ctx, spec, o.topdown); err != nil {
			return nil, err
		}
	}
	e.schemas = newSchemaSet(src.Schemas, specs)
	cfg, err := loadConfig(src, e.schemas, specs)
	if err != nil {
		return nil, err
	}
	e.config = cfg
	return e, nil
}

// Option changes how New builds an engine.
type Option func(*options)

type options struct{ topdown bool }

// TopdownOnly makes every decision with OPA's own evaluator, topdown,
// planning none (GITPOLI_EVALUATOR=topdown): to rule the planned evaluator
// out when a decision looks wrong.
func TopdownOnly() Option { return func(o *options) { o.topdown = true } }

// Reconfigure returns an engine with the same compiled policies and the
// config and schemas of src: what a save of a .repol file or a schema
// needs, without compiling the policies again. src.Policies must be the
// files e was built from.
func (e *Engine) Reconfigure(src Sources) (*Engine, error) {
	schemas := newSchemaSet(src.Schemas, e.policies)
	cfg, err := loadConfig(src, schemas, e.policies)
	if err != nil {
		return nil, err
	}
	next := *e
	next.src, next.schemas, next.config = src, schemas, cfg
	return &next, nil
}

func newCompiler() *ast.Compiler {
	return ast.NewCompiler().
		WithStrict(true).
		WithDefaultRegoVersion(ast.RegoV1).
		WithEnablePrintStatements(false)
}

// isPolicyFile selects the Rego files that decide; isTestFile the OPA unit
// tests beside them, which only the test runner needs.
func isPolicyFile(name string) bool { return !IsTestFile(name) }

// IsTestFile reports whether a .rego file holds OPA unit tests, which only
// the test runner reads.
func IsTestFile(name string) bool { return strings.HasSuffix(name, "_test.rego") }

// readRego reads the .rego files below dir that include selects, keyed by
// display name.
func readRego(dir Dir, include func(name string) bool) ([]string, map[string][]byte, error) {
	var names []string
	sources := map[string][]byte{}
	err := fs.WalkDir(dir.FS, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() || path.Ext(p) != ".rego" || !include(p) {
			return nil
		}
		src, err := fs.ReadFile(dir.FS, p)
		if err != nil {
			return fmt.Errorf("read policy %s: %w", dir.file(p), err)
		}
		name := dir.file(p)
		names = append(names, name)
		sources[name] = src
		return nil
	})
	if err != nil {
		return nil, nil, fmt.Errorf("load policies from %s: %w", dir.Name, err)
	}
	return names, sources, nil
}

// parseModules parses the .rego files below dir that include selects.
func parseModules(dir Dir, include func(name string) bool) (map[string]*ast.Module, map[string][]byte, Problems, error) {
	names, sources, err := readRego(dir, include)
	if err != nil {
		return nil, nil, nil, err
	}
	modules := map[string]*ast.Module{}
	var problems Problems
	for _, name := range names {
		m, err := parseModule(name, sources[name])
		if err != nil {
			var errs ast.Errors
			if errors.As(err, &errs) {
				problems = append(problems, regoProblems(errs)...)
				continue
			}
			problems = append(problems, Problem{Pos: Pos{File: name}, Code: "rego", Msg: err.Error()})
			continue
		}
		modules[name] = m
	}
	if len(modules) == 0 && len(problems) == 0 {
		problems = append(problems, Problem{Pos: Pos{File: dir.Name}, Code: "rego", Msg: noRegoFiles})
	}
	problems.Sort()
	return modules, sources, problems, nil
}

const noRegoFiles = "no .rego files"

// parsed holds the last parse of each file, by name. The workbench
// rebuilds its engine on every save, and gitpoli test builds one beside
// the OPA tests, which parse the same files: a file whose text has not
// changed is not parsed again. Callers get a copy, theirs to change.
var parsed = struct {
	sync.Mutex
	files map[string]*parse
}{files: map[string]*parse{}}

type parse struct {
	once sync.Once
	src  string
	m    *ast.Module
	err  error
}

func parseModule(name string, src []byte) (*ast.Module, error) {
	parsed.Lock()
	p := parsed.files[name]
	if p == nil || p.src != string(src) {
		p = &parse{src: string(src)}
		parsed.files[name] = p
	}
	parsed.Unlock()
	p.once.Do(func() {
		p.m, p.err = ast.ParseModuleWithOpts(name, p.src, ast.ParserOptions{RegoVersion: ast.RegoV1, ProcessAnnotation: true})
	})
	if p.err != nil {
		return nil, p.err
	}
	return p.m.Copy(), nil
}

func regoProblems(errs ast.Errors) Problems {
	ps := make(Problems, 0, len(errs))
	for _, e := range errs {
		p := Problem{Code: "rego", Msg: e.Code + ": " + e.Message}
		if e.Location != nil {
			p.Pos = Pos{File: e.Location.File, Line: e.Location.Row, Col: e.Location.Col}
		}
		ps = append(ps, p)
	}
	ps.Sort()
	return ps
}

// hashSources identifies a policy set: the same files give the same hash.
func hashSources(sources map[string][]byte) string {
	names := make([]string, 0, len(sources))
	for n := range sources {
		names = append(names, n)
	}
	sort.Strings(names)
	h := sha256.New()
	for _, n := range names {
		fmt.Fprintf(h, "%s\x00%d\x00", n, len(sources[n]))
		h.Write(sources[n])
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// prepare readies the decision query of a policy and indexes its
// violation rules by code, so that each violation can name the rule that
// raised it.
func (e *Engine) prepare(ctx context.Context, spec *PolicySpec, topdown bool) error {
	p := spec.Name
	pkg := ast.MustParseRef("data." + p.Package())
	for _, name := range []string{"allow", "violations"} {
		if len(e.compiler.GetRules(pkg.Append(ast.StringTerm(name)))) == 0 {
			return Problems{{Pos: spec.Pos, Code: "policy",
				Msg: fmt.Sprintf("package %s defines no %q rule: the %s decision cannot be made", p.Package(), name, p)}}
		}
	}
	query := fmt.Sprintf("allow := data.%[1]s.allow; violations := data.%[1]s.violations", p.Package())
	pq, err := rego.New(
		rego.Compiler(e.compiler),
		rego.Store(inmem.New()),
		rego.Query(query),
		// A built-in that fails (to_number("x"), a bad glob) must not make
		// an expression quietly undefined: that can skip a violation rule.
		rego.StrictBuiltinErrors(true),
	).PrepareForEval(ctx)
	if err != nil {
		return fmt.Errorf("prepare %s decision: %w", p, err)
	}
	e.queries[p] = pq
	if !topdown {
		if prog, err := irvm.Plan(ctx, e.compiler, query); err != nil {
			e.planErrs[p] = err
		} else {
			e.progs[p] = prog
		}
	}

	codes := map[string][]*ast.Rule{}
	for _, r := range e.violationRules(p) {
		if code, ok := ruleCode(r); ok {
			codes[code] = append(codes[code], r)
		}
	}
	e.rules[p] = codes
	e.reads[p] = readsOf(e.compiler, pkg)
	spec.Also = alsoOn(spec, e.reads[p])
	spec.Facts = []string{}
	for _, key := range FactKeys {
		if e.reads[p].has(key) {
			spec.Facts = append(spec.Facts, key)
		}
	}
	return nil
}

// violationRules returns p's rules named violations as written (the
// compiler rewrites heads, so positions and codes are read from the parsed
// modules), in file and line order.
func (e *Engine) violationRules(p Policy) []*ast.Rule {
	pkg := ast.MustParseRef("data." + p.Package())
	var out []*ast.Rule
	for _, m := range e.modules {
		if !m.Package.Path.Equal(pkg) {
			continue
		}
		for _, r := range m.Rules {
			if r.Head.Name.String() == "violations" || r.Head.Ref().String() == "violations" {
				out = append(out, r)
			}
		}
	}
	slices.SortFunc(out, func(a, b *ast.Rule) int {
		return cmp.Or(cmp.Compare(a.Location.File, b.Location.File), cmp.Compare(a.Location.Row, b.Location.Row))
	})
	return out
}

// ruleCode returns the violation code a rule emits, when its head is an
// object literal with a literal "code".
func ruleCode(r *ast.Rule) (string, bool) {
	t := r.Head.Key
	if t == nil {
		t = r.Head.Value
	}
	if t == nil {
		return "", false
	}
	obj, ok := t.Value.(ast.Object)
	if !ok {
		return "", false
	}
	code := obj.Get(ast.StringTerm("code"))
	if code == nil {
		return "", false
	}
	s, ok := code.Value.(ast.String)
	return string(s), ok
}

// Topdown returns an engine that decides as e does, but with OPA's own
// evaluator (topdown) throughout instead of the planned decisions: the
// reference the planned evaluator is tested against.
func (e *Engine) Topdown() *Engine {
	next := *e
	next.progs = nil
	return &next
}

// Evaluator names what decides p: "irvm" (the planned decision) or
// "topdown", with the reason planning failed when there was one.
func (e *Engine) Evaluator(p Policy) (string, error) {
	if e.progs[p] != nil {
		return "irvm", nil
	}
	return "topdown", e.planErrs[p]
}

// Policies returns the policies the engine decides, by name.
func (e *Engine) Policies() []*PolicySpec { return e.policies }

// Policy returns the policy named name.
func (e *Engine) Policy(name string) (*PolicySpec, error) {
	if spec, ok := e.byName[Policy(name)]; ok {
		return spec, nil
	}
	names := make([]string, len(e.policies))
	for i, spec := range e.policies {
		names[i] = string(spec.Name)
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("unknown policy %q: %s holds no policy", name, e.src.Policies.Name)
	}
	return nil, fmt.Errorf("unknown policy %q (the policies are: %s)", name, strings.Join(names, ", "))
}

// PoliciesFor returns the policies that decide a subject: those whose
// "on" names its event and action, or, for a re-run of a check run, the
// policy that posts it.
func (e *Engine) PoliciesFor(s Subject) []*PolicySpec {
	var out []*PolicySpec
	for _, spec := range e.policies {
		if s.CheckName != "" {
			if spec.Answer == AnswerCheck && spec.CheckName == s.CheckName {
				out = append(out, spec)
			}
			continue
		}
		if spec.Decides(s.Event, s.Action) {
			out = append(out, spec)
		}
	}
	return out
}

// Sources returns where the engine's files came from.
func (e *Engine) Sources() Sources { return e.src }

// Config returns the loaded .repol config.
func (e *Engine) Config() *Config { return e.config }

// Hash identifies the policy set (the .rego sources other than tests)
// that decides.
func (e *Engine) Hash() string { return e.hash }

// Decision is the outcome of one policy evaluation.
type Decision struct {
	Policy     Policy      `json:"policy"`
	Allow      bool        `json:"allow"`
	Violations []Violation `json:"violations"`
}

// Codes returns the violation codes in order.
func (d Decision) Codes() []string {
	codes := make([]string, len(d.Violations))
	for i, v := range d.Violations {
		codes[i] = v.Code
	}
	return codes
}

// Violation is one reason a decision denies.
type Violation struct {
	Code string `json:"code"`
	Msg  string `json:"msg"`
	// Rule is where the Rego rule that raised it is written.
	Rule *Pos `json:"rule,omitempty"`
	// ConfigPath is the config value the rule relied on, e.g.
	// policy.environments.production.rules.approvals_required.
	ConfigPath string `json:"config_path,omitempty"`
	// Config is where that value is set in the .repol file (or its nearest
	// enclosing key when it is absent). Nil when the config came inline
	// with the input.
	Config *Pos `json:"config,omitempty"`

	configPath []string
	// inputKeys are, for a fact.unavailable found while gathering, the
	// input keys the fact would have filled.
	inputKeys []string
}

// CodeEngineError is the violation code of a decision that could not be
// evaluated. It always denies.
const CodeEngineError = "engine.error"

// CodeConfigInvalid is the violation code for a .repol file that does not
// parse or breaks its schema. It always denies.
const CodeConfigInvalid = "config.invalid"

func errorDecision(p Policy, err error) Decision {
	return Decision{Policy: p, Violations: []Violation{{Code: CodeEngineError, Msg: err.Error()}}}
}

// Decide evaluates policy p on in. When in carries no config of its own
// (repo_policy or config), the engine's .repol config for p is added at
// both keys; a config with problems adds a config.invalid violation for
// each.
//
// Decide fails closed: every error is also returned as a denying Decision
// with code engine.error, so a caller that ignores the error still denies.
func (e *Engine) Decide(ctx context.Context, p Policy, in Input) (Decision, error) {
	return e.decide(ctx, p, in, e.configFor(p, in), nil, nil)
}

// configFor is the config that completes in: none when the input carries
// its own config (repo_policy or config), else the engine's .repol file
// for p.
func (e *Engine) configFor(p Policy, in Input) *ConfigFile {
	if in.Has("repo_policy") || in.Has("config") {
		return nil
	}
	return e.config.For(e.byName[p])
}

// decide evaluates p on in completed with cfg (when not nil), adding the
// violations extra that the caller found before evaluation.
func (e *Engine) decide(ctx context.Context, p Policy, in Input, cfg *ConfigFile, extra []Violation, opts []rego.EvalOption) (Decision, error) {
	pq, ok := e.queries[p]
	if !ok {
		err := fmt.Errorf("unknown policy %q", p)
		return errorDecision(p, err), err
	}
	if in.obj == nil {
		err := ErrNotObject
		return errorDecision(p, err), err
	}
	if err := ctx.Err(); err != nil {
		// A caller that gave up gets no decision to act on.
		err = fmt.Errorf("evaluate %s: %w", p, err)
		return errorDecision(p, err), err
	}
	doc := in.obj
	if cfg != nil && cfg.value != nil {
		// The policy's .repol document, at config for every policy and at
		// repo_policy too, where the seed's policies read it.
		doc = in.with(cfg.value, "repo_policy", "config")
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, DefaultDecisionTimeout)
		defer cancel()
	}
	var d Decision
	planned := false
	if prog := e.progs[p]; prog != nil && len(opts) == 0 {
		// An error from the plan is never the last word: topdown stops
		// where the result is settled (the first body of a rule that
		// holds, the first match of a some), so a built-in error past that
		// point fails the plan and not topdown. Topdown decides those.
		if rs, err := prog.EvalInput(ctx, doc, irvm.Options{}); err == nil {
			d, err = e.planDecision(p, rs)
			planned = err == nil
		}
	}
	if !planned {
		rs, err := pq.Eval(ctx, append(opts, rego.EvalParsedInput(doc))...)
		if err != nil {
			err = fmt.Errorf("evaluate %s: %w", p, err)
			return errorDecision(p, err), err
		}
		if d, err = e.decision(p, rs); err != nil {
			return errorDecision(p, err), err
		}
	}
	d.Violations = append(d.Violations, extra...)
	if cfg != nil {
		for _, prob := range cfg.Problems {
			pos := prob.Pos
			msg := prob.Msg
			if prob.Field != "" {
				msg = prob.Field + ": " + msg
			}
			d.Violations = append(d.Violations, Violation{
				Code:       CodeConfigInvalid,
				Msg:        msg,
				ConfigPath: prob.Field,
				Config:     &pos,
			})
		}
		for i := range d.Violations {
			v := &d.Violations[i]
			if v.configPath != nil {
				pos := cfg.Pos(v.configPath)
				v.Config = &pos
			}
		}
	}
	slices.SortFunc(d.Violations, func(a, b Violation) int {
		return cmp.Or(cmp.Compare(a.Code, b.Code), cmp.Compare(a.Msg, b.Msg))
	})
	d.Violations = slices.CompactFunc(d.Violations, func(a, b Violation) bool {
		return a.Code == b.Code && a.Msg == b.Msg
	})
	d.Allow = d.Allow && len(d.Violations) == 0
	return d, nil
}

// decision reads the query result. Anything unexpected is an error, and
// an error denies.
func (e *Engine) decision(p Policy, rs rego.ResultSet) (Decision, error) {
	d := Decision{Policy: p, Violations: []Violation{}}
	if len(rs) != 1 {
		return d, fmt.Errorf("policy %s produced no decision (is allow or violations undefined?)", p.Package())
	}
	allow, ok := rs[0].Bindings["allow"].(bool)
	if !ok {
		return d, fmt.Errorf("%s.allow is %T, not a boolean", p.Package(), rs[0].Bindings["allow"])
	}
	raw, ok := rs[0].Bindings["violations"].([]any)
	if !ok {
		return d, fmt.Errorf("%s.violations is %T, not a set", p.Package(), rs[0].Bindings["violations"])
	}
	d.Allow = allow
	for _, r := range raw {
		v, err := e.violation(p, r)
		if err != nil {
			return d, err
		}
		d.Violations = append(d.Violations, v)
	}
	return d, nil
}

// errPlanResult is a planned result that decision would reject; topdown
// then decides, and says what is wrong.
var errPlanResult = errors.New("unexpected planned result")

// planDecision reads the result set of a planned decision.
func (e *Engine) planDecision(p Policy, rs ast.Set) (Decision, error) {
	d := Decision{Policy: p, Violations: []Violation{}}
	if rs.Len() != 1 {
		return d, errPlanResult
	}
	res, ok := rs.Slice()[0].Value.(ast.Object)
	if !ok {
		return d, errPlanResult
	}
	allow, raw := res.Get(ast.InternedTerm("allow")), res.Get(ast.InternedTerm("violations"))
	if allow == nil || raw == nil {
		return d, errPlanResult
	}
	b, ok := allow.Value.(ast.Boolean)
	if !ok {
		return d, errPlanResult
	}
	var elems []*ast.Term
	switch raw := raw.Value.(type) {
	case ast.Set:
		elems = raw.Slice()
	case *ast.Array:
		// topdown hands both back as a list; accept what it accepts.
		for i := range raw.Len() {
			elems = append(elems, raw.Elem(i))
		}
	default:
		return d, errPlanResult
	}
	d.Allow = bool(b)
	for _, t := range elems {
		r, err := ast.JSON(t.Value)
		if err != nil {
			return d, err
		}
		v, err := e.violation(p, r)
		if err != nil {
			return d, err
		}
		d.Violations = append(d.Violations, v)
	}
	return d, nil
}

func (e *Engine) violation(p Policy, r any) (Violation, error) {
	obj, ok := r.(map[string]any)
	if !ok {
		return Violation{}, fmt.Errorf("%s.violations holds %T, not an object with code and msg", p.Package(), r)
	}
	code, ok1 := obj["code"].(string)
	msg, ok2 := obj["msg"].(string)
	if !ok1 || !ok2 || code == "" {
		return Violation{}, fmt.Errorf("%s.violations holds an entry without string code and msg: %v", p.Package(), obj)
	}
	v := Violation{Code: code, Msg: msg}
	if rules := e.rules[p][code]; len(rules) > 0 {
		loc := rules[0].Location
		v.Rule = &Pos{File: loc.File, Line: loc.Row}
	}
	if raw, ok := obj["config"].([]any); ok {
		path := make([]string, 0, len(raw))
		for _, el := range raw {
			path = append(path, fmt.Sprint(el))
		}
		v.configPath = path
		v.ConfigPath = strings.Join(path, ".")
	}
	return v, nil
}
