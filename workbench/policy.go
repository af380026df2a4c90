package workbench

import (
	"cmp"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"
)

// Policy names one policy: the path of its Rego package after "github."
// (wip, teams.platform).
type Policy string

// Package is the Rego package that holds the policy's decision.
func (p Policy) Package() string { return "github." + string(p) }

// Answer says how GitHub is told of a policy's decisions.
type Answer string

const (
	// AnswerCheck posts one check run per policy on the pull request's
	// head, named by the policy's check_name.
	AnswerCheck Answer = "check"
	// AnswerDeployment takes part in the custom deployment protection
	// rule: every deployment policy that decides a deployment must allow.
	AnswerDeployment Answer = "deployment"
	// AnswerRecord writes the decision to the audit log and tells GitHub
	// nothing.
	AnswerRecord Answer = "record"
)

// Trigger is one entry of a policy's "on": an event, and optionally one
// of its actions ("" stands for every action that asks for a decision).
type Trigger struct {
	Event  string `json:"event"`
	Action string `json:"action,omitempty"`
}

func (t Trigger) String() string {
	if t.Action == "" {
		return t.Event
	}
	return t.Event + "." + t.Action
}

// PolicySpec is a policy as its package's METADATA declares it, under
// custom.gitpoli:
//
//	# METADATA
//	# title: No work in progress
//	# custom:
//	#   gitpoli:
//	#     on: [pull_request]
//	#     answer: check
//	#     check_name: gitpoli / No WIP
//	#     config: wip
//	package github.wip
type PolicySpec struct {
	Name        Policy    `json:"name"`
	Title       string    `json:"title,omitempty"`
	Description string    `json:"description,omitempty"`
	On          []Trigger `json:"on"`
	// Also lists the events that decide the policy again though "on"
	// does not name them: they change a fact it reads (alsoOn).
	Also []Trigger `json:"also,omitempty"`
	// Facts lists the facts (FactKeys) its rules can read: what deciding
	// it asks of GitHub.
	Facts  []string `json:"facts"`
	Answer Answer   `json:"answer"`
	// CheckName names the check run of an AnswerCheck policy.
	CheckName string `json:"check_name,omitempty"`
	// Config names the policy's config: .repol/<Config>.yaml, validated
	// by schemas/<Config>.schema.json. Empty when it reads none.
	Config string `json:"config,omitempty"`
	// Pos is where the annotation is written.
	Pos Pos `json:"pos"`
}

// ConfigFile is the file name of the policy's config in .repol, or "".
func (p *PolicySpec) ConfigFile() string { return configFile(p.Config) }

// SchemaFile is the file name of the JSON Schema of the policy's config.
func (p *PolicySpec) SchemaFile() string { return schemaFile(p.Config) }

func configFile(name string) string { return name + ".yaml" }
func schemaFile(name string) string { return name + ".schema.json" }

// Decides reports whether the policy decides a delivery of event with
// action: its "on" names it, or it changes a fact the policy reads (Also).
func (p *PolicySpec) Decides(event, action string) bool {
	for _, t := range slices.Concat(p.On, p.Also) {
		if t.Event == event && (t.Action == "" || t.Action == action) {
			return true
		}
	}
	return false
}

// decidedActions lists, per event, the actions that ask for a decision:
// what a policy's "on" may name. A status has no action. (check_run
// rerequested, a re-run of one of gitpoli's own checks, re-decides the
// policy that posted it whatever its "on".)
var decidedActions = map[string][]string{
	"pull_request": {"opened", "synchronize", "reopened", "ready_for_review", "edited",
		"labeled", "unlabeled", "converted_to_draft"},
	"pull_request_review":        {"submitted", "dismissed", "edited"},
	"check_run":                  {"completed", "rerequested"},
	"check_suite":                {"completed"},
	"status":                     {""},
	"merge_group":                {"checks_requested"},
	"deployment_protection_rule": {"requested"},
}

// prEvents are the events whose subject is a pull request's head.
var prEvents = []string{"pull_request", "pull_request_review", "check_run", "check_suite", "status", "merge_group"}

// answerEvents lists the events whose decisions each answer can carry to
// GitHub: a check run needs a pull request's head, a protection rule
// answer a deployment waiting for it.
var answerEvents = map[Answer][]string{
	AnswerCheck:      prEvents,
	AnswerDeployment: {"deployment_protection_rule"},
	AnswerRecord:     append(slices.Clone(prEvents), "deployment_protection_rule"),
}

// factEvents are the events that change a fact: a policy that decides
// pull requests and reads the fact is decided again on each (Also).
var factEvents = []struct {
	keys    []string
	trigger []Trigger
}{
	{[]string{"reviews", "workflow_meta"}, []Trigger{{Event: "pull_request_review"}}},
	{[]string{"checks"}, []Trigger{{Event: "check_run", Action: "completed"}, {Event: "check_suite", Action: "completed"}, {Event: "status"}}},
}

// alsoOn lists the events, beyond its "on", that decide a policy again:
// those that change a fact it reads, and for a check, a merge queue's
// group (a required check that is not posted on the group's head lets
// nothing merge).
func alsoOn(spec *PolicySpec, reads inputReads) []Trigger {
	if !spec.Decides("pull_request", "opened") && !spec.Decides("pull_request", "synchronize") {
		return nil
	}
	var out []Trigger
	add := func(t Trigger) {
		if !spec.Decides(t.Event, t.Action) && !slices.Contains(out, t) {
			out = append(out, t)
		}
	}
	for _, f := range factEvents {
		if slices.ContainsFunc(f.keys, reads.has) {
			for _, t := range f.trigger {
				add(t)
			}
		}
	}
	if spec.Answer == AnswerCheck {
		add(Trigger{Event: "merge_group", Action: "checks_requested"})
	}
	return out
}

// annotationKey is the key under an annotation's custom that makes a
// package a policy.
const annotationKey = "gitpoli"

// policyName is what a package path after "github." may be: OPA's own
// identifiers, dot-separated.
var policyName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$`)

// discoverPolicies finds the policies among the modules: every package
// under github. whose package-scoped METADATA carries custom.gitpoli. A
// package that decides (has allow or violations) but is not annotated is a
// problem, as is any mistake in an annotation: never a silent skip.
func discoverPolicies(modules map[string]*ast.Module) ([]*PolicySpec, Problems) {
	type pkgInfo struct {
		path     string
		files    []string
		annots   []*ast.Annotations
		decides  bool
		firstPos Pos
	}
	pkgs := map[string]*pkgInfo{}
	var problems Problems
	for _, name := range sortedKeys(modules) {
		m := modules[name]
		path := m.Package.Path.String()
		rest, ok := strings.CutPrefix(path, "data.github.")
		if !ok || !policyName.MatchString(rest) {
			// Annotated as a policy where no policy can be: said, not
			// skipped, or its rules would silently decide nothing.
			for _, a := range m.Annotations {
				if _, marked := a.Custom[annotationKey]; marked && a.Scope == "package" {
					problems = append(problems, Problem{Pos: annotationPos(a), Code: "policy",
						Msg: fmt.Sprintf("package %s is annotated with custom.gitpoli, but a policy is a package github.<name>, its name plain identifiers (github.wip, github.teams.platform)", strings.TrimPrefix(path, "data."))})
				}
			}
			continue
		}
		pi := pkgs[rest]
		if pi == nil {
			pi = &pkgInfo{path: rest, firstPos: Pos{File: name, Line: m.Package.Location.Row}}
			pkgs[rest] = pi
		}
		pi.files = append(pi.files, name)
		for _, a := range m.Annotations {
			if a.Scope == "package" && a.Custom != nil {
				if _, ok := a.Custom[annotationKey]; ok {
					pi.annots = append(pi.annots, a)
				}
			}
		}
		for _, r := range m.Rules {
			switch r.Head.Ref().String() {
			case "allow", "violations":
				pi.decides = true
			}
		}
	}
	var specs []*PolicySpec
	for _, rest := range sortedKeys(pkgs) {
		pi := pkgs[rest]
		switch len(pi.annots) {
		case 0:
			if pi.decides {
				problems = append(problems, Problem{Pos: pi.firstPos, Code: "policy",
					Msg: fmt.Sprintf("package github.%s defines allow or violations but has no METADATA annotation with custom.gitpoli: it decides nothing (see README, Writing a policy)", rest)})
			}
			continue
		case 1:
		default:
			a := pi.annots[1]
			problems = append(problems, Problem{Pos: annotationPos(a), Code: "policy",
				Msg: fmt.Sprintf("package github.%s is annotated with custom.gitpoli more than once (first at %s)", rest, annotationPos(pi.annots[0]))})
			continue
		}
		a := pi.annots[0]
		var comments []*ast.Comment
		if m := modules[locFile(a.Location)]; m != nil {
			comments = m.Comments
		}
		// A policy with problems is still listed: New refuses the set,
		// and the config it names is not reported as no policy's.
		spec, ps := parseSpec(rest, a, comments)
		problems = append(problems, ps...)
		specs = append(specs, spec)
	}
	// Two policies must not post the same check run: each would overwrite
	// the other's answer.
	byCheck := map[string]*PolicySpec{}
	for _, s := range specs {
		if s.Answer != AnswerCheck {
			continue
		}
		if other, dup := byCheck[s.CheckName]; dup {
			var comments []*ast.Comment
			if m := modules[s.Pos.File]; m != nil {
				comments = m.Comments
			}
			problems = append(problems, Problem{Pos: keyPos(s.Pos, comments, "check_name"), Field: "custom.gitpoli.check_name", Code: "policy",
				Msg: fmt.Sprintf("%q is also the check name of policy %s (%s)", s.CheckName, other.Name, other.Pos)})
			continue
		}
		byCheck[s.CheckName] = s
	}
	slices.SortFunc(specs, func(a, b *PolicySpec) int { return cmp.Compare(a.Name, b.Name) })
	problems.Sort()
	return specs, problems
}

func locFile(l *ast.Location) string {
	if l == nil {
		return ""
	}
	return l.File
}

func annotationPos(a *ast.Annotations) Pos {
	if a.Location == nil {
		return Pos{}
	}
	return Pos{File: a.Location.File, Line: a.Location.Row}
}

// parseSpec reads one custom.gitpoli annotation. Each problem points at
// the line of the key at fault when the comment block shows it.
func parseSpec(name string, a *ast.Annotations, comments []*ast.Comment) (*PolicySpec, Problems) {
	spec := &PolicySpec{Name: Policy(name), Title: a.Title, Description: a.Description, Pos: annotationPos(a)}
	var problems Problems
	bad := func(key, format string, args ...any) {
		problems = append(problems, Problem{Pos: keyPos(spec.Pos, comments, key), Field: "custom.gitpoli." + key, Code: "policy",
			Msg: fmt.Sprintf(format, args...)})
	}
	raw, ok := a.Custom[annotationKey].(map[string]any)
	if !ok {
		problems = append(problems, Problem{Pos: keyPos(spec.Pos, comments, annotationKey), Field: "custom.gitpoli", Code: "policy",
			Msg: fmt.Sprintf("must be a mapping of on, answer, check_name and config (got %s)", yamlKind(a.Custom[annotationKey]))})
		return spec, problems
	}
	for _, key := range sortedKeys(raw) {
		v := raw[key]
		switch key {
		case "on":
			spec.On = parseOn(v, func(format string, args ...any) { bad(key, format, args...) })
		case "answer":
			s, ok := v.(string)
			switch Answer(s) {
			case AnswerCheck, AnswerDeployment, AnswerRecord:
				spec.Answer = Answer(s)
			default:
				if !ok {
					bad(key, "must be check, deployment or record (got %s)", yamlKind(v))
				} else {
					bad(key, "must be check, deployment or record (got %q)", s)
				}
			}
		case "check_name":
			s, ok := v.(string)
			if !ok || strings.TrimSpace(s) == "" {
				bad(key, "must be a non-empty string (got %s)", describe(v))
				continue
			}
			// GitHub's own limit on a check run's name.
			if len(s) > 255 {
				bad(key, "must be at most 255 characters (got %d)", len(s))
				continue
			}
			// The prefix is how a check run is known to be gitpoli's: the
			// deployment facts must not count a policy's answer as a test
			// that passed.
			if !IsOwnCheck(s) {
				bad(key, "must begin with %q, as gitpoli's checks do (got %q)", OwnCheckPrefix, s)
				continue
			}
			spec.CheckName = s
		case "config":
			s, ok := v.(string)
			if !ok || !configName.MatchString(s) {
				bad(key, "must be a file name without extension, such as %q (got %s)", name, describe(v))
				continue
			}
			spec.Config = s
		default:
			bad(key, "unknown key (want on, answer, check_name or config)")
		}
	}
	if _, ok := raw["on"]; !ok {
		problems = append(problems, Problem{Pos: spec.Pos, Field: "custom.gitpoli.on", Code: "policy", Msg: "is required: the events this policy decides"})
	}
	if _, ok := raw["answer"]; !ok {
		problems = append(problems, Problem{Pos: spec.Pos, Field: "custom.gitpoli.answer", Code: "policy", Msg: "is required: check, deployment or record"})
	}
	if spec.Answer != "" {
		for _, t := range spec.On {
			if !slices.Contains(answerEvents[spec.Answer], t.Event) {
				bad("on", "answer %s cannot answer %s events (it answers %s)", spec.Answer, t.Event, strings.Join(answerEvents[spec.Answer], ", "))
			}
		}
	}
	switch {
	case spec.Answer == AnswerCheck && spec.CheckName == "":
		label := spec.Title
		if label == "" {
			label = string(spec.Name)
		}
		spec.CheckName = "gitpoli / " + label
	case spec.Answer != AnswerCheck && spec.CheckName != "":
		bad("check_name", "only a policy with answer: check posts a check run")
	}
	return spec, problems
}

var configName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]*$`)

// parseOn reads "on": an event name or a list of them, each optionally
// with ".action".
func parseOn(v any, bad func(format string, args ...any)) []Trigger {
	var items []any
	switch v := v.(type) {
	case string:
		items = []any{v}
	case []any:
		items = v
	default:
		bad("must be an event or a list of events (got %s)", yamlKind(v))
		return nil
	}
	if len(items) == 0 {
		bad("must name at least one event")
		return nil
	}
	var out []Trigger
	for _, it := range items {
		s, ok := it.(string)
		if !ok {
			bad("must be a list of event names (got %s in it)", yamlKind(it))
			continue
		}
		event, action, _ := strings.Cut(s, ".")
		actions, known := decidedActions[event]
		switch {
		case !known:
			bad("unknown event %q (want one of %s)", s, strings.Join(sortedKeys(decidedActions), ", "))
			continue
		case action != "" && !slices.Contains(actions, action):
			bad("%s has no action %q that gitpoli decides (want one of %s)", event, action, strings.Join(actions, ", "))
			continue
		}
		t := Trigger{Event: event, Action: action}
		if !slices.Contains(out, t) {
			out = append(out, t)
		}
	}
	return out
}

// keyPos finds the line of "key:" in the METADATA comment block that
// starts at start, so that a problem points at the key itself.
func keyPos(start Pos, comments []*ast.Comment, key string) Pos {
	row := start.Line
	for _, c := range comments {
		if c.Location == nil || c.Location.Row < start.Line {
			continue
		}
		if c.Location.Row > row+1 {
			break // the block ended
		}
		row = c.Location.Row
		if text := strings.TrimSpace(string(c.Text)); strings.HasPrefix(text, key+":") {
			return Pos{File: start.File, Line: row, Col: c.Location.Col + 1 + strings.Index(string(c.Text), key)}
		}
	}
	return start
}

// yamlKind names the kind of a value decoded from YAML, for messages.
func yamlKind(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case string:
		return "a string"
	case bool:
		return "a boolean"
	case []any:
		return "a list"
	case map[string]any:
		return "a mapping"
	case float64, int, int64, uint64:
		return "a number"
	}
	return fmt.Sprintf("%v", v)
}

func describe(v any) string {
	if s, ok := v.(string); ok {
		return fmt.Sprintf("%q", s)
	}
	return yamlKind(v)
}

func sortedKeys[M ~map[string]V, V any](m M) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
