package workbench

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"
)

// InputSchema is the JSON Schema of the input document gitpoli gives a
// policy: what the delivery says and every fact it can gather.
//
//go:embed input.schema.json
var InputSchema []byte

// schemaNode is what InputWarnings reads of a JSON Schema: enough to say
// whether a path can exist.
type schemaNode struct {
	Ref                  string                 `json:"$ref"`
	Properties           map[string]*schemaNode `json:"properties"`
	Items                *schemaNode            `json:"items"`
	AdditionalProperties json.RawMessage        `json:"additionalProperties"`
	Defs                 map[string]*schemaNode `json:"$defs"`
}

var inputSchemaRoot = func() *schemaNode {
	var root schemaNode
	if err := json.Unmarshal(InputSchema, &root); err != nil {
		panic("input.schema.json: " + err.Error())
	}
	return &root
}()

func (n *schemaNode) resolve() *schemaNode {
	if name, ok := strings.CutPrefix(n.Ref, "#/$defs/"); ok {
		return inputSchemaRoot.Defs[name]
	}
	return n
}

// additional is the schema of an object's other members: nil when any
// value goes, and closed when there may be none.
func (n *schemaNode) additional() (schema *schemaNode, closed bool) {
	raw := strings.TrimSpace(string(n.AdditionalProperties))
	switch raw {
	case "", "true":
		return nil, false
	case "false":
		return nil, true
	}
	var s schemaNode
	if json.Unmarshal(n.AdditionalProperties, &s) != nil {
		return nil, false
	}
	return &s, false
}

// InputWarnings finds the reads of input, in the policies (tests left
// out), of a key that no delivery and no fact has: such a rule never
// applies, which in a policy that fails closed is a rule silently lost.
// The input's JSON Schema (InputSchema) says what there is.
func (e *Engine) InputWarnings() Problems {
	var out Problems
	seen := map[string]bool{}
	for _, name := range slices.Sorted(maps.Keys(e.modules)) {
		ast.NewGenericVisitor(func(x any) bool {
			var path []*ast.Term
			var loc *ast.Location
			switch x := x.(type) {
			case *ast.Term:
				switch v := x.Value.(type) {
				case ast.Ref:
					if v.HasPrefix(ast.InputRootRef) && len(v) > 1 {
						path = v[1:]
					}
				case ast.Call:
					path = objectGetPath(v)
				}
				loc = x.Location
			case *ast.Expr:
				if terms, ok := x.Terms.([]*ast.Term); ok {
					path = objectGetPath(terms)
				}
				loc = x.Location
			}
			if len(path) == 0 || loc == nil {
				return false
			}
			if msg := checkInputPath(path); msg != "" {
				p := Problem{Pos: Pos{File: loc.File, Line: loc.Row, Col: loc.Col}, Code: "input", Msg: msg}
				if key := p.String(); !seen[key] {
					seen[key] = true
					out = append(out, p)
				}
			}
			return false
		}).Walk(e.modules[name])
	}
	out.Sort()
	return out
}

// objectGetPath is the path of object.get(input, key or [path...],
// default), or nil for any other call.
func objectGetPath(call []*ast.Term) []*ast.Term {
	if len(call) < 4 {
		return nil
	}
	if op, ok := call[0].Value.(ast.Ref); !ok || !op.Equal(ast.ObjectGet.Ref()) {
		return nil
	}
	if ref, ok := call[1].Value.(ast.Ref); !ok || !ref.Equal(ast.InputRootRef) {
		return nil
	}
	switch k := call[2].Value.(type) {
	case ast.String:
		return []*ast.Term{call[2]}
	case *ast.Array:
		path := make([]*ast.Term, k.Len())
		for i := range k.Len() {
			path[i] = k.Elem(i)
		}
		return path
	}
	return nil
}

// checkInputPath says why no input has the path, or "".
func checkInputPath(path []*ast.Term) string {
	n := inputSchemaRoot
	shown := "input"
	for _, seg := range path {
		n = n.resolve()
		key, constant := seg.Value.(ast.String)
		next, closed := n.additional()
		switch {
		case constant && n.Properties[string(key)] != nil:
			n = n.Properties[string(key)]
		case n.Items != nil:
			if constant {
				return fmt.Sprintf("%s is a list: %s[_].%s, not %s.%s", shown, shown, string(key), shown, string(key))
			}
			n = n.Items
			shown += "[_]"
			continue
		case next != nil:
			n = next
		case constant && closed:
			have := slices.Sorted(maps.Keys(n.Properties))
			return fmt.Sprintf("%s.%s: no delivery or fact has %q here (there is %s)", shown, string(key), string(key), strings.Join(have, ", "))
		default:
			return "" // a value of any shape, or a key known only at run time
		}
		if constant {
			shown += "." + string(key)
		} else {
			shown += "[_]"
		}
	}
	return ""
}
