package fsm

import (
	"testing"

	"github.com/gsd-dev/gsd/internal/golden"
	"github.com/stretchr/testify/require"
)

func cmdMoveSalted(c WorldMove) Command { return Command{Kind: CmdMoveWorldSalted, Move: &c} }

// saltedMoveState builds a salted world with salts, an erased player's
// kept digest, player data (a version) and sessions, ready to move.
func saltedMoveState(t *testing.T) *harness {
	h := erasedState(t) // alice erased (kept), bob salted, 2 events
	h.apply(cmdSalt("w", "carol", 0xC0))
	h.event(act("w", "carol", 1, opIncr("bob", "c", 2)))
	h.openSession("w", "s1", "bob", "t")
	require.NoError(t, h.session(CmdSessionData, SessionCmd{World: "w", ID: "s1", Data: []DataItem{{Key: "coins", Value: Int(3)}}}).Err)
	require.NoError(t, h.session(CmdSessionData, SessionCmd{World: "w", Player: "carol", Data: []DataItem{{Key: "gold", Value: Int(1)}}}).Err)
	return h
}

// TestASaltedWorldsFenceNeedsLogVersion15: CmdMoveWorld, all that a log
// 14 replica reads, refuses a salted world as it did, fencing nothing;
// CmdMoveWorldSalted fences it (and any world), and only a log 15 voter
// reads it.
func TestASaltedWorldsFenceNeedsLogVersion15(t *testing.T) {
	h := saltedMoveState(t)
	r := h.apply(cmdMove(WorldMove{World: "w", Shard: 2}))[0]
	require.ErrorIs(t, r.Err, ErrNotSupported)
	require.ErrorContains(t, r.Err, "log version 15")
	require.Nil(t, r.Fence)
	require.Equal(t, StatusApplied, h.event(act("w", "bob", 2, opIncr("e", "c", 1))).Status, "still writable")

	r = h.apply(cmdMoveSalted(WorldMove{World: "w", Shard: 2}))[0]
	require.NoError(t, r.Err)
	require.Equal(t, Fence{World: "w", Shard: 2, Seq: 4}, *r.Fence)
	requireMoved(t, h.do(act("w", "bob", 3, opIncr("e", "c", 1))).Err, *r.Fence)
	// A retried fence answers the first (either kind once fenced).
	require.Equal(t, *r.Fence, *h.apply(cmdMoveSalted(WorldMove{World: "w", Shard: 2}))[0].Fence)

	// The table is frozen with the world, so that every replica exports
	// it alike and an erasure goes to the new home.
	before, err := h.f.SaltTable("w")
	require.NoError(t, err)
	for _, c := range []Command{cmdSalt("w", "dave", 0xD0), cmdEraseKeep("w", "bob"), cmdErase("w", "bob")} {
		requireMoved(t, h.apply(c)[0].Err, *r.Fence)
	}
	after, err := h.f.SaltTable("w")
	require.NoError(t, err)
	require.Equal(t, before, after)

	h.createWorld("plain2", Rules{})
	require.NoError(t, h.apply(cmdMoveSalted(WorldMove{World: "plain2", Shard: 2}))[0].Err, "an unsalted world too")

	c := cmdMoveSalted(WorldMove{World: "w", Shard: 1 << 40, Incarnation: 7})
	b := &Batch{Time: 3, Commands: []Command{c}}
	got, err := DecodeBatch(EncodeBatch(b))
	require.NoError(t, err)
	require.Equal(t, b, got)
	log14 := Versions{Log: 14, Snapshot: 10, Wire: 1}
	require.Equal(t, Versions{Log: 15, Snapshot: 10, Wire: 1}, Needs(&c))
	require.False(t, log14.Covers(Needs(&c)))
	require.True(t, Supported().Covers(Needs(&c)))
}

// TestSaltedWorldExportImportKeepsSaltsDigestsAndDataVersions: export
// format 2 carries the salt table, the erased digests and the data
// versions; the imported world has the source's state hash and table,
// its next event is salted with the moved salts, an expected data
// version read before the move holds, and a snapshot keeps it all.
func TestSaltedWorldExportImportKeepsSaltsDigestsAndDataVersions(t *testing.T) {
	h := saltedMoveState(t)
	f := h.apply(cmdMoveSalted(WorldMove{World: "w", Shard: 2}))[0].Fence
	blob, n := h.export("w", ExportFormat)
	require.Equal(t, f.Seq, n)
	require.Equal(t, []byte("GSDWRLD\x02"), blob[:len(exportMagic)])
	imp := cmdImport("w", blob)
	require.Equal(t, Versions{Log: 15, Snapshot: 10, Wire: 1}, Needs(&imp), "format 2 needs log 15")
	require.False(t, Versions{Log: 14, Snapshot: 10, Wire: 1}.Covers(Needs(&imp)))
	golden.Binary(t, "export_salted_v2.bin", blob)

	th := newHarness(t)
	th.index, th.time = 500, h.time+1_000_000_000 // another group, a later clock
	r := th.apply(cmdImport("w", golden.Read(t, "export_salted_v2.bin")))[0]
	require.NoError(t, r.Err)
	require.True(t, r.Imported.Salted)
	requireImportedAs(t, h.f, th.f, 501)
	st, err := h.f.SaltTable("w")
	require.NoError(t, err)
	dt, err := th.f.SaltTable("w")
	require.NoError(t, err)
	require.Equal(t, st, dt, "salts with their since, erased digests")
	require.Len(t, dt.Erased, 1)
	require.Len(t, dt.Salts, 2)
	sr, err := h.f.PlayerRecords("w")
	require.NoError(t, err)
	dr, err := th.f.PlayerRecords("w")
	require.NoError(t, err)
	require.Equal(t, sr, dr, "data versions kept, not stamped with the import's time")
	ss, _ := h.f.Sessions("w")
	ds, _ := th.f.Sessions("w")
	require.Equal(t, ss, ds)

	// The seq goes on, salted with the moved salts; the erased player
	// needs a new salt, a retried action is answered from its window.
	ev := th.event(act("w", "bob", 2, opIncr("carol", "c", 1)))
	require.Equal(t, n+1, ev.Seq)
	require.Equal(t, &Salting{Names: []SaltedName{{"bob", saltDigest("bob", 0xB0)}, {"carol", saltDigest("carol", 0xC0)}}}, ev.Salted)
	require.ErrorIs(t, th.do(act("w", "alice", 2, opIncr("e", "c", 1))).Err, ErrUnsalted)
	require.True(t, th.do(act("w", "carol", 1, opIncr("bob", "c", 2))).Duplicate)
	// A data write expecting the version read at the old home applies.
	var carol PlayerRecord
	for _, p := range sr {
		if p.Player == "carol" {
			carol = p
		}
	}
	require.NotZero(t, carol.Version)
	require.NoError(t, th.session(CmdSessionData, SessionCmd{World: "w", Player: "carol", Seq: carol.Version, Data: []DataItem{{Key: "gold", Value: Int(2)}}}).Err)

	p := th.snapshotBytes()
	require.Equal(t, byte(10), p[len(snapMagic)-1])
	g := restored(t, p)
	requireSameState(t, th.f, g)
	gt, err := g.SaltTable("w")
	require.NoError(t, err)
	require.Equal(t, dt, gt)
}

// TestOldWorldExportsStillImport: an unsalted world still exports in
// format 1 (the golden bytes are what a log 14 binary exports of the
// same world), which imports as before, its data
// versions stamped with the import's time.
func TestOldWorldExportsStillImport(t *testing.T) {
	h := newHarness(t)
	h.createWorld("w", Rules{})
	h.event(act("w", "ann", 1, opIncr("e1", "c", 1)))
	h.openSession("w", "s1", "ann", "t")
	require.NoError(t, h.session(CmdSessionData, SessionCmd{World: "w", ID: "s1", Data: []DataItem{{Key: "coins", Value: Int(3)}}}).Err)
	h.fence("w", 2)
	blob, _ := h.export("w", 1)
	require.Equal(t, exportMagic, blob[:len(exportMagic)])
	imp := cmdImport("w", blob)
	require.Equal(t, Versions{Log: 8, Snapshot: 7, Wire: 1}, Needs(&imp))
	golden.Binary(t, "export_v1.bin", blob)

	th := newHarness(t)
	th.time = h.time
	r := th.apply(cmdImport("w", golden.Read(t, "export_v1.bin")))[0]
	require.NoError(t, r.Err)
	require.False(t, r.Imported.Salted)
	src, err := h.f.World("w")
	require.NoError(t, err)
	require.Equal(t, src.Hash, r.Imported.Hash)
	requireImportedVersionsRise(t, h.f, th.f)
}

// TestImportRefusesExportFormatsItDoesNotRead: a format after 2, and a
// crafted format 2 blob whose world keeps digests but is not salted.
func TestImportRefusesExportFormatsItDoesNotRead(t *testing.T) {
	h := saltedMoveState(t)
	blob, _ := h.export("w", ExportFormat)
	th := newHarness(t)
	for _, v := range []byte{0, 3, 0xff} {
		b := append([]byte(nil), blob...)
		b[len(exportMagic)-1] = v
		c := &WorldImport{World: "w", Data: b}
		require.Zero(t, c.Format())
		require.ErrorIs(t, th.apply(cmdImport("w", b))[0].Err, ErrMalformed, "format %d", v)
	}
	_, err := th.f.World("w")
	require.ErrorIs(t, err, ErrUnknownWorld, "nothing installed")
}
