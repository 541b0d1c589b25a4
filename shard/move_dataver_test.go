package shard

import (
	"context"
	"testing"
	"time"

	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/store"
	"github.com/stretchr/testify/require"
)

// twoGroups boots groups 1 and 2 on one node and returns a context for
// the test's moves (cancelled when it ends) and the two groups' stores.
func twoGroups(t *testing.T) (context.Context, *store.Store, *store.Store) {
	t.Helper()
	groups := bootGroups(t, newTestManager(t, "n1", t.TempDir(), groupMux(t)), 1, 2)
	return moveContext(t), groups[1], groups[2]
}

// moveContext returns a context for a test's moves, cancelled when it ends.
func moveContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// writeGold writes player's gold in world on st, expecting data version
// expect (0: any), and returns the new version.
func writeGold(ctx context.Context, st *store.Store, world, player string, expect uint64, gold int64) (uint64, error) {
	info, err := st.Session(ctx, fsm.CmdSessionData, &fsm.SessionCmd{World: world, Player: player, Seq: expect,
		Data: []fsm.DataItem{{Key: "gold", Value: fsm.Int(gold)}}})
	return info.DataVersion, err
}

// dataVersioned creates world w on src with an action and player data
// written at known versions (alice's second write expecting her first
// version), and returns alice's version and the world's records.
func dataVersioned(ctx context.Context, t *testing.T, src *store.Store, w string) (uint64, []fsm.PlayerRecord) {
	t.Helper()
	mustCreateWorld(t, src, w)
	act(t, src, incr(w, "alice", 1, "e"))
	v1, err := writeGold(ctx, src, w, "alice", 0, 1)
	require.NoError(t, err)
	v2, err := writeGold(ctx, src, w, "alice", v1, 2)
	require.NoError(t, err)
	require.Greater(t, v2, v1)
	_, err = writeGold(ctx, src, w, "bob", 0, 7)
	require.NoError(t, err)
	recs, err := src.PlayerRecords(w)
	require.NoError(t, err)
	return v2, recs
}

// TestAnUnsaltedWorldKeepsItsDataVersionsWhenItMovesToALog15Group (issues
// 14/15): the target's voters read log 15, so the unsalted world moves in
// export format 2 and keeps its players' data versions: a write that
// expects the version read before the move applies at the new home the
// first time (with format 1 it answered data_conflict once per move).
func TestAnUnsaltedWorldKeepsItsDataVersionsWhenItMovesToALog15Group(t *testing.T) {
	ctx, src, dst := twoGroups(t)
	read, before := dataVersioned(ctx, t, src, "w")

	seq, err := Move(ctx, src, dst, "w", 2, nil)
	require.NoError(t, err)
	require.Equal(t, uint64(1), seq)
	after, err := dst.PlayerRecords("w")
	require.NoError(t, err)
	require.Equal(t, before, after, "the data and its versions moved")
	v, err := writeGold(ctx, dst, "w", "alice", read, 3)
	require.NoError(t, err, "the version read before the move holds at the new home")
	require.Greater(t, v, read)
}

// recordingSource records the export formats a move asks of a source and
// the formats of the blobs it answers; with answer set it exports in that
// format whatever it is asked, as a source node on a binary that knows
// no format does (format 1 for an unsalted world).
type recordingSource struct {
	MoveSource
	answer      byte
	asked, sent []byte
}

func (s *recordingSource) ExportWorld(world string, format byte) ([]byte, uint64, error) {
	s.asked = append(s.asked, format)
	if s.answer != 0 {
		format = s.answer
	}
	blob, seq, err := s.MoveSource.ExportWorld(world, format)
	if err == nil {
		s.sent = append(s.sent, (&fsm.WorldImport{World: world, Data: blob}).Format())
	}
	return blob, seq, err
}

// requireRestamped checks a world moved in format 1: same data, versions
// risen (stamped by the import), so the version read before the move
// answers data_conflict once and the version read at the new home applies.
func requireRestamped(ctx context.Context, t *testing.T, dst *store.Store, read uint64, before []fsm.PlayerRecord) {
	t.Helper()
	after, err := dst.PlayerRecords("w")
	require.NoError(t, err)
	require.Len(t, after, len(before))
	for i, r := range after {
		require.Equal(t, before[i].Player, r.Player)
		require.Equal(t, before[i].Data, r.Data)
		require.Greater(t, r.Version, before[i].Version, "player %s: restamped by the import", r.Player)
	}
	_, err = writeGold(ctx, dst, "w", "alice", read, 3)
	require.ErrorIs(t, err, fsm.ErrDataConflict)
	_, err = writeGold(ctx, dst, "w", "alice", after[0].Version, 3)
	require.NoError(t, err, "the version read at the new home")
}

// TestAnUnsaltedWorldMovesInFormat1ToAGroupWithALog14Voter: the target's
// gate refuses format 2, so the move asks the source for format 1 and
// the world moves as before, its data versions restamped.
func TestAnUnsaltedWorldMovesInFormat1ToAGroupWithALog14Voter(t *testing.T) {
	src, dst := log14Target(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	read, before := dataVersioned(ctx, t, src, "w")
	require.ErrorIs(t, ExportFormatGate(dst), store.ErrVersionGate)

	rec := &recordingSource{MoveSource: src}
	_, err := Move(ctx, rec, dst, "w", 2, nil)
	require.NoError(t, err)
	require.Equal(t, []byte{1}, rec.asked, "an older target is never handed format 2")
	require.Equal(t, []byte{1}, rec.sent)
	requireRestamped(ctx, t, dst, read, before)
}

// TestAnOlderSourceThatExportsFormat1StillMovesTheWorld: the target reads
// log 15 and the move asks for format 2, but the source answers format 1
// (a binary that ignores the format): the move completes, restamping.
func TestAnOlderSourceThatExportsFormat1StillMovesTheWorld(t *testing.T) {
	ctx, src, dst := twoGroups(t)
	read, before := dataVersioned(ctx, t, src, "w")
	from, err := src.World("w")
	require.NoError(t, err)

	rec := &recordingSource{MoveSource: src, answer: 1}
	_, err = Move(ctx, rec, dst, "w", 2, nil)
	require.NoError(t, err)
	require.Equal(t, []byte{fsm.ExportFormat}, rec.asked)
	require.Equal(t, []byte{1}, rec.sent)
	got, err := dst.World("w")
	require.NoError(t, err)
	require.Equal(t, from.Hash, got.Hash)
	requireRestamped(ctx, t, dst, read, before)
}
