package workbench

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
)

// Pos is a position in a source file. Line and Col are 1-based; zero means
// unknown.
type Pos struct {
	File string `json:"file"`
	Line int    `json:"line,omitempty"`
	Col  int    `json:"col,omitempty"`
}

// String renders p as file:line:col, leaving out what is unknown.
func (p Pos) String() string {
	switch {
	case p.Line == 0:
		return p.File
	case p.Col == 0:
		return fmt.Sprintf("%s:%d", p.File, p.Line)
	default:
		return fmt.Sprintf("%s:%d:%d", p.File, p.Line, p.Col)
	}
}

// IsZero reports whether p names no file.
func (p Pos) IsZero() bool { return p.File == "" }

func comparePos(a, b Pos) int {
	return cmp.Or(cmp.Compare(a.File, b.File), cmp.Compare(a.Line, b.Line), cmp.Compare(a.Col, b.Col))
}

// Problem is one thing wrong with a user's file, located precisely enough
// to fix it: a config value that breaks its schema, a Rego compile error, a
// policy file that opa fmt would change.
type Problem struct {
	Pos
	// Field is the dotted path of the config value at fault, if any.
	Field string `json:"field,omitempty"`
	// Code classifies the problem: "yaml", "schema", "rego", "fmt", ...
	Code string `json:"code"`
	Msg  string `json:"msg"`
}

// String renders p as file:line:col: field: msg.
func (p Problem) String() string {
	var b strings.Builder
	b.WriteString(p.Pos.String())
	b.WriteString(": ")
	if p.Field != "" {
		b.WriteString(p.Field)
		b.WriteString(": ")
	}
	b.WriteString(p.Msg)
	return b.String()
}

// Problems is a list of problems that is also an error. Every problem is
// reported, not just the first: a user fixing a file wants them all.
type Problems []Problem

func (ps Problems) Error() string {
	lines := make([]string, len(ps))
	for i, p := range ps {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

// Sort orders ps by file, line, column, then message.
func (ps Problems) Sort() {
	slices.SortFunc(ps, func(a, b Problem) int {
		return cmp.Or(comparePos(a.Pos, b.Pos), cmp.Compare(a.Field, b.Field), cmp.Compare(a.Msg, b.Msg))
	})
}

// Err returns ps as an error, or nil when there are none.
func (ps Problems) Err() error {
	if len(ps) == 0 {
		return nil
	}
	return ps
}
