// Package backtest re-decides recorded decisions with other policies and
// config, and reports the ones that would flip: the question to ask
// before a policy change lands.
package backtest

import (
	"cmp"
	"context"
	"encoding/json"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gitpoli/gitpoli/serve/audit"
	"github.com/gitpoli/gitpoli/workbench"
)

// Flip is one recorded decision that the new policies decide differently.
type Flip struct {
	AuditID     string    `json:"audit_id"`
	Time        time.Time `json:"time"`
	Repo        string    `json:"repo,omitempty"`
	Policy      string    `json:"policy"`
	Environment string    `json:"environment,omitempty"`
	Ref         string    `json:"ref,omitempty"`
	// Direction is "allow→deny", "deny→allow" or "codes changed".
	Direction string   `json:"direction"`
	Before    []string `json:"before"`
	After     []string `json:"after"`
	seq       int
}

// Report is the outcome of a backtest.
type Report struct {
	Decided int `json:"decided"`
	Skipped int `json:"skipped"` // records with no decision to compare (error outcomes, policies no longer in the set)
	// Unfit counts the records left out because the policy reads a fact
	// they were decided without (a policy that reads files, on records
	// made before it did); UnfitFacts counts them by fact.
	Unfit      int            `json:"unfit"`
	UnfitFacts map[string]int `json:"unfit_facts"`
	Flips      []Flip         `json:"flips"`
	// Summary counts flips by policy, then direction.
	Summary map[string]map[string]int `json:"summary"`
	Took    time.Duration             `json:"took_ns"`
}

// Options select what is replayed.
type Options struct {
	Filter audit.Filter
	// Workers decide in parallel (default: one per core).
	Workers int
}

type job struct {
	seq int
	rec audit.Record
}

// Run re-decides every record of store that opts selects with e, in
// parallel, streaming the records, and returns what flips.
func Run(ctx context.Context, e *workbench.Engine, store *audit.Store, opts Options) (Report, error) {
	start := time.Now()
	workers := cmp.Or(opts.Workers, runtime.NumCPU())
	jobs := make(chan job, 4*workers)
	var mu sync.Mutex
	rep := Report{Flips: []Flip{}, Summary: map[string]map[string]int{}, UnfitFacts: map[string]int{}}
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for j := range jobs {
				f, ok, decided, missing := replay(ctx, e, j)
				mu.Lock()
				switch {
				case len(missing) > 0:
					rep.Unfit++
					for _, key := range missing {
						rep.UnfitFacts[key]++
					}
				case decided:
					rep.Decided++
				default:
					rep.Skipped++
				}
				if ok {
					rep.Flips = append(rep.Flips, f)
					if rep.Summary[f.Policy] == nil {
						rep.Summary[f.Policy] = map[string]int{}
					}
					rep.Summary[f.Policy][f.Direction]++
				}
				mu.Unlock()
			}
		})
	}
	seq := 0
	err := store.Each(ctx, opts.Filter, func(r audit.Record) error {
		seq++
		select {
		case jobs <- job{seq: seq, rec: r}:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	})
	close(jobs)
	wg.Wait()
	slices.SortFunc(rep.Flips, func(a, b Flip) int { return cmp.Compare(a.seq, b.seq) })
	rep.Took = time.Since(start)
	return rep, err
}

// replay decides one record again and compares. A record that lacks a
// fact the policy reads is not decided: missing names the facts.
func replay(ctx context.Context, e *workbench.Engine, j job) (f Flip, flipped, decided bool, missing []string) {
	r := j.rec
	if r.Decision != "allow" && r.Decision != "deny" {
		return Flip{}, false, false, nil
	}
	spec, err := e.Policy(r.Policy)
	if err != nil {
		// The policy is gone from the set: nothing decides it again.
		return Flip{}, false, false, nil
	}
	p := spec.Name
	in, err := workbench.ParseInput(r.Input)
	if err != nil {
		return Flip{}, false, false, nil
	}
	if missing := e.MissingFacts(p, in); len(missing) > 0 {
		return Flip{}, false, false, missing
	}
	d, _ := e.Decide(ctx, p, in)
	before, after := recordedVerdict(r.Decision, r.Violations), d.Verdict()
	direction := workbench.Change(before, after)
	if direction == "" {
		return Flip{}, false, true, nil
	}
	return Flip{AuditID: r.ID, Time: r.Time, Repo: r.Repo, Policy: r.Policy, Environment: r.Environment, Ref: r.Ref,
		Direction: direction, Before: before.Codes, After: after.Codes, seq: j.seq}, true, true, nil
}

// recordedVerdict is the verdict of a recorded decision.
func recordedVerdict(decision string, violations json.RawMessage) workbench.Verdict {
	return workbench.NewVerdict(decision == "allow", recordedCodes(violations))
}

func recordedCodes(violations json.RawMessage) []string {
	var vs []struct {
		Code string `json:"code"`
	}
	_ = json.Unmarshal(violations, &vs)
	codes := make([]string, 0, len(vs))
	for _, v := range vs {
		codes = append(codes, v.Code)
	}
	return codes
}

// Markdown renders the report as a Markdown summary and table.
func (r Report) Markdown() string {
	var b strings.Builder
	b.WriteString("| policy | allow→deny | deny→allow | codes changed |\n|---|---|---|---|\n")
	policies := make([]string, 0, len(r.Summary))
	for p := range r.Summary {
		policies = append(policies, p)
	}
	slices.Sort(policies)
	for _, p := range policies {
		s := r.Summary[p]
		b.WriteString("| " + p + " | " + itoa(s["allow→deny"]) + " | " + itoa(s["deny→allow"]) + " | " + itoa(s["codes changed"]) + " |\n")
	}
	if unfit := r.UnfitText(); unfit != "" {
		b.WriteString("\n" + unfit + "\n")
	}
	if len(r.Flips) == 0 {
		b.WriteString("\nNo recorded decision flips.\n")
		return b.String()
	}
	b.WriteString("\n| audit id | repo | policy | environment / ref | change | before | after |\n|---|---|---|---|---|---|---|\n")
	for _, f := range r.Flips {
		where := f.Ref
		if f.Environment != "" {
			where = f.Environment + " " + f.Ref
		}
		b.WriteString("| `" + f.AuditID + "` | " + f.Repo + " | " + f.Policy + " | " + strings.TrimSpace(where) + " | " + f.Direction +
			" | " + strings.Join(f.Before, " ") + " | " + strings.Join(f.After, " ") + " |\n")
	}
	return b.String()
}

func itoa(n int) string { return strconv.Itoa(n) }

// UnfitText says which records were left out for want of facts, or "".
func (r Report) UnfitText() string {
	if r.Unfit == 0 {
		return ""
	}
	facts := make([]string, 0, len(r.UnfitFacts))
	for k := range r.UnfitFacts {
		facts = append(facts, k)
	}
	slices.Sort(facts)
	parts := make([]string, len(facts))
	for i, k := range facts {
		parts[i] = itoa(r.UnfitFacts[k]) + " without " + k
	}
	return itoa(r.Unfit) + " records not decided again: they were recorded without facts the policy reads (" + strings.Join(parts, ", ") + ")."
}
