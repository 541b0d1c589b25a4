package fsm

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"
)

func cmdDivergence(c Divergence) Command { return Command{Kind: CmdDivergence, Diverge: &c} }

// TestDivergenceIsAWorldEventOnEveryReplicaAndChangesNoState: the leader's
// record of a replica's mismatch is the world's next event on every
// replica alike, carries node ids and indexes only, and leaves the state
// hash as it was, so honest replicas keep agreeing.
func TestDivergenceIsAWorldEventOnEveryReplicaAndChangesNoState(t *testing.T) {
	a, b := newHarness(t), newHarness(t)
	step := replicas(a, b)
	step(cmdWorld("w", Rules{}))
	step(cmdAction(act("w", "ann", 1, opSet("e", "hp", Int(5)))))
	before := a.hash("w")
	d := Divergence{World: "w", Node: "n3", Index: 2, Leader: "n1"}
	out := step(cmdDivergence(d))
	for i, res := range out {
		r := res[0]
		require.NoError(t, r.Err, "replica %d", i)
		require.NotNil(t, r.Event)
		require.Equal(t, uint64(2), r.Event.Seq, "the world's next seq")
		require.Empty(t, r.Event.Player)
		require.Empty(t, r.Event.Changes)
		require.Equal(t, StatusApplied, r.Event.Status)
		require.Equal(t, &Notice{Kind: NoticeCheckpointMismatch, Node: "n3", Index: 2, Leader: "n1"}, r.Event.Notice)
	}
	require.Equal(t, out[0][0].Event, out[1][0].Event)
	require.Equal(t, before, a.hash("w"), "no state changes")
	require.Equal(t, a.hash("w"), b.hash("w"))
	require.Equal(t, uint64(2), a.worldSeq("w"))
	// The next action numbers after it.
	require.Equal(t, uint64(3), a.event(act("w", "ann", 2, opSet("e", "hp", Int(6)))).Seq)

	j, err := json.Marshal(out[0][0].Event)
	require.NoError(t, err)
	require.Contains(t, string(j), `"notice":{"kind":"checkpoint_mismatch","node":"n3","index":2,"leader":"n1"}`)
	require.Contains(t, string(j), `"player":""`)
}

// TestDivergenceTimeNeverGoesBackwards: the event's time is clamped to the
// world's clock like an action's.
func TestDivergenceTimeNeverGoesBackwards(t *testing.T) {
	h := newHarness(t)
	h.createWorld("w", Rules{})
	ev := h.event(act("w", "ann", 1, opSet("e", "hp", Int(5))))
	h.time -= 1_000_000_000 // a new leader's clock behind the old one's
	r := h.apply(cmdDivergence(Divergence{World: "w", Node: "n2", Index: 1, Leader: "n1"}))[0]
	require.NoError(t, r.Err)
	require.Equal(t, ev.Time, r.Event.Time)
}

func TestDivergenceWithBadShapeUnknownOrFencedWorldIsAnErrorResult(t *testing.T) {
	h := newHarness(t)
	h.createWorld("w", Rules{})
	h.createWorld("gone", Rules{})
	h.fence("gone", 2)
	cases := map[string]struct {
		d    Divergence
		want error
	}{
		"no world":      {Divergence{Node: "n2", Index: 1, Leader: "n1"}, ErrMalformed},
		"no node":       {Divergence{World: "w", Index: 1, Leader: "n1"}, ErrMalformed},
		"no leader":     {Divergence{World: "w", Node: "n2", Index: 1}, ErrMalformed},
		"no index":      {Divergence{World: "w", Node: "n2", Leader: "n1"}, ErrMalformed},
		"unknown world": {Divergence{World: "x", Node: "n2", Index: 1, Leader: "n1"}, ErrUnknownWorld},
		"fenced world":  {Divergence{World: "gone", Node: "n2", Index: 1, Leader: "n1"}, ErrWorldMoved},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			seq := h.worldSeq("w")
			r := h.apply(cmdDivergence(tc.d))[0]
			require.ErrorIs(t, r.Err, tc.want)
			require.Nil(t, r.Event)
			require.Equal(t, seq, h.worldSeq("w"))
		})
	}
}

func TestDivergenceRoundTripsTheLogAndNeedsLogVersion9(t *testing.T) {
	in := &Batch{Time: 7, Commands: []Command{cmdDivergence(Divergence{World: "w", Node: "n3", Index: 1 << 40, Leader: "n1"})}}
	out, err := DecodeBatch(EncodeBatch(in))
	require.NoError(t, err)
	require.Equal(t, in, out)
	need := Needs(&in.Commands[0])
	require.Equal(t, Versions{Log: 9, Snapshot: 3, Wire: 1}, need)
	require.True(t, Supported().Covers(need))
	require.False(t, (Versions{Log: 8, Snapshot: 8, Wire: 1}).Covers(need), "a log 8 replica does not read it")
	enc := EncodeBatch(in)
	_, err = DecodeBatch(enc[:len(enc)-1])
	require.ErrorIs(t, err, ErrMalformed)
}

// TestDivergenceEventRoundTripsTheArchive: the archive keeps the notice;
// an event without one encodes as before.
func TestDivergenceEventRoundTripsTheArchive(t *testing.T) {
	ev := &Event{World: "w", Seq: 4, Index: 9, Time: 11, Status: StatusApplied,
		Notice: &Notice{Kind: NoticeCheckpointMismatch, Node: "n3", Index: 7, Leader: "n1"}}
	got, err := DecodeEvent(EncodeEvent(ev))
	require.NoError(t, err)
	require.Equal(t, ev, got)

	plain := &Event{World: "w", Seq: 5, Index: 10, Time: 12, Player: "ann", Status: StatusApplied}
	b := EncodeEvent(plain)
	got, err = DecodeEvent(b)
	require.NoError(t, err)
	require.Equal(t, plain, got)
	_, err = DecodeEvent(append(b, 4))
	require.ErrorContains(t, err, "notice flag")
	_, err = DecodeEvent(append(EncodeEvent(ev), 0))
	require.ErrorContains(t, err, "trailing")
}
