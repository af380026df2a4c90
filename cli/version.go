package cli

import (
	"context"
	"fmt"
	"runtime/debug"
)

func runVersionCmd(_ context.Context, _ []string, env Env) error {
	version := "(devel)"
	opa := "unknown"
	if info, ok := debug.ReadBuildInfo(); ok {
		if info.Main.Version != "" {
			version = info.Main.Version
		}
		for _, d := range info.Deps {
			if d.Path == "github.com/open-policy-agent/opa" {
				opa = d.Version
			}
		}
	}
	fmt.Fprintf(env.Stdout, "gitpoli %s (OPA %s)\n", version, opa)
	return nil
}
