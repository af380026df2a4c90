package irvm

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
)

// deepModule is a chain of depth functions with width locals each.
func deepModule(depth, width int) string {
	var b strings.Builder
	b.WriteString("package t\n")
	for i := 0; i < depth; i++ {
		fmt.Fprintf(&b, "f%d(x) := y if {\n", i)
		for j := 0; j < width; j++ {
			prev := "x"
			if j > 0 {
				prev = fmt.Sprintf("a%d", j-1)
			}
			fmt.Fprintf(&b, "\ta%d := %s + %d\n", j, prev, j)
		}
		if i+1 < depth {
			fmt.Fprintf(&b, "\ty := f%d(a%d) + x\n}\n", i+1, width-1)
		} else {
			fmt.Fprintf(&b, "\ty := a%d\n}\n", width-1)
		}
	}
	b.WriteString("r := f0(input.n)\nnames contains sprintf(\"%v-%v\", [x, f0(x)]) if some x in input.xs\n")
	return b.String()
}

type sharedJob struct {
	prog  *Program
	input ast.Value
	want  string
	werr  bool
}

// TestSharedProgramUnderLoad evaluates every case of evalCases, and a
// 30-deep chain of calls with 20 locals each (the stack grows into new
// arrays), from 16 goroutines at once, cancelling some midway: each
// result must be the one the case gives alone, and stay so after the
// evaluation's stack went back to the pool for others to use.
func TestSharedProgramUnderLoad(t *testing.T) {
	var jobs []sharedJob
	add := func(prog *Program, raw string) {
		var input ast.Value
		if raw != "" {
			input = ast.MustParseTerm(raw).Value
		}
		rs, err := prog.EvalInput(context.Background(), input, Options{})
		w := ""
		if rs != nil {
			w = rs.String()
		}
		jobs = append(jobs, sharedJob{prog, input, w, err != nil})
	}
	for _, tc := range evalCases {
		compiler := compile(t, map[string]string{"t.rego": tc.module})
		prog, err := Plan(context.Background(), compiler, tc.query)
		if err != nil {
			t.Fatal(err)
		}
		for _, raw := range tc.inputs {
			add(prog, raw)
		}
	}
	_, deep := mustPlan(t, "d.rego", deepModule(30, 20), "r := data.t.r; n := data.t.names")
	for i := range 5 {
		add(deep, fmt.Sprintf(`{"n": %d, "xs": [%d, %d, %d]}`, i, i, i+1, i*7))
	}
	var wg sync.WaitGroup
	for g := range 16 {
		wg.Go(func() {
			for i := range 1000 {
				j := jobs[(g*31+i*7)%len(jobs)]
				ctx := context.Background()
				var cancel context.CancelFunc
				if i%97 == 0 {
					ctx, cancel = context.WithTimeout(ctx, time.Microsecond)
				}
				rs, err := j.prog.EvalInput(ctx, j.input, Options{})
				if cancel != nil {
					cancel()
					continue
				}
				got := ""
				if rs != nil {
					got = rs.String()
				}
				if (err != nil) != j.werr || got != j.want {
					t.Errorf("mismatch: got %s (%v) want %s", got, err, j.want)
					return
				}
				// A result stays as it was while other evaluations run.
				if i%50 == 0 {
					time.Sleep(time.Microsecond)
					if rs != nil && rs.String() != j.want {
						t.Errorf("result changed after return")
					}
				}
			}
		})
	}
	wg.Wait()
}
