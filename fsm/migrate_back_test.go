package fsm

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func cmdImportBack(world string, data []byte) Command {
	return Command{Kind: CmdImportWorldBack, Import: &WorldImport{World: world, Data: data}}
}

// movedAway returns B, a group that created world w, gave it state of
// every kind (an entity, sessions with an ack and data, a ban, a
// checkpoint mark) and fenced it towards shard 3, and A, the group the
// world's export went to (index 500 on: another log), where it took
// writes that undo part of B's stay (a session closed, data rewritten),
// fenced towards shard 2 (back to B); and A's export.
func movedAway(t *testing.T) (b, a *harness, back []byte, seq uint64) {
	t.Helper()
	b = newHarness(t)
	b.createWorld("w", Rules{})
	b.event(act("w", "ann", 1, opIncr("e1", "c", 1)))
	b.openSession("w", "s1", "ann", "t1")
	b.openSession("w", "s2", "bob", "t2")
	require.NoError(t, b.apply(Command{Kind: CmdSessionAcks, Acks: []SessionAck{{World: "w", ID: "s1", Seq: 1}}})[0].Err)
	require.NoError(t, b.session(CmdSessionData, SessionCmd{World: "w", ID: "s1", Data: []DataItem{{Key: "coins", Value: Int(3)}}}).Err)
	require.NoError(t, b.session(CmdSessionBan, SessionCmd{World: "w", Player: "eve", Reason: "x"}).Err)
	require.NoError(t, b.apply(Command{Kind: CmdCheckpoint, Check: &Checkpoint{World: "w", Leader: "n1"}})[0].Err)
	b.fence("w", 3)
	blob, _ := b.export("w", ExportFormat)

	a = newHarness(t)
	a.index, a.time = 500, b.time
	require.NoError(t, a.apply(cmdImport("w", blob))[0].Err)
	a.event(act("w", "ann", 2, opIncr("e1", "c", 10)))
	require.NoError(t, a.session(CmdSessionClose, SessionCmd{World: "w", ID: "s2"}).Err)
	require.NoError(t, a.session(CmdSessionData, SessionCmd{World: "w", ID: "s1", Data: []DataItem{{Key: "coins", Value: Int(7)}}}).Err)
	require.NoError(t, a.session(CmdSessionUnban, SessionCmd{World: "w", Player: "eve"}).Err)
	a.event(act("w", "bob", 1, opSet("e2", "x", Int(1))))
	a.fence("w", 2)
	back, seq = a.export("w", ExportFormat)
	return b, a, back, seq
}

// TestAMoveBackReplacesTheFencedCopyWithTheExport (issue 14, log 17):
// the world goes B -> A -> B. B's fenced copy is replaced by A's export
// whole: the seq goes on from A's fence, and nothing of B's stay is left
// (the session A closed, the data A rewrote, the ban A lifted, B's
// checkpoint marks); a retry is refused world_exists (the import is
// recognised by the mover), and the world takes writes again.
func TestAMoveBackReplacesTheFencedCopyWithTheExport(t *testing.T) {
	b, a, back, seq := movedAway(t)
	c, _, ok := b.f.CheckpointOf("w", "n1")
	require.True(t, ok)
	require.NotZero(t, c.Index, "B's stay left a mark")

	require.ErrorIs(t, b.apply(cmdImport("w", back))[0].Err, ErrWorldExists, "a log 16 import never replaces")
	r := b.apply(cmdImportBack("w", back))[0]
	require.NoError(t, r.Err)
	require.Equal(t, b.index, r.Imported.Imported)
	require.Nil(t, r.Imported.Moved)
	require.Equal(t, seq, r.Imported.Seq)

	require.Equal(t, a.hash("w"), b.hash("w"), "A's state, not B's")
	for _, e := range []string{"e1", "e2"} {
		av, _ := a.f.Entity("w", e)
		bv, err := b.f.Entity("w", e)
		require.NoError(t, err)
		require.Equal(t, av, bv)
	}
	as, _ := a.f.Sessions("w")
	bs, _ := b.f.Sessions("w")
	require.Equal(t, as, bs, "s2, closed on A, is not back")
	require.Len(t, bs, 1)
	ad, _ := a.f.PlayerData("w")
	bd, _ := b.f.PlayerData("w")
	require.Equal(t, ad, bd)
	bans, _ := b.f.Bans("w")
	require.Empty(t, bans, "eve's ban, lifted on A")
	for s := uint64(1); s <= seq; s++ {
		ap, aerr := a.f.Hash("w", s)
		bp, berr := b.f.Hash("w", s)
		require.Equal(t, aerr, berr)
		require.Equal(t, ap, bp, "seq %d: A's hash history", s)
	}
	_, ok = b.f.MarkOf("w", c.Index)
	require.False(t, ok, "B's earlier marks went with its copy")

	// A retry finds the world there, live: refused, which the mover
	// recognises (imported, same incarnation); the seq goes on.
	err := b.apply(cmdImportBack("w", back))[0].Err
	require.ErrorIs(t, err, ErrWorldExists)
	require.ErrorContains(t, err, "not fenced here")
	ev := b.event(act("w", "ann", 3, opIncr("e1", "c", 1)))
	require.Equal(t, StatusApplied, ev.Status)
	require.Equal(t, seq+1, ev.Seq)
	require.True(t, b.do(act("w", "ann", 2, opIncr("e1", "c", 10))).Duplicate, "A's idempotency window came back")

	// It survives a snapshot in today's format.
	p := b.snapshotBytes()
	require.LessOrEqual(t, p[len(snapMagic)-1], byte(SnapshotVersion), "no new format")
	requireSameState(t, b.f, restored(t, p))
}

// TestAMoveBackIsTheSameOnEveryReplica: two replicas of B apply the same
// log, the move back in it, and end with the same state and hash.
func TestAMoveBackIsTheSameOnEveryReplica(t *testing.T) {
	b, _, back, _ := movedAway(t)
	p := b.snapshotBytes()
	r2 := &harness{t: t, f: restored(t, p), index: b.index, time: b.time}
	for _, h := range []*harness{b, r2} {
		require.NoError(t, h.apply(cmdImportBack("w", back))[0].Err)
		h.event(act("w", "cat", 1, opIncr("e1", "c", 2)))
	}
	require.Equal(t, b.hash("w"), r2.hash("w"))
	requireSameState(t, b.f, r2.f)
	require.Equal(t, b.snapshotBytes(), r2.snapshotBytes())
}

// TestAMoveBackRefusesACopyItMustNotReplace: a live copy (this move's
// earlier import, or a world of the target's own), a fenced copy of
// another incarnation (a leftover of a deleted world), and one fenced
// after the export's seq (the world moved on since the export was made:
// a stale import) are all refused world_exists, naming why, and left as
// they were.
func TestAMoveBackRefusesACopyItMustNotReplace(t *testing.T) {
	t.Run("live", func(t *testing.T) {
		h := newHarness(t)
		h.createWorld("w", Rules{})
		h.event(act("w", "ann", 1, opIncr("e1", "c", 1)))
		o := newHarness(t)
		o.createWorld("w", Rules{})
		o.fence("w", 2)
		blob, _ := o.export("w", ExportFormat)
		before := h.hash("w")
		err := h.apply(cmdImportBack("w", blob))[0].Err
		require.ErrorIs(t, err, ErrWorldExists)
		require.ErrorContains(t, err, "not fenced here")
		require.Equal(t, before, h.hash("w"))
	})
	t.Run("another incarnation", func(t *testing.T) {
		b, a, _, _ := movedAway(t)
		// w deleted and created again on A: a new incarnation, which
		// moves to B, where the old one's fenced copy is left.
		require.NoError(t, a.apply(cmdDelete(WorldDelete{World: "w"}))[0].Err)
		a.createWorld("w", Rules{})
		a.fence("w", 2)
		blob, _ := a.export("w", ExportFormat)
		stale, _ := b.f.World("w")
		err := b.apply(cmdImportBack("w", blob))[0].Err
		require.ErrorIs(t, err, ErrWorldExists)
		require.ErrorContains(t, err, "same incarnation")
		got, _ := b.f.World("w")
		require.Equal(t, stale, got)
	})
	t.Run("fenced after the export", func(t *testing.T) {
		h := newHarness(t)
		h.createWorld("w", Rules{})
		h.event(act("w", "ann", 1, opIncr("e1", "c", 1)))
		old, n := h.export("w", ExportFormat) // an export made before the stay ended
		h.event(act("w", "ann", 2, opIncr("e1", "c", 1)))
		f := h.fence("w", 3)
		require.Greater(t, f.Seq, n)
		err := h.apply(cmdImportBack("w", old))[0].Err
		require.ErrorIs(t, err, ErrWorldExists)
		require.ErrorContains(t, err, "stale export")
		got, _ := h.f.World("w")
		require.Equal(t, &f, got.Moved, "still the fenced copy")
	})
}

// TestAMoveBackIntoAnAbsentWorldIsAnImport: with no copy, the kind
// installs the world as CmdImportWorld does (a crash after the copy went
// some other way, or a retry after a delete).
func TestAMoveBackIntoAnAbsentWorldIsAnImport(t *testing.T) {
	_, _, back, seq := movedAway(t)
	h := newHarness(t)
	r := h.apply(cmdImportBack("w", back))[0]
	require.NoError(t, r.Err)
	require.Equal(t, seq, r.Imported.Seq)
	require.ErrorIs(t, h.apply(cmdImportBack("", back))[0].Err, ErrMalformed)
	require.ErrorIs(t, h.apply(cmdImportBack("w", back[:len(back)-3]))[0].Err, ErrMalformed)
}

// TestAMoveBacksImportNeedsLogVersion17: the kind round-trips the log, a
// log 16 replica cannot decode it (so the leader proposes it only once
// every voter reads 17), and it needs what its export's format and rules
// need besides.
func TestAMoveBacksImportNeedsLogVersion17(t *testing.T) {
	_, _, back, _ := movedAway(t)
	b := &Batch{Time: 7, Commands: []Command{cmdImportBack("w", back)}}
	got, err := DecodeBatch(EncodeBatch(b))
	require.NoError(t, err)
	require.Equal(t, b, got)

	log16 := Versions{Log: 16, Snapshot: 10, Wire: 1}
	require.False(t, log16.Covers(Needs(&b.Commands[0])))
	require.True(t, Supported().Covers(Needs(&b.Commands[0])))
	require.Equal(t, Versions{Log: 17, Snapshot: 10, Wire: 1}, Needs(&b.Commands[0]), "format 2's snapshot 10")
	v1 := cmdImportBack("w", append(append([]byte(nil), exportMagic...), 1))
	require.Equal(t, MoveBackNeeds(), Needs(&v1), "format 1")
	require.True(t, log16.Covers(Needs(cmdPtr(cmdImport("w", back)))), "a plain import stays at 15")
	require.Equal(t, uint32(17), LogVersion)
}
