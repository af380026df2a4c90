package workbench

import (
	"encoding/json"
	"strconv"
	"unicode/utf8"

	"github.com/open-policy-agent/opa/v1/ast"
)

// Every decision the server is asked for parses an input document and
// records it again as JSON. Going through encoding/json and interface{}
// (ast.ValueFromReader, ast.JSON) scanned each document three times and
// built it twice; this file reads JSON straight into OPA's values and
// writes them straight back. Both give exactly what encoding/json gives —
// FuzzInputJSON holds them to it — and hand anything unusual (escapes,
// non-ASCII text, a value encoding/json would reject) back to it.

// maxJSONDepth is encoding/json's nesting limit: deeper documents are its to
// reject, with its error.
const maxJSONDepth = 10000

// parseJSON reads one JSON value filling all of data but for surrounding
// white space. ok is false when data is not valid JSON.
func parseJSON(data []byte) (v ast.Value, ok bool) {
	p := jsonParser{data: data}
	p.space()
	v, ok = p.value(0)
	if !ok {
		return nil, false
	}
	p.space()
	return v, p.i == len(p.data)
}

type jsonParser struct {
	data []byte
	i    int
}

func (p *jsonParser) space() {
	for p.i < len(p.data) {
		switch p.data[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

func (p *jsonParser) value(depth int) (ast.Value, bool) {
	if p.i >= len(p.data) {
		return nil, false
	}
	switch c := p.data[p.i]; {
	case c == '{':
		return p.object(depth + 1)
	case c == '[':
		return p.array(depth + 1)
	case c == '"':
		s, ok := p.string()
		return ast.String(s), ok
	case c == 't':
		return ast.Boolean(true), p.literal("true")
	case c == 'f':
		return ast.Boolean(false), p.literal("false")
	case c == 'n':
		return ast.Null{}, p.literal("null")
	case c == '-' || c >= '0' && c <= '9':
		return p.number()
	}
	return nil, false
}

func (p *jsonParser) literal(word string) bool {
	if len(p.data)-p.i < len(word) || string(p.data[p.i:p.i+len(word)]) != word {
		return false
	}
	p.i += len(word)
	return true
}

func (p *jsonParser) object(depth int) (ast.Value, bool) {
	if depth > maxJSONDepth {
		return nil, false
	}
	p.i++ // {
	obj := ast.NewObject()
	p.space()
	if p.i < len(p.data) && p.data[p.i] == '}' {
		p.i++
		return obj, true
	}
	for {
		if p.i >= len(p.data) || p.data[p.i] != '"' {
			return nil, false
		}
		k, ok := p.string()
		if !ok {
			return nil, false
		}
		p.space()
		if p.i >= len(p.data) || p.data[p.i] != ':' {
			return nil, false
		}
		p.i++
		p.space()
		v, ok := p.value(depth)
		if !ok {
			return nil, false
		}
		// A repeated key keeps its last value, as encoding/json's does.
		obj.Insert(ast.StringTerm(k), ast.NewTerm(v))
		p.space()
		if p.i >= len(p.data) {
			return nil, false
		}
		switch p.data[p.i] {
		case ',':
			p.i++
			p.space()
		case '}':
			p.i++
			return obj, true
		default:
			return nil, false
		}
	}
}

func (p *jsonParser) array(depth int) (ast.Value, bool) {
	if depth > maxJSONDepth {
		return nil, false
	}
	p.i++ // [
	var elems []*ast.Term
	p.space()
	if p.i < len(p.data) && p.data[p.i] == ']' {
		p.i++
		return ast.NewArray(), true
	}
	for {
		v, ok := p.value(depth)
		if !ok {
			return nil, false
		}
		elems = append(elems, ast.NewTerm(v))
		p.space()
		if p.i >= len(p.data) {
			return nil, false
		}
		switch p.data[p.i] {
		case ',':
			p.i++
			p.space()
		case ']':
			p.i++
			return ast.NewArray(elems...), true
		default:
			return nil, false
		}
	}
}

// string reads a JSON string. Plain printable ASCII is taken as it is;
// anything else (escapes, other text, bytes that are not UTF-8) is
// decoded by encoding/json, so that what a document means never depends
// on which of the two read it.
func (p *jsonParser) string() (string, bool) {
	start := p.i
	p.i++ // "
	plain := true
	for p.i < len(p.data) {
		c := p.data[p.i]
		switch {
		case c == '"':
			p.i++
			if plain {
				return string(p.data[start+1 : p.i-1]), true
			}
			var s string
			if json.Unmarshal(p.data[start:p.i], &s) != nil {
				return "", false
			}
			return s, true
		case c == '\\':
			plain = false
			p.i += 2
			continue
		case c < 0x20:
			return "", false
		case c >= utf8.RuneSelf:
			plain = false
		}
		p.i++
	}
	return "", false
}

// number reads a number with JSON's grammar, keeping its text as
// encoding/json's UseNumber does.
func (p *jsonParser) number() (ast.Value, bool) {
	start := p.i
	if p.data[p.i] == '-' {
		p.i++
	}
	switch {
	case p.i < len(p.data) && p.data[p.i] == '0':
		p.i++
	case p.digits() == 0:
		return nil, false
	}
	if p.i < len(p.data) && p.data[p.i] == '.' {
		p.i++
		if p.digits() == 0 {
			return nil, false
		}
	}
	if p.i < len(p.data) && (p.data[p.i] == 'e' || p.data[p.i] == 'E') {
		p.i++
		if p.i < len(p.data) && (p.data[p.i] == '+' || p.data[p.i] == '-') {
			p.i++
		}
		if p.digits() == 0 {
			return nil, false
		}
	}
	return ast.Number(p.data[start:p.i]), true
}

// wholeNumber reports whether all of p.data is one number.
func (p *jsonParser) wholeNumber() bool {
	_, ok := p.number()
	return ok && p.i == len(p.data)
}

func (p *jsonParser) digits() int {
	n := 0
	for p.i < len(p.data) && p.data[p.i] >= '0' && p.data[p.i] <= '9' {
		p.i++
		n++
	}
	return n
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
		if n := (jsonParser{data: []byte(v)}); len(v) == 0 || !n.wholeNumber() {
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
