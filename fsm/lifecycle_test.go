package fsm

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func cmdDelete(c WorldDelete) Command { return Command{Kind: CmdDeleteWorld, Delete: &c} }

// TestDeleteWorldRemovesEverythingKeyedByItAndARecreateStartsOver: a
// deleted world answers unknown_world; created again under the same id it
// has a new incarnation, starts at seq 1 with no entities, idempotency
// windows, sessions, bans, player data, hash history or checkpoint marks.
func TestDeleteWorldRemovesEverythingKeyedByItAndARecreateStartsOver(t *testing.T) {
	h := newHarness(t)
	h.createWorld("w", counterRules(false))
	h.createWorld("other", Rules{})
	first, err := h.f.World("w")
	require.NoError(t, err)
	require.Equal(t, uint64(1), first.Incarnation)
	h.event(act("w", "ann", 1, opIncr("e", "hp", 1)))
	h.event(act("w", "ann", 2, opIncr("e", "hp", 1)))
	h.openSession("w", "s1", "ann", "t1")
	require.NoError(t, h.session(CmdSessionData, SessionCmd{World: "w", ID: "s1", Data: []DataItem{{Key: "gold", Value: Int(5)}}}).Err)
	require.NoError(t, h.session(CmdSessionBan, SessionCmd{World: "w", Player: "eve", Reason: "cheat"}).Err)
	c, _, ok := h.f.CheckpointOf("w", "n1")
	require.True(t, ok)
	require.NoError(t, h.apply(cmdCheckpoint(c))[0].Err)
	otherHash := h.hash("other")

	res := h.apply(cmdDelete(WorldDelete{World: "w"}))[0]
	require.NoError(t, res.Err)
	require.NotNil(t, res.Deleted)
	require.Equal(t, "w", res.Deleted.ID)
	require.Equal(t, uint64(2), res.Deleted.Seq)
	require.Equal(t, 1, res.Deleted.Sessions)

	_, err = h.f.World("w")
	require.ErrorIs(t, err, ErrUnknownWorld)
	require.ErrorIs(t, h.do(act("w", "ann", 3, opIncr("e", "hp", 1))).Err, ErrUnknownWorld, "later writes find no world")
	require.ErrorIs(t, h.session(CmdSessionOpen, SessionCmd{World: "w", ID: "s2", Player: "ann", TokenHash: tokenHash("t")}).Err, ErrUnknownWorld)
	require.ErrorIs(t, h.f.Check(act("w", "ann", 3, opIncr("e", "hp", 1))), ErrUnknownWorld, "the edge's check sees it gone too")
	_, _, ok = h.f.CheckpointOf("w", "n1")
	require.False(t, ok)
	require.ErrorIs(t, h.apply(cmdDelete(WorldDelete{World: "w"}))[0].Err, ErrUnknownWorld, "a second delete")
	require.Equal(t, otherHash, h.hash("other"), "other worlds are untouched")

	h.createWorld("w", counterRules(false))
	again, err := h.f.World("w")
	require.NoError(t, err)
	require.Greater(t, again.Incarnation, first.Incarnation)
	require.Equal(t, uint64(0), again.Seq)
	require.Zero(t, again.Entities+again.Players+again.Sessions)
	ev := h.event(act("w", "ann", 1, opIncr("e", "hp", 1)))
	require.Equal(t, uint64(1), ev.Seq, "seqs start over; the old idempotency window is gone")
	require.Equal(t, StatusApplied, ev.Status)
	sessions, err := h.f.Sessions("w")
	require.NoError(t, err)
	require.Empty(t, sessions)
	bans, err := h.f.Bans("w")
	require.NoError(t, err)
	require.Empty(t, bans)
	data, err := h.f.PlayerData("w")
	require.NoError(t, err)
	require.Empty(t, data)
	_, err = h.f.Hash("w", 2)
	require.ErrorIs(t, err, ErrSeqUnknown, "the old hash history is gone")
	c, _, ok = h.f.CheckpointOf("w", "n1")
	require.True(t, ok)
	require.Equal(t, uint64(0), c.Index, "no mark of the old incarnation")
}

func TestDeleteWorldOfAnotherIncarnationLeavesTheWorld(t *testing.T) {
	h := newHarness(t)
	h.createWorld("w", Rules{})
	wi, err := h.f.World("w")
	require.NoError(t, err)
	res := h.apply(cmdDelete(WorldDelete{World: "w", Incarnation: wi.Incarnation + 1}))[0]
	require.ErrorIs(t, res.Err, ErrUnknownWorld)
	require.ErrorContains(t, res.Err, "incarnation")
	_, err = h.f.World("w")
	require.NoError(t, err)
	require.NoError(t, h.apply(cmdDelete(WorldDelete{World: "w", Incarnation: wi.Incarnation}))[0].Err)
}

func TestDeleteWorldRefusesMalformedPayloads(t *testing.T) {
	h := newHarness(t)
	h.createWorld("w", Rules{})
	for what, c := range map[string]WorldDelete{
		"no world":          {},
		"negative idle":     {World: "w", IdleAfter: -1},
		"idle beyond bound": {World: "w", IdleAfter: int64(MaxIdleExpiry) + 1},
	} {
		require.ErrorIs(t, h.apply(cmdDelete(c))[0].Err, ErrMalformed, what)
	}
	_, err := h.f.World("w")
	require.NoError(t, err)
}

// TestConditionalDeleteDecidesIdlenessOnTheLeaderTimeItCommitsWith: a
// delete on the condition of idleness removes a world only when it has no
// session and no action or creation within the idle time, on every replica
// alike.
func TestConditionalDeleteDecidesIdlenessOnTheLeaderTimeItCommitsWith(t *testing.T) {
	a, b := newHarness(t), newHarness(t)
	var n uint64
	step := func(at int64, cmds ...Command) []Result {
		n++
		entry := EncodeBatch(&Batch{Time: at, Commands: cmds})
		ra, rb := a.f.Apply(n, entry), b.f.Apply(n, entry)
		require.Equal(t, ra, rb)
		return ra
	}
	t0 := int64(1_700_000_000_000_000_000)
	sec := int64(time.Second)
	idle := WorldDelete{World: "w", IdleAfter: int64(time.Minute)}
	step(t0, cmdWorld("w", Rules{}))
	require.ErrorIs(t, step(t0+60*sec, cmdDelete(idle))[0].Err, ErrWorldActive, "created 60s ago: not idle for more than 60s")
	step(t0+30*sec, cmdAction(act("w", "ann", 1, opIncr("e", "c", 1))))
	r := step(t0+61*sec, cmdDelete(idle))[0]
	require.ErrorIs(t, r.Err, ErrWorldActive, "an action 31s ago")
	require.Equal(t, CodeWorldActive, Code(r.Err))
	step(t0+100*sec, cmdSession(CmdSessionOpen, SessionCmd{World: "w", ID: "s", Player: "ann", TokenHash: tokenHash("t")}))
	require.ErrorIs(t, step(t0+1000*sec, cmdDelete(idle))[0].Err, ErrWorldActive, "a session is open")
	step(t0+1000*sec, cmdSession(CmdSessionClose, SessionCmd{World: "w", ID: "s"}))
	require.NoError(t, step(t0+1000*sec, cmdDelete(idle))[0].Err)
	require.Empty(t, a.f.Worlds())
}

func TestIdleWorldsNamesTheWorldsWhoseRulesExpireThem(t *testing.T) {
	h := newHarness(t)
	expiring := Rules{Schema: Schema{IdleExpiry: Duration(time.Minute)}}
	h.createWorld("a", expiring)
	now := time.Unix(0, h.time) // a's creation
	h.createWorld("b", expiring)
	h.createWorld("never", Rules{})
	h.openSession("b", "s", "ann", "t")
	require.Empty(t, h.f.IdleWorlds(now.Add(time.Minute)), "not idle for longer than a minute yet")
	later := now.Add(time.Minute + time.Second)
	wi, err := h.f.World("a")
	require.NoError(t, err)
	want := []WorldDelete{{World: "a", Incarnation: wi.Incarnation, IdleAfter: int64(time.Minute)}}
	require.Equal(t, want, h.f.IdleWorlds(later), "b holds a session, never has no idle_expiry")
	// The leader proposes what IdleWorlds names; the FSM decides again.
	h.time = later.UnixNano()
	require.NoError(t, h.apply(cmdDelete(want[0]))[0].Err)
	require.Empty(t, h.f.IdleWorlds(later))
}

func TestCapacityRefusesOpensBeyondItWithWorldFull(t *testing.T) {
	h := newHarness(t)
	h.createWorld("w", Rules{Schema: Schema{Capacity: 2}})
	h.openSession("w", "s1", "ann", "t1")
	h.openSession("w", "s2", "bob", "t2")
	r := h.session(CmdSessionOpen, SessionCmd{World: "w", ID: "s3", Player: "cat", TokenHash: tokenHash("t3")})
	require.ErrorIs(t, r.Err, ErrWorldFull)
	require.Equal(t, CodeWorldFull, Code(r.Err))
	require.Equal(t, "world_full", CodeWorldFull)
	// A player's new open replaces its session: it never counts twice.
	h.openSession("w", "s4", "ann", "t4")
	wi, err := h.f.World("w")
	require.NoError(t, err)
	require.Equal(t, 2, wi.Sessions)
	require.NoError(t, h.session(CmdSessionClose, SessionCmd{World: "w", ID: "s2"}).Err)
	h.openSession("w", "s3", "cat", "t3")
}

func TestLifecycleRulesKeysAreAcceptedAndNeedLogVersion6(t *testing.T) {
	var r Rules
	require.NoError(t, json.Unmarshal([]byte(`{"capacity":8,"idle_expiry":"10m","mode":"duel","labels":{"map":"dust","region":"eu"}}`), &r))
	require.Equal(t, Schema{Capacity: 8, IdleExpiry: Duration(10 * time.Minute), Mode: "duel", Labels: map[string]string{"map": "dust", "region": "eu"}}, r.Schema)
	require.ErrorIs(t, json.Unmarshal([]byte(`{"idle_expiry":"100000h"}`), &r), ErrMalformed, "beyond MaxIdleExpiry")

	log5 := Versions{Log: 5, Snapshot: 5, Wire: 1}
	for what, c := range map[string]*Command{
		"create": {Kind: CmdCreateWorld, World: &WorldSpec{Rules: Rules{Schema: Schema{Capacity: 8}}}},
		"update": {Kind: CmdUpdateRules, Rules: &RulesUpdate{Rules: Rules{Schema: Schema{Labels: map[string]string{"k": "v"}}}}},
		"delete": cmdPtr(cmdDelete(WorldDelete{World: "w"})),
	} {
		require.False(t, log5.Covers(Needs(c)), what)
		require.True(t, Supported().Covers(Needs(c)), what)
		require.Equal(t, uint32(6), Needs(c).Log, what)
	}
	withActions := &Command{Kind: CmdCreateWorld, World: &WorldSpec{Rules: Rules{Schema: Schema{Mode: "duel", Actions: map[string]ActionRule{"a": {}}}}}}
	require.Equal(t, Versions{Log: 6, Snapshot: 5, Wire: 1}, Needs(withActions), "the larger of both needs")
}

func cmdPtr(c Command) *Command { return &c }

func TestDeleteWorldEncodesAndDecodes(t *testing.T) {
	b := &Batch{Time: 7, Commands: []Command{cmdDelete(WorldDelete{World: "w", Incarnation: 12, IdleAfter: int64(time.Hour)})}}
	got, err := DecodeBatch(EncodeBatch(b))
	require.NoError(t, err)
	require.Equal(t, b, got)
	_, err = DecodeBatch([]byte{batchMagic, 0, 1, byte(CmdImportWorldBack + 1), 0, 0})
	require.ErrorContains(t, err, "kinds 1..29")
}

// TestIncarnationAndCreationTimeSurviveSnapshotInFormat6: a restored
// replica knows every world's incarnation and decides idleness as the
// original does.
func TestIncarnationAndCreationTimeSurviveSnapshotInFormat6(t *testing.T) {
	h := newHarness(t)
	h.createWorld("v", Rules{})
	h.createWorld("w", Rules{Schema: Schema{IdleExpiry: Duration(time.Minute)}})
	p := h.snapshotBytes()
	require.Equal(t, byte(6), p[len(snapMagic)-1])
	g := restored(t, p)
	requireSameState(t, h.f, g)
	require.Equal(t, h.f.Worlds(), g.Worlds(), "incarnations included")
	later := time.Unix(0, h.time).Add(time.Minute + time.Second)
	require.Equal(t, h.f.IdleWorlds(later), g.IdleWorlds(later))
	require.Len(t, g.IdleWorlds(later), 1)
	require.Equal(t, p, snapshotBytes(t, g))
}

func TestWorldsWithoutIncarnationsKeepTheOlderFormats(t *testing.T) {
	h := newHarness(t)
	h.createWorld("a", arenaRules(t))
	forgetIncarnations(h.f)
	p := h.snapshotBytes()
	require.Equal(t, byte(5), p[len(snapMagic)-1], "declared actions still need format 5")
	g := restored(t, p)
	wi, err := g.World("a")
	require.NoError(t, err)
	require.Equal(t, uint64(0), wi.Incarnation, "from before incarnations")
}

func TestLifecycleKeysTravelInTheRulesWireForm(t *testing.T) {
	r := Rules{Schema: Schema{Capacity: 8, IdleExpiry: Duration(10 * time.Minute), Mode: "duel", Labels: map[string]string{"map": "dust"}}}
	w := r.Wire()
	require.Equal(t, 8, w.Capacity)
	require.Equal(t, "10m0s", w.IdleExpiry)
	require.Equal(t, "duel", w.Mode)
	require.Equal(t, map[string]string{"map": "dust"}, w.Labels)
	b, err := json.Marshal(w)
	require.NoError(t, err)
	var back Rules
	require.NoError(t, json.Unmarshal(b, &back), "what a listing shows, a create takes")
	require.Equal(t, r.Schema, back.Schema)
}

func TestAWorldWhoseLastActivityIsUnknownIsNotIdle(t *testing.T) {
	h := newHarness(t)
	h.createWorld("w", Rules{Schema: Schema{IdleExpiry: Duration(time.Minute)}})
	forgetIncarnations(h.f) // as restored from a snapshot before format 6
	g := restored(t, h.snapshotBytes())
	later := time.Unix(0, h.time).Add(time.Hour)
	require.Empty(t, g.IdleWorlds(later), "no creation time, no action: unknown")
	gh := &harness{t: t, f: g, index: h.index, time: h.time}
	gh.event(act("w", "ann", 1, opIncr("e", "c", 1)))
	require.Empty(t, g.IdleWorlds(time.Unix(0, gh.time).Add(time.Minute)))
	require.Len(t, g.IdleWorlds(time.Unix(0, gh.time).Add(time.Minute+time.Nanosecond)), 1, "idle since its action")
}
