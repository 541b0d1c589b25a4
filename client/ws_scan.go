package client

import (
	"bytes"
	"unicode/utf8"

	"github.com/gsd-dev/gsd/wire"
)

// A hand-rolled reader of the JSON events and delta frames for
// PlayOptions.HeadersOnly. encoding/json spends most of a frame's time in
// reflection even when it only skips keys; this reads the keys a
// headerMsg has and checks and skips the rest. It handles the frames as
// the server writes them; on anything else (invalid JSON, a string with an
// escape, a null, a number that is not a plain integer, a key that
// differs from a known one only in case, which encoding/json would take,
// nesting deeper than scanMaxDepth) it gives up and the frame is decoded
// with encoding/json, whose errors a bad frame then gets. What it accepts
// is JSON that encoding/json would decode the same
// (FuzzScanFrameReadsWhatEncodingJSONReads).

// scanMaxDepth bounds the nesting the reader follows (encoding/json's own
// bound is 10000).
const scanMaxDepth = 1000

// scanFrame reads b, a JSON message, into h (an events frame's events
// appended to evs[:0], without their changes). complete is false when the
// scan gave up; h.typ then means nothing.
func scanFrame(b []byte, world string, evs []wire.Event) (h scanned, complete bool) {
	h.evs = evs[:0]
	s := scanner{b: b, world: world}
	complete = s.object(func(key []byte) bool {
		switch string(key) {
		case "type":
			t, ok := s.str()
			h.typ = internType(t)
			return ok
		case "seq":
			return s.uint(&h.seq)
		case "from":
			return s.uint(&h.from)
		case "events":
			h.evs = h.evs[:0]
			return s.array(func() bool {
				h.evs = append(h.evs, wire.Event{})
				return s.event(&h.evs[len(h.evs)-1])
			})
		case "entities":
			var ok bool
			h.entities, ok = s.nonEmptyObject()
			return ok
		}
		return s.skipUnknown(key, "type", "seq", "from", "events", "entities")
	})
	s.ws()
	return h, complete && s.i == len(s.b)
}

// scanned is what scanFrame read of a frame.
type scanned struct {
	typ       string
	seq, from uint64
	evs       []wire.Event
	entities  bool // a delta names an entity
}

func internType(t []byte) string {
	switch string(t) {
	case wire.TypeEvents:
		return wire.TypeEvents
	case wire.TypeDelta:
		return wire.TypeDelta
	}
	return string(t)
}

// scanner reads valid JSON from b at i.
type scanner struct {
	b     []byte
	i     int
	world string
	depth int
}

func (s *scanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// peek returns the next byte after white space (0 at the end).
func (s *scanner) peek() byte {
	s.ws()
	if s.i < len(s.b) {
		return s.b[s.i]
	}
	return 0
}

// object reads an object, calling field for each key with the scanner at
// its value; field reads or skips the value.
func (s *scanner) object(field func(key []byte) bool) bool {
	if s.peek() != '{' || s.depth >= scanMaxDepth {
		return false
	}
	s.i++
	s.depth++
	defer func() { s.depth-- }()
	if s.peek() == '}' {
		s.i++
		return true
	}
	for {
		key, ok := s.str()
		if !ok || s.peek() != ':' {
			return false
		}
		s.i++
		if !field(key) {
			return false
		}
		switch s.peek() {
		case ',':
			s.i++
		case '}':
			s.i++
			return true
		default:
			return false
		}
	}
}

// array reads an array, calling elem for each element.
func (s *scanner) array(elem func() bool) bool {
	if s.peek() != '[' || s.depth >= scanMaxDepth {
		return false
	}
	s.i++
	s.depth++
	defer func() { s.depth-- }()
	if s.peek() == ']' {
		s.i++
		return true
	}
	for {
		if !elem() {
			return false
		}
		switch s.peek() {
		case ',':
			s.i++
		case ']':
			s.i++
			return true
		default:
			return false
		}
	}
}

// str reads a string without escapes (not ok with one) and returns its
// bytes, which alias b.
func (s *scanner) str() ([]byte, bool) {
	if s.peek() != '"' {
		return nil, false
	}
	start, high := s.i+1, false
	for j := start; j < len(s.b); j++ {
		switch c := s.b[j]; {
		case c == '\\' || c < 0x20:
			return nil, false
		case c >= utf8.RuneSelf:
			high = true
		case c == '"':
			if high && !utf8.Valid(s.b[start:j]) {
				return nil, false // encoding/json would replace what is not UTF-8
			}
			s.i = j + 1
			return s.b[start:j], true
		}
	}
	return nil, false
}

// uint reads a plain non-negative integer that fits a uint64.
func (s *scanner) uint(v *uint64) bool {
	s.ws()
	var n uint64
	j := s.i
	for ; j < len(s.b) && s.b[j] >= '0' && s.b[j] <= '9'; j++ {
		d := uint64(s.b[j] - '0')
		if n > (1<<64-1-d)/10 {
			return false
		}
		n = n*10 + d
	}
	if j == s.i || (s.b[s.i] == '0' && j > s.i+1) || (j < len(s.b) && (s.b[j] == '.' || s.b[j] == 'e' || s.b[j] == 'E')) {
		return false
	}
	s.i, *v = j, n
	return true
}

// int reads a plain integer that fits an int64.
func (s *scanner) int(v *int64) bool {
	neg := s.peek() == '-'
	if neg {
		s.i++
	}
	var u uint64
	if !s.uint(&u) || u > 1<<63-1 {
		return false // -1<<63 too: rare enough for encoding/json
	}
	*v = int64(u)
	if neg {
		*v = -*v
	}
	return true
}

// nonEmptyObject skips the object of objects at i (a delta's entities)
// and reports whether it has a key.
func (s *scanner) nonEmptyObject() (nonEmpty, ok bool) {
	ok = s.object(func([]byte) bool {
		nonEmpty = true
		return s.peek() == '{' && s.skip()
	})
	return nonEmpty, ok
}

// event reads one event's header fields into ev.
func (s *scanner) event(ev *wire.Event) bool {
	return s.object(func(key []byte) bool {
		switch string(key) {
		case "world":
			v, ok := s.str()
			ev.World = intern(v, s.world)
			return ok
		case "seq":
			return s.uint(&ev.Seq)
		case "index":
			return s.uint(&ev.Index)
		case "time":
			return s.int(&ev.Time)
		case "player":
			v, ok := s.str()
			ev.Player = string(v)
			return ok
		case "client_seq":
			return s.uint(&ev.ClientSeq)
		case "priority":
			v, ok := s.str()
			ev.Priority = intern(v, wire.PriorityNameCritical, wire.PriorityNameBulk)
			return ok
		case "status":
			v, ok := s.str()
			ev.Status = intern(v, "applied", "conflict", "rejected")
			return ok
		case "reason":
			v, ok := s.str()
			ev.Reason = string(v)
			return ok
		case "duplicate":
			switch s.peek() {
			case 't':
				ev.Duplicate = true
			case 'f':
				ev.Duplicate = false
			default:
				return false
			}
			return s.skip()
		}
		return s.skipUnknown(key, "world", "seq", "index", "time", "player", "client_seq", "priority", "status", "reason", "duplicate")
	})
}

// intern returns the one of known v spells, so that it costs no
// allocation, or a copy of v.
func intern(v []byte, known ...string) string {
	for _, k := range known {
		if string(v) == k {
			return k
		}
	}
	return string(v)
}

// skipUnknown skips the value of a key that is none of known; a key that
// matches one of them but for case is not ok (encoding/json would take
// it).
func (s *scanner) skipUnknown(key []byte, known ...string) bool {
	for _, k := range known {
		if bytes.EqualFold(key, []byte(k)) {
			return false
		}
	}
	return s.skip()
}

// skip moves past one value, checking that it is JSON.
func (s *scanner) skip() bool {
	switch s.peek() {
	case '{':
		return s.object(func([]byte) bool { return s.skip() })
	case '[':
		return s.array(s.skip)
	case '"':
		return s.skipString()
	case 't':
		return s.literal("true")
	case 'f':
		return s.literal("false")
	case 'n':
		return s.literal("null")
	}
	return s.number()
}

func (s *scanner) literal(lit string) bool {
	if !bytes.HasPrefix(s.b[s.i:], []byte(lit)) {
		return false
	}
	s.i += len(lit)
	return true
}

// skipString moves past a string at i, escapes and all.
func (s *scanner) skipString() bool {
	for j := s.i + 1; j < len(s.b); j++ {
		switch c := s.b[j]; {
		case c < 0x20:
			return false
		case c == '"':
			s.i = j + 1
			return true
		case c == '\\':
			j++
			if j >= len(s.b) {
				return false
			}
			switch s.b[j] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				if j+4 >= len(s.b) {
					return false
				}
				for _, h := range s.b[j+1 : j+5] {
					if !isHex(h) {
						return false
					}
				}
				j += 4
			default:
				return false
			}
		}
	}
	return false
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

// number moves past a JSON number at i.
func (s *scanner) number() bool {
	j := s.i
	if j < len(s.b) && s.b[j] == '-' {
		j++
	}
	switch {
	case j < len(s.b) && s.b[j] == '0':
		j++
	case j < len(s.b) && s.b[j] >= '1' && s.b[j] <= '9':
		j = digits(s.b, j)
	default:
		return false
	}
	if j < len(s.b) && s.b[j] == '.' {
		k := digits(s.b, j+1)
		if k == j+1 {
			return false
		}
		j = k
	}
	if j < len(s.b) && (s.b[j] == 'e' || s.b[j] == 'E') {
		j++
		if j < len(s.b) && (s.b[j] == '+' || s.b[j] == '-') {
			j++
		}
		k := digits(s.b, j)
		if k == j {
			return false
		}
		j = k
	}
	s.i = j
	return true
}

// digits returns the index after the digits of b from j.
func digits(b []byte, j int) int {
	for j < len(b) && b[j] >= '0' && b[j] <= '9' {
		j++
	}
	return j
}
