package main

import (
	"context"
	"testing"
	"time"

	"github.com/gsd-dev/gsd/anticheat/audit"
	"github.com/gsd-dev/gsd/client"
	"github.com/stretchr/testify/require"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// Under the meta group's map on three nodes (shard 1 on n1 and n2, shard
// 2 on n2 and n3): a world of shard 1 is audited by n1 and n2 alike;
// moved to shard 2, its tree goes on at n2, which runs both groups, and
// n3, which runs shard 2 only, builds it from seq 1 once it copied the
// events before the move from another node: both sign the same tree,
// consistent with the one signed before the move. n1, which does not run
// shard 2, keeps its tree up to the move without a tombstone and answers
// that the world moved.
func TestRunThreeNodesWithMetaAuditAWorldAcrossItsMove(t *testing.T) {
	t.Parallel()
	key, v := auditKey(t)
	mc := startMetaCluster(t, nil, "--audit-key", key)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	n1, n2, n3 := mc.clients[0], mc.clients[1], mc.clients[2]
	placeAndCreate(ctx, t, n1, n1, "mv", 1)
	for seq := uint64(1); seq <= 5; seq++ {
		_, err := n1.Act(ctx, "mv", incr("p1", seq, "e1", 1))
		require.NoError(t, err)
	}
	before := signedAt(ctx, t, n1, v, "mv", 5)
	require.Equal(t, before, signedAt(ctx, t, n2, v, "mv", 5), "n1 and n2 keep the same tree")
	_, err := n3.AuditProof(ctx, "mv", 1, 5)
	require.Equal(t, "unknown_world", client.Code(err), "n3 runs no replica of shard 1: %v", err)
	info, err := n1.World(ctx, "mv")
	require.NoError(t, err)

	require.Eventually(t, func() bool {
		moved, err := n3.MoveWorld(ctx, "mv", 2)
		return err == nil && moved.Seq == 5
	}, 30*time.Second, 20*time.Millisecond, "move mv to shard 2")
	for seq := uint64(6); seq <= 8; seq++ {
		require.Eventually(t, func() bool {
			actx, acancel := context.WithTimeout(ctx, 3*time.Second)
			defer acancel()
			_, err := n3.Act(actx, "mv", incr("p1", seq, "e1", 1))
			return err == nil
		}, 30*time.Second, 20*time.Millisecond, "act %d at the new home", seq)
	}
	after := signedAt(ctx, t, n3, v, "mv", 8)
	require.Equal(t, after, signedAt(ctx, t, n2, v, "mv", 8), "n2 and n3 keep the same tree")
	p, err := n3.AuditConsistency(ctx, "mv", 5, 8)
	require.NoError(t, err)
	proof := make([]tlog.Hash, len(p.Proof))
	for i, h := range p.Proof {
		proof[i] = tlog.Hash(h)
	}
	require.NoError(t, audit.CheckConsistency(before, after, proof), "the tree after the move extends the one before")

	require.Eventually(t, func() bool {
		_, err := n1.AuditProof(ctx, "mv", 1, 5)
		return client.Code(err) == "unknown_world"
	}, 30*time.Second, 20*time.Millisecond, "n1 no longer audits mv")
	msg, err := n1.AuditCheckpointOf(ctx, "mv", info.Incarnation)
	require.NoError(t, err)
	kept, _, err := audit.OpenCheckpoint(msg, v)
	require.NoError(t, err)
	require.False(t, kept.Tombstone, "moved, not deleted")
	require.Equal(t, before.Root, kept.Root)
}

// signedAt has c sign world's checkpoint until it covers size events.
func signedAt(ctx context.Context, t *testing.T, c *client.Client, v note.Verifier, world string, size int64) audit.Checkpoint {
	t.Helper()
	var cp audit.Checkpoint
	require.Eventually(t, func() bool {
		msg, err := c.SignAuditCheckpoint(ctx, world)
		if err != nil {
			return false
		}
		cp, _, err = audit.OpenCheckpoint(msg, v)
		require.NoError(t, err)
		return cp.Size == size
	}, time.Minute, 10*time.Millisecond, "%s audited up to %d", world, size)
	return cp
}
