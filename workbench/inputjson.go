package workbench

import (
	"encoding/json"
	"strconv"
	"unicode/utf8"

	"github.com/gitpoli/gitpoli/workbench/jsontext"
	"github.com/open-policy-agent/opa/v1/ast"
)

// Every decision the server is asked for parses an input document and
// records it again as JSON. Going through encoding/json and interface{}
// (ast.ValueFromReader, ast.JSON) scanned each document three times and
// built it twice; this file reads JSON straight into OPA's values and
// writes them straight back. Both give exactly what encoding/json gives —
// FuzzInputJSON holds them to it — and hand anything unusual (escapes,
// non-ASCII text, a value encoding/json would reject) back to it.
// Reading an input document takes 2.6 µs this way and 8.0 µs through
// ast.ValueFromReader (BenchmarkParseInput; package jsontext's doc).

// parseJSON reads one JSON value filling all of data but for surrounding
// white space. ok is false when data is not valid JSON.
func parseJSON(data []byte) (v ast.Value, ok bool) {
	p := jsonParser{jsontext.Scanner{Data: data}}
	p.Space()
	v, ok = p.value(0)
	if !ok {
		return nil, false
	}
	p.Space()
	return v, p.I == len(p.Data)
}

type jsonParser struct{ jsontext.Scanner }

func (p *jsonParser) value(depth int) (ast.Value, bool) {
	switch c := p.Peek(); {
	case c == '{':
		return p.object(depth + 1)
	case c == '[':
		return p.array(depth + 1)
	case c == '"':
		s, ok := p.string()
		return ast.String(s), ok
	case c == 't':
		return ast.Boolean(true), p.Literal("true")
	case c == 'f':
		return ast.Boolean(false), p.Literal("false")
	case c == 'n':
		return ast.Null{}, p.Literal("null")
	case c == '-' || c >= '0' && c <= '9':
		// The number's text, as encoding/json's UseNumber keeps it, and
		// only a number OPA takes (not 1e70000: ParseInput then says why).
		start := p.I
		if !p.Number() {
			return nil, false
		}
		n, err := ast.NumberChecked(string(p.Data[start:p.I]))
		return n, err == nil
	}
	return nil, false
}

func (p *jsonParser) object(depth int) (ast.Value, bool) {
	if depth > jsontext.MaxDepth {
		return nil, false
	}
	p.I++ // {
	obj := ast.NewObject()
	p.Space()
	if p.Peek() == '}' {
		p.I++
		return obj, true
	}
	for {
		if p.Peek() != '"' {
			return nil, false
		}
		k, ok := p.string()
		if !ok {
			return nil, false
		}
		p.Space()
		if p.Peek() != ':' {
			return nil, false
		}
		p.I++
		p.Space()
		v, ok := p.value(depth)
		if !ok {
			return nil, false
		}
		// A repeated key keeps its last value, as encoding/json's does.
		obj.Insert(ast.StringTerm(k), ast.NewTerm(v))
		if more, ok := p.Next('}'); !more {
			return obj, ok
		}
	}
}

func (p *jsonParser) array(depth int) (ast.Value, bool) {
	if depth > jsontext.MaxDepth {
		return nil, false
	}
	p.I++ // [
	var elems []*ast.Term
	p.Space()
	if p.Peek() == ']' {
		p.I++
		return ast.NewArray(), true
	}
	for {
		v, ok := p.value(depth)
		if !ok {
			return nil, false
		}
		elems = append(elems, ast.NewTerm(v))
		if more, ok := p.Next(']'); !more {
			return ast.NewArray(elems...), ok
		}
	}
}

// string reads a JSON string. Plain printable ASCII is taken as it is;
// anything else (escapes, other text, bytes that are not UTF-8) is
// decoded by encoding/json, so that what a document means never depends
// on which of the two read it.
func (p *jsonParser) string() (string, bool) {
	start := p.I
	plain, ok := p.String()
	switch {
	case !ok:
		return "", false
	case plain:
		return string(p.Data[start+1 : p.I-1]), true
	}
	var s string
	if json.Unmarshal(p.Data[start:p.I], &s) != nil {
		return "", false
	}
	return s, true
}

// appendJSON appends v as json.Marshal(ast.JSON(v)) would write it: keys
// in order, encoding/json's escaping. ok is false for anything but plain
// JSON values (sets, objects with keys that are not strings, refs), which
// input documents do not hold; the caller then takes the long way.
func appendJSON(b []byte, v ast.Value) (_ []byte, ok bool) {
	switch v := v.(type) {
	case ast.Null:
		return append(b, "null"...), true
	case ast.Boolean:
		return strconv.AppendBool(b, bool(v)), true
	case ast.Number:
		// json.Number's rule: the text must be a JSON number.
		if n := (jsontext.Scanner{Data: []byte(v)}); !n.Number() || n.I != len(v) {
			return b, false
		}
		return append(b, v...), true
	case ast.String:
		return appendJSONString(b, string(v)), true
	case *ast.Array:
		b = append(b, '[')
		for i := range v.Len() {
			if i > 0 {
				b = append(b, ',')
			}
			if b, ok = appendJSON(b, v.Elem(i).Value); !ok {
				return b, false
			}
		}
		return append(b, ']'), true
	case ast.Object:
		b = append(b, '{')
		ok = true
		first := true
		v.Foreach(func(k, val *ast.Term) {
			key, isString := k.Value.(ast.String)
			if !isString {
				ok = false
			}
			if !ok {
				return
			}
			if !first {
				b = append(b, ',')
			}
			first = false
			b = appendJSONString(b, string(key))
			b = append(b, ':')
			b, ok = appendJSON(b, val.Value)
		})
		return append(b, '}'), ok
	}
	return b, false
}

// appendJSONString quotes s. Text that encoding/json would escape (quotes,
// control characters, <, >, &, anything outside ASCII) is left to it.
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= utf8.RuneSelf || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(s)
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}
