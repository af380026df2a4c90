// Command gitpoli is policy as code for the GitHub software lifecycle:
// Rego policies and per-repository .repol config that decide deployments
// and pull requests.
package main

import (
	"context"
	"embed"
	"math"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
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

// oneShot are the commands that run once on a repository's policies,
// config and fixtures and exit.
var oneShot = map[string]bool{"check": true, "test": true, "eval": true, "replay": true, "diff": true,
	"ci": true, "build": true, "policies": true, "fmt": true, "init": true}

func main() {
	if len(os.Args) > 1 && os.Getenv("GOGC") == "" {
		switch {
		case oneShot[os.Args[1]] && os.Getenv("GOMEMLIMIT") == "":
			collectLate()
		case oneShot[os.Args[1]] || os.Args[1] == "backtest":
			// backtest streams an audit log of any size through the
			// engine: collecting a quarter as often as Go's default.
			debug.SetGCPercent(400)
		case os.Args[1] == "serve":
			// serve keeps little and allocates a little per request:
			// collecting less often than Go's default gives more decisions
			// a second for a few MB of RSS (figures in docs/performance.md).
			debug.SetGCPercent(300)
		}
		// The workbench keeps Go's default. GOGC set in the environment
		// wins, and a command that runs once with GOMEMLIMIT set collects
		// as with GOGC=400, under that limit.
	}
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

// oneShotHeap is how large the heap of a command that runs once may grow
// before it is first collected.
const oneShotHeap = 64 << 20

// collectLate is the collector for a command that runs once on a
// repository and exits: it allocates mostly what it keeps until it exits,
// so collecting before the heap reaches oneShotHeap is work for nothing
// (figures in docs/performance.md). After the first collection it
// collects as GOGC=400 does, a quarter as often as Go's default and with
// no fixed ceiling, so a large run's heap grows with what it keeps.
func collectLate() {
	debug.SetGCPercent(-1)
	debug.SetMemoryLimit(oneShotHeap)
	// Its cleanup runs after the first collection. (Not a tiny object:
	// those share a block and may never be collected alone.)
	first := new([32]byte)
	runtime.AddCleanup(first, func(struct{}) {
		debug.SetGCPercent(400)
		debug.SetMemoryLimit(math.MaxInt64)
	}, struct{}{})
}
