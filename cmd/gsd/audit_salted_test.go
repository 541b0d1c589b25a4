package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/gsd-dev/gsd/anticheat/audit"
	"github.com/gsd-dev/gsd/wire"
	"github.com/stretchr/testify/require"
)

// TestASaltedWorldsTreeRebuiltAfterAnErasureIsTheSame: the reason events
// carry their salted ids. A node whose audit trees are deleted after a
// player's salt was erased rebuilds the salted world's tree from its
// archive with the same root: it never needs the erased salt.
func TestASaltedWorldsTreeRebuiltAfterAnErasureIsTheSame(t *testing.T) {
	t.Parallel()
	key, v := auditKey(t)
	dir := t.TempDir()
	n := startNode(t, "n1", dir, "--audit-key", key)
	n.waitLeader(t)

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c := n.client(t)
	require.NoError(t, c.CreateSaltedWorld(ctx, "arena", wire.Rules{}))
	for seq := uint64(1); seq <= 12; seq++ {
		_, err := c.Act(ctx, "arena", incr(fmt.Sprintf("p%d", seq%3), seq, fmt.Sprintf("p%d", seq%3), int64(seq)))
		require.NoError(t, err)
	}
	signedAt := func() audit.Checkpoint {
		var cp audit.Checkpoint
		require.Eventually(t, func() bool {
			msg, err := n.client(t).SignAuditCheckpoint(ctx, "arena")
			require.NoError(t, err)
			cp, _, err = audit.OpenCheckpoint(msg, v)
			require.NoError(t, err)
			return cp.Size == 12
		}, time.Minute, 10*time.Millisecond)
		return cp
	}
	before := signedAt()
	require.Equal(t, wire.AuditLeafV2, before.Leaf)
	require.NoError(t, c.EraseAuditSalt(ctx, "arena", "p1"))
	salts, err := c.AuditSalts(ctx, "arena")
	require.NoError(t, err)
	require.Len(t, salts.Salts, 2, "p1's salt is gone")

	n.stop(t)
	require.NoError(t, os.Remove(filepath.Join(dir, auditFile)))
	n = startNodeAt(t, "n1", dir, n.http, n.raft, "--audit-key", key)
	n.waitLeader(t)
	after := signedAt()
	require.Equal(t, before.Root, after.Root, "the rebuilt tree commits to the same leaves")
}
