package jepsen

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/gsd-dev/gsd/client"
	"github.com/stretchr/testify/require"
)

// A play session with events on both sides of a move's fence crossed
// it; a keyframe in such a session is a problem, and the note counts the
// sessions that crossed and those that ended before.
func TestMoveCheckPlayFlagsAKeyframeAcrossTheMove(t *testing.T) {
	evs := func(seqs ...uint64) []PlayEvent {
		var out []PlayEvent
		for _, s := range seqs {
			out = append(out, PlayEvent{Seq: s, Status: "applied"})
		}
		return out
	}
	m := &moveNemesis{moved: []worldMove{{world: "w0", from: 0, to: 1, fence: 10}}}
	pw := &PlayWorkload{Clients: []*PlayClient{
		{Player: "q0", World: "w0", Sessions: []*PlaySession{
			{ID: "a", Events: evs(9, 10, 11, 12)},
			{ID: "b", Events: evs(5, 6), End: "4410 archive_gap"},
			{ID: "c", Events: evs(20, 21)},
		}},
		{Player: "q1", World: "w1", Sessions: []*PlaySession{{ID: "d", Events: evs(1, 30)}}},
	}}
	r := &Result{}
	m.CheckPlay(pw, r)
	require.Empty(t, r.Problems)
	require.Equal(t, []string{"move w0 at seq 10: 1 play sessions crossed it without a keyframe, 1 ended at or before it"}, r.Notes)

	pw.Clients[0].Sessions[0].Events[2].Status = client.KeyframeStatus
	r = &Result{}
	m.CheckPlay(pw, r)
	require.Equal(t, []string{"move w0 at seq 10: play session a of q0 crossed it with a keyframe"}, r.Problems)
}

// With back, w0's first move goes to another shard and every later one
// back to the shard it came from (first the one that created it); w1
// stays. Without, a world never goes to a shard it has been on.
func TestMoveNextGoesBackAndForth(t *testing.T) {
	e := &Env{Rng: rand.New(rand.NewPCG(1, 2))}
	m := &moveNemesis{back: true, shards: []uint64{0, 1, 2},
		home: map[string]uint64{"w0": 0, "w1": 1}, prev: map[string]uint64{}}
	var got []string
	for m.n = 0; m.n < 4; m.n++ {
		w, to, ok := m.next(e)
		require.True(t, ok)
		require.NotEqual(t, m.home[w], to, "a move to the world's own home")
		got = append(got, fmt.Sprintf("%s %d->%d", w, m.home[w], to))
		m.settle(worldMove{world: w, from: m.home[w], to: to})
	}
	b := m.moved[0].to
	require.Equal(t, []string{fmt.Sprintf("w0 0->%d", b), fmt.Sprintf("w0 %d->0", b), fmt.Sprintf("w0 0->%d", b), fmt.Sprintf("w0 %d->0", b)}, got)
	require.Equal(t, uint64(1), m.home["w1"])

	// Without back: w0 visits the two shards it has not been on, then
	// neither world has a shard left.
	m = &moveNemesis{shards: []uint64{0, 1}, home: map[string]uint64{"w0": 0, "w1": 1}, prev: map[string]uint64{},
		visited: map[string]map[uint64]bool{"w0": {0: true}, "w1": {1: true}}}
	w, to, ok := m.next(e)
	require.True(t, ok)
	require.Equal(t, "w0", w)
	require.Equal(t, uint64(1), to)
	m.visited["w0"][1], m.visited["w1"][0] = true, true
	_, _, ok = m.next(e)
	require.False(t, ok)

	// Back with one shard: nowhere to go.
	m = &moveNemesis{back: true, shards: []uint64{0}, home: map[string]uint64{"w0": 0}, prev: map[string]uint64{}}
	_, _, ok = m.next(e)
	require.False(t, ok)
}
