package jsontext

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// FuzzValid holds Valid to json.Valid, and Scanner.Object (through members) to the members
// encoding/json sees in an object.
func FuzzValid(f *testing.F) {
	for _, seed := range []string{
		`{}`, `[]`, `""`, `0`, `-0.5e+3`, ` {"a" : [1, true, false, null, "x"]} `, `{"a":1,"a":2}`,
		`"\"\\\/\b\f\n\r\t\u0041\uD83D\uDE00"`, `"\x"`, `"\u12"`, `"\u12G4"`, "\"\xff\"", "\"\x01\"",
		`01`, `1.`, `.5`, `-`, `1e`, `+1`, `{"a" 1}`, `{"a":1,}`, `[1,]`, `{"a":1}x`, `tru`, `{"a":[`, `"abc`, ``,
		`{1:2}`, `{"a":{"b":{"c":[]}}}`,
	} {
		f.Add([]byte(seed))
	}
	f.Add(bytes.Repeat([]byte("["), MaxDepth+1))
	f.Add(append(bytes.Repeat([]byte("["), MaxDepth), bytes.Repeat([]byte("]"), MaxDepth)...))
	f.Add(append(append([]byte(`{"a":`), bytes.Repeat([]byte("["), MaxDepth-1)...), append(bytes.Repeat([]byte("]"), MaxDepth-1), '}')...))
	f.Add(append(append([]byte(`{"a":`), bytes.Repeat([]byte("["), MaxDepth)...), append(bytes.Repeat([]byte("]"), MaxDepth), '}')...))
	files, _ := filepath.Glob("../../internal/testrepo/testdata/fixtures/*.json")
	for _, name := range files {
		data, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		want := json.Valid(data)
		if got := Valid(data); got != want {
			t.Fatalf("Valid(%q) = %v, json.Valid says %v", data, got, want)
		}
		var keys []string
		values := map[string]json.RawMessage{}
		isObject := members(data, 0, func(key, value []byte) {
			var k string
			if err := json.Unmarshal(append(append([]byte{'"'}, key...), '"'), &k); err != nil {
				t.Fatalf("key %q: %v", key, err)
			}
			keys = append(keys, k)
			values[k] = value
		})
		var obj map[string]json.RawMessage
		wantObject := want && bytes.HasPrefix(bytes.TrimLeft(data, " \t\r\n"), []byte("{")) && json.Unmarshal(data, &obj) == nil
		if isObject != wantObject {
			t.Fatalf("members(%q) = %v, want %v", data, isObject, wantObject)
		}
		if !isObject {
			return
		}
		for k, v := range obj {
			if !bytes.Equal(values[k], v) {
				t.Fatalf("member %q: %q, encoding/json has %q", k, values[k], v)
			}
		}
		if len(values) != len(obj) {
			t.Fatalf("members %v, encoding/json has %d", keys, len(obj))
		}
	})
}

// TestMembersDepth: an object read out of a document keeps the document's
// nesting limit.
func TestMembersDepth(t *testing.T) {
	inner := append(bytes.Repeat([]byte("["), MaxDepth-1), bytes.Repeat([]byte("]"), MaxDepth-1)...)
	obj := append(append([]byte(`{"a":`), inner...), '}')
	if !members(obj, 0, nil) {
		t.Fatal("refused an object as deep as the limit")
	}
	if members(obj, 1, nil) {
		t.Fatal("took an object one level deeper than the limit")
	}
	var got []string
	members([]byte(` {"a": 1, "b" :{"c":[2]} , "a":3} `), 0, func(k, v []byte) { got = append(got, string(k)+"="+string(v)) })
	if want := []string{"a=1", `b={"c":[2]}`, "a=3"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("members %q, want %q", got, want)
	}
}

// members checks that data is one JSON object with white space around
// it, calling member for each of its members as Object does, with the
// value's text. depth is how deep the object sat in the document it came
// from (0 for a whole document).
func members(data []byte, depth int, member func(key, value []byte)) bool {
	s := Scanner{Data: data}
	s.Space()
	ok := s.Object(depth+1, func(key []byte, start, end int) {
		if member != nil {
			member(key, data[start:end])
		}
	})
	s.Space()
	return ok && s.I == len(data)
}

// BenchmarkValid checks every shipped fixture: the text Scanner reads most,
// webhook payloads and API responses, long runs of ASCII in strings.
func BenchmarkValid(b *testing.B) {
	files, err := filepath.Glob("../../internal/testrepo/testdata/fixtures/*.json")
	if err != nil || len(files) == 0 {
		b.Fatalf("no fixtures: %v", err)
	}
	var docs [][]byte
	size := 0
	for _, name := range files {
		data, err := os.ReadFile(name)
		if err != nil {
			b.Fatal(err)
		}
		docs = append(docs, data)
		size += len(data)
	}
	b.SetBytes(int64(size))
	for b.Loop() {
		for _, d := range docs {
			if !Valid(d) {
				b.Fatal("not valid")
			}
		}
	}
}

// TestSpecial holds the word-at-a-time test to the byte table: a word
// of printable bytes is never special, and one byte that is not printable,
// at any place in the word, always makes it so.
func TestSpecial(t *testing.T) {
	word := func(b []byte) uint64 { return binary.LittleEndian.Uint64(b) }
	var printables []byte
	for c := range 256 {
		if printable[c] {
			printables = append(printables, byte(c))
		}
	}
	for i := range len(printables) {
		w := make([]byte, 8)
		for j := range w {
			w[j] = printables[(i+j*13)%len(printables)]
		}
		if special(word(w)) {
			t.Fatalf("special(%q) = true", w)
		}
	}
	for c := range 256 {
		for at := range 8 {
			w := []byte("aZ~ 09{}")
			w[at] = byte(c)
			if got := special(word(w)); got != !printable[c] {
				t.Errorf("special(%q) = %v, want %v", w, got, !printable[c])
			}
		}
	}
}
