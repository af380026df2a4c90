package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/gitpoli/gitpoli/workbench"
)

type checkOptions struct {
	sources *sourceFlags
	format  *format
}

func runCheckCmd(ctx context.Context, args []string, env Env) error {
	fs := newFlagSet("check", env)
	opts := checkOptions{sources: addSourceFlags(fs), format: addFormatFlag(fs)}
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "Usage: gitpoli check [--policies DIR] [--config DIR] [--schemas DIR] [--format text|json]")
		fmt.Fprintln(fs.Output(), "\nCompiles the policies in strict mode, reports files opa fmt would change, and\nvalidates every .repol file against its schema. Exit 1 when anything is wrong.\nWarns of rules that read an input key no delivery or fact has.")
		fs.PrintDefaults()
	}
	if err := parseNoArgs(fs, args); err != nil {
		return err
	}
	return runCheck(ctx, opts, env)
}

// checkResult is the JSON output of gitpoli check.
type checkResult struct {
	OK       bool               `json:"ok"`
	Problems workbench.Problems `json:"problems"`
	// Warnings are reads of input keys that no delivery or fact has: rules
	// that never apply.
	Warnings workbench.Problems `json:"warnings"`
	Sources  []sourceInfo       `json:"sources"`
	// Policies are the policies found, when they compile.
	Policies []*workbench.PolicySpec `json:"policies"`
}

type sourceInfo struct {
	Kind     string `json:"kind"`
	Dir      string `json:"dir"`
	Embedded bool   `json:"embedded,omitempty"`
}

func describeSources(src workbench.Sources) []sourceInfo {
	return []sourceInfo{
		{"policies", src.Policies.Name, src.Policies.Embedded},
		{"config", src.Config.Name, src.Config.Embedded},
		{"schemas", src.Schemas.Name, src.Schemas.Embedded},
	}
}

func runCheck(ctx context.Context, opts checkOptions, env Env) error {
	src, err := opts.sources.resolve(env)
	if err != nil {
		return err
	}
	e, problems, err := workbench.Check(ctx, src)
	if err != nil {
		return err
	}
	res := checkResult{OK: len(problems) == 0, Problems: problems, Warnings: workbench.Problems{}, Sources: describeSources(src), Policies: []*workbench.PolicySpec{}}
	if e != nil {
		res.Policies = e.Policies()
		res.Warnings = append(res.Warnings, e.InputWarnings()...)
	}
	if res.Problems == nil {
		res.Problems = workbench.Problems{}
	}
	if *opts.format == "json" {
		if err := writeJSON(env.Stdout, res); err != nil {
			return err
		}
	} else {
		writeCheckText(env.Stdout, res)
	}
	if !res.OK {
		return errDeny
	}
	return nil
}

func writeCheckText(w io.Writer, res checkResult) {
	for _, p := range res.Problems {
		fmt.Fprintln(w, p.String())
	}
	for _, p := range res.Warnings {
		fmt.Fprintln(w, "warning: "+p.String())
	}
	var from []string
	for _, s := range res.Sources {
		d := s.Dir
		if s.Embedded {
			d += " (built in)"
		}
		from = append(from, d)
	}
	if res.OK {
		fmt.Fprintf(w, "ok: %s\n", strings.Join(from, ", "))
		return
	}
	fmt.Fprintf(w, "%s in %s\n", plural(len(res.Problems), "problem", "problems"), strings.Join(from, ", "))
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}
