package session

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"github.com/gitpoli/gitpoli/workbench"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// MergeBase finds where the working branch left the default branch.
func MergeBase(ctx context.Context, dir string) (string, error) {
	for _, ref := range []string{"origin/HEAD", "origin/main", "main", "origin/master", "master"} {
		if out, err := Git(ctx, dir, "merge-base", "HEAD", ref); err == nil {
			return strings.TrimSpace(string(out)), nil
		}
	}
	return "", fmt.Errorf("no default branch to compare with: name BASE (gitpoli diff BASE)")
}

// Git runs git in dir and returns its standard output; its standard error
// is in the error.
func Git(ctx context.Context, dir string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, "git", args...)
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("git %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return out, nil
}

// AtRevision runs everything once at a revision (rev "" is the working
// tree). A revision's files are extracted from git objects into a
// temporary directory; the working tree is not touched.
func AtRevision(ctx context.Context, dir, rev string, defaults fs.FS, opts ...workbench.Option) (*Snapshot, error) {
	root := dir
	if rev != "" {
		tmp, err := os.MkdirTemp("", "gitpoli-diff-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(tmp)
		if _, err := Git(ctx, dir, "rev-parse", "--verify", rev+"^{commit}"); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrUnknownRevision, err)
		}
		for _, d := range []string{"policies", ".repol", "schemas", "fixtures"} {
			if _, err := Git(ctx, dir, "cat-file", "-e", rev+":"+d); err != nil {
				continue // absent at that revision: as in a working tree without it
			}
			archive, err := Git(ctx, dir, "archive", "--format=tar", rev, d)
			if err != nil {
				return nil, err
			}
			cmd := exec.CommandContext(ctx, "tar", "-x", "-C", tmp)
			cmd.Stdin = bytes.NewReader(archive)
			if out, err := cmd.CombinedOutput(); err != nil {
				return nil, fmt.Errorf("extract %s at %s: %v: %s", d, rev, err, out)
			}
		}
		root = tmp
	}
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, err
	}
	return New(Workspace{Root: abs, Defaults: defaults, EngineOptions: opts}).Run(ctx)
}

// ErrUnknownRevision is returned for a revision git does not know.
var ErrUnknownRevision = errors.New("unknown revision")
