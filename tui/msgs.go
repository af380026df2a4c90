package tui

import (
	"github.com/gitpoli/gitpoli/workbench/fixture"
	"github.com/gitpoli/gitpoli/workbench/session"
)

// snapshotMsg is a finished run. Gen is the run's generation: a result
// older than the latest started run is dropped.
type snapshotMsg struct {
	gen  int
	snap *session.Snapshot
	err  error
}

// earlyMsg is the early snapshot of a run whose tests are still running;
// rest delivers the run's final snapshotMsg.
type earlyMsg struct {
	gen  int
	snap *session.Snapshot
	rest <-chan snapshotMsg
}

// changeMsg is a debounced save in the workspace.
type changeMsg struct{}

// watchErrMsg is an error from the file watcher.
type watchErrMsg struct{ err error }

// liveMsg is a live pull request fetched and decided.
type liveMsg struct {
	live *fixture.Live
	err  error
}

// savedMsg is the result of saving a live pull request as a fixture.
type savedMsg struct {
	path string
	err  error
}

// diffMsg is a comparison with a git revision.
type diffMsg struct {
	ref     string
	changes []session.Change
	err     error
	// shadow is set when the changes are shadow disagreements, not a diff.
	shadow bool
}
