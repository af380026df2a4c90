// Package jsontext reads JSON text without decoding it: it checks that
// text is JSON exactly as encoding/json would (its grammar, its nesting
// limit, no check of UTF-8) and says where values are, an order of
// magnitude faster than encoding/json's scanner. gitpoli uses it where
// that scanner ran over the same megabytes several times: input documents
// and recorded fixtures.
//
// What it earns, measured against encoding/json alone on 2026-12-02
// (benchstat, six runs each, workbench/fixture): loading the fixture
// corpus takes 6.2 ms, 16.4 ms without it (+165%, BenchmarkLoadCorpus);
// replaying it cold, where Normalize trims each webhook payload to the
// fields it reads, 7.5 ms, 17.7 ms without (+136%, BenchmarkReplayCorpusCold);
// reading an input document (inputjson.go), 2.6 µs, 8.0 µs through OPA's
// ast.ValueFromReader (+206%, BenchmarkParseInput). JSON v2
// (github.com/go-json-experiment/json v1.27.2), decoding the whole
// payload in Normalize's place with case-insensitive names as
// encoding/json matches them, closes most of that gap but not all of it:
// cold replay +20%; decoding each fixture whole with it, loading them
// +17%.
package jsontext

import "encoding/binary"

// MaxDepth is encoding/json's nesting limit.
const MaxDepth = 10000

// Scanner reads JSON text in Data from offset I.
type Scanner struct {
	Data []byte
	I    int
	buf  [64]byte // Trim's, for upper-casing keys
}

// Space skips white space.
func (s *Scanner) Space() {
	data, i := s.Data, s.I
	for i < len(data) && (data[i] == ' ' || data[i] == '\n' || data[i] == '\t' || data[i] == '\r') {
		i++
	}
	s.I = i
}

// Peek returns the next byte, or 0 at the end.
func (s *Scanner) Peek() byte {
	if s.I < len(s.Data) {
		return s.Data[s.I]
	}
	return 0
}

// Literal reads word (true, false or null).
func (s *Scanner) Literal(word string) bool {
	if len(s.Data)-s.I < len(word) || string(s.Data[s.I:s.I+len(word)]) != word {
		return false
	}
	s.I += len(word)
	return true
}

// Number reads a number.
func (s *Scanner) Number() bool {
	if s.Peek() == '-' {
		s.I++
	}
	switch {
	case s.Peek() == '0':
		s.I++
	case s.digits() == 0:
		return false
	}
	if s.Peek() == '.' {
		s.I++
		if s.digits() == 0 {
			return false
		}
	}
	if c := s.Peek(); c == 'e' || c == 'E' {
		s.I++
		if c := s.Peek(); c == '+' || c == '-' {
			s.I++
		}
		if s.digits() == 0 {
			return false
		}
	}
	return true
}

func (s *Scanner) digits() int {
	n := 0
	for s.I < len(s.Data) && s.Data[s.I] >= '0' && s.Data[s.I] <= '9' {
		s.I++
		n++
	}
	return n
}

// String reads a string, quotes included. plain is true when it holds
// only printable ASCII and no escapes, so that its text is its value.
func (s *Scanner) String() (plain, ok bool) {
	data, i := s.Data, s.I
	if i >= len(data) || data[i] != '"' {
		return false, false
	}
	i++
	plain = true
	for {
		for i+8 <= len(data) && !special(binary.LittleEndian.Uint64(data[i:])) {
			i += 8
		}
		for i < len(data) && printable[data[i]] {
			i++
		}
		if i >= len(data) {
			return false, false
		}
		switch c := data[i]; {
		case c == '"':
			s.I = i + 1
			return plain, true
		case c == '\\':
			plain = false
			s.I = i
			if !s.escape() {
				return false, false
			}
			i = s.I
		case c >= 0x80:
			plain = false
			i++
		default: // a control character
			return false, false
		}
	}
}

// special reports whether any of the eight bytes in x is not printable:
// a quote, a backslash, a control character or not ASCII. Strings are
// mostly long runs of printable ASCII; this skips them a word at a time.
// (The has-zero-byte tests can be true for a byte past one that is
// special, never false for one that is: the byte loop sorts it out.)
func special(x uint64) bool {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	quote := x ^ (ones * '"')
	backslash := x ^ (ones * '\\')
	control := (x - ones*0x20) &^ x
	return (control|(quote-ones)&^quote|(backslash-ones)&^backslash|x)&highs != 0
}

// printable holds the bytes a string may hold as they are and that are
// their own text: ASCII from space on, but for the quote and backslash.
var printable = func() (t [256]bool) {
	for c := 0x20; c < 0x80; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

func (s *Scanner) escape() bool {
	s.I++ // the backslash
	switch s.Peek() {
	case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
		s.I++
		return true
	case 'u':
		s.I++
		for range 4 {
			c := s.Peek()
			if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
				return false
			}
			s.I++
		}
		return true
	}
	return false
}

// Next reads what follows a member or element: a comma (more is true,
// and the white space after it is read too) or the container's close.
// ok is false for anything else.
func (s *Scanner) Next(close byte) (more, ok bool) {
	s.Space()
	switch s.Peek() {
	case ',':
		s.I++
		s.Space()
		return true, true
	case close:
		s.I++
		return false, true
	}
	return false, false
}

// Value reads one value inside a container at nesting depth (0 for a
// whole document).
func (s *Scanner) Value(depth int) bool {
	switch c := s.Peek(); {
	case c == '{':
		return s.Object(depth+1, nil)
	case c == '[':
		return s.array(depth + 1)
	case c == '"':
		_, ok := s.String()
		return ok
	case c == 't':
		return s.Literal("true")
	case c == 'f':
		return s.Literal("false")
	case c == 'n':
		return s.Literal("null")
	case c == '-' || c >= '0' && c <= '9':
		return s.Number()
	}
	return false
}

// Object reads an object at nesting depth (a document's top object is at
// 1), calling member, when
// it is not nil, with each member's raw key (between its quotes, escapes
// as written) and the offsets of its value in Data.
func (s *Scanner) Object(depth int, member func(key []byte, start, end int)) bool {
	if depth > MaxDepth || s.Peek() != '{' {
		return false
	}
	s.I++
	s.Space()
	if s.Peek() == '}' {
		s.I++
		return true
	}
	for {
		k := s.I
		if _, ok := s.String(); !ok {
			return false
		}
		key := s.Data[k+1 : s.I-1]
		s.Space()
		if s.Peek() != ':' {
			return false
		}
		s.I++
		s.Space()
		start := s.I
		if !s.Value(depth) {
			return false
		}
		if member != nil {
			member(key, start, s.I)
		}
		if more, ok := s.Next('}'); !more {
			return ok
		}
	}
}

func (s *Scanner) array(depth int) bool {
	if depth > MaxDepth {
		return false
	}
	s.I++ // [
	s.Space()
	if s.Peek() == ']' {
		s.I++
		return true
	}
	for {
		if !s.Value(depth) {
			return false
		}
		if more, ok := s.Next(']'); !more {
			return ok
		}
	}
}

// Valid reports whether data is one JSON value with white space around
// it, as json.Valid does.
func Valid(data []byte) bool {
	s := Scanner{Data: data}
	s.Space()
	if !s.Value(0) {
		return false
	}
	s.Space()
	return s.I == len(data)
}
