package spectator

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/gsd-dev/gsd/fanout"
	"github.com/gsd-dev/gsd/fsm"
	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"
)

// TestPropertyReplayAtAnySeqIsTheLiveState plays random games, keeps the
// live FSM's entities and entity hash after every event, and requires a
// replay seeked to any seq, then advanced through the rest in random
// steps of leader time, to show at each point exactly the live state
// then, and to hash as it did.
func TestPropertyReplayAtAnySeqIsTheLiveState(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		pw := newPropWorld(t)
		fd := newFeed()
		live := map[uint64][]fsm.EntityView{}
		hashes := map[uint64]uint64{}
		n := rapid.IntRange(1, 30).Draw(t, "events")
		for range n {
			ev := pw.step(t)
			fd.push(ev)
			ents, seq, err := pw.g.f.Entities("w")
			require.NoError(t, err)
			require.Equal(t, ev.Seq, seq)
			live[seq] = ents
			h, _, err := pw.g.f.EntityHash("w")
			require.NoError(t, err)
			hashes[seq] = h
		}
		view := View{sees: 0xff} // every visibility: the state itself
		a := pw.a
		r, err := NewReplay(ReplayConfig{World: "w", Access: a, Subscribe: fd.subscribe}, view)
		require.NoError(t, err)
		at := uint64(rapid.IntRange(1, n).Draw(t, "seek"))
		f, err := r.SeekSeq(context.Background(), at)
		require.NoError(t, err)
		c := &client{}
		c.keyframe(decodeKeyframe(t, f))
		// Some of the world's fields are declared (their types and
		// policies come from the rules), and the others inferred.
		rules := fsm.Rules{Fields: map[string]fsm.FieldRule{}}
		for n, fr := range pw.fields {
			if rapid.Bool().Draw(t, "declared "+n) {
				rules.Fields[n] = fr
			}
		}
		want := func(seq uint64) {
			k := Keyframe(a, SeedState("w", seq, 0, live[seq]), nil, view)
			requireSameEntities(t, k.Entities, c.ents)
			h, err := r.tk.State().EntityHash(rules)
			require.NoError(t, err)
			require.Equal(t, hashes[seq], h, "the replay's entity hash at %d is the live world's", seq)
		}
		want(at)
		for r.Seq() < uint64(n) {
			to := pw.g.events[r.Seq()].Time + int64(rapid.IntRange(0, 3).Draw(t, "step"))*int64(time.Second)
			f, err := r.Advance(context.Background(), time.Unix(0, to))
			require.NoError(t, err)
			if f != nil {
				c.delta(decodeDelta(t, f))
			}
			want(r.Seq())
		}
	})
}

func TestReplaySeeksBySeqAndTimeAndStopsAtTheFeedsEnd(t *testing.T) {
	a := access(t, map[string]string{"x": ""}, nil, fsm.TeamRule{})
	g := newGame(t, "w", strFields("x"))
	fd := newFeed()
	for _, v := range []string{"a", "b", "c", "d"} {
		fd.push(g.act("ann", set("ann", "x", fsm.String(v))))
	}
	r, err := NewReplay(ReplayConfig{World: "w", Access: a, Subscribe: fd.subscribe}, View{})
	require.NoError(t, err)
	ctx := context.Background()
	f, err := r.SeekTime(ctx, time.Unix(0, g.events[1].Time))
	require.NoError(t, err)
	require.Equal(t, uint64(2), decodeKeyframe(t, f).Seq)
	f, err = r.Advance(ctx, time.Unix(0, g.events[1].Time))
	require.NoError(t, err)
	require.Nil(t, f, "no time passed")
	f, err = r.SeekSeq(ctx, 9)
	require.ErrorIs(t, err, ErrNotReached)
	k := decodeKeyframe(t, f)
	require.Equal(t, uint64(4), k.Seq, "where it stopped")
	require.Equal(t, fsm.String("d"), *k.Entities["ann"].Fields["x"].Value)
	fd.push(g.act("ann", set("ann", "x", fsm.String("e"))))
	f, err = r.Advance(ctx, time.Unix(0, g.time))
	require.NoError(t, err)
	require.Equal(t, uint64(5), decodeDelta(t, f).Seq, "it reads on as the world goes on")
}

func TestReplayOfALiveWorldNeverPassesTheDelay(t *testing.T) {
	a := access(t, map[string]string{"x": ""}, nil, fsm.TeamRule{})
	g := newGame(t, "w", strFields("x"))
	fd := newFeed()
	for _, v := range []string{"a", "b", "c"} {
		fd.push(g.act("ann", set("ann", "x", fsm.String(v))))
	}
	now := time.Unix(0, g.events[1].Time).Add(time.Minute + time.Second) // event 2 is old enough, 3 is not
	r, err := NewReplay(ReplayConfig{World: "w", Access: a, Subscribe: fd.subscribe, Delay: time.Minute,
		MaxClockSkew: time.Second, Now: func() time.Time { return now }}, View{})
	require.NoError(t, err)
	f, err := r.SeekSeq(context.Background(), 3)
	require.ErrorIs(t, err, ErrNotReached)
	require.Equal(t, uint64(2), decodeKeyframe(t, f).Seq)
	f, err = r.Advance(context.Background(), time.Unix(0, g.time))
	require.ErrorIs(t, err, ErrNotReached)
	require.Nil(t, f)
	now = now.Add(time.Second)
	f, err = r.Advance(context.Background(), time.Unix(0, g.time))
	require.NoError(t, err)
	require.Equal(t, uint64(3), decodeDelta(t, f).Seq)
}

func TestReplayReportsFeedFailures(t *testing.T) {
	a := access(t, map[string]string{"x": ""}, nil, fsm.TeamRule{})
	g := newGame(t, "w", strFields("x"))
	fd := newFeed()
	fd.push(g.act("ann", set("ann", "x", fsm.String("a"))))
	r, err := NewReplay(ReplayConfig{World: "w", Access: a, Subscribe: fd.subscribe}, View{})
	require.NoError(t, err)
	fd.fail(errors.New("archive gap"))
	_, err = r.SeekSeq(context.Background(), 1)
	require.ErrorContains(t, err, "archive gap")
	_, err = r.Advance(context.Background(), time.Unix(0, g.time))
	require.ErrorContains(t, err, "archive gap")

	// Events out of order.
	bad := func(string, uint64) (fanout.Subscription, error) {
		f := newFeed()
		f.push(&fsm.Event{World: "w", Seq: 1}, &fsm.Event{World: "w", Seq: 3})
		return f.subscribe("w", 1)
	}
	r, err = NewReplay(ReplayConfig{World: "w", Access: a, Subscribe: bad}, View{})
	require.NoError(t, err)
	_, err = r.SeekSeq(context.Background(), 3)
	require.ErrorIs(t, err, ErrGap)

	_, err = NewReplay(ReplayConfig{Access: a, Subscribe: fd.subscribe}, View{})
	require.Error(t, err, "no world")
}

func TestEntityHashNeedsTheKindOfAnUndeclaredEmptySet(t *testing.T) {
	s := SeedState("w", 2, 0, []fsm.EntityView{{ID: "e", Fields: []fsm.FieldView{
		{Name: "tags", Policy: fsm.PolicySet, Version: 2},
	}}})
	_, err := s.EntityHash(fsm.Rules{})
	require.ErrorIs(t, err, ErrHashUnknown)
	_, err = s.EntityHash(fsm.Rules{Fields: map[string]fsm.FieldRule{"tags": {Type: fsm.KindString, Policy: fsm.PolicySet}}})
	require.NoError(t, err, "declared: its type is the rules'")
}

func TestASeededStateHashesAsTheWorldItWasReadFrom(t *testing.T) {
	fields := map[string]fsm.FieldRule{"best": {Type: fsm.KindInt, Policy: fsm.PolicyMax}}
	g := newGame(t, "w", fields)
	g.act("ann", set("ann", "best", fsm.Int(3)), incr("ann", "hp", 2), add("ann", "tags", fsm.String("a")),
		set("ann", "name", fsm.String("Ann")))
	ents, seq, err := g.f.Entities("w")
	require.NoError(t, err)
	want, _, err := g.f.EntityHash("w")
	require.NoError(t, err)
	got, err := SeedState("w", seq, 0, ents).EntityHash(fsm.Rules{Fields: fields})
	require.NoError(t, err)
	require.Equal(t, want, got)
}
