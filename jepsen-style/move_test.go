package jepsen

import (
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
