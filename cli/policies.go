package cli

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/gitpoli/gitpoli/workbench"
)

func runPoliciesCmd(ctx context.Context, args []string, env Env) error {
	fs := newFlagSet("policies", env)
	sources := addSourceFlags(fs)
	format := addFormatFlag(fs)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "Usage: gitpoli policies [--policies DIR] [--format text|json]")
		fmt.Fprintln(fs.Output(), "\nLists the policies: every package under github. whose METADATA carries\ncustom.gitpoli, with the events it decides, how GitHub is answered, and its\nconfig. Exit 2 when the policies do not compile or their annotations are wrong\n(gitpoli check says where).")
		fs.PrintDefaults()
	}
	if err := parseNoArgs(fs, args); err != nil {
		return err
	}
	e, err := sources.engine(ctx, env)
	if err != nil {
		return err
	}
	specs := e.Policies()
	if specs == nil {
		specs = []*workbench.PolicySpec{}
	}
	if *format == "json" {
		return writeJSON(env.Stdout, specs)
	}
	writePoliciesText(env.Stdout, specs, e.Sources().Config)
	return nil
}

func writePoliciesText(w io.Writer, specs []*workbench.PolicySpec, config workbench.Dir) {
	if len(specs) == 0 {
		fmt.Fprintln(w, "no policies: annotate a package under github. with custom.gitpoli (README, Writing a policy)")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "POLICY\tON\tANSWER\tCONFIG\tFACTS\tWHERE")
	for _, s := range specs {
		on := make([]string, len(s.On))
		for i, t := range s.On {
			on[i] = t.String()
		}
		if len(s.Also) > 0 {
			also := make([]string, len(s.Also))
			for i, t := range s.Also {
				also[i] = t.String()
			}
			on[len(on)-1] += " (+ " + strings.Join(also, ", ") + ")"
		}
		facts := strings.Join(s.Facts, ", ")
		if facts == "" {
			facts = "-"
		}
		answer := string(s.Answer)
		if s.Answer == workbench.AnswerCheck {
			answer += " " + fmt.Sprintf("%q", s.CheckName)
		}
		cfg := "-"
		if s.Config != "" {
			cfg = strings.TrimPrefix(config.Name+"/", "/") + s.ConfigFile()
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", s.Name, strings.Join(on, ", "), answer, cfg, facts, s.Pos)
	}
	tw.Flush()
}
