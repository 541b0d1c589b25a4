package client

import (
	"encoding/binary"

	"github.com/gsd-dev/gsd/wire"
)

// The msgpack twin of ws_scan.go: a hand-rolled reader of msgpack events
// and delta frames for PlayOptions.HeadersOnly. It takes the codes the
// server writes (maps with string keys, unsigned integers for seqs,
// integers for times, strings, booleans) and gives up on any other (a
// nil, a float for a seq, a bin string, a struct as an array, nesting
// deeper than scanMaxDepth, bytes after the frame); the frame is then
// decoded by wire.UnmarshalMsgpack, which takes those or refuses them.
// Keys are matched exactly, as the msgpack decoder matches them.

// scanMsgpack reads b, a msgpack message, as scanFrame reads JSON.
func scanMsgpack(b []byte, world string, evs []wire.Event) (h scanned, complete bool) {
	h.evs = evs[:0]
	s := mscanner{b: b}
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
			n, ok := s.arrayLen()
			h.evs = h.evs[:0]
			for ; ok && n > 0; n-- {
				h.evs = append(h.evs, wire.Event{})
				ok = s.event(&h.evs[len(h.evs)-1], world)
			}
			return ok
		case "entities":
			nonEmpty := false
			ok := s.object(func([]byte) bool {
				nonEmpty = true
				return s.isMap() && s.skip()
			})
			h.entities = nonEmpty
			return ok
		}
		return s.skip()
	})
	return h, complete && s.i == len(s.b)
}

// mscanner reads msgpack from b at i.
type mscanner struct {
	b     []byte
	i     int
	depth int
}

// take returns the next n bytes, or not ok.
func (s *mscanner) take(n int) ([]byte, bool) {
	if n < 0 || n > len(s.b)-s.i {
		return nil, false
	}
	v := s.b[s.i : s.i+n]
	s.i += n
	return v, true
}

func (s *mscanner) code() (byte, bool) {
	v, ok := s.take(1)
	if !ok {
		return 0, false
	}
	return v[0], true
}

// be reads an n-byte big-endian unsigned integer (n is 1, 2, 4 or 8).
func (s *mscanner) be(n int) (uint64, bool) {
	v, ok := s.take(n)
	if !ok {
		return 0, false
	}
	switch n {
	case 1:
		return uint64(v[0]), true
	case 2:
		return uint64(binary.BigEndian.Uint16(v)), true
	case 4:
		return uint64(binary.BigEndian.Uint32(v)), true
	}
	return binary.BigEndian.Uint64(v), true
}

func (s *mscanner) isMap() bool {
	if s.i >= len(s.b) {
		return false
	}
	c := s.b[s.i]
	return c&0xf0 == 0x80 || c == 0xde || c == 0xdf
}

// length reads the length of a map, array or string whose fix codes are
// fix (with a mask of fixMask) and whose 8-, 16- and 32-bit codes are
// c8 (0 for none), c16 and c32.
func (s *mscanner) length(fix, fixMask, c8, c16, c32 byte) (int, bool) {
	c, ok := s.code()
	switch {
	case !ok:
		return 0, false
	case c&^fixMask == fix:
		return int(c & fixMask), true
	case c == c8 && c8 != 0:
		n, ok := s.be(1)
		return int(n), ok
	case c == c16:
		n, ok := s.be(2)
		return int(n), ok
	case c == c32:
		n, ok := s.be(4)
		return int(n), ok && n <= uint64(len(s.b))
	}
	return 0, false
}

func (s *mscanner) mapLen() (int, bool)   { return s.length(0x80, 0x0f, 0, 0xde, 0xdf) }
func (s *mscanner) arrayLen() (int, bool) { return s.length(0x90, 0x0f, 0, 0xdc, 0xdd) }

// str reads a str-coded string; its bytes alias b.
func (s *mscanner) str() ([]byte, bool) {
	n, ok := s.length(0xa0, 0x1f, 0xd9, 0xda, 0xdb)
	if !ok {
		return nil, false
	}
	return s.take(n)
}

// object reads a map with string keys, calling field for each key with
// the scanner at its value.
func (s *mscanner) object(field func(key []byte) bool) bool {
	if s.depth >= scanMaxDepth {
		return false
	}
	n, ok := s.mapLen()
	if !ok {
		return false
	}
	s.depth++
	defer func() { s.depth-- }()
	for ; n > 0; n-- {
		key, ok := s.str()
		if !ok || !field(key) {
			return false
		}
	}
	return true
}

// uint reads an unsigned integer (a positive fixint or a uint code).
func (s *mscanner) uint(v *uint64) bool {
	c, ok := s.code()
	switch {
	case !ok:
		return false
	case c <= 0x7f:
		*v = uint64(c)
		return true
	case c >= 0xcc && c <= 0xcf:
		*v, ok = s.be(1 << (c - 0xcc))
		return ok
	}
	return false
}

// int reads an integer that fits an int64.
func (s *mscanner) int(v *int64) bool {
	c, ok := s.code()
	switch {
	case !ok:
		return false
	case c <= 0x7f:
		*v = int64(c)
		return true
	case c >= 0xe0:
		*v = int64(int8(c))
		return true
	case c >= 0xcc && c <= 0xcf:
		u, ok := s.be(1 << (c - 0xcc))
		*v = int64(u)
		return ok && u <= 1<<63-1
	case c >= 0xd0 && c <= 0xd3:
		n := 1 << (c - 0xd0)
		u, ok := s.be(n)
		*v = int64(u<<(64-8*n)) >> (64 - 8*n) // sign-extend
		return ok
	}
	return false
}

// event reads one event's header fields into ev.
func (s *mscanner) event(ev *wire.Event, world string) bool {
	str := func(dst *string, known ...string) bool {
		v, ok := s.str()
		*dst = intern(v, known...)
		return ok
	}
	return s.object(func(key []byte) bool {
		switch string(key) {
		case "world":
			return str(&ev.World, world)
		case "seq":
			return s.uint(&ev.Seq)
		case "index":
			return s.uint(&ev.Index)
		case "time":
			return s.int(&ev.Time)
		case "player":
			return str(&ev.Player)
		case "client_seq":
			return s.uint(&ev.ClientSeq)
		case "priority":
			return str(&ev.Priority, wire.PriorityNameCritical, wire.PriorityNameBulk)
		case "status":
			return str(&ev.Status, "applied", "conflict", "rejected")
		case "reason":
			return str(&ev.Reason)
		case "duplicate":
			c, ok := s.code()
			ev.Duplicate = c == 0xc3
			return ok && (c == 0xc2 || c == 0xc3)
		}
		return s.skip()
	})
}

// skip moves past one value, checking its codes and lengths.
func (s *mscanner) skip() bool {
	if s.i >= len(s.b) {
		return false
	}
	c := s.b[s.i]
	switch {
	case c <= 0x7f || c >= 0xe0 || c == 0xc0 || c == 0xc2 || c == 0xc3: // fixints, nil, bools
		s.i++
		return true
	case c&0xf0 == 0x80 || c == 0xde || c == 0xdf:
		return s.object(func([]byte) bool { return s.skip() })
	case c&0xf0 == 0x90 || c == 0xdc || c == 0xdd:
		if s.depth >= scanMaxDepth {
			return false
		}
		n, ok := s.arrayLen()
		s.depth++
		defer func() { s.depth-- }()
		for ; ok && n > 0; n-- {
			ok = s.skip()
		}
		return ok
	case c&0xe0 == 0xa0 || c == 0xd9 || c == 0xda || c == 0xdb:
		_, ok := s.str()
		return ok
	}
	s.i++
	switch c {
	case 0xcc, 0xd0:
		_, ok := s.take(1)
		return ok
	case 0xcd, 0xd1:
		_, ok := s.take(2)
		return ok
	case 0xca, 0xce, 0xd2:
		_, ok := s.take(4)
		return ok
	case 0xcb, 0xcf, 0xd3:
		_, ok := s.take(8)
		return ok
	case 0xc4, 0xc5, 0xc6: // bin 8/16/32
		n, ok := s.be(1 << (c - 0xc4))
		if ok {
			_, ok = s.take(int(min(n, uint64(len(s.b)+1))))
		}
		return ok
	case 0xd4, 0xd5, 0xd6, 0xd7, 0xd8: // fixext 1..16
		_, ok := s.take(1 + 1<<(c-0xd4))
		return ok
	case 0xc7, 0xc8, 0xc9: // ext 8/16/32
		n, ok := s.be(1 << (c - 0xc7))
		if ok {
			_, ok = s.take(1 + int(min(n, uint64(len(s.b)+1))))
		}
		return ok
	}
	return false // 0xc1: never used
}
