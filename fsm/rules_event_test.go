package fsm

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"
)

func cmdRulesEvent(world string, expect uint64, r Rules) Command {
	return Command{Kind: CmdUpdateRulesEvent, Rules: &RulesUpdate{World: world, Expect: expect, Rules: r}}
}

// TestRulesUpdateEventIsTheWorldsNextEventOnEveryReplica: a log 12 rules
// update is the world's next event on every replica alike, with no
// player, no changes and a notice naming the new rules version; the
// actions after it number after it.
func TestRulesUpdateEventIsTheWorldsNextEventOnEveryReplica(t *testing.T) {
	a, b := newHarness(t), newHarness(t)
	step := replicas(a, b)
	step(cmdWorld("w", counterRules(false)))
	step(cmdAction(act("w", "ann", 1, opIncr("e", "hp", 5))))
	out := step(cmdRulesEvent("w", 1, counterRules(true)))
	for i, res := range out {
		r := res[0]
		require.NoError(t, r.Err, "replica %d", i)
		require.Equal(t, uint64(2), r.RulesVersion)
		require.NotNil(t, r.Event)
		require.Equal(t, uint64(2), r.Event.Seq, "the world's next seq")
		require.Empty(t, r.Event.Player)
		require.Empty(t, r.Event.Changes)
		require.Equal(t, StatusApplied, r.Event.Status)
		require.Equal(t, &Notice{Kind: NoticeRules, RulesVersion: 2}, r.Event.Notice)
	}
	require.Equal(t, out[0][0].Event, out[1][0].Event)
	require.Equal(t, a.hash("w"), b.hash("w"))
	w, err := a.f.World("w")
	require.NoError(t, err)
	require.Equal(t, uint64(2), w.RulesVersion)
	require.True(t, w.Rules.Strict)
	require.Equal(t, uint64(3), a.event(act("w", "ann", 2, opIncr("e", "hp", 1))).Seq)

	j, err := json.Marshal(out[0][0].Event)
	require.NoError(t, err)
	require.Contains(t, string(j), `"notice":{"kind":"rules","rules_version":2}`)
	require.Contains(t, string(j), `"player":""`)
	require.NotContains(t, string(j), `"changes"`)
}

// TestRulesUpdateWithoutEventKeepsTheWorldsSeq: CmdUpdateRules (what a
// leader proposes while a voter reads log 11) applies as on log 11: no
// event, the seq stays.
func TestRulesUpdateWithoutEventKeepsTheWorldsSeq(t *testing.T) {
	h := newHarness(t)
	h.createWorld("w", counterRules(false))
	h.event(act("w", "ann", 1, opIncr("e", "hp", 5)))
	r := h.apply(cmdRules("w", 1, counterRules(true)))[0]
	require.NoError(t, r.Err)
	require.Equal(t, uint64(2), r.RulesVersion)
	require.Nil(t, r.Event)
	require.Equal(t, uint64(1), h.worldSeq("w"))
}

// TestRefusedRulesUpdateRecordsNoEvent: an update refused (a stale
// expect, an unknown world) is no event and leaves the seq.
func TestRefusedRulesUpdateRecordsNoEvent(t *testing.T) {
	h := newHarness(t)
	h.createWorld("w", counterRules(false))
	r := h.apply(cmdRulesEvent("w", 7, counterRules(true)))[0]
	require.ErrorIs(t, r.Err, ErrRulesConflict)
	require.Nil(t, r.Event)
	require.Equal(t, uint64(0), h.worldSeq("w"))
	r = h.apply(cmdRulesEvent("x", 0, counterRules(true)))[0]
	require.ErrorIs(t, r.Err, ErrUnknownWorld)
	require.Nil(t, r.Event)
}

// TestRulesUpdateEventTimeNeverGoesBackwards: the event's time is clamped
// to the world's clock like an action's.
func TestRulesUpdateEventTimeNeverGoesBackwards(t *testing.T) {
	h := newHarness(t)
	h.createWorld("w", counterRules(false))
	ev := h.event(act("w", "ann", 1, opIncr("e", "hp", 5)))
	h.time -= 1_000_000_000 // a new leader's clock behind the old one's
	r := h.apply(cmdRulesEvent("w", 0, counterRules(true)))[0]
	require.NoError(t, r.Err)
	require.Equal(t, ev.Time, r.Event.Time)
}

// TestRulesUpdateEventRoundTripsTheLogAndNeedsLogVersion12: the kind
// carries the update's payload; it needs log 12 whatever rules keys the
// update sets, while the update without it keeps what it needed.
func TestRulesUpdateEventRoundTripsTheLogAndNeedsLogVersion12(t *testing.T) {
	vis := Rules{Fields: map[string]FieldRule{"x": {Type: KindFloat, Policy: PolicyAuthoritative}}, Schema: Schema{
		Access: map[string]FieldAccess{"x": {Visible: "owner"}}}}
	for _, r := range []Rules{counterRules(true), vis, {Strict: true, Fields: schemaFields(), Schema: fullSchema()}} {
		in := &Batch{Time: 7, Commands: []Command{cmdRulesEvent("w", 3, r)}}
		out, err := DecodeBatch(EncodeBatch(in))
		require.NoError(t, err)
		require.Equal(t, CmdUpdateRulesEvent, out.Commands[0].Kind)
		require.Equal(t, EncodeBatch(in), EncodeBatch(out))
		need := Needs(&in.Commands[0])
		require.Equal(t, uint32(12), need.Log)
		require.True(t, Supported().Covers(need))
		require.False(t, (Versions{Log: 11, Snapshot: 8, Wire: 1}).Covers(need), "a log 11 replica does not read it")
		old := Needs(&Command{Kind: CmdUpdateRules, Rules: in.Commands[0].Rules})
		require.Less(t, old.Log, uint32(12))
		require.Equal(t, old.Snapshot, need.Snapshot)
	}
	require.GreaterOrEqual(t, LogVersion, uint32(12))
}

// TestRulesNoticeRoundTripsTheArchive: the archive keeps the rules
// version (notice flag 2); a notice without one keeps flag 1.
func TestRulesNoticeRoundTripsTheArchive(t *testing.T) {
	ev := &Event{World: "w", Seq: 4, Index: 9, Time: 11, Status: StatusApplied, Notice: &Notice{Kind: NoticeRules, RulesVersion: 3}}
	b := EncodeEvent(ev)
	got, err := DecodeEvent(b)
	require.NoError(t, err)
	require.Equal(t, ev, got)
	_, err = DecodeEvent(b[:len(b)-1])
	require.ErrorIs(t, err, ErrMalformed)
	div := EncodeEvent(&Event{World: "w", Seq: 4, Index: 9, Time: 11, Status: StatusApplied,
		Notice: &Notice{Kind: NoticeCheckpointMismatch, Node: "n3", Index: 7, Leader: "n1"}})
	require.Equal(t, byte(1), div[len(div)-1-len("n1")-1-1-len("n3")-1-len(NoticeCheckpointMismatch)-1])
}
