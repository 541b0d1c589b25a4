package client

import (
	"bytes"
	"encoding/json"

	"github.com/gsd-dev/gsd/wire"
)

// A hand-rolled reader of the JSON events and delta frames for
// PlayOptions.HeadersOnly. encoding/json spends most of a frame's time in
// reflection even when it only skips keys; this reads the keys a
// headerMsg has and skips the rest. It handles the frames as the server
// writes them; on anything else (a string with an escape, a null, a
// number that is not a plain integer, a key that differs from a known one
// only in case, which encoding/json would take) it gives up and the frame
// is decoded with encoding/json, whose errors a bad frame then gets.
// json.Valid runs first, so what it accepts is JSON and skipping a value
// needs no checks.

// scanFrame reads b, a JSON message, into h (an events frame's events
// appended to evs[:0], without their changes). complete is false when the
// scan gave up; h.typ then means nothing.
func scanFrame(b []byte, world string, evs []wire.Event) (h scanned, complete bool) {
	if !json.Valid(b) {
		return h, false
	}
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
			if s.peek() != '{' {
				return false
			}
			h.entities = s.nonEmptyObject()
			return true
		}
		return s.skipUnknown(key, "type", "seq", "from", "events", "entities")
	})
	return h, complete && s.peek() == 0
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
	if s.peek() != '{' {
		return false
	}
	s.i++
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
	if s.peek() != '[' {
		return false
	}
	s.i++
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
	start := s.i + 1
	for j := start; j < len(s.b); j++ {
		switch s.b[j] {
		case '\\':
			return nil, false
		case '"':
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
	if j == s.i || (j < len(s.b) && (s.b[j] == '.' || s.b[j] == 'e' || s.b[j] == 'E')) {
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

// nonEmptyObject skips the object at i and reports whether it has a key.
func (s *scanner) nonEmptyObject() bool {
	start := s.i
	s.i++
	nonEmpty := s.peek() != '}'
	s.i = start
	s.skip()
	return nonEmpty
}

// event reads one event's header fields into ev.
func (s *scanner) event(ev *wire.Event) bool {
	return s.object(func(key []byte) bool {
		switch string(key) {
		case "world":
			v, ok := s.str()
			ev.World = s.intern(v, s.world)
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
			ev.Priority = s.intern(v, wire.PriorityNameCritical, wire.PriorityNameBulk)
			return ok
		case "status":
			v, ok := s.str()
			ev.Status = s.intern(v, "applied", "conflict", "rejected")
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
			s.skip()
			return true
		}
		return s.skipUnknown(key, "world", "seq", "index", "time", "player", "client_seq", "priority", "status", "reason", "duplicate")
	})
}

// intern returns the one of known v spells, so that it costs no
// allocation, or a copy of v.
func (s *scanner) intern(v []byte, known ...string) string {
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
	s.skip()
	return true
}

// skip moves past one value, which json.Valid has checked.
func (s *scanner) skip() {
	s.ws()
	depth := 0
	for s.i < len(s.b) {
		c := s.b[s.i]
		switch c {
		case '"':
			s.i++
			for s.i < len(s.b) && s.b[s.i] != '"' {
				if s.b[s.i] == '\\' {
					s.i++
				}
				s.i++
			}
			s.i++
		case '{', '[':
			depth++
			s.i++
			continue
		case '}', ']':
			if depth == 0 {
				return // the end of the enclosing value
			}
			depth--
			s.i++
		case ',':
			if depth == 0 {
				return
			}
			s.i++
			continue
		case ' ', '\t', '\n', '\r':
			if depth == 0 {
				return
			}
			s.i++
			continue
		default: // a number, true, false or null
			s.i++
			continue
		}
		if depth == 0 {
			return
		}
	}
}
