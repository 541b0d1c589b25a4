package fsm

import (
	"testing"

	"github.com/gsd-dev/gsd/wire"
	"github.com/stretchr/testify/require"
)

func TestActionsOfABannedPlayerAreRejectedInApply(t *testing.T) {
	h := newHarness(t)
	h.createWorld("w", Rules{})
	h.createWorld("v", Rules{})
	h.event(act("w", "ann", 1, opSet("e", "x", Int(1))))
	before := h.entity("w", "e")

	// The race the edge's check cannot close: the ban commits in the same
	// entry, just before the action.
	res := h.apply(
		cmdSession(CmdSessionBan, SessionCmd{World: "w", Player: "ann", Reason: "aimbot"}),
		cmdAction(act("w", "ann", 2, opSet("e", "x", Int(2)))),
	)
	require.NoError(t, res[0].Err)
	require.NoError(t, res[1].Err)
	ev := res[1].Event
	require.Equal(t, StatusRejected, ev.Status)
	require.Equal(t, CodeBanned, ev.Reason)
	require.Equal(t, uint64(2), ev.Seq, "a rejected action still takes a world seq")
	require.Empty(t, ev.Changes)
	require.Equal(t, before.Fields, h.entity("w", "e").Fields, "nothing of the action applied")

	r := h.do(act("w", "ann", 2, opSet("e", "x", Int(2))))
	require.True(t, r.Duplicate, "a retry gets the recorded rejection")
	require.Equal(t, CodeBanned, r.Event.Reason)
	require.Equal(t, StatusApplied, h.event(act("w", "bob", 1, opSet("e", "y", Int(1)))).Status, "others play on")
	require.Equal(t, StatusApplied, h.event(act("v", "ann", 1, opSet("e", "x", Int(1)))).Status, "bans are per world")

	require.NoError(t, h.session(CmdSessionUnban, SessionCmd{World: "w", Player: "ann"}).Err)
	require.Equal(t, StatusApplied, h.event(act("w", "ann", 3, opSet("e", "x", Int(3)))).Status)
}

func TestSessionsBansAndDataAreInTheWorldHash(t *testing.T) {
	h := newHarness(t)
	h.createWorld("w", Rules{})
	h.event(act("w", "ann", 1, opIncr("e", "c", 1)))
	seen := map[uint64]string{h.hash("w"): "start"}
	step := func(name string, kind CmdKind, c SessionCmd) {
		t.Helper()
		require.NoError(t, h.session(kind, c).Err, name)
		got := h.hash("w")
		if prev, dup := seen[got]; dup {
			t.Fatalf("%s: hash %s equals the hash after %s", name, wire.HashString(got), prev)
		}
		seen[got] = name
		w := h.f.worlds["w"]
		require.Equal(t, w.computeMeta(), w.meta, "%s: the incremental sessions hash drifted", name)
		p, err := h.f.Hash("w", w.seq)
		require.NoError(t, err)
		require.Equal(t, got, p.Hash, "%s: the current seq's hash point follows", name)
		g := restored(t, h.snapshotBytes())
		hp, err := g.Hash("w", 0)
		require.NoError(t, err)
		require.Equal(t, got, hp.Hash, "%s: a restored replica has the same hash", name)
	}
	step("open", CmdSessionOpen, SessionCmd{World: "w", ID: "s1", Player: "ann", TokenHash: tokenHash("t")})
	step("ack", CmdSessionAck, SessionCmd{World: "w", ID: "s1", Seq: 1})
	step("resume", CmdSessionResume, SessionCmd{World: "w", ID: "s1", Player: "ann", TokenHash: tokenHash("t"), Seq: 1, Node: "n2"})
	step("data", CmdSessionData, SessionCmd{World: "w", ID: "s1", Data: []DataItem{{"gold", Int(5)}, {"title", String("k")}}})
	step("data delete", CmdSessionData, SessionCmd{World: "w", ID: "s1", Data: []DataItem{{"gold", Value{}}}})
	step("import", CmdSessionImport, SessionCmd{World: "w", Player: "bob", Data: []DataItem{{"xp", Int(3)}}})
	step("import empty", CmdSessionImport, SessionCmd{World: "w", Player: "ann"})
	step("kick", CmdSessionKick, SessionCmd{World: "w", ID: "s1", Reason: "afk"})
	step("replace", CmdSessionOpen, SessionCmd{World: "w", ID: "s2", Player: "ann", TokenHash: tokenHash("u")})
	step("ban", CmdSessionBan, SessionCmd{World: "w", Player: "ann", Reason: "aimbot"})
	step("ban again", CmdSessionBan, SessionCmd{World: "w", Player: "ann", Reason: "wallhack"})
	step("unban", CmdSessionUnban, SessionCmd{World: "w", Player: "ann"})
	step("close", CmdSessionClose, SessionCmd{World: "w", ID: "s2"})

	// Unbanning a player who is not banned changes nothing.
	want := h.hash("w")
	require.NoError(t, h.session(CmdSessionUnban, SessionCmd{World: "w", Player: "ann"}).Err)
	require.Equal(t, want, h.hash("w"))
}

func TestReplicasWithDivergedSessionsHaveDifferentHashes(t *testing.T) {
	a, b := newHarness(t), newHarness(t)
	for _, h := range []*harness{a, b} {
		h.createWorld("w", Rules{})
		h.event(act("w", "ann", 1, opIncr("e", "c", 1)))
		h.openSession("w", "s1", "ann", "t")
		h.event(act("w", "ann", 2, opIncr("e", "c", 1)))
	}
	require.Equal(t, a.hash("w"), b.hash("w"), "equal commands, equal hashes")
	pa, err := a.f.Hash("w", 1)
	require.NoError(t, err)
	pb, err := b.f.Hash("w", 1)
	require.NoError(t, err)
	require.Equal(t, pa, pb, "the point of seq 1 includes the open that followed it on both")
	require.NotEqual(t, a.hash("w")-a.f.worlds["w"].meta, a.hash("w"), "the session counts")

	// Diverge b's session state behind the log's back: same entities and
	// seq, a different acked seq.
	w := b.f.worlds["w"]
	s := *w.sessions["s1"]
	s.acked = 2
	w.sessions["s1"] = &s
	w.meta = w.computeMeta()
	require.Equal(t, a.worldSeq("w"), b.worldSeq("w"))
	require.NotEqual(t, a.hash("w"), b.hash("w"))

	// Same for a ban only one replica holds.
	c := newHarness(t)
	c.createWorld("w", Rules{})
	c.event(act("w", "ann", 1, opIncr("e", "c", 1)))
	c.openSession("w", "s1", "ann", "t")
	c.event(act("w", "ann", 2, opIncr("e", "c", 1)))
	require.Equal(t, a.hash("w"), c.hash("w"))
	c.f.worlds["w"].bans["eve"] = "x"
	c.f.worlds["w"].meta = c.f.worlds["w"].computeMeta()
	require.NotEqual(t, a.hash("w"), c.hash("w"))
}
