package fsm

import (
	"testing"

	"github.com/gsd-dev/gsd/internal/golden"
	"github.com/stretchr/testify/require"
)

// unsaltedDataState builds an unsalted world with player data written at
// known versions (a session's own write and a game server's), fenced
// towards shard 2, and returns carol's record as read before the move.
func unsaltedDataState(t *testing.T) (*harness, PlayerRecord) {
	h := newHarness(t)
	h.createWorld("w", Rules{})
	h.event(act("w", "ann", 1, opIncr("e1", "c", 1)))
	h.openSession("w", "s1", "ann", "t")
	require.NoError(t, h.session(CmdSessionData, SessionCmd{World: "w", ID: "s1", Data: []DataItem{{Key: "coins", Value: Int(3)}}}).Err)
	require.NoError(t, h.session(CmdSessionData, SessionCmd{World: "w", Player: "carol", Data: []DataItem{{Key: "gold", Value: Int(1)}}}).Err)
	h.fence("w", 2)
	recs, err := h.f.PlayerRecords("w")
	require.NoError(t, err)
	for _, r := range recs {
		if r.Player == "carol" {
			require.NotZero(t, r.Version)
			return h, r
		}
	}
	t.Fatal("carol has no data")
	return nil, PlayerRecord{}
}

// TestAnUnsaltedWorldExportedInFormat2KeepsItsDataVersions (issues 14/15):
// the move asks for format 2 when its target reads log 15; the import
// keeps the data versions, so a write expecting the version read before
// the move applies on the new home, where the same world exported in
// format 1 (an older target) restamps them and refuses that write once.
func TestAnUnsaltedWorldExportedInFormat2KeepsItsDataVersions(t *testing.T) {
	h, carol := unsaltedDataState(t)
	blob, n := h.export("w", ExportFormat)
	require.Equal(t, []byte("GSDWRLD\x02"), blob[:len(exportMagic)])
	imp := cmdImport("w", blob)
	require.Equal(t, Versions{Log: 15, Snapshot: 10, Wire: 1}, Needs(&imp), "format 2 needs log 15, salted or not")
	golden.Binary(t, "export_unsalted_v2.bin", blob)
	src, err := h.f.World("w")
	require.NoError(t, err)
	write := SessionCmd{World: "w", Player: "carol", Seq: carol.Version, Data: []DataItem{{Key: "gold", Value: Int(2)}}}

	th := newHarness(t)
	th.index, th.time = 500, h.time+1_000_000_000 // another group, a later clock
	r := th.apply(cmdImport("w", golden.Read(t, "export_unsalted_v2.bin")))[0]
	require.NoError(t, r.Err)
	require.False(t, r.Imported.Salted)
	require.Equal(t, n, r.Imported.Seq)
	require.Equal(t, src.Hash, r.Imported.Hash)
	requireImportedAs(t, h.f, th.f, 501)
	requireImportedDataVersions(t, h.f, th.f, true)
	require.NoError(t, th.session(CmdSessionData, write).Err, "the version read before the move holds")
	g := restored(t, th.snapshotBytes())
	requireSameState(t, th.f, g)

	old, m := h.export("w", 1)
	require.Equal(t, n, m)
	require.Equal(t, exportMagic, old[:len(exportMagic)])
	oh := newHarness(t)
	oh.index, oh.time = 500, h.time+1_000_000_000
	r = oh.apply(cmdImport("w", old))[0]
	require.NoError(t, r.Err)
	require.Equal(t, src.Hash, r.Imported.Hash, "the same world")
	requireImportedVersionsRise(t, h.f, oh.f)
	require.ErrorIs(t, oh.session(CmdSessionData, write).Err, ErrDataConflict, "format 1 restamps: the expected version fails once")
}

// TestExportWorldRefusesAFormatItCannotWrite: formats it does not write
// (malformed), a salted world in format 1, which has no salt table (not
// supported), and an absent world; nothing is exported.
func TestExportWorldRefusesAFormatItCannotWrite(t *testing.T) {
	h, _ := unsaltedDataState(t)
	for _, v := range []byte{0, ExportFormat + 1, 0xff} {
		blob, _, err := h.f.ExportWorld("w", v)
		require.ErrorIs(t, err, ErrMalformed, "format %d", v)
		require.Nil(t, blob)
	}
	_, _, err := h.f.ExportWorld("nope", ExportFormat)
	require.ErrorIs(t, err, ErrUnknownWorld)

	s := saltedMoveState(t)
	blob, _, err := s.f.ExportWorld("w", 1)
	require.ErrorIs(t, err, ErrNotSupported)
	require.ErrorContains(t, err, "format 2 only")
	require.Nil(t, blob)
}
