package wire

import (
	"bytes"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/vmihailenco/msgpack/v5"
	"pgregory.net/rapid"
)

func TestCanonicalMsgpackSortsEveryMapAndKeepsOtherBytes(t *testing.T) {
	// {"b":{"y":1,"x":-1},"a":[{"d":0.5,"c":"s"},nil,true],"cc":{}}
	in := []byte{0x83, 0xa1, 'b', 0x82, 0xa1, 'y', 0x01, 0xa1, 'x', 0xff, 0xa1, 'a', 0x93,
		0x82, 0xa1, 'd', 0xcb, 0x3f, 0xe0, 0, 0, 0, 0, 0, 0, 0xa1, 'c', 0xa1, 's', 0xc0, 0xc3, 0xa2, 'c', 'c', 0x80}
	want := []byte{0x83, 0xa1, 'a', 0x93, 0x82, 0xa1, 'c', 0xa1, 's', 0xa1, 'd', 0xcb, 0x3f, 0xe0, 0, 0, 0, 0, 0, 0,
		0xc0, 0xc3, 0xa1, 'b', 0x82, 0xa1, 'x', 0xff, 0xa1, 'y', 0x01, 0xa2, 'c', 'c', 0x80}
	got, err := canonicalMsgpack(in)
	require.NoError(t, err)
	require.Equal(t, want, got)
	again, err := canonicalMsgpack(got)
	require.NoError(t, err)
	require.Equal(t, want, again, "the canonical form is its own canonical form")
}

func TestCanonicalMsgpackReadsEveryHead(t *testing.T) {
	// One value of each msgpack head, as the only element of an array of
	// 1, so the bytes after each head are read as the head says.
	values := [][]byte{
		{0x05}, {0xe0}, {0xc0}, {0xc2}, {0xc3}, // fixint, nil, bools
		{0x80}, {0x90}, {0xa0}, // empty fixmap, fixarray, fixstr
		{0xcc, 1}, {0xd0, 1}, {0xcd, 1, 2}, {0xd1, 1, 2},
		{0xca, 1, 2, 3, 4}, {0xce, 1, 2, 3, 4}, {0xd2, 1, 2, 3, 4},
		{0xcb, 1, 2, 3, 4, 5, 6, 7, 8}, {0xcf, 1, 2, 3, 4, 5, 6, 7, 8}, {0xd3, 1, 2, 3, 4, 5, 6, 7, 8},
		{0xd4, 1, 1}, {0xd5, 1, 1, 2}, {0xd6, 1, 1, 2, 3, 4},
		{0xd7, 1, 1, 2, 3, 4, 5, 6, 7, 8}, append([]byte{0xd8, 1}, make([]byte, 16)...),
		{0xc4, 1, 'x'}, {0xd9, 1, 'x'}, {0xc5, 0, 1, 'x'}, {0xda, 0, 1, 'x'},
		{0xc6, 0, 0, 0, 1, 'x'}, {0xdb, 0, 0, 0, 1, 'x'},
		{0xc7, 1, 9, 'x'}, {0xc8, 0, 1, 9, 'x'}, {0xc9, 0, 0, 0, 1, 9, 'x'},
		{0xdc, 0, 1, 0x01}, {0xdd, 0, 0, 0, 1, 0x01},
		{0xde, 0, 2, 0xa1, 'b', 0x01, 0xa1, 'a', 0x02}, {0xdf, 0, 0, 0, 1, 0xa1, 'a', 0x01},
	}
	for _, v := range values {
		in := append([]byte{0x91}, v...)
		got, err := canonicalMsgpack(in)
		require.NoError(t, err, "% x", v)
		if v[0] == 0xde {
			require.Equal(t, []byte{0x91, 0xde, 0, 2, 0xa1, 'a', 0x02, 0xa1, 'b', 0x01}, got, "map 16 sorted")
			continue
		}
		require.Equal(t, in, got, "% x", v)
	}
}

func TestCanonicalMsgpackRefusesWhatIsNotOneValue(t *testing.T) {
	for _, bad := range [][]byte{
		{},                      // nothing
		{0x01, 0x02},            // trailing bytes
		{0xc1},                  // reserved code
		{0xa2, 'a'},             // short fixstr
		{0xd9},                  // no length
		{0xda, 0},               // short length
		{0xdb, 0, 0, 0},         // short length
		{0xde, 0},               // short map 16 head
		{0xcb, 0x00},            // short float
		{0x92, 0x01},            // short array
		{0x82, 0xa1, 'a', 0x01}, // short map
		{0x81, 0xa1},            // short key
		{0x81, 0xa1, 'a'},       // no value
		{0x81, 0xa1, 'a', 0xc1}, // bad value
		{0x91, 0xc1},            // bad element
	} {
		_, err := canonicalMsgpack(bad)
		require.Error(t, err, "% x", bad)
	}
	// A failure leaves nothing behind for the next message.
	got, err := canonicalMsgpack([]byte{0x82, 0xa1, 'b', 0x01, 0xa1, 'a', 0x02})
	require.NoError(t, err)
	require.Equal(t, []byte{0x82, 0xa1, 'a', 0x02, 0xa1, 'b', 0x01}, got)
}

func TestCompareMsgpackKeysIsTheOrderOfTheEncodedKeys(t *testing.T) {
	encode := func(s string) []byte {
		var buf bytes.Buffer
		require.NoError(t, msgpack.NewEncoder(&buf).EncodeString(s))
		return buf.Bytes()
	}
	// Lengths around the fixstr / str 8 / str 16 boundaries.
	key := rapid.Custom(func(t *rapid.T) string {
		n := rapid.SampledFrom([]int{0, 1, 2, 30, 31, 32, 33, 254, 255, 256, 257}).Draw(t, "len")
		return strings.Repeat(rapid.SampledFrom([]string{"a", "b", "é"}).Draw(t, "c"), n)[:n]
	})
	rapid.Check(t, func(rt *rapid.T) {
		a, b := key.Draw(rt, "a"), key.Draw(rt, "b")
		if got, want := CompareMsgpackKeys(a, b), bytes.Compare(encode(a), encode(b)); got != want {
			rt.Fatalf("CompareMsgpackKeys(%q, %q) = %d, the encoded keys compare %d", a, b, got, want)
		}
	})
	keys := []string{"type", "seq", "events", "from", "client_seq", "x"}
	SortMsgpackKeys(keys)
	require.Equal(t, []string{"x", "seq", "from", "type", "events", "client_seq"}, keys)
	require.True(t, slices.IsSortedFunc(keys, CompareMsgpackKeys))
}

// BenchmarkMarshalMsgpackEvent encodes a typical event (3 changes, its
// versions map) as the server does once per event: "canonical" is
// MarshalMsgpack, "library" the msgpack library alone with the same
// settings and buffers (Go map order, fields in declaration order), to
// show what the canonical order costs.
func BenchmarkMarshalMsgpackEvent(b *testing.B) {
	ev := Event{World: "arena", Seq: 1000, Index: 6000, Time: 1700000000000, Player: "player-17", ClientSeq: 1300,
		Priority: "critical", Status: "applied",
		Versions: map[string]map[string]uint64{"player-17": {"x": 1000, "hp": 1000, "state": 1000}},
		Changes: []Change{
			{Entity: "player-17", Field: "x", Op: "set", Value: &Value{Kind: KindFloat, Float: 103.25}, Version: 1000},
			{Entity: "player-17", Field: "hp", Op: "incr", Value: &Value{Kind: KindInt, Int: 90}, Version: 1000},
			{Entity: "player-17", Field: "state", Op: "set", Value: &Value{Kind: KindString, Str: "running"}, Version: 1000},
		}}
	b.Run("canonical", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := MarshalMsgpack(ev); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("library", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			enc := msgpack.GetEncoder()
			var buf bytes.Buffer
			buf.Grow(256)
			enc.Reset(&buf)
			configure(enc)
			if err := enc.Encode(ev); err != nil {
				b.Fatal(err)
			}
			msgpack.PutEncoder(enc)
		}
	})
}
