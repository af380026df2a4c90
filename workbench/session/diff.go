package session

import (
	"cmp"
	"slices"
	"strings"

	"github.com/gitpoli/gitpoli/workbench/fixture"
)

// Change is one test or fixture whose outcome differs between two
// snapshots.
type Change struct {
	Kind   string `json:"kind"` // "test" or "fixture"
	Name   string `json:"name"`
	Before string `json:"before"` // "" when it is new
	After  string `json:"after"`  // "" when it is gone
	// Flipped is set when a decision went from allow to deny or back, or
	// a test or fixture from passing to failing or back.
	Flipped bool `json:"flipped"`
}

// Diff lists what changed from prev to next: tests whose status changed
// and fixtures whose decision or verdict changed. A nil prev yields
// nothing: the first snapshot has nothing to compare with.
func Diff(prev, next *Snapshot) []Change {
	if prev == nil || next == nil {
		return nil
	}
	var out []Change
	before := map[string]string{}
	for _, t := range prev.Tests {
		before[t.FullName()] = string(t.Status)
	}
	after := map[string]string{}
	for _, t := range next.Tests {
		after[t.FullName()] = string(t.Status)
	}
	out = append(out, changes("test", before, after, func(name string) bool {
		return (before[name] == "pass") != (after[name] == "pass")
	})...)

	before, after = map[string]string{}, map[string]string{}
	beforePass, afterPass := map[string]bool{}, map[string]bool{}
	beforeAllow, afterAllow := map[string]bool{}, map[string]bool{}
	unfit := map[string]bool{}
	for _, f := range prev.Fixtures {
		before[f.Fixture], beforePass[f.Fixture], beforeAllow[f.Fixture] = Outcome(f), f.Pass, allows(f)
	}
	for _, f := range next.Fixtures {
		after[f.Fixture], afterPass[f.Fixture], afterAllow[f.Fixture] = Outcome(f), f.Pass, allows(f)
		unfit[f.Fixture] = len(f.Unrecorded) > 0
	}
	out = append(out, changes("fixture", before, after, func(name string) bool {
		// A fixture recorded before the policies read a fact is not
		// decided again: it neither flips nor counts as a denial.
		return beforeAllow[name] != afterAllow[name] && !unfit[name]
	})...)
	// A fixture whose decision stayed but whose verdict changed (its
	// expectation was edited) is a change too.
	for name, p := range afterPass {
		if bp, ok := beforePass[name]; ok && bp != p && before[name] == after[name] && !unfit[name] {
			out = append(out, Change{Kind: "fixture", Name: name, Before: before[name] + verdict(bp), After: after[name] + verdict(p), Flipped: true})
		}
	}
	slices.SortFunc(out, func(a, b Change) int {
		return cmp.Or(cmp.Compare(a.Kind, b.Kind), cmp.Compare(a.Name, b.Name))
	})
	return out
}

func verdict(pass bool) string {
	if pass {
		return " (matches)"
	}
	return " (mismatch)"
}

func changes(kind string, before, after map[string]string, flipped func(name string) bool) []Change {
	var out []Change
	for name, a := range after {
		b, ok := before[name]
		switch {
		case !ok:
			out = append(out, Change{Kind: kind, Name: name, After: a})
		case a != b:
			out = append(out, Change{Kind: kind, Name: name, Before: b, After: a, Flipped: flipped(name)})
		}
	}
	for name, b := range before {
		if _, ok := after[name]; !ok {
			out = append(out, Change{Kind: kind, Name: name, Before: b})
		}
	}
	return out
}

// Outcome summarizes a fixture result: "ignored", "error", or each
// policy's verdict ("allow", "deny [codes]"; several joined with "; ",
// each then named by its policy).
func Outcome(r fixture.Result) string {
	switch {
	case r.Error != "":
		return "error"
	case r.Ignored != "":
		return "ignored"
	case len(r.Unrecorded) > 0:
		return "not decided: no recording of " + strings.Join(r.Unrecorded, ", ")
	}
	parts := make([]string, len(r.Outcomes))
	for i, o := range r.Outcomes {
		parts[i] = o.Decision.Verdict().String()
		if len(r.Outcomes) > 1 {
			parts[i] = string(o.Decision.Policy) + " " + parts[i]
		}
	}
	return strings.Join(parts, "; ")
}

// allows reports whether a fixture's delivery is allowed: decided, and
// by every policy that decides it.
func allows(r fixture.Result) bool {
	if r.Error != "" || r.Ignored != "" || len(r.Outcomes) == 0 {
		return false
	}
	for _, o := range r.Outcomes {
		if !o.Decision.Allow {
			return false
		}
	}
	return true
}
