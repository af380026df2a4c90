package workbench

import (
	"io/fs"
	"path"
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
