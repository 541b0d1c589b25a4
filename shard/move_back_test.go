package shard

import (
	"context"
	"testing"

	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/store"
	"github.com/stretchr/testify/require"
)

// requireMoveBackRefused moves world from a to b, whose copy of it is a
// stale one fenced towards a, and requires the move refused world_exists
// before a's fence: a still takes the world's writes (the next one at
// seq+1), and b's copy stays as it was.
func requireMoveBackRefused(ctx context.Context, t *testing.T, a, b *store.Store, world string, to uint64) {
	t.Helper()
	stale, err := b.World(world)
	require.NoError(t, err)
	require.NotNil(t, stale.Moved, "b holds a fenced copy")
	before, err := a.World(world)
	require.NoError(t, err)

	_, err = Move(ctx, a, b, world, to, func(context.Context, string, uint64) error {
		t.Fatal("published a refused move")
		return nil
	})
	require.ErrorIs(t, err, fsm.ErrWorldExists)
	require.ErrorContains(t, err, "fenced copy")

	got, err := a.World(world)
	require.NoError(t, err)
	require.Nil(t, got.Moved, "the source was fenced")
	act(t, a, incr(world, "alice", before.Seq+100, "e"))
	after, err := b.World(world)
	require.NoError(t, err)
	require.Equal(t, stale, after)
}

// TestAMoveBackToAShardThatStillHoldsTheFencedCopyFencesNothing (issue
// 14): the world went C→B→A, and B still holds its copy, fenced towards
// A (nobody deleted it). Moving it A→B cannot import there: the move is
// refused before A's fence, which would otherwise leave the world fenced
// on A towards B and on B towards A (or, worse, take B's stale fenced
// copy for this move's import and publish the world to it).
func TestAMoveBackToAShardThatStillHoldsTheFencedCopyFencesNothing(t *testing.T) {
	ctx, a, b := movedTwice(t)
	act(t, a, incr("w", "alice", 3, "e"))

	requireMoveBackRefused(ctx, t, a, b, "w", 2)
}

// movedTwice boots groups 1 (C), 2 (B) and 3 (A) on one node, creates
// world w on C and moves it C→B→A with an action on each of C and B, and
// returns a context for the test's moves, A and B (which holds w's copy
// fenced towards A).
func movedTwice(t *testing.T) (context.Context, *store.Store, *store.Store) {
	t.Helper()
	groups := bootGroups(t, newTestManager(t, "n1", t.TempDir(), groupMux(t)), 1, 2, 3)
	ctx := moveContext(t)
	c, b, a := groups[1], groups[2], groups[3]
	mustCreateWorld(t, c, "w")
	act(t, c, incr("w", "alice", 1, "e"))
	_, err := Move(ctx, c, b, "w", 2, nil)
	require.NoError(t, err)
	act(t, b, incr("w", "alice", 2, "e"))
	_, err = Move(ctx, b, a, "w", 3, nil)
	require.NoError(t, err)
	return ctx, a, b
}

// TestAMoveBackToTheShardThatCreatedTheWorldFencesNothing (issue 14): the
// world was created on B and moved to A; B's copy (imported index 0) is
// fenced towards A. Moving it back to B is refused before A's fence, not
// after it with the world stuck fenced on both.
func TestAMoveBackToTheShardThatCreatedTheWorldFencesNothing(t *testing.T) {
	ctx, b, a := twoGroups(t)
	mustCreateWorld(t, b, "w")
	act(t, b, incr("w", "alice", 1, "e"))
	_, err := Move(ctx, b, a, "w", 2, nil)
	require.NoError(t, err)

	requireMoveBackRefused(ctx, t, a, b, "w", 1)
}

// TestAnImportOntoAFencedCopyIsNoEarlierImport: ImportMoved, which takes
// world_exists for an earlier import of the same move when the target's
// copy has the export's incarnation and was imported, refuses a copy
// that is fenced: it is an earlier stay of the world there, not this
// move's import, even with the same incarnation and an imported index.
func TestAnImportOntoAFencedCopyIsNoEarlierImport(t *testing.T) {
	ctx, a, b := movedTwice(t)

	// The steps a move runs when its check did not see b's copy (an admin
	// on an older binary asks none): the fence on a is done already.
	e, err := FenceAndExport(ctx, a, "w", 2)
	require.NoError(t, err)
	err = ImportMoved(ctx, b, "w", e)
	require.ErrorIs(t, err, fsm.ErrWorldExists)
	require.ErrorContains(t, err, "fenced copy")
}

// TestCheckTargetCopyPassesATargetThatCannotTell: a target without World
// (no copy to look at) is left to its import.
func TestCheckTargetCopyPassesATargetThatCannotTell(t *testing.T) {
	require.NoError(t, CheckTargetCopy(struct{}{}, "w", 2))
	require.ErrorIs(t, CheckTargetCopy(&fakeGroup{world: fsm.WorldInfo{ID: "w", Imported: 4, Moved: &fsm.Fence{World: "w", Shard: 1}}}, "w", 2), fsm.ErrWorldExists)
	require.NoError(t, CheckTargetCopy(&fakeGroup{world: fsm.WorldInfo{ID: "w", Imported: 4}}, "w", 2), "an earlier import of the move")
}
