package cli

import (
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gitpoli/gitpoli/internal/pgtest"
	"github.com/gitpoli/gitpoli/internal/syncbuf"
	"github.com/gitpoli/gitpoli/internal/testrepo"
	"github.com/gitpoli/gitpoli/serve/audit"
)

// TestWorkbenchShadow runs the workbench in a terminal session on an
// audit database written by serve's store, presses S, and waits for the
// shadow disagreement to be drawn.
func TestWorkbenchShadow(t *testing.T) {
	dir := testrepo.Copy(t, "..")
	testWorkbenchShadow(t, dir, filepath.Join(dir, "gitpoli.db"), "gitpoli.db")
}

// TestWorkbenchShadowOnPostgres: the same from a PostgreSQL audit log,
// whose URL's password never reaches the screen.
func TestWorkbenchShadowOnPostgres(t *testing.T) {
	dsn := pgtest.DSN(t) + "&password=not-on-screen"
	out := testWorkbenchShadow(t, testrepo.Copy(t, ".."), dsn, dsn)
	if strings.Contains(out, "not-on-screen") {
		t.Errorf("the database password was drawn:\n%s", out)
	}
}

func testWorkbenchShadow(t *testing.T, dir, db, arg string) string {
	s, err := audit.Open(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	err = s.Insert(context.Background(), &audit.Record{ID: "dec-1", Policy: "deploy", Decision: "allow", Source: "webhook",
		Repo: "octo/service", Environment: "production", Input: json.RawMessage(`{}`),
		Shadow: &audit.Shadow{Decision: "deny", Violations: json.RawMessage(`[{"code":"approvals.insufficient"}]`), PolicyHash: "h", Disagree: true}})
	s.Close()
	if err != nil {
		t.Fatal(err)
	}

	in, keys := io.Pipe()
	var out syncbuf.Buffer
	done := make(chan int, 1)
	go func() {
		done <- Run(context.Background(), []string{"workbench", "--db", arg}, Env{
			Getenv: func(k string) string { return map[string]string{"NO_COLOR": "1"}[k] },
			Stdin:  in, Stdout: &out, Stderr: io.Discard, Dir: dir, Terminal: true,
			Defaults: os.DirFS(testrepo.Root("..")),
		})
	}()
	waitFor := func(what string) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for !strings.Contains(out.String(), what) {
			if time.Now().After(deadline) {
				t.Fatalf("the workbench never drew %q; it drew:\n%s", what, out.String())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitFor("Tests")
	keys.Write([]byte("S"))
	waitFor("the shadow policies decide the other way")
	waitFor("dec-1 deploy")
	keys.Write([]byte("q"))
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("exit code %d", code)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the workbench did not quit on q")
	}
	return out.String()
}

func TestWorkbenchBadDB(t *testing.T) {
	dir := testrepo.Copy(t, "..")
	_, stderr, code := run(t, dir, "", "workbench", "--db", "missing.db")
	if code != 2 || !strings.Contains(stderr, "missing.db") {
		t.Errorf("code %d, stderr %q", code, stderr)
	}
}
