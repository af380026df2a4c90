// Command gitpoli is policy as code for the GitHub software lifecycle:
// Rego policies and per-repository .repol config that decide deployments
// and pull requests.
package main

import (
	"context"
	"embed"
	"os"
	"os/signal"
	"syscall"

	"golang.org/x/term"

	"github.com/gitpoli/gitpoli/cli"
)

// defaults are the project's own policies, schemas, sample config and
// recorded fixtures, so
// that gitpoli runs anywhere; a directory of the same name in the working
// directory takes their place.
//
//go:embed policies schemas .repol fixtures
var defaults embed.FS

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Run(ctx, os.Args[1:], cli.Env{
		Getenv:   os.Getenv,
		Stdin:    os.Stdin,
		Stdout:   os.Stdout,
		Stderr:   os.Stderr,
		Defaults: defaults,
		Terminal: term.IsTerminal(int(os.Stdin.Fd())) && term.IsTerminal(int(os.Stdout.Fd())),
	})
	stop()
	os.Exit(code)
}
