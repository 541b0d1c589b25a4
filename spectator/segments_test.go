package spectator

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/gsd-dev/gsd/wire"
	"github.com/stretchr/testify/require"
)

// A segmenter driven by hand: frames at chosen times.
func newTestSegmenter(keep int) *Cutter {
	return newCutter(SegmentConfig{Duration: time.Second, Keep: keep, Idle: time.Minute, Max: 1})
}

func frameOf(t *testing.T, typ string, seq uint64, v any) *Frame {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return &Frame{Type: typ, Seq: seq, Data: b}
}

// Segments open with the state the frames so far build and each
// aggregated view's latest frame; a keyframe mid-segment replaces the
// state; a stall makes at most Keep empty segments.
func TestSegmenterCutsFramesIntoKeyframeFirstSegments(t *testing.T) {
	t.Parallel()
	sg := newTestSegmenter(3)
	at := func(sec float64) time.Time { return time.Unix(0, int64(sec*float64(time.Second))) }
	// Nothing opens before the first keyframe; a view frame before it is
	// kept for the opening.
	require.NoError(t, sg.frame(frameOf(t, wire.TypeView, 0, wire.ViewFrame{Type: wire.TypeView, World: "w", Name: "board", Seq: 0}), at(10.1)))
	require.NoError(t, sg.frame(frameOf(t, wire.TypeWatchDelta, 1, wire.WatchDelta{Type: wire.TypeWatchDelta, Seq: 1}), at(10.1)))
	segs, cur := sg.Snapshot()
	require.Empty(t, segs)
	require.EqualValues(t, -1, cur)

	require.NoError(t, sg.frame(frameOf(t, wire.TypeKeyframe, 2, wire.Keyframe{Type: wire.TypeKeyframe, World: "w", Seq: 2, Entities: map[string]wire.WatchEntity{}}), at(10.2)))
	require.NoError(t, sg.frame(frameOf(t, wire.TypeWatchDelta, 3, wire.WatchDelta{Type: wire.TypeWatchDelta, World: "w", From: 3, Seq: 3,
		Entities: map[string]wire.WatchEntity{"e1": {Version: 3, Fields: map[string]wire.WatchField{"hp": {Version: 3}}}}}), at(10.5)))
	// The next second: segment 10 finishes, 11 opens with the state at 3.
	require.NoError(t, sg.frame(frameOf(t, wire.TypeKeyframe, 4, wire.Keyframe{Type: wire.TypeKeyframe, World: "w", Seq: 4, Entities: map[string]wire.WatchEntity{}}), at(11.1)))
	segs, cur = sg.Snapshot()
	require.EqualValues(t, 11, cur)
	require.Len(t, segs, 1)
	require.EqualValues(t, 10, segs[0].N)
	require.EqualValues(t, 2, segs[0].First)
	require.EqualValues(t, 3, segs[0].Last)
	lines := strings.Split(strings.TrimSuffix(string(segs[0].Data), "\n"), "\n")
	require.Len(t, lines, 3, "keyframe, the view, the delta")
	require.Contains(t, lines[0], `"seq":2`)
	require.Contains(t, lines[1], `"name":"board"`)
	require.Contains(t, lines[2], `"hp"`)

	// A stall of 100 s makes only the last Keep segments.
	require.NoError(t, sg.roll(at(111.5)))
	segs, cur = sg.Snapshot()
	require.EqualValues(t, 111, cur)
	require.Equal(t, []int64{108, 109, 110}, []int64{segs[0].N, segs[1].N, segs[2].N})
	for _, s := range segs {
		require.EqualValues(t, 4, s.First, "the mid-segment keyframe is the state after it")
		require.Contains(t, string(s.Data), `"name":"board"`)
	}
}

// Frames that do not decode stop the segmenter with an error.
func TestSegmenterRefusesFramesItCannotRead(t *testing.T) {
	t.Parallel()
	for _, typ := range []string{wire.TypeKeyframe, wire.TypeView} {
		require.Error(t, newTestSegmenter(1).frame(&Frame{Type: typ, Data: []byte("{")}, time.Now()), typ)
	}
	sg := newTestSegmenter(1)
	require.NoError(t, sg.frame(frameOf(t, wire.TypeKeyframe, 1, wire.Keyframe{Type: wire.TypeKeyframe, Seq: 1}), time.Now()))
	require.Error(t, sg.frame(&Frame{Type: wire.TypeWatchDelta, Data: []byte("{")}, time.Now()))
}
