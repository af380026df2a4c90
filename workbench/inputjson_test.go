package workbench

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/gitpoli/gitpoli/workbench/jsontext"
	"github.com/open-policy-agent/opa/v1/ast"
)

// referenceValue is what parseJSON stands in for: encoding/json with
// UseNumber, then OPA's conversion.
func referenceValue(data []byte) (ast.Value, error) {
	if !json.Valid(data) {
		return nil, json.Unmarshal(data, new(any))
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var x any
	if err := dec.Decode(&x); err != nil {
		return nil, err
	}
	return ast.InterfaceToValue(x)
}

// FuzzInputJSON holds parseJSON and appendJSON to encoding/json: the same
// documents accepted, the same values read, the same bytes written.
func FuzzInputJSON(f *testing.F) {
	for _, seed := range []string{
		`{}`, `[]`, `""`, `{"a":1}`, ` {"a" : [1, 2.5, -0, 1e5, 1E+2, -3.25e-7, true, false, null]} `,
		`{"a":1,"a":2}`, `{"b":{"c":[{}]},"a":""}`,
		`{"esc":"\"\\\/\b\f\n\r\t\u0041\u00e9\ud83d\ude00"}`, `{"lone":"\ud800"}`, `{"bad":"\x"}`,
		"{\"utf8\":\"é ✓ \xff\xfe\"}", `{"html":"<a href='x'>&</a>"}`, "{\"sep\":\"\u2028\u2029\"}",
		"{\"del\":\"\x7f\"}", "{\"ctl\":\"\x01\"}", `{"k\u0000":1}`,
		`01`, `1.`, `.5`, `-`, `1e`, `+1`, `{"a":01}`, `{"a" 1}`, `{"a":1,}`, `[1,]`, `{"a":1}x`, `{"a":1} {}`,
		`tru`, `nul`, `{"a":[`, `"abc`, ``, ` `,
	} {
		f.Add([]byte(seed))
	}
	f.Add(bytes.Repeat([]byte("["), jsontext.MaxDepth+1))
	f.Add(append(bytes.Repeat([]byte("["), jsontext.MaxDepth), bytes.Repeat([]byte("]"), jsontext.MaxDepth)...))
	for _, glob := range []string{"testdata/input/*.json", "../internal/testrepo/testdata/fixtures/*.json"} {
		files, _ := filepath.Glob(glob)
		for _, name := range files {
			data, err := os.ReadFile(name)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(data)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		got, ok := parseJSON(data)
		want, err := referenceValue(data)
		if !ok {
			if err == nil {
				t.Fatalf("parseJSON refused %q, which encoding/json reads as %v", data, want)
			}
			return
		}
		if err != nil {
			t.Fatalf("parseJSON read %q, which encoding/json refuses: %v", data, err)
		}
		if got.Compare(want) != 0 {
			t.Fatalf("parseJSON read %q as %v, encoding/json as %v", data, got, want)
		}
		out, ok := appendJSON(nil, got)
		if !ok {
			t.Fatalf("appendJSON could not write %v", got)
		}
		x, err := ast.JSON(got)
		if err != nil {
			t.Fatal(err)
		}
		ref, err := json.Marshal(x)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(out, ref) {
			t.Fatalf("appendJSON wrote\n%s\njson.Marshal\n%s", out, ref)
		}
	})
}

// TestAppendJSONLeavesTheUnusual: values no JSON document holds are left
// to the long way, which knows what to make of them.
func TestAppendJSONLeavesTheUnusual(t *testing.T) {
	for _, v := range []ast.Value{
		ast.NewSet(ast.IntNumberTerm(1)),
		ast.NewObject([2]*ast.Term{ast.IntNumberTerm(1), ast.StringTerm("x")}),
		ast.Number("1x"),
		ast.Number(""),
		ast.MustParseRef("data.x"),
	} {
		if _, ok := appendJSON(nil, ast.NewObject([2]*ast.Term{ast.StringTerm("k"), ast.NewTerm(v)})); ok {
			t.Errorf("appendJSON wrote %v", v)
		}
	}
}

func BenchmarkParseInput(b *testing.B) {
	data, err := os.ReadFile("testdata/input/pullrequest-feature.json")
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := ParseInput(data); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkInputJSON(b *testing.B) {
	data, err := os.ReadFile("testdata/input/pullrequest-feature.json")
	if err != nil {
		b.Fatal(err)
	}
	in, err := ParseInput(data)
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := in.MarshalJSON(); err != nil {
			b.Fatal(err)
		}
	}
}
