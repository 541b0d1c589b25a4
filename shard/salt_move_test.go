package shard

import (
	"context"
	"testing"
	"time"

	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/store"
	"github.com/stretchr/testify/require"
)

// Moving a salted world is refused (its export has no salt table) before
// the fence: a fence whose export cannot follow would leave the world
// refusing every write (world_moved) towards a shard that never gets it.
func TestMovingASaltedWorldIsRefusedAndFencesNothing(t *testing.T) {
	m := newTestManager(t, "n1", t.TempDir(), groupMux(t))
	groups := map[uint64]*store.Store{}
	for _, g := range []uint64{1, 2} {
		st, err := m.Open(g, GroupOptions{Bootstrap: true})
		require.NoError(t, err)
		waitLeader(t, st)
		groups[g] = st
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	require.NoError(t, groups[1].CreateSaltedWorld(ctx, "w", fsm.Rules{}))
	a := func(seq uint64) error {
		_, _, err := groups[1].Act(ctx, &fsm.Action{World: "w", Player: "p", Seq: seq, Ops: []fsm.Op{{Kind: fsm.OpIncr, Entity: "e", Field: "n", Value: fsm.Int(1)}}})
		return err
	}
	require.NoError(t, a(1))

	_, err := m.MoveWorld(ctx, "w", 1, 2, nil)
	require.ErrorIs(t, err, fsm.ErrNotSupported, "the move is refused")

	// The refusal should have changed nothing: the world takes writes.
	err = a(2)
	require.NoError(t, err, "after a refused move the salted world still takes writes")
}
