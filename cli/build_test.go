package cli

import (
	"path/filepath"
	"regexp"
	"testing"

	"github.com/gitpoli/gitpoli/internal/testrepo"
)

// TestBuildRevision: a bundle built from a clean checkout carries its
// commit; one built with changed policies says it is not that commit's.
func TestBuildRevision(t *testing.T) {
	repo := testrepo.Copy(t, "..")
	gitRun(t, repo, "init", "-q", "-b", "main")
	gitRun(t, repo, "add", "-A")
	gitRun(t, repo, "commit", "-q", "-m", "base")
	clean := regexp.MustCompile(`^wrote bundle.tar.gz \(revision [0-9a-f]{40}\)\n$`)
	if stdout, stderr, code := run(t, repo, "", "build"); code != 0 || !clean.MatchString(stdout) {
		t.Errorf("clean: exit %d, %q %q", code, stdout, stderr)
	}
	testrepo.Edit(t, filepath.Join(repo, "policies/deploy.rego"), "done >= max", "done > max")
	dirty := regexp.MustCompile(`^wrote bundle.tar.gz \(revision [0-9a-f]{40}-dirty\)\n$`)
	if stdout, stderr, code := run(t, repo, "", "build"); code != 0 || !dirty.MatchString(stdout) {
		t.Errorf("dirty: exit %d, %q %q", code, stdout, stderr)
	}
}
