package session

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"
)

// DefaultDebounce is how long a burst of file events must be quiet before
// a run starts: an editor's save is several events (write, rename, chmod).
const DefaultDebounce = 15 * time.Millisecond

// Watcher reports saves in a workspace's policies/, .repol/, schemas/ and
// fixtures/ directories (all subdirectories, including ones created later),
// debounced into one signal per burst.
type Watcher struct {
	// Changes receives one value per debounced burst of changes. It holds
	// at most one pending signal: a consumer that is busy sees one more
	// run, not a queue.
	Changes <-chan struct{}
	// Errors receives watch errors (the watcher keeps going).
	Errors <-chan error

	fsw      *fsnotify.Watcher
	root     string
	debounce time.Duration
	changes  chan struct{}
	errs     chan error
	done     chan struct{}
	wg       sync.WaitGroup
}

// Watch starts watching ws.Root. Stop it with Close.
func Watch(root string, debounce time.Duration) (*Watcher, error) {
	fsw, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, fmt.Errorf("watch %s: %w", root, err)
	}
	w := &Watcher{
		fsw:      fsw,
		root:     root,
		debounce: debounce,
		changes:  make(chan struct{}, 1),
		errs:     make(chan error, 8),
		done:     make(chan struct{}),
	}
	w.Changes, w.Errors = w.changes, w.errs
	// The root itself is watched so that a policies/ or fixtures/ created
	// after start is picked up.
	if err := fsw.Add(root); err != nil {
		fsw.Close()
		return nil, fmt.Errorf("watch %s: %w", root, err)
	}
	for _, name := range dirNames {
		if err := w.addTree(filepath.Join(root, name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			fsw.Close()
			return nil, err
		}
	}
	w.wg.Add(1)
	go w.loop()
	return w, nil
}

// Close stops the watcher.
func (w *Watcher) Close() error {
	close(w.done)
	err := w.fsw.Close()
	w.wg.Wait()
	return err
}

// addTree watches dir and every directory below it.
func (w *Watcher) addTree(dir string) error {
	return filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			return nil
		}
		if err := w.fsw.Add(p); err != nil {
			return fmt.Errorf("watch %s: %w", p, err)
		}
		return nil
	})
}

// relevant reports whether an event is about a file gitpoli reads, or a
// directory that may hold some. Editor swap and backup files are not.
func (w *Watcher) relevant(ev fsnotify.Event) bool {
	rel, err := filepath.Rel(w.root, ev.Name)
	if err != nil {
		return false
	}
	top, _, _ := strings.Cut(filepath.ToSlash(rel), "/")
	known := false
	for _, name := range dirNames {
		known = known || top == name
	}
	if !known {
		return false
	}
	if ev.Has(fsnotify.Chmod) && !ev.Has(fsnotify.Write) && !ev.Has(fsnotify.Create) {
		return false
	}
	switch strings.ToLower(filepath.Ext(ev.Name)) {
	case ".rego", ".yaml", ".yml", ".json":
		return true
	case "":
		// A directory (created, removed or renamed) or an extensionless
		// file; the run will tell.
		return rel == top || !strings.HasPrefix(filepath.Base(ev.Name), ".")
	}
	return false
}

func (w *Watcher) loop() {
	defer w.wg.Done()
	var timer *time.Timer
	var fire <-chan time.Time
	for {
		select {
		case <-w.done:
			if timer != nil {
				timer.Stop()
			}
			return
		case ev, ok := <-w.fsw.Events:
			if !ok {
				return
			}
			if ev.Has(fsnotify.Create) {
				if info, err := os.Stat(ev.Name); err == nil && info.IsDir() {
					// A new subdirectory (or a directory saved by rename):
					// watch it and whatever it already holds.
					if err := w.addTree(ev.Name); err != nil {
						w.report(err)
					}
				}
			}
			if !w.relevant(ev) {
				continue
			}
			if timer == nil {
				timer = time.NewTimer(w.debounce)
			} else {
				timer.Reset(w.debounce)
			}
			fire = timer.C
		case <-fire:
			fire = nil
			select {
			case w.changes <- struct{}{}:
			default: // a signal is already pending
			}
		case err, ok := <-w.fsw.Errors:
			if !ok {
				return
			}
			w.report(err)
		}
	}
}

func (w *Watcher) report(err error) {
	select {
	case w.errs <- err:
	default:
	}
}

// WaitChange blocks until the next change or until ctx ends.
func (w *Watcher) WaitChange(ctx context.Context) error {
	select {
	case <-w.Changes:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
