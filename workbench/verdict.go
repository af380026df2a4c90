package workbench

import (
	"slices"
	"strings"
)

// Verdict is a decision as two decisions are compared: whether it
// allows, and its distinct violation codes, sorted. Shadow mode, backtest
// and the workbench's "changed" all compare verdicts, so that they agree
// on what a change is.
type Verdict struct {
	Allow bool     `json:"allow"`
	Codes []string `json:"codes"`
}

// Verdict reduces d to what comparisons look at.
func (d Decision) Verdict() Verdict { return NewVerdict(d.Allow, d.Codes()) }

// NewVerdict is the verdict of a decision recorded as allow and codes (in
// any order, repeats allowed).
func NewVerdict(allow bool, codes []string) Verdict {
	codes = slices.Compact(slices.Sorted(slices.Values(codes)))
	if codes == nil {
		codes = []string{}
	}
	return Verdict{Allow: allow, Codes: codes}
}

// String is "allow", or "deny [code code]".
func (v Verdict) String() string {
	if v.Allow && len(v.Codes) == 0 {
		return "allow"
	}
	verdict := "deny"
	if v.Allow {
		verdict = "allow"
	}
	return verdict + " [" + strings.Join(v.Codes, " ") + "]"
}

// Change names how after differs from before: "allow→deny", "deny→allow",
// "codes changed", or "" when they are the same.
func Change(before, after Verdict) string {
	switch {
	case before.Allow && !after.Allow:
		return "allow→deny"
	case !before.Allow && after.Allow:
		return "deny→allow"
	case !slices.Equal(before.Codes, after.Codes):
		return "codes changed"
	}
	return ""
}

// Flipped reports whether a change turns allow into deny or back.
func Flipped(change string) bool { return change == "allow→deny" || change == "deny→allow" }
