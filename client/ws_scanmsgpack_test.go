package client

import (
	"bytes"
	"os"
	"testing"

	"github.com/gsd-dev/gsd/wire"
	"github.com/stretchr/testify/require"
)

// The msgpack reader reads the frames the server writes (its golden
// frames and the bench's) itself.
func TestScanMsgpackReadsTheServersFrames(t *testing.T) {
	var frames [][]byte
	for _, n := range []int{1, 10} {
		ev, delta := framesFor(t, playCodec{msgpack: true}, n)
		frames = append(frames, ev, delta)
	}
	for _, name := range []string{"play_frames_msgpack_0.bin", "play_frames_msgpack_1.bin"} {
		b, err := os.ReadFile("../api/play/testdata/golden/" + name)
		require.NoError(t, err)
		frames = append(frames, b)
	}
	for i, b := range frames {
		h, complete := scanMsgpack(b, "arena", nil)
		require.True(t, complete, "frame %d", i)
		require.Contains(t, []string{"events", "delta"}, h.typ)
		var m headerMsg
		require.NoError(t, wire.UnmarshalMsgpack(b, &m))
		require.Len(t, h.evs, len(m.Events))
		for j := range m.Events {
			require.Equal(t, m.Events[j].event(), h.evs[j])
		}
	}
}

// Whatever the msgpack reader gives up on is decoded by the msgpack
// decoder: a Play with HeadersOnly queues what a whole decode queues,
// less the changes, and refuses what it refuses.
func TestScanMsgpackAgreesWithTheDecoder(t *testing.T) {
	k := playCodec{msgpack: true}
	enc := func(v any) []byte {
		b, err := k.marshal(v)
		require.NoError(t, err)
		return b
	}
	ev := func(kv ...any) map[string]any {
		m := map[string]any{}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i].(string)] = kv[i+1]
		}
		return m
	}
	frame := func(events ...any) map[string]any {
		return map[string]any{"type": "events", "from": 2, "seq": 2, "events": events}
	}
	valid := enc(frame(ev("seq", 2, "time", -5, "duplicate", true, "reason", "r", "x", []any{1.5, nil, "s", []byte{1}, map[string]any{"a": false}})))
	for _, tc := range []struct {
		name     string
		b        []byte
		complete bool
	}{
		{"all kinds skipped", valid, true},
		{"an empty delta", enc(map[string]any{"type": "delta", "from": 2, "seq": 4, "entities": map[string]any{}}), true},
		{"a delta", enc(map[string]any{"type": "delta", "from": 2, "seq": 4, "entities": map[string]any{"e": map[string]any{"deleted": 3}}}), true},
		{"a big time", enc(frame(ev("seq", 2, "time", int64(1)<<62))), true},
		{"a negative time", enc(frame(ev("seq", 2, "time", int64(-1)<<40))), true},
		{"a nil seq", enc(map[string]any{"type": "events", "from": 2, "seq": nil, "events": []any{}}), false},
		{"a negative seq", enc(map[string]any{"type": "events", "from": 2, "seq": -2, "events": []any{}}), false},
		{"a float seq", enc(map[string]any{"type": "events", "from": 2, "seq": 2.5, "events": []any{}}), false},
		{"nil events", enc(map[string]any{"type": "events", "from": 2, "seq": 2, "events": nil}), false},
		{"an event not a map", enc(frame(2)), false},
		{"a bin player", enc(frame(ev("seq", 2, "player", []byte("ann")))), false},
		{"a nil duplicate", enc(frame(ev("seq", 2, "duplicate", nil))), false},
		{"an entity not a map", enc(map[string]any{"type": "delta", "from": 2, "seq": 4, "entities": map[string]any{"e": 1}}), false},
		{"trailing bytes", append(append([]byte{}, valid...), 0xc0), false},
		{"cut short", valid[:len(valid)-3], false},
		{"an unused code", []byte{0x81, 0xa1, 'x', 0xc1}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, complete := scanMsgpack(tc.b, "w", nil)
			require.Equal(t, tc.complete, complete)
			whole, lean := benchPlay(false, k), benchPlay(true, k)
			defer whole.cancel()
			defer lean.cancel()
			whole.received, whole.lastEvent, lean.received, lean.lastEvent = 1, 1, 1, 1
			werr := whole.message(nil, k.messageType(), tc.b)
			lerr := lean.message(nil, k.messageType(), tc.b)
			require.Equal(t, werr == nil, lerr == nil, "whole: %v, headers only: %v", werr, lerr)
			want, got := drain(whole), drain(lean)
			require.Len(t, got, len(want))
			for j := range want {
				require.Equal(t, want[j].covered, got[j].covered)
				require.Equal(t, want[j].skip, got[j].skip)
				require.Equal(t, withoutChanges(want[j].ev), got[j].ev)
			}
		})
	}
}

// Whatever the msgpack reader reads to the end, the msgpack decoder
// decodes into a headerMsg with the same header fields.
func FuzzScanMsgpackReadsWhatTheDecoderReads(f *testing.F) {
	k := playCodec{msgpack: true}
	for _, n := range []int{1, 3} {
		ev, delta := framesFor(f, k, n)
		f.Add(ev)
		f.Add(delta)
	}
	b, err := k.marshal(map[string]any{"type": "events", "from": 2, "seq": 300, "events": []any{
		map[string]any{"seq": 70000, "time": -5, "duplicate": true, "x": []any{1.5, nil, "s", []byte{1}, map[string]any{"a": false}}}}})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Fuzz(func(t *testing.T, b []byte) {
		h, complete := scanMsgpack(b, "w", nil)
		if !complete {
			return
		}
		var m headerMsg
		require.NoError(t, wire.UnmarshalMsgpack(b, &m), "%x", b)
		require.Equal(t, m.Type, h.typ)
		require.Equal(t, m.Seq, h.seq)
		require.Equal(t, m.From, h.from)
		require.Equal(t, len(m.Entities) > 0, h.entities)
		require.Len(t, h.evs, len(m.Events))
		for i := range m.Events {
			require.Equal(t, m.Events[i].event(), h.evs[i])
		}
	})
}

// Every msgpack code, in the values the reader takes and in those it
// skips, read as the decoder reads it; and cut anywhere, not read.
func TestScanMsgpackReadsEveryCode(t *testing.T) {
	be := func(n int, v uint64) []byte {
		b := make([]byte, n)
		for i := range n {
			b[n-1-i] = byte(v >> (8 * i))
		}
		return b
	}
	cat := func(parts ...[]byte) []byte {
		var b []byte
		for _, p := range parts {
			b = append(b, p...)
		}
		return b
	}
	str := func(s string) []byte { return cat([]byte{0xa0 | byte(len(s))}, []byte(s)) }
	long := func(n int) []byte { return bytes.Repeat([]byte{'a'}, n) }
	skipped := [][]byte{
		{0xc0}, {0xc2}, {0x05}, {0xff},
		cat([]byte{0xcc}, be(1, 200)), cat([]byte{0xcd}, be(2, 300)), cat([]byte{0xce}, be(4, 70000)), cat([]byte{0xcf}, be(8, 1<<40)),
		cat([]byte{0xd0}, be(1, 0x80)), cat([]byte{0xd1}, be(2, 0x8000)), cat([]byte{0xd2}, be(4, 1)), cat([]byte{0xd3}, be(8, 1)),
		cat([]byte{0xca}, be(4, 0)), cat([]byte{0xcb}, be(8, 0)),
		cat([]byte{0xd9, 40}, long(40)), cat([]byte{0xda}, be(2, 300), long(300)), cat([]byte{0xdb}, be(4, 3), long(3)),
		cat([]byte{0xc4, 2}, long(2)), cat([]byte{0xc5}, be(2, 2), long(2)), cat([]byte{0xc6}, be(4, 2), long(2)),
		{0xd4, 1, 0}, {0xd5, 1, 0, 0}, cat([]byte{0xd6, 1}, long(4)), cat([]byte{0xd7, 1}, long(8)), cat([]byte{0xd8, 1}, long(16)),
		cat([]byte{0xc7, 2, 1}, long(2)), cat([]byte{0xc8}, be(2, 2), []byte{1}, long(2)), cat([]byte{0xc9}, be(4, 2), []byte{1}, long(2)),
		cat([]byte{0xdc}, be(2, 1), []byte{0x01}), cat([]byte{0xdd}, be(4, 1), []byte{0x01}),
		cat([]byte{0xde}, be(2, 1), str("k"), []byte{0x01}), cat([]byte{0xdf}, be(4, 1), str("k"), []byte{0x01}),
	}
	var x []byte
	for _, v := range skipped {
		x = append(x, v...)
	}
	x = cat([]byte{0xdc}, be(2, uint64(len(skipped))), x)
	event := func(seq, time []byte) []byte {
		return cat([]byte{0x84}, str("seq"), seq, str("time"), time, str("x"), x, str("player"), cat([]byte{0xd9, 3}, []byte("ann")))
	}
	for _, tc := range []struct {
		name      string
		seq, time []byte
	}{
		{"uint8 and int8", cat([]byte{0xcc}, be(1, 200)), cat([]byte{0xd0}, be(1, 0x9c))},
		{"uint16 and int16", cat([]byte{0xcd}, be(2, 300)), cat([]byte{0xd1}, be(2, 0xfc18))},
		{"uint32 and int32", cat([]byte{0xce}, be(4, 70000)), cat([]byte{0xd2}, be(4, 1<<31))},
		{"uint64 and uint64", cat([]byte{0xcf}, be(8, 1<<40)), cat([]byte{0xcf}, be(8, 1<<40))},
		{"fixint and negative fixint", []byte{0x07}, []byte{0xe0}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := cat([]byte{0xde}, be(2, 4), str("type"), cat([]byte{0xda}, be(2, 6), []byte("events")), str("from"), []byte{0x01},
				str("seq"), cat([]byte{0xce}, be(4, 1)), str("events"), cat([]byte{0xdd}, be(4, 1), event(tc.seq, tc.time)))
			h, complete := scanMsgpack(b, "w", nil)
			require.True(t, complete)
			var m headerMsg
			require.NoError(t, wire.UnmarshalMsgpack(b, &m))
			require.Equal(t, wire.TypeEvents, h.typ)
			require.Equal(t, m.Seq, h.seq)
			require.Len(t, h.evs, 1)
			require.Equal(t, m.Events[0].event(), h.evs[0])
			for i := range b {
				_, complete := scanMsgpack(b[:i], "w", nil)
				require.False(t, complete, "cut at %d", i)
			}
		})
	}
	_, complete := scanMsgpack(cat([]byte{0x81}, str("events"), []byte{0x91}, event([]byte{0x01}, cat([]byte{0xcf}, be(8, 1<<63)))), "w", nil)
	require.False(t, complete, "a time over int64")
}
