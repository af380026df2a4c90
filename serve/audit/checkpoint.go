package audit

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"slices"
	"sync"
	"time"
)

// SQLite in WAL mode appends every commit to the WAL and copies it into
// the database file at a checkpoint, which syncs both files. Left to
// itself, SQLite checkpoints inside the commit that takes the WAL past
// 1,000 pages, and that commit, with every request waiting on it, waits
// for the syncs (10–30 ms here). Nor can the WAL start over while other
// connections keep writing: it restarts only when a write begins with
// the whole WAL copied, and under steady writes something was always
// appended during the copy. It grew to tens of megabytes.
//
// The checkpointer moves that work off the write path:
//
//   - Every checkpointEvery it copies the WAL into the database with a
//     PASSIVE checkpoint, which writers do not wait for.
//   - When the WAL is restartPages long, it starts it over. SQLite syncs
//     the database file only at a checkpoint that reaches the WAL's end,
//     which a PASSIVE one under steady writes never does, so first the
//     checkpointer syncs the file itself (through a descriptor of its
//     own: a sync flushes the file, whichever descriptor asks) and copies
//     again. Then, holding the store's turn to write (lockWrites) so
//     that nothing is appended meanwhile, it runs a RESTART checkpoint,
//     which is left only the pages written since: about 2 ms instead of
//     the 18 ms it took when it also flushed everything copied before.
//
// Its connection gives up on a lock after checkpointBusy instead of the
// store's ten seconds: a reader still on the WAL (an audit query, a
// backtest in another process) makes it try again later rather than hold
// the writers back. SQLite's own checkpoints are off: one in a commit
// stalled it for 0.8 s when a reader had held the WAL for three seconds,
// and it cannot start a WAL over under steady writes anyway. A
// checkpoint that fails shows in /health (Writable).
const (
	checkpointEvery = 50 * time.Millisecond
	checkpointBusy  = 2 // ms
	// restartBehind is how many pages may be left to copy when the
	// checkpointer holds the writers back for a RESTART.
	restartBehind = 256
	// walSizeLimit is the size SQLite truncates the WAL file to when it
	// starts over. Steady writes keep it under restartPages; a reader that
	// holds an old snapshot for seconds (a backtest of the live file, say)
	// lets it grow by tens of megabytes a second, and without a limit the
	// file would keep that size.
	walSizeLimit = 64 << 20
)

// restartPages is the WAL length at which the checkpointer starts it
// over (a variable for tests).
var restartPages = 4096

// checkpointer checkpoints, on conn, until ckptStop is closed.
func (s *Store) checkpointer(conn *sql.Conn) {
	defer close(s.ckptDone)
	defer func() {
		// The connection goes back to the pool: with the store's timeout.
		conn.ExecContext(context.Background(), `PRAGMA busy_timeout = 10000`)
		conn.Close()
	}()
	tick := time.NewTicker(checkpointEvery)
	defer tick.Stop()
	for {
		select {
		case <-s.ckptStop:
			return
		case <-tick.C:
		}
		if err := s.checkpoint(conn); err != nil {
			s.ckptErr.Store(&err)
		} else {
			s.ckptErr.Store(nil)
		}
	}
}

// checkpoint copies the WAL into the database, and starts the WAL over
// when it is restartPages long.
func (s *Store) checkpoint(conn *sql.Conn) error {
	ctx := context.Background()
	var busy, log, copied int
	run := func(mode string) error {
		if err := conn.QueryRowContext(ctx, `PRAGMA wal_checkpoint(`+mode+`)`).Scan(&busy, &log, &copied); err != nil {
			return fmt.Errorf("checkpoint %s: %w", s.name, err)
		}
		return nil
	}
	if err := run("PASSIVE"); err != nil || log < restartPages {
		return err
	}
	if log == s.restartedAt && copied == log {
		// Nothing written since the last RESTART: the WAL starts over at
		// the next write (until then SQLite still reports its old length).
		return nil
	}
	synced := -1 // how far the database file was synced
	syncDB := func() {
		if s.dbFile != nil && copied != synced {
			// Only a head start: SQLite syncs the file again itself.
			s.dbFile.Sync()
			synced = copied
		}
	}
	for range 3 {
		syncDB()
		before := copied
		if err := run("PASSIVE"); err != nil {
			return err
		}
		if log-copied < 32 || copied == before {
			break
		}
	}
	if log-copied > restartBehind {
		// Still behind: a reader in another process holds an old
		// snapshot, or writes outran the copy. A RESTART now would copy
		// the rest while holding every writer back (170 ms once a backtest
		// let go of 200 MB of WAL): try again at the next tick.
		return nil
	}
	syncDB()
	unlock, err := s.lockWrites(ctx)
	if err != nil {
		return err
	}
	s.restartTries.Add(1)
	err = run("RESTART")
	unlock()
	if err != nil || busy != 0 {
		return err
	}
	s.restartedAt = log
	s.restarts.Add(1)
	return nil
}

// WALRestarts counts the times the checkpointer started the WAL over
// (SQLite only): a count that stops rising under writes means the WAL is
// growing (a reader holding an old snapshot, or failing checkpoints).
func (s *Store) WALRestarts() int64 { return s.restarts.Load() }

// startCheckpointer gives the checkpointer a connection of its own.
func (s *Store) startCheckpointer(ctx context.Context) error {
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("open audit db %s: checkpointer: %w", s.name, err)
	}
	if _, err := conn.ExecContext(ctx, fmt.Sprintf(`PRAGMA busy_timeout = %d`, checkpointBusy)); err != nil {
		conn.Close()
		return fmt.Errorf("open audit db %s: checkpointer: %w", s.name, err)
	}
	s.dbFile = openSyncFile(s.name) // nil: SQLite's own syncs do all the work
	s.ckptStop, s.ckptDone = make(chan struct{}), make(chan struct{})
	go s.checkpointer(conn)
	return nil
}

// syncFiles holds the descriptors the checkpointers sync database files
// through, one per file and process. Closing any descriptor of a file
// drops every POSIX lock the process holds on it, SQLite's included, and
// SQLite relies on those: another process that found none could take
// itself for the last user and delete the WAL under a live connection.
// So a descriptor is shared by every Store of the process on that file,
// and closed only when the last of them has closed, none of them with a
// connection left open; otherwise it stays open.
var syncFiles struct {
	sync.Mutex
	open []*syncFile
}

type syncFile struct {
	f    *os.File
	info os.FileInfo
	refs int
	// leaked: a Store closed with connections still in use, which may
	// still hold locks on the file; the descriptor then stays open.
	leaked bool
}

func openSyncFile(path string) *os.File {
	info, err := os.Stat(path)
	if err != nil {
		return nil
	}
	syncFiles.Lock()
	defer syncFiles.Unlock()
	for _, sf := range syncFiles.open {
		if os.SameFile(sf.info, info) {
			sf.refs++
			return sf.f
		}
	}
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	syncFiles.open = append(syncFiles.open, &syncFile{f: f, info: info, refs: 1})
	return f
}

// closeSyncFile gives back a Store's share of f, once its connections are
// closed (connsOpen: how many are still in use).
func closeSyncFile(f *os.File, connsOpen int) {
	syncFiles.Lock()
	defer syncFiles.Unlock()
	for i, sf := range syncFiles.open {
		if sf.f != f {
			continue
		}
		if sf.refs > 0 {
			sf.refs--
		}
		sf.leaked = sf.leaked || connsOpen > 0
		if sf.refs == 0 && !sf.leaked {
			syncFiles.open = slices.Delete(syncFiles.open, i, i+1)
			f.Close()
		}
		return
	}
}
