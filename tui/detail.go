package tui

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	"github.com/gitpoli/gitpoli/workbench"
	"github.com/gitpoli/gitpoli/workbench/fixture"
	"github.com/gitpoli/gitpoli/workbench/session"
)

// This file turns a snapshot into the rows of each view and the text of
// the detail pane. It renders; the engine decided.

func mark(st Styles, ok bool) string {
	if ok {
		return st.Pass.Render("✓")
	}
	return st.Fail.Render("✗")
}

func plainMark(ok bool) string {
	if ok {
		return "✓"
	}
	return "✗"
}

// testOrder is the order the tests view lists tests in: failures first,
// then the rest, each by package as the run gave them.
func testOrder(tests []workbench.TestResult) []int {
	order := make([]int, len(tests))
	for i := range order {
		order[i] = i
	}
	passed := func(i int) bool {
		return tests[i].Status == workbench.TestPass || tests[i].Status == workbench.TestSkip
	}
	slices.SortStableFunc(order, func(a, b int) int {
		switch pa, pb := passed(a), passed(b); {
		case pa == pb:
			return cmp.Compare(tests[a].Package, tests[b].Package)
		case !pa:
			return -1
		default:
			return 1
		}
	})
	return order
}

// testRows lists tests by their name within the package, the package
// after it (muted, the first thing a narrow list cuts), in order.
func testRows(st Styles, tests []workbench.TestResult, order []int) []row {
	rows := make([]row, 0, len(tests))
	for _, i := range order {
		t := tests[i]
		ok := t.Status == workbench.TestPass || t.Status == workbench.TestSkip
		pkg := strings.TrimSuffix(strings.TrimPrefix(t.Package, "github."), "_test")
		rows = append(rows, row{key: t.FullName(), text: mark(st, ok) + " " + t.Name + st.Muted.Render(" · "+pkg),
			plain: plainMark(ok) + " " + t.Name + " · " + pkg + " " + t.FullName() + " " + string(t.Status)})
	}
	return rows
}

func fixtureName(path string) string {
	return strings.TrimSuffix(strings.TrimPrefix(path, "fixtures/"), ".json")
}

func fixtureRows(st Styles, results []fixture.Result) []row {
	rows := make([]row, 0, len(results))
	for _, r := range results {
		name := fixtureName(r.Fixture)
		outcome := session.Outcome(r)
		rows = append(rows, row{
			key:   r.Fixture,
			text:  mark(st, r.Pass) + " " + name + "  " + st.Muted.Render(outcome),
			plain: plainMark(r.Pass) + " " + name + "  " + outcome,
		})
	}
	return rows
}

func changeRows(st Styles, changes []session.Change) []row {
	rows := make([]row, 0, len(changes))
	for _, c := range changes {
		name := c.Name
		if c.Kind == "fixture" {
			name = fixtureName(name)
		}
		before, after := orDash(c.Before), orDash(c.After)
		arrow := st.Changed.Render("~")
		if c.Flipped {
			arrow = st.ChangedFlips.Render("!")
		}
		plain := fmt.Sprintf("%s %s: %s → %s", c.Kind, name, before, after)
		sign := "~"
		if c.Flipped {
			sign = "!"
		}
		rows = append(rows, row{key: c.Kind + ":" + c.Name, text: arrow + " " + plain, plain: sign + " " + plain})
	}
	return rows
}

func orDash(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

func problemRows(st Styles, problems, warnings workbench.Problems) []row {
	rows := make([]row, 0, len(problems)+len(warnings))
	for i, p := range problems {
		text := p.String()
		rows = append(rows, row{key: fmt.Sprint(i, text), text: st.Fail.Render("✗") + " " + text, plain: "✗ " + text})
	}
	for i, p := range warnings {
		text := p.String()
		rows = append(rows, row{key: fmt.Sprint("warning", i, text), text: st.Warn.Render("!") + " " + text, plain: "! " + text})
	}
	return rows
}

// testDetail explains one test result.
func testDetail(st Styles, t workbench.TestResult) string {
	var b strings.Builder
	ok := t.Status == workbench.TestPass
	fmt.Fprintf(&b, "%s %s\n", mark(st, ok), st.Bold.Render(t.FullName()))
	fmt.Fprintf(&b, "%s  %s\n", strings.ToUpper(string(t.Status)), st.Location.Render(t.Pos.String()))
	if t.FailedAt != nil {
		fmt.Fprintf(&b, "\nfailed at %s\n  %s\n", st.Location.Render(t.FailedAt.String()), t.FailedExpr)
	}
	if t.Error != "" {
		fmt.Fprintf(&b, "\nerror:\n  %s\n", t.Error)
	}
	if t.Output != "" {
		fmt.Fprintf(&b, "\noutput:\n%s\n", t.Output)
	}
	return b.String()
}

// fixtureDetail explains one replayed fixture: the verdict, and for each
// decision every violation with its rule, its config and the facts it read.
func fixtureDetail(st Styles, e *workbench.Engine, r fixture.Result) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s\n", mark(st, r.Pass), st.Bold.Render(r.Fixture))
	event := r.Event
	if r.Action != "" {
		event += "." + r.Action
	}
	fmt.Fprintf(&b, "%s\n", st.Muted.Render(event))
	if r.Mismatch != "" {
		fmt.Fprintf(&b, "\n%s %s\n", st.Fail.Render("mismatch:"), r.Mismatch)
	}
	if r.Error != "" {
		fmt.Fprintf(&b, "\n%s %s\n", st.Fail.Render("error:"), r.Error)
	}
	if r.Ignored != "" {
		fmt.Fprintf(&b, "\nnot a policy event: %s\n", r.Ignored)
	}
	for _, o := range r.Outcomes {
		writeOutcome(&b, st, e, o)
	}
	return b.String()
}

func writeOutcome(b *strings.Builder, st Styles, e *workbench.Engine, o workbench.Outcome) {
	what := o.Subject.Repo.String()
	if o.Subject.PR != nil {
		what = o.Subject.PR.PR.String()
	}
	if o.Subject.Environment != nil {
		what += " → " + *o.Subject.Environment
	}
	verdict := st.Fail.Render("deny")
	if o.Decision.Allow {
		verdict = st.Pass.Render("allow")
	}
	fmt.Fprintf(b, "\n%s: %s  %s\n", o.Decision.Policy, verdict, st.Muted.Render(what))
	for _, v := range o.Decision.Violations {
		fmt.Fprintf(b, "\n%s\n  %s\n", st.Code.Render(v.Code), v.Msg)
		if v.Rule != nil {
			fmt.Fprintf(b, "  rule    %s\n", st.Location.Render(v.Rule.String()))
		}
		if v.Config != nil {
			fmt.Fprintf(b, "  config  %s %s\n", st.Location.Render(v.Config.String()), st.Muted.Render(v.ConfigPath))
		}
		if e != nil {
			for _, f := range e.ViolationFacts(o.Decision.Policy, v, o.Input) {
				fmt.Fprintf(b, "  fact    input.%s = %s\n", f.Path, st.Fact.Render(f.ValueString()))
			}
		}
	}
}

// changeLabels name the two sides of a change and what flipped it.
type changeLabels struct{ before, after, flipped string }

var (
	saveLabels   = changeLabels{"before", "now", "flipped by the last save"}
	diffLabels   = changeLabels{"before", "now", "flipped"}
	shadowLabels = changeLabels{"enforced", "shadow", "the shadow policies decide the other way"}
)

func changeDetail(st Styles, c session.Change, l changeLabels) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s\n\n", st.Bold.Render(c.Kind), c.Name)
	w := max(len(l.before), len(l.after)) + 2
	fmt.Fprintf(&b, "%-*s%s\n%-*s%s\n", w, l.before, orDash(c.Before), w, l.after, orDash(c.After))
	if c.Flipped {
		fmt.Fprintf(&b, "\n%s\n", st.ChangedFlips.Render(l.flipped))
	}
	return b.String()
}

func problemDetail(st Styles, p workbench.Problem) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s\n\n", st.Location.Render(p.Pos.String()))
	if p.Field != "" {
		fmt.Fprintf(&b, "field  %s\n", st.Bold.Render(p.Field))
	}
	fmt.Fprintf(&b, "%s\n\n%s\n", p.Msg, st.Muted.Render("("+p.Code+")"))
	return b.String()
}

// problemCount counts the problem rows of the problems view.
func (l *listPane) problemCount() int {
	n := 0
	for _, r := range l.rows {
		if !strings.HasPrefix(r.key, "policy:") {
			n++
		}
	}
	return n
}

// policyRows lists the policies the engine decides with, after the
// problems.
func policyRows(st Styles, e *workbench.Engine) []row {
	if e == nil {
		return nil
	}
	rows := make([]row, 0, len(e.Policies()))
	for _, p := range e.Policies() {
		text := fmt.Sprintf("policy %s  %s", p.Name, p.Answer)
		rows = append(rows, row{key: "policy:" + string(p.Name), text: st.Muted.Render("•") + " " + text, plain: "• " + text})
	}
	return rows
}

// policyDetail says what a policy decides and how it answers.
func policyDetail(st Styles, e *workbench.Engine, p *workbench.PolicySpec) string {
	var b strings.Builder
	title := string(p.Name)
	if p.Title != "" {
		title += "  " + p.Title
	}
	fmt.Fprintf(&b, "%s\n%s\n", st.Bold.Render(title), st.Location.Render(p.Pos.String()))
	if p.Description != "" {
		fmt.Fprintf(&b, "\n%s\n", p.Description)
	}
	on := make([]string, len(p.On))
	for i, t := range p.On {
		on[i] = t.String()
	}
	fmt.Fprintf(&b, "\non      %s\n", strings.Join(on, ", "))
	if len(p.Also) > 0 {
		also := make([]string, len(p.Also))
		for i, t := range p.Also {
			also[i] = t.String()
		}
		fmt.Fprintf(&b, "also    %s (decided again on these too)\n", strings.Join(also, ", "))
	}
	fmt.Fprintf(&b, "answer  %s\n", p.Answer)
	if len(p.Facts) > 0 {
		fmt.Fprintf(&b, "facts   %s\n", strings.Join(p.Facts, ", "))
	}
	if p.CheckName != "" {
		fmt.Fprintf(&b, "check   %s\n", p.CheckName)
	}
	if p.Config != "" {
		fmt.Fprintf(&b, "config  %s, schema %s\n", e.Sources().Config.Name+"/"+p.ConfigFile(), e.Sources().Schemas.Name+"/"+p.SchemaFile())
	}
	return b.String()
}
