package workbench

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"
)

// Input is a policy input document, converted once to OPA's representation
// so that deciding on it costs no further parsing.
type Input struct {
	obj ast.Object
}

// ErrNotObject is returned for input that is JSON but not a JSON object.
var ErrNotObject = errors.New("input must be a JSON object")

// ParseInput parses a JSON object. Anything inside the object is the
// policy's to judge; only input that is not a JSON object is an error.
func ParseInput(data []byte) (Input, error) {
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) == 0 {
		return Input{}, errors.New("input is empty")
	}
	if trimmed[0] == '{' {
		if v, ok := parseJSON(trimmed); ok {
			return Input{obj: v.(ast.Object)}, nil
		}
	}
	// Not a valid JSON object, or one with a number OPA cannot hold:
	// encoding/json, or OPA, says why.
	if !json.Valid(trimmed) {
		var v any
		return Input{}, jsonError(data, json.Unmarshal(data, &v))
	}
	if trimmed[0] != '{' {
		var v any
		if err := json.Unmarshal(trimmed, &v); err != nil {
			return Input{}, jsonError(data, err)
		}
		return Input{}, fmt.Errorf("%w (got %s)", ErrNotObject, jsonKind(v))
	}
	v, err := ast.ValueFromReader(bytes.NewReader(trimmed))
	if err != nil {
		return Input{}, fmt.Errorf("input is not valid JSON: %w", err)
	}
	obj, ok := v.(ast.Object)
	if !ok {
		return Input{}, ErrNotObject
	}
	return Input{obj: obj}, nil
}

// NewInput converts a JSON-compatible document to an Input.
func NewInput(doc map[string]any) (Input, error) {
	v, err := ast.InterfaceToValue(doc)
	if err != nil {
		return Input{}, fmt.Errorf("convert input: %w", err)
	}
	return Input{obj: v.(ast.Object)}, nil
}

// Has reports whether the document has a top-level key.
func (in Input) Has(key string) bool {
	return in.obj != nil && in.obj.Get(ast.InternedTerm(key)) != nil
}

// StringField returns a top-level string value, or "".
func (in Input) StringField(key string) string {
	if v, ok := in.lookup([]string{key}).(ast.String); ok {
		return string(v)
	}
	return ""
}

// MarshalJSON renders the document as JSON.
func (in Input) MarshalJSON() ([]byte, error) {
	if in.obj == nil {
		return []byte("{}"), nil
	}
	if b, ok := appendJSON(make([]byte, 0, 1024), in.obj); ok {
		return b, nil
	}
	v, err := ast.JSON(in.obj)
	if err != nil {
		return nil, err
	}
	return json.Marshal(v)
}

// lookup returns the value at a path of object keys, or nil.
func (in Input) lookup(path []string) ast.Value {
	var v ast.Value = in.obj
	for _, k := range path {
		obj, ok := v.(ast.Object)
		if !ok {
			return nil
		}
		t := obj.Get(ast.InternedTerm(k))
		if t == nil {
			return nil
		}
		v = t.Value
	}
	return v
}

// with returns the document with each of keys set to v, leaving in
// unchanged.
func (in Input) with(v ast.Value, keys ...string) ast.Object {
	out := ast.NewObject()
	if in.obj != nil {
		in.obj.Foreach(func(k, val *ast.Term) { out.Insert(k, val) })
	}
	t := ast.NewTerm(v)
	for _, key := range keys {
		out.Insert(ast.InternedTerm(key), t)
	}
	return out
}

// jsonError locates a JSON syntax error by line and column.
func jsonError(data []byte, err error) error {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		line, col := lineCol(data, se.Offset)
		return fmt.Errorf("input is not valid JSON: line %d, column %d: %w", line, col, err)
	}
	return fmt.Errorf("input is not valid JSON: %w", err)
}

func lineCol(data []byte, offset int64) (line, col int) {
	offset = min(offset, int64(len(data)))
	before := data[:offset]
	line = bytes.Count(before, []byte("\n")) + 1
	col = int(offset) - (bytes.LastIndexByte(before, '\n') + 1)
	return line, max(col, 1)
}

func jsonKind(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "boolean"
	case float64, json.Number:
		return "number"
	case string:
		return "string"
	case []any:
		return "array"
	}
	return strings.TrimSpace(fmt.Sprintf("%T", v))
}

// withDeploymentsToday returns the document with
// workflow_meta.deployments_today set to n, when it has a workflow_meta;
// in is left unchanged.
func (in Input) withDeploymentsToday(n int) Input {
	meta, ok := in.lookup([]string{"workflow_meta"}).(ast.Object)
	if !ok {
		return in
	}
	m := ast.NewObject()
	meta.Foreach(func(k, v *ast.Term) { m.Insert(k, v) })
	m.Insert(ast.InternedTerm("deployments_today"), ast.IntNumberTerm(n))
	return Input{obj: in.with(m, "workflow_meta")}
}
