package spectator

import (
	"bytes"
	"compress/flate"
	"io"
	"sync"
	"testing"

	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/wire"
	"github.com/stretchr/testify/require"
)

func inflate(t testing.TB, b []byte) []byte {
	t.Helper()
	out, err := io.ReadAll(flate.NewReader(bytes.NewReader(b)))
	require.NoError(t, err)
	return out
}

func TestCodecOfNamesTheSubprotocolsCodec(t *testing.T) {
	require.Equal(t, CodecJSON, CodecOf(""))
	require.Equal(t, CodecJSON, CodecOf(wire.SubprotocolJSON))
	require.Equal(t, CodecJSON, CodecOf("gsd.unknown"))
	require.Equal(t, CodecMsgpack, CodecOf(wire.SubprotocolMsgpack))
	require.Equal(t, CodecDeflate, CodecOf(wire.SubprotocolWatchDeflate))
	for _, sp := range Subprotocols {
		require.True(t, sp == wire.SubprotocolJSON || CodecOf(sp) != CodecJSON, "%s has a codec", sp)
	}
}

// Each codec's bytes say what the frame's JSON says; the deflated ones
// are made once and shared.
func TestFrameEncodedInEachCodecSaysTheSame(t *testing.T) {
	g := newGame(t, "w", map[string]fsm.FieldRule{"x": {Type: fsm.KindInt, Policy: fsm.PolicyAuthoritative}})
	g.act("p1", set("p1", "x", fsm.Int(7)))
	a, err := NewAccess(fsm.Rules{Fields: map[string]fsm.FieldRule{"x": {Type: fsm.KindInt, Policy: fsm.PolicyAuthoritative}}})
	require.NoError(t, err)
	tk := NewTicker(a, NewState("w"), nil)
	require.NoError(t, tk.Apply(g.events[0]))
	f, err := encode(wire.TypeWatchDelta, 1, tk.Delta(View{}))
	require.NoError(t, err)

	b, binary, err := f.Encoded(CodecJSON)
	require.NoError(t, err)
	require.False(t, binary)
	require.Equal(t, f.Data, b)

	b, binary, err = f.Encoded(CodecMsgpack)
	require.NoError(t, err)
	require.True(t, binary)
	var d wire.WatchDelta
	require.NoError(t, wire.UnmarshalMsgpack(b, &d))
	require.EqualValues(t, 7, d.Entities["p1"].Fields["x"].Value.Int)

	b, binary, err = f.Encoded(CodecDeflate)
	require.NoError(t, err)
	require.True(t, binary)
	require.Equal(t, f.Data, inflate(t, b))
	again, _, _ := f.Encoded(CodecDeflate)
	require.Same(t, &b[0], &again[0], "deflated once per frame")
}

// BenchmarkFrameDeflate: the CPU of deflating one frame of the bandwidth
// ruler's deltas (a tick of the bench load, about 2 kB of JSON), paid
// once per frame for all its viewers; ns/op is per frame. Run it short:
// go test -run X -bench FrameDeflate -benchtime=2000x -count 3 ./spectator
func BenchmarkFrameDeflate(b *testing.B) {
	evs := battleEvents(b, benchRulerLoad)
	frames := rulerFrames(b, evs)
	var n int
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		f := frames[i%len(frames)]
		g := &Frame{Type: f.Type, Seq: f.Seq, Data: f.Data}
		n += len(g.Deflate())
	}
	b.ReportMetric(float64(n)/float64(b.N), "B/frame")
}

// BenchmarkFrameLeanDeflate: as BenchmarkFrameDeflate, for versions=false
// (the versions stripped, then deflated); ns/op is per frame.
func BenchmarkFrameLeanDeflate(b *testing.B) {
	frames := rulerFrames(b, battleEvents(b, benchRulerLoad))
	var n int
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		f := frames[i%len(frames)]
		g := &Frame{Type: f.Type, Seq: f.Seq, Data: f.Data}
		n += len(g.LeanDeflate())
	}
	b.ReportMetric(float64(n)/float64(b.N), "B/frame")
}

// Viewers of one frame ask for its encodings at once: each is made once
// and all get the same bytes.
func TestFrameEncodingsAreMadeOnceForConcurrentViewers(t *testing.T) {
	f := &Frame{Type: wire.TypeWatchDelta, Data: []byte(`{"type":"delta","entities":{"a":{"version":2,"fields":{"x":{"value":1,"version":2}}}}}`)}
	codecs := []Codec{CodecJSON, CodecDeflate, CodecJSON | CodecLean, CodecDeflate | CodecLean}
	got := make([][][]byte, 8)
	var wg sync.WaitGroup
	for i := range got {
		wg.Go(func() {
			for _, c := range codecs {
				b, _, err := f.Encoded(c)
				if err == nil {
					got[i] = append(got[i], b)
				}
			}
		})
	}
	wg.Wait()
	for i := range got {
		require.Len(t, got[i], len(codecs))
		for j := range codecs {
			require.Same(t, &got[0][j][0], &got[i][j][0])
		}
	}
	require.Equal(t, `{"type":"delta","entities":{"a":{"fields":{"x":{"value":1}}}}}`, string(inflate(t, got[0][3])))
}
