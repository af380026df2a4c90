package jsontext

import (
	"encoding"
	"encoding/json"
	"reflect"
	"strings"
	"sync"
)

// Trim returns the JSON document data without the object members that
// decoding it into a value of type t would skip, so that json.Unmarshal
// of the result into t gives exactly what json.Unmarshal of data gives,
// having scanned a fraction of it. A webhook payload is tens of kilobytes
// of which a decision reads a few fields, and encoding/json scans what it
// skips twice. ok is false when data is not JSON.
//
// A member is dropped only when its key is plain ASCII and matches none
// of the struct's fields as encoding/json matches keys (exactly, or
// ignoring ASCII case); values decoded by their own methods, maps and
// interfaces are kept whole, and so is anything of a kind other than the
// type expects, for encoding/json to refuse as it would have.
func Trim(data []byte, t reflect.Type) (_ []byte, ok bool) {
	s := Scanner{Data: data}
	s.Space()
	out, ok := s.trim(make([]byte, 0, 1024), shapeOf(t), 0)
	if !ok {
		return nil, false
	}
	s.Space()
	return out, s.I == len(data)
}

// shape is what a Go type reads from JSON: the members of an object
// (fields, by upper-cased name), the elements of an array (elem), or
// the whole value (neither).
type shape struct {
	fields map[string]*shape
	elem   *shape
	// lengths has bit n set when a field's name is n bytes long (bit 63:
	// 63 or more): a key of no such length is dropped without a lookup.
	// Most keys of a payload are dropped.
	lengths uint64
}

func lengthBit(n int) uint64 { return 1 << min(n, 63) }

var whole = &shape{}

// upper returns ASCII text in upper case, in buf when it fits (a map
// lookup with it then allocates nothing).
func upper(key []byte, buf *[64]byte) []byte {
	out := buf[:0]
	if len(key) > len(buf) {
		out = make([]byte, 0, len(key))
	}
	for _, c := range key {
		if 'a' <= c && c <= 'z' {
			c -= 'a' - 'A'
		}
		out = append(out, c)
	}
	return out
}

func (s *Scanner) trim(out []byte, sh *shape, depth int) ([]byte, bool) {
	start := s.I
	switch c := s.Peek(); {
	case c == '{' && sh.fields != nil:
		return s.trimObject(out, sh, depth+1)
	case c == '[' && sh.elem != nil:
		return s.trimArray(out, sh.elem, depth+1)
	}
	if !s.Value(depth) {
		return nil, false
	}
	return append(out, s.Data[start:s.I]...), true
}

func (s *Scanner) trimObject(out []byte, sh *shape, depth int) ([]byte, bool) {
	if depth > MaxDepth {
		return nil, false
	}
	s.I++ // {
	out = append(out, '{')
	s.Space()
	if s.Peek() == '}' {
		s.I++
		return append(out, '}'), true
	}
	first := true
	for {
		k := s.I
		plain, ok := s.String()
		if !ok {
			return nil, false
		}
		key := s.Data[k:s.I]
		s.Space()
		if s.Peek() != ':' {
			return nil, false
		}
		s.I++
		s.Space()
		field := whole // a key with escapes or other text might name any field
		if plain {
			field = nil
			if name := key[1 : len(key)-1]; sh.lengths&lengthBit(len(name)) != 0 {
				field = sh.fields[string(upper(name, &s.buf))]
			}
		}
		if field == nil {
			if !s.Value(depth) {
				return nil, false
			}
		} else {
			if !first {
				out = append(out, ',')
			}
			first = false
			out = append(out, key...)
			out = append(out, ':')
			if out, ok = s.trim(out, field, depth); !ok {
				return nil, false
			}
		}
		if more, ok := s.Next('}'); !more {
			return append(out, '}'), ok
		}
	}
}

func (s *Scanner) trimArray(out []byte, elem *shape, depth int) ([]byte, bool) {
	if depth > MaxDepth {
		return nil, false
	}
	s.I++ // [
	out = append(out, '[')
	s.Space()
	if s.Peek() == ']' {
		s.I++
		return append(out, ']'), true
	}
	for {
		var ok bool
		if out, ok = s.trim(out, elem, depth); !ok {
			return nil, false
		}
		more, ok := s.Next(']')
		if !more {
			return append(out, ']'), ok
		}
		out = append(out, ',')
	}
}

var shapes sync.Map // reflect.Type → *shape

var (
	jsonUnmarshaler = reflect.TypeFor[json.Unmarshaler]()
	textUnmarshaler = reflect.TypeFor[encoding.TextUnmarshaler]()
)

func shapeOf(t reflect.Type) *shape {
	if sh, ok := shapes.Load(t); ok {
		return sh.(*shape)
	}
	sh := buildShape(t, map[reflect.Type]bool{})
	shapes.Store(t, sh)
	return sh
}

func buildShape(t reflect.Type, seen map[reflect.Type]bool) *shape {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if seen[t] || reflect.PointerTo(t).Implements(jsonUnmarshaler) || reflect.PointerTo(t).Implements(textUnmarshaler) {
		return whole
	}
	seen[t] = true
	defer delete(seen, t)
	switch t.Kind() {
	case reflect.Struct:
		sh := &shape{fields: map[string]*shape{}}
		for i := range t.NumField() {
			f := t.Field(i)
			if f.Anonymous {
				return whole // promoted fields: left to encoding/json
			}
			if !f.IsExported() {
				continue
			}
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if name == "-" && f.Tag.Get("json") == "-" {
				continue
			}
			if name == "" {
				name = f.Name
			}
			key := strings.ToUpper(name)
			if _, dup := sh.fields[key]; dup {
				return whole // fields that differ only in case: left to encoding/json
			}
			sh.fields[key] = buildShape(f.Type, seen)
			sh.lengths |= lengthBit(len(key))
		}
		return sh
	case reflect.Slice, reflect.Array:
		if t.Elem().Kind() == reflect.Uint8 {
			return whole // []byte is base64 text
		}
		return &shape{elem: buildShape(t.Elem(), seen)}
	}
	return whole
}
