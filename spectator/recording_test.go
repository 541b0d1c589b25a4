package spectator

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/wire"
	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"
)

// TestPropertyARecordingShowsTheLiveViewAtEveryFrame records a random
// view of a random game in random steps, reads the file back, and
// requires it to show, at each frame's seq, what the view saw of the live
// world then, and no byte the view may not see.
func TestPropertyARecordingShowsTheLiveViewAtEveryFrame(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		pw := newPropWorld(t)
		viewers := pw.viewers(t)
		v := viewers[rapid.IntRange(0, len(viewers)-1).Draw(t, "viewer")]
		fd := newFeed()
		live := map[uint64][]fsm.EntityView{0: nil}
		teamsAt := map[uint64]refFields{0: {}}
		for range rapid.IntRange(1, 30).Draw(t, "events") {
			ev := pw.step(t)
			fd.push(ev)
			ents, _, err := pw.g.f.Entities("w")
			require.NoError(t, err)
			live[ev.Seq] = ents
			teamsAt[ev.Seq] = pw.sides()
		}
		r, err := NewReplay(ReplayConfig{World: "w", Access: pw.a, Subscribe: fd.subscribe}, v.view)
		require.NoError(t, err)
		var file bytes.Buffer
		from := time.Unix(0, t0).Add(time.Duration(rapid.IntRange(0, 10).Draw(t, "from")) * time.Second)
		step := time.Duration(rapid.IntRange(1, 5).Draw(t, "step")) * time.Second
		to := time.Unix(0, max(pw.g.time, from.UnixNano()))
		require.NoError(t, Record(context.Background(), r, &file, from, to, step))

		rec, err := ReadRecording(bytes.NewReader(file.Bytes()))
		require.NoError(t, err)
		n := uint64(len(pw.g.events))
		want := Keyframe(pw.a, SeedState("w", n, 0, live[n]), nil, v.view)
		requireSameEntities(t, want.Entities, rec.At(n).Entities) // every change it saw, to the end
		for _, line := range bytes.Split(bytes.TrimSpace(file.Bytes()), []byte("\n")) {
			var head struct{ Seq uint64 }
			require.NoError(t, json.Unmarshal(line, &head))
			pw.viewerWho = teamsAt[head.Seq].who
			pw.checkBytes(t, v, line, teamsAt[head.Seq].who)
			want = Keyframe(pw.a, SeedState("w", head.Seq, 0, live[head.Seq]), nil, v.view)
			requireSameEntities(t, want.Entities, rec.At(head.Seq).Entities)
		}
	})
}

func TestRecordRefusesABadSpanAndStopsWhereTheReplayStops(t *testing.T) {
	a := access(t, map[string]string{"x": ""}, nil, fsm.TeamRule{})
	g := newGame(t, "w", strFields("x"))
	fd := newFeed()
	for _, v := range []string{"a", "b", "c"} {
		fd.push(g.act("ann", set("ann", "x", fsm.String(v))))
	}
	now := time.Unix(0, g.events[1].Time).Add(time.Minute + time.Second)
	r, err := NewReplay(ReplayConfig{World: "w", Access: a, Subscribe: fd.subscribe, Delay: time.Minute,
		MaxClockSkew: time.Second, Now: func() time.Time { return now }}, View{})
	require.NoError(t, err)
	var file bytes.Buffer
	require.Error(t, Record(context.Background(), r, &file, time.Unix(0, t0), time.Unix(0, t0), 0))
	require.Error(t, Record(context.Background(), r, &file, time.Unix(0, g.time), time.Unix(0, t0), time.Second))
	err = Record(context.Background(), r, &file, time.Unix(0, t0), time.Unix(0, g.time), time.Second)
	require.ErrorIs(t, err, ErrNotReached, "the delay holds event 3 back")
	rec, err := ReadRecording(&file)
	require.NoError(t, err)
	_, last := rec.Span()
	require.Equal(t, uint64(2), last)
	require.Equal(t, fsm.String("b"), *rec.At(99).Entities["ann"].Fields["x"].Value)
	require.Empty(t, rec.At(0).Entities)

	fd.fail(errors.New("archive gap"))
	r, err = NewReplay(ReplayConfig{World: "w", Access: a, Subscribe: fd.subscribe}, View{})
	require.NoError(t, err)
	require.ErrorContains(t, Record(context.Background(), r, &file, time.Unix(0, t0), time.Unix(0, g.time), time.Second), "archive gap")
}

type failWriter struct{ n int }

func (w *failWriter) Write(p []byte) (int, error) {
	if w.n -= len(p); w.n < 0 {
		return 0, errors.New("disk full")
	}
	return len(p), nil
}

func TestRecordReportsAWriteFailure(t *testing.T) {
	a := access(t, map[string]string{"x": ""}, nil, fsm.TeamRule{})
	g := newGame(t, "w", strFields("x"))
	fd := newFeed()
	for i := range 600 { // more than bufio's buffer
		fd.push(g.act("ann", set("ann", "x", fsm.String(strings.Repeat("v", 20)+string(rune('a'+i%26))))))
	}
	for _, room := range []int{0, 5000} {
		r, err := NewReplay(ReplayConfig{World: "w", Access: a, Subscribe: fd.subscribe}, View{})
		require.NoError(t, err)
		err = Record(context.Background(), r, &failWriter{n: room}, time.Unix(0, t0), time.Unix(0, g.time), time.Second)
		require.ErrorContains(t, err, "disk full")
	}
}

func TestReadRecordingRefusesWhatIsNotAReplayFile(t *testing.T) {
	defer func(n int) { maxReplayLine = n }(maxReplayLine)
	maxReplayLine = 1 << 10
	for name, file := range map[string]string{
		"empty":            "",
		"not json":         "hello\n",
		"delta first":      `{"type":"delta","world":"w","seq":1}` + "\n",
		"bad entities":     `{"type":"keyframe","world":"w","entities":7}` + "\n",
		"bad delta body":   `{"type":"keyframe","world":"w"}` + "\n" + `{"type":"delta","world":"w","seq":1,"entities":7}` + "\n",
		"going back":       `{"type":"keyframe","world":"w","seq":5}` + "\n" + `{"type":"keyframe","world":"w","seq":3}` + "\n",
		"bad keyframe":     `{"type":"keyframe","world":7}` + "\n",
		"bad delta":        `{"type":"keyframe","world":"w"}` + "\n" + `{"type":"delta","world":7}` + "\n",
		"out of order":     `{"type":"keyframe","world":"w","seq":5}` + "\n" + `{"type":"delta","world":"w","seq":5}` + "\n",
		"another world":    `{"type":"keyframe","world":"w"}` + "\n" + `{"type":"delta","world":"v","seq":1}` + "\n",
		"a line too long":  `{"type":"keyframe","world":"` + strings.Repeat("w", 2<<10) + `"}`,
		"an aggregate":     `{"type":"keyframe","world":"w"}` + "\n" + `{"type":"view","world":"w"}` + "\n",
		"an events frame":  `{"type":"events"}` + "\n",
		"a truncated line": `{"type":"keyframe"`,
	} {
		_, err := ReadRecording(strings.NewReader(file))
		require.Error(t, err, name)
	}
}

func TestApplyDeltaLeavesTheKeyframeItStartedFromAsItWas(t *testing.T) {
	v := fsm.Int(1)
	k := &wire.Keyframe{Entities: map[string]wire.WatchEntity{"a": {Version: 1, Fields: map[string]wire.WatchField{"x": {Value: &v, Version: 1}}}}}
	orig := k.Entities
	w := fsm.Int(2)
	ApplyDelta(k, &wire.WatchDelta{Seq: 2, Entities: map[string]wire.WatchEntity{
		"a": {Version: 2, Fields: map[string]wire.WatchField{"y": {Value: &w, Version: 2}}},
		"b": {Version: 2, Fields: map[string]wire.WatchField{"y": {Value: &w, Version: 2}}},
	}})
	require.Len(t, orig["a"].Fields, 1)
	require.Len(t, k.Entities["a"].Fields, 2)
	require.Equal(t, uint64(2), k.Seq)
	ApplyDelta(k, &wire.WatchDelta{Seq: 3, Entities: map[string]wire.WatchEntity{"a": {Replace: true}, "b": {Deleted: true}}})
	require.Empty(t, k.Entities)
	k = &wire.Keyframe{}
	ApplyDelta(k, &wire.WatchDelta{Seq: 1, Entities: map[string]wire.WatchEntity{"a": {Version: 1}}})
	ApplyDelta(k, &wire.WatchDelta{Seq: 2, Entities: map[string]wire.WatchEntity{"a": {Version: 2, Fields: map[string]wire.WatchField{"y": {Value: &w}}}}})
	require.Len(t, k.Entities["a"].Fields, 1)
}

func TestARecordingWithoutEntitiesStartsEmpty(t *testing.T) {
	rec, err := ReadRecording(strings.NewReader(`{"type":"keyframe","world":"w","seq":3}` + "\n"))
	require.NoError(t, err)
	k := rec.At(3)
	require.NotNil(t, k.Entities)
	require.Empty(t, k.Entities)
	first, last := rec.Span()
	require.Equal(t, [2]uint64{3, 3}, [2]uint64{first, last})
}

// FuzzReadRecording: any bytes read as a replay file give an error or a
// recording that seeks anywhere, never a panic.
func FuzzReadRecording(f *testing.F) {
	f.Add([]byte(`{"type":"keyframe","world":"w","seq":1,"entities":{"a":{"version":1,"fields":{"x":{"value":1,"version":1}}}}}` + "\n" +
		`{"type":"delta","world":"w","from":2,"seq":2,"entities":{"a":{"version":2,"replace":true}}}` + "\n" +
		`{"type":"keyframe","world":"w","seq":3}` + "\n"))
	f.Add([]byte(`{"type":"delta"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		rec, err := ReadRecording(bytes.NewReader(b))
		if err != nil {
			return
		}
		first, last := rec.Span()
		for _, seq := range []uint64{0, first, (first + last) / 2, last, last + 1} {
			k := rec.At(seq)
			require.NotNil(t, k.Entities)
		}
	})
}
