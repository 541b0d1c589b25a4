package wire

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sync"
)

// The canonical msgpack form: every map, at any depth, has its entries in
// the bytewise order of their encoded keys, as deterministic CBOR orders
// them (RFC 8949, 4.2.1). Go maps come out of the msgpack library in Go's
// random map order (v5.4.1 sorts only map[string]string, map[string]bool
// and map[string]any), and structs in their fields' declaration order, so
// MarshalMsgpack encodes and then puts every map in order (canonicalizer).
// For string keys, all the protocol has, the order of encoded keys is
// shorter keys first, then equal lengths bytewise (CompareMsgpackKeys),
// because a string's head is its length, in the smallest form that holds
// it, and the heads' codes grow with it.

// CompareMsgpackKeys orders two map keys as their msgpack encodings do in
// the canonical form: shorter first, then bytewise. Hand-written maps
// (encoded with NewMsgpackEncoder) write their keys in this order.
func CompareMsgpackKeys(a, b string) int {
	if c := cmp.Compare(len(a), len(b)); c != 0 {
		return c
	}
	return cmp.Compare(a, b)
}

// SortMsgpackKeys sorts keys by CompareMsgpackKeys.
func SortMsgpackKeys(keys []string) { slices.SortFunc(keys, CompareMsgpackKeys) }

// canonicalizer rewrites msgpack bytes into the canonical form; its
// buffers are reused across messages (canonicalizers).
type canonicalizer struct {
	enc  bytes.Buffer // MarshalMsgpack's encoding, before it is put in order
	out  []byte       // the bytes being put in order, in place
	ents []mapEntry   // the entries of the maps being put in order, innermost last
	tmp  []byte       // a copy of one map's entries while they are reordered
}

// mapEntry is one map entry in canonicalizer.out: its key at [start, key),
// its value at [key, end).
type mapEntry struct{ start, key, end int }

var canonicalizers = sync.Pool{New: func() any { return new(canonicalizer) }}

// canonicalMsgpack returns the canonical form of b, which holds exactly
// one msgpack value, in a new slice of len(b) bytes.
func canonicalMsgpack(b []byte) ([]byte, error) {
	c := canonicalizers.Get().(*canonicalizer)
	defer canonicalizers.Put(c)
	return c.canonical(b)
}

func (c *canonicalizer) canonical(b []byte) ([]byte, error) {
	c.out = append(make([]byte, 0, len(b)), b...)
	c.ents = c.ents[:0]
	end, err := c.value(0)
	if err == nil && end != len(b) {
		err = fmt.Errorf("%d trailing bytes", len(b)-end)
	}
	out := c.out
	c.out = nil
	if err != nil {
		return nil, fmt.Errorf("gsd/wire: msgpack: canonical form: %w", err)
	}
	return out, nil
}

var errTruncated = errors.New("truncated value")

// value puts the value at c.out[off:] in canonical form, in place (a map's
// entries keep their bytes and change places), and returns where it ends.
func (c *canonicalizer) value(off int) (int, error) {
	items, raw, head, err := msgpackHead(c.out[off:])
	if err != nil {
		return 0, err
	}
	next := off + head + raw
	if next > len(c.out) {
		return 0, errTruncated
	}
	if !isMsgpackMap(c.out[off]) {
		for range items {
			if next, err = c.value(next); err != nil {
				return 0, err
			}
		}
		return next, nil
	}
	body := next
	base := len(c.ents)
	for range items / 2 {
		e := mapEntry{start: next}
		if e.key, err = c.value(next); err != nil {
			return 0, err
		}
		if e.end, err = c.value(e.key); err != nil {
			return 0, err
		}
		next = e.end
		c.ents = append(c.ents, e)
	}
	ents := c.ents[base:]
	c.ents = c.ents[:base]
	byKey := func(x, y mapEntry) int { return bytes.Compare(c.out[x.start:x.key], c.out[y.start:y.key]) }
	if slices.IsSortedFunc(ents, byKey) {
		return next, nil
	}
	// Stable, so equal keys (which the protocol never sends) keep their order.
	slices.SortStableFunc(ents, byKey)
	c.tmp = append(c.tmp[:0], c.out[body:next]...)
	w := body
	for _, e := range ents {
		w += copy(c.out[w:], c.tmp[e.start-body:e.end-body])
	}
	return next, nil
}

func isMsgpackMap(c byte) bool { return c >= 0x80 && c <= 0x8f || c == 0xde || c == 0xdf }

// msgpackHead reads a value's head: the number of values that follow it
// (n for an array of n, 2n for a map of n), the number of bytes that follow
// it as one unit (a str, bin or ext's data, a number's bytes) and its own
// size.
func msgpackHead(b []byte) (items, raw, head int, err error) {
	if len(b) == 0 {
		return 0, 0, 0, errTruncated
	}
	c := b[0]
	switch {
	case c <= 0x7f || c >= 0xe0 || c == 0xc0 || c == 0xc2 || c == 0xc3:
		return 0, 0, 1, nil
	case c <= 0x8f:
		return 2 * int(c&0x0f), 0, 1, nil
	case c <= 0x9f:
		return int(c & 0x0f), 0, 1, nil
	case c <= 0xbf:
		return 0, int(c & 0x1f), 1, nil
	}
	// The size of the length after the code, and the bytes after the
	// length that the length does not count (an ext's type).
	length := func(n, extra int) (int, int, int, error) {
		if len(b) < 1+n {
			return 0, 0, 0, errTruncated
		}
		var l uint64
		switch n {
		case 1:
			l = uint64(b[1])
		case 2:
			l = uint64(binary.BigEndian.Uint16(b[1:]))
		default:
			l = uint64(binary.BigEndian.Uint32(b[1:]))
		}
		return 0, int(l) + extra, 1 + n, nil
	}
	switch c {
	case 0xcc, 0xd0:
		return 0, 1, 1, nil
	case 0xcd, 0xd1, 0xd4: // fixext 1: its type and one byte
		return 0, 2, 1, nil
	case 0xd5:
		return 0, 3, 1, nil
	case 0xca, 0xce, 0xd2:
		return 0, 4, 1, nil
	case 0xd6:
		return 0, 5, 1, nil
	case 0xcb, 0xcf, 0xd3:
		return 0, 8, 1, nil
	case 0xd7:
		return 0, 9, 1, nil
	case 0xd8:
		return 0, 17, 1, nil
	case 0xc4, 0xd9:
		return length(1, 0)
	case 0xc5, 0xda:
		return length(2, 0)
	case 0xc6, 0xdb:
		return length(4, 0)
	case 0xc7:
		return length(1, 1)
	case 0xc8:
		return length(2, 1)
	case 0xc9:
		return length(4, 1)
	case 0xdc, 0xdd, 0xde, 0xdf:
		n := 2
		if c&1 == 1 {
			n = 4
		}
		_, l, h, err := length(n, 0)
		if c >= 0xde {
			l *= 2
		}
		return l, 0, h, err
	}
	return 0, 0, 0, fmt.Errorf("code 0x%02x is not msgpack", c)
}
