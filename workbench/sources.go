package workbench

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"time"
)

// Dir is a directory of user files: policies, config or schemas.
type Dir struct {
	FS fs.FS
	// Name is how positions refer to the directory, e.g. "policies" or
	// ".repol"; file positions are Name joined with the file's path in FS.
	Name string
	// Embedded is true when FS is the copy built into the binary, used
	// because the working directory has none of its own.
	Embedded bool
}

// file returns the display path of name inside d.
func (d Dir) file(name string) string {
	if d.Name == "" {
		return name
	}
	return path.Join(d.Name, name)
}

// Sources says where an engine reads its policies, config and schemas.
type Sources struct {
	Policies Dir
	Config   Dir
	Schemas  Dir
}

// WorkspaceDir picks one directory of a workspace: root/name when it
// exists; else the built-in copy of name in builtin, but only for a
// workspace without policies of its own (gitpoli's own demo); else an
// empty directory. A repository of the user's never has gitpoli's
// fixtures, config or schemas mixed in with its own policies.
func WorkspaceDir(root, name string, builtin fs.FS, ownPolicies bool) (Dir, error) {
	local := filepath.Join(root, name)
	if info, err := os.Stat(local); err == nil && info.IsDir() {
		return Dir{FS: os.DirFS(local), Name: name}, nil
	}
	if builtin == nil || ownPolicies {
		return Dir{FS: emptyFS{}, Name: name}, nil
	}
	sub, err := fs.Sub(builtin, name)
	if err != nil {
		return Dir{}, fmt.Errorf("built-in %s: %w", name, err)
	}
	return Dir{FS: sub, Name: name, Embedded: true}, nil
}

// HasPolicies reports whether root has a policies directory of its own.
func HasPolicies(root string) bool {
	info, err := os.Stat(filepath.Join(root, "policies"))
	return err == nil && info.IsDir()
}

// emptyFS is a directory with nothing in it.
type emptyFS struct{}

func (emptyFS) Open(name string) (fs.File, error) {
	if name == "." {
		return emptyDir{}, nil
	}
	return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
}

type emptyDir struct{}

func (emptyDir) Stat() (fs.FileInfo, error) { return emptyDir{}, nil }
func (emptyDir) Read([]byte) (int, error) {
	return 0, &fs.PathError{Op: "read", Path: ".", Err: errors.New("is a directory")}
}
func (emptyDir) Close() error                       { return nil }
func (emptyDir) ReadDir(int) ([]fs.DirEntry, error) { return nil, nil }
func (emptyDir) Name() string                       { return "." }
func (emptyDir) Size() int64                        { return 0 }
func (emptyDir) Mode() fs.FileMode                  { return fs.ModeDir | 0o555 }
func (emptyDir) ModTime() time.Time                 { return time.Time{} }
func (emptyDir) IsDir() bool                        { return true }
func (emptyDir) Sys() any                           { return nil }
