// Package pgtest gives tests a real, throwaway PostgreSQL database: no
// mocks, no containers. It uses the server at $GITPOLI_TEST_POSTGRES when
// set; otherwise it starts a private cluster from the PostgreSQL binaries
// installed on the machine (initdb, postgres) on a loopback port, once per
// test binary, and stops it when the tests end. Without either, tests that
// need it are skipped — unless GITPOLI_REQUIRE_POSTGRES=1, as in CI, where
// a missing PostgreSQL is a failure.
package pgtest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/gitpoli/gitpoli/internal/syncbuf"
)

var (
	once     sync.Once
	adminURL string
	startErr error
	skipMsg  string
	cluster  *Cluster
)

// Main runs the tests and then stops the cluster that DSN started. Use it
// from TestMain: os.Exit(pgtest.Main(m)).
func Main(m *testing.M) int {
	code := m.Run()
	Stop()
	return code
}

// Stop stops the private cluster, if one was started.
func Stop() {
	if cluster != nil {
		cluster.Stop()
		cluster = nil
	}
}

// Cluster is a private PostgreSQL server in a temporary directory.
type Cluster struct {
	// URL is the postgres:// URL of its maintenance database.
	URL   string
	cmd   *exec.Cmd
	stdin io.Closer
	root  string
}

// Stop shuts the cluster down and removes its files.
func (c *Cluster) Stop() {
	if c.cmd != nil {
		c.stdin.Close() // the watchdog shell stops the server
		c.cmd.Wait()
		c.cmd = nil
	}
	if c.root != "" {
		os.RemoveAll(c.root)
		c.root = ""
	}
}

// CreateDatabase creates an empty database and returns its URL.
func (c *Cluster) CreateDatabase(ctx context.Context, name string) (string, error) {
	return createDatabase(ctx, c.URL, name)
}

func createDatabase(ctx context.Context, admin, name string) (string, error) {
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		return "", fmt.Errorf("connect to PostgreSQL: %w", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		return "", fmt.Errorf("create database %s: %w", name, err)
	}
	u, _ := url.Parse(admin)
	u.Path = "/" + name
	return u.String(), nil
}

// Available reports whether a cluster can be started here.
func Available() bool { return BinDir() != "" }

// AdminURL returns the URL of the server's maintenance database, starting
// a private cluster when needed (or skipping tb).
func AdminURL(tb testing.TB) string {
	tb.Helper()
	once.Do(setup)
	if skipMsg != "" {
		if os.Getenv("GITPOLI_REQUIRE_POSTGRES") == "1" {
			tb.Fatalf("PostgreSQL required (GITPOLI_REQUIRE_POSTGRES=1): %s", skipMsg)
		}
		tb.Skip(skipMsg)
	}
	if startErr != nil {
		tb.Fatalf("start PostgreSQL: %v", startErr)
	}
	return adminURL
}

// DSN creates an empty database for tb, dropped when tb ends, and returns
// its postgres:// URL.
func DSN(tb testing.TB) string {
	tb.Helper()
	admin := AdminURL(tb)
	b := make([]byte, 6)
	rand.Read(b)
	name := "gitpoli_test_" + hex.EncodeToString(b)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dsn, err := createDatabase(ctx, admin, name)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if conn, err := pgx.Connect(ctx, admin); err == nil {
			conn.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
			conn.Close(ctx)
		}
	})
	return dsn
}

func setup() {
	if u := os.Getenv("GITPOLI_TEST_POSTGRES"); u != "" {
		adminURL = u
		return
	}
	if !Available() {
		skipMsg = "PostgreSQL is not installed (no initdb on PATH or under /usr/lib/postgresql); install it, or set GITPOLI_TEST_POSTGRES to a server's URL"
		return
	}
	cluster, startErr = StartCluster()
	if startErr == nil {
		adminURL = cluster.URL
	}
}

// BinDir finds the directory holding initdb and postgres ("" when
// PostgreSQL is not installed).
func BinDir() string {
	if p, err := exec.LookPath("initdb"); err == nil {
		if real, err := filepath.EvalSymlinks(p); err == nil {
			return filepath.Dir(real)
		}
		return filepath.Dir(p)
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return version(dirs[i]) > version(dirs[j]) })
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d
		}
	}
	return ""
}

func version(binDir string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return n
}

// StartCluster runs initdb and postgres in a temporary directory, on a
// free loopback port. PostgreSQL refuses to run as root, so as root the
// cluster runs as the postgres (or nobody) user. The server is tuned for
// throwaway data (no fsync).
func StartCluster() (*Cluster, error) {
	bin := BinDir()
	if bin == "" {
		return nil, fmt.Errorf("PostgreSQL is not installed (no initdb on PATH or under /usr/lib/postgresql)")
	}
	root, err := os.MkdirTemp("", "gitpoli-pgtest-")
	if err != nil {
		return nil, err
	}
	c := &Cluster{root: root}
	u, err := c.start(bin)
	if err != nil {
		c.Stop()
		return nil, err
	}
	c.URL = u
	return c, nil
}

func (c *Cluster) start(bin string) (string, error) {
	root := c.root
	var cred *syscall.Credential
	var err error
	if os.Geteuid() == 0 {
		cred, err = unprivileged()
		if err != nil {
			return "", err
		}
		if err := os.Chown(root, int(cred.Uid), int(cred.Gid)); err != nil {
			return "", err
		}
	}
	data := filepath.Join(root, "data")
	run := func(path string, args ...string) *exec.Cmd {
		cmd := exec.Command(path, args...)
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "LC_ALL=C")
		if cred != nil {
			cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
		}
		return cmd
	}
	var out bytes.Buffer
	initdb := run(filepath.Join(bin, "initdb"), "-D", data, "-U", "postgres", "--auth=trust", "--no-sync", "-E", "UTF8")
	initdb.Stdout, initdb.Stderr = &out, &out
	if err := initdb.Run(); err != nil {
		return "", fmt.Errorf("initdb: %v\n%s", err, out.String())
	}
	port, err := freePort()
	if err != nil {
		return "", err
	}
	var logs syncbuf.Buffer
	// A shell holds the server: it waits for its stdin, a pipe from this
	// process, to close — at Stop, or when this process dies however it
	// dies (SIGKILL, a test timeout) — then stops the server at once
	// (SIGQUIT, immediate shutdown) and removes its data.
	watchdog := `"$0" "$@" & pg=$!; read -r _; kill -QUIT $pg; wait $pg; rm -rf "$PGTEST_ROOT"`
	pg := run("/bin/sh", "-c", watchdog, filepath.Join(bin, "postgres"), "-p", strconv.Itoa(port), "-c", "listen_addresses=127.0.0.1",
		"-c", "unix_socket_directories=", "-c", "fsync=off", "-c", "synchronous_commit=off",
		"-c", "full_page_writes=off", "-c", "max_connections=200")
	pg.Env = append(pg.Env, "PGDATA="+data, "PGTEST_ROOT="+root)
	pg.Stdout, pg.Stderr = &logs, &logs
	stdin, err := pg.StdinPipe()
	if err != nil {
		return "", err
	}
	if err := pg.Start(); err != nil {
		return "", fmt.Errorf("postgres: %w", err)
	}
	c.cmd, c.stdin = pg, stdin
	u := fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", port)
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		conn, err := pgx.Connect(ctx, u)
		cancel()
		if err == nil {
			conn.Close(context.Background())
			return u, nil
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("postgres did not accept connections: %v\n%s", err, logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func unprivileged() (*syscall.Credential, error) {
	for _, name := range []string{"postgres", "nobody"} {
		u, err := user.Lookup(name)
		if err != nil {
			continue
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
	}
	return nil, fmt.Errorf("running as root and no postgres or nobody user to run PostgreSQL as")
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}
