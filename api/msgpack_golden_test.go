package api

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"sort"
	"testing"

	"github.com/stretchr/testify/require"
)

// msgpack maps encoded from Go maps (an event's "versions", a welcome's
// "data") come out in Go's map order today: vmihailenco/msgpack v5.4.1
// honours SetSortMapKeys only for map[string]string, map[string]bool and
// map[string]any. So the golden msgpack files hold the canonical form,
// every map's entries sorted by their encoded key bytes, and the tests
// compare canonicalMsgpack(got) with them; every other byte (types, int
// widths, floats, strings, struct-field order) is compared as it is.

// canonicalMsgpack returns b with every map's entries sorted by key bytes.
// It fails on bytes that are not exactly one msgpack value.
func canonicalMsgpack(b []byte) ([]byte, error) {
	var out bytes.Buffer
	rest, err := canonicalValue(&out, b)
	if err != nil {
		return nil, err
	}
	if len(rest) != 0 {
		return nil, fmt.Errorf("msgpack: %d trailing bytes", len(rest))
	}
	return out.Bytes(), nil
}

// requireGoldenMsgpack compares the canonical form of got with a golden file.
func requireGoldenMsgpack(t *testing.T, name string, got []byte) {
	t.Helper()
	c, err := canonicalMsgpack(got)
	require.NoError(t, err)
	requireGoldenBinary(t, name, c)
}

// msgpackHead reads a value's head: its code, the length of the bytes
// that follow the head as one unit (str, bin, scalars) or the number of
// items (array n, map 2n), and the head's size.
func msgpackHead(b []byte) (items int, raw int, head int, err error) {
	if len(b) == 0 {
		return 0, 0, 0, fmt.Errorf("msgpack: truncated")
	}
	c := b[0]
	need := func(n int) (uint64, error) {
		if len(b) < 1+n {
			return 0, fmt.Errorf("msgpack: truncated head")
		}
		switch n {
		case 1:
			return uint64(b[1]), nil
		case 2:
			return uint64(binary.BigEndian.Uint16(b[1:])), nil
		}
		return uint64(binary.BigEndian.Uint32(b[1:])), nil
	}
	switch {
	case c <= 0x7f || c >= 0xe0 || c == 0xc0 || c == 0xc2 || c == 0xc3:
		return 0, 0, 1, nil
	case c >= 0x80 && c <= 0x8f:
		return 2 * int(c&0x0f), 0, 1, nil
	case c >= 0x90 && c <= 0x9f:
		return int(c & 0x0f), 0, 1, nil
	case c >= 0xa0 && c <= 0xbf:
		return 0, int(c & 0x1f), 1, nil
	}
	switch c {
	case 0xcc, 0xd0:
		return 0, 1, 1, nil
	case 0xcd, 0xd1:
		return 0, 2, 1, nil
	case 0xca, 0xce, 0xd2:
		return 0, 4, 1, nil
	case 0xcb, 0xcf, 0xd3:
		return 0, 8, 1, nil
	case 0xc4, 0xd9:
		n, err := need(1)
		return 0, int(n), 2, err
	case 0xc5, 0xda:
		n, err := need(2)
		return 0, int(n), 3, err
	case 0xc6, 0xdb:
		n, err := need(4)
		return 0, int(n), 5, err
	case 0xdc:
		n, err := need(2)
		return int(n), 0, 3, err
	case 0xdd:
		n, err := need(4)
		return int(n), 0, 5, err
	case 0xde:
		n, err := need(2)
		return 2 * int(n), 0, 3, err
	case 0xdf:
		n, err := need(4)
		return 2 * int(n), 0, 5, err
	}
	return 0, 0, 0, fmt.Errorf("msgpack: unsupported code 0x%02x", c)
}

func isMsgpackMap(c byte) bool { return c >= 0x80 && c <= 0x8f || c == 0xde || c == 0xdf }

// canonicalValue writes the canonical form of the value at the start of b
// and returns the bytes after it.
func canonicalValue(out *bytes.Buffer, b []byte) ([]byte, error) {
	items, raw, head, err := msgpackHead(b)
	if err != nil {
		return nil, err
	}
	if len(b) < head+raw {
		return nil, fmt.Errorf("msgpack: truncated value")
	}
	out.Write(b[:head+raw])
	rest := b[head+raw:]
	if !isMsgpackMap(b[0]) {
		for range items {
			if rest, err = canonicalValue(out, rest); err != nil {
				return nil, err
			}
		}
		return rest, nil
	}
	type entry struct{ key, both []byte }
	entries := make([]entry, items/2)
	for i := range entries {
		var e bytes.Buffer
		if rest, err = canonicalValue(&e, rest); err != nil {
			return nil, err
		}
		k := len(e.Bytes())
		if rest, err = canonicalValue(&e, rest); err != nil {
			return nil, err
		}
		entries[i] = entry{key: e.Bytes()[:k], both: e.Bytes()}
	}
	sort.SliceStable(entries, func(i, j int) bool { return bytes.Compare(entries[i].key, entries[j].key) < 0 })
	for _, e := range entries {
		out.Write(e.both)
	}
	return rest, nil
}

func TestGoldenCanonicalMsgpackSortsEveryMapAndKeepsOtherBytes(t *testing.T) {
	// {"b":{"y":1,"x":-1},"a":[{"d":0.5,"c":"s"},nil,true]}
	in := []byte{0x82, 0xa1, 'b', 0x82, 0xa1, 'y', 0x01, 0xa1, 'x', 0xff, 0xa1, 'a', 0x93,
		0x82, 0xa1, 'd', 0xcb, 0x3f, 0xe0, 0, 0, 0, 0, 0, 0, 0xa1, 'c', 0xa1, 's', 0xc0, 0xc3}
	want := []byte{0x82, 0xa1, 'a', 0x93, 0x82, 0xa1, 'c', 0xa1, 's', 0xa1, 'd', 0xcb, 0x3f, 0xe0, 0, 0, 0, 0, 0, 0,
		0xc0, 0xc3, 0xa1, 'b', 0x82, 0xa1, 'x', 0xff, 0xa1, 'y', 0x01}
	got, err := canonicalMsgpack(in)
	require.NoError(t, err)
	require.Equal(t, want, got)
	again, err := canonicalMsgpack(got)
	require.NoError(t, err)
	require.Equal(t, want, again)
	for _, bad := range [][]byte{{}, {0x82, 0xa1}, {0xc1}, {0x01, 0x02}, {0xd9}, {0xcb, 0x00}} {
		_, err := canonicalMsgpack(bad)
		require.Error(t, err, "% x", bad)
	}
}
