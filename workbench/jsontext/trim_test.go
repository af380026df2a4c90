package jsontext

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"
)

type trimInner struct {
	Name  string   `json:"name"`
	Count *int     `json:"count,omitempty"`
	Tags  []string `json:"tags"`
	Self  *trimInner
}

type trimDoc struct {
	Action  string          `json:"action"`
	Inner   trimInner       `json:"inner"`
	Ptr     *trimInner      `json:"ptr"`
	List    []trimInner     `json:"list"`
	Fixed   [2]trimInner    `json:"fixed"`
	Raw     json.RawMessage `json:"raw"`
	Any     any             `json:"any"`
	Map     map[string]int  `json:"map"`
	When    time.Time       `json:"when"`
	Bytes   []byte          `json:"bytes"`
	Quoted  int             `json:"quoted,string"`
	Skipped string          `json:"-"`
	Dash    string          `json:"-,"`
	Untaged string
	private string
	Nested  map[string]*trimInner `json:"nested"`
}

// FuzzTrim: decoding a trimmed document gives what decoding the whole one
// gives, error or not.
func FuzzTrim(f *testing.F) {
	for _, seed := range []string{
		`{"action":"opened","sender":{"login":"x"},"inner":{"name":"a","extra":[1,2],"tags":["t"]}}`,
		`{"ACTION":"x","Action":"y","action":"z"}`,
		`{"inner":{"name":"a"},"inner":{"tags":["b"]},"INNER":{"count":3}}`,
		`{"ptr":null,"list":[{"name":"a","junk":{}},null,{"self":{"name":"deep","junk":1}}],"fixed":[{"name":"f"},{"x":1},{"name":"third"}]}`,
		`{"raw":{"keep":"all"},"any":{"keep":[1]},"map":{"a":1},"when":"2024-01-02T03:04:05Z","bytes":"aGk="}`,
		`{"quoted":"12","-":"dash","Skipped":"no","untaged":"u","private":"p"}`,
		`{"inner":[1],"list":{"name":"x"},"ptr":"str","action":5}`,
		`{"\u0061ction":"escaped","acti\u006fn":"again","ac\ntion":1}`,
		"{\"inner\":{\"n\u212ame\":\"kelvin\"},\"\u017fkipped\":1}",
		`{"nested":{"k":{"name":"n","junk":2}}}`,
		`[]`, `null`, `"s"`, `{"action":`, `{"a":1}x`, ``,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var whole, trimmed trimDoc
		werr := json.Unmarshal(data, &whole)
		out, ok := Trim(data, reflect.TypeFor[trimDoc]())
		if !ok {
			if json.Valid(data) {
				t.Fatalf("Trim refused valid JSON %q", data)
			}
			return
		}
		if !json.Valid(out) {
			t.Fatalf("Trim(%q) = %q, not JSON", data, out)
		}
		terr := json.Unmarshal(out, &trimmed)
		if (werr == nil) != (terr == nil) {
			t.Fatalf("%q: whole: %v; trimmed %q: %v", data, werr, out, terr)
		}
		if werr == nil && !reflect.DeepEqual(whole, trimmed) {
			t.Fatalf("%q decodes as\n%+v\ntrimmed to %q as\n%+v", data, whole, out, trimmed)
		}
	})
}

func TestTrimDrops(t *testing.T) {
	out, ok := Trim([]byte(` {"action": "opened", "sender": {"login": "x"}, "inner": {"name": "a", "extra": [1, 2]}} `), reflect.TypeFor[trimDoc]())
	if want := `{"action":"opened","inner":{"name":"a"}}`; !ok || string(out) != want {
		t.Fatalf("Trim = %s, %v; want %s", out, ok, want)
	}
}
