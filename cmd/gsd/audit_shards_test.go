package main

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gsd-dev/gsd/anticheat/audit"
	"github.com/gsd-dev/gsd/client"
	"github.com/gsd-dev/gsd/sink/feed"
	"github.com/gsd-dev/gsd/wire"
	"github.com/stretchr/testify/require"
	"golang.org/x/mod/sumdb/tlog"
)

// With --shard-map the node's auditor follows the worlds of every group
// it runs, not group 0's only: the worlds of shards 1 and 2 get proofs
// and signed checkpoints, the metrics count them, an unknown world is
// named so, and a restart neither buries a live world (before its group
// replayed its log, the world was not listed yet) nor loses its tree.
// The sinks' positions worlds, one per group under one name, are left
// out.
func TestRunWithAShardMapAuditsTheWorldsOfEveryGroup(t *testing.T) {
	t.Parallel()
	key, v := auditKey(t)
	dir, httpAddr, raftAddr := t.TempDir(), freeAddr(t), freeAddr(t)
	// The file exports keep their positions in gsd.sinks of each group.
	flags := []string{"--shard-map", shardMapFile(t, "s1", raftAddr, httpAddr, 0), "--audit-key", key,
		"--export-dir", "exp", "--export-max-age", "20ms", "--export-positions-every", "1"}
	n := startNodeAt(t, "s1", dir, httpAddr, raftAddr, flags...)
	n.waitLeader(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c := n.client(t)
	worlds := []string{"old", "a", "b"} // shards 0, 1 and 2
	for _, w := range worlds {
		require.NoError(t, c.CreateWorld(ctx, w, wire.Rules{}))
		for seq := uint64(1); seq <= 3; seq++ {
			_, err := c.Act(ctx, w, incr("p1", seq, "e1", 1))
			require.NoError(t, err)
		}
	}
	before := map[string]audit.Checkpoint{}
	for _, w := range worlds {
		before[w] = signedAt(ctx, t, c, v, w, 3)
		p, err := c.AuditProof(ctx, w, 2, 3)
		require.NoError(t, err)
		require.Len(t, p.Proof, 2)
	}
	require.Eventually(t, func() bool {
		got := finishedRanges(t, filepath.Join(dir, "exp"))
		return len(got["old"]) == 3 && len(got["a"]) == 3 && len(got["b"]) == 3
	}, 30*time.Second, 20*time.Millisecond, "every group's worlds are exported, their positions kept in their group's gsd.sinks")
	require.Eventually(t, func() bool {
		_, err := c.World(ctx, feed.PositionsWorld)
		return err == nil
	}, 30*time.Second, 20*time.Millisecond, "the map's group of gsd.sinks holds one")
	// A world created now is found by the auditor's scan (no route asks
	// for it), which lists gsd.sinks too: once late's events are logged,
	// the node follows old, a, b and late, not gsd.sinks.
	require.NoError(t, c.CreateWorld(ctx, "late", wire.Rules{}))
	for seq := uint64(1); seq <= 3; seq++ {
		_, err := c.Act(ctx, "late", incr("p1", seq, "e1", 1))
		require.NoError(t, err)
	}
	var metrics string
	require.Eventually(t, func() bool {
		metrics = string(httpGet(t, n.http, "/metrics"))
		return strings.Contains(metrics, "gsd_audit_events 12\n")
	}, 30*time.Second, 20*time.Millisecond, "late is audited")
	requireContains(t, metrics, "gsd_audit_worlds 4\n", "gsd_audit_worlds_stalled 0\n")
	_, err := c.AuditProof(ctx, "nowhere", 1, 1)
	require.Equal(t, "unknown_world", client.Code(err), "%v", err)

	require.Equal(t, 0, n.stop(t))
	n = startNodeAt(t, "s1", dir, httpAddr, raftAddr, flags...)
	n.waitLeader(t)
	c = n.client(t)
	for _, w := range worlds {
		_, err := c.Act(ctx, w, incr("p1", 4, "e1", 1))
		require.NoError(t, err)
		after := signedAt(ctx, t, c, v, w, 4)
		p, err := c.AuditConsistency(ctx, w, 3, 4)
		require.NoError(t, err)
		proof := make([]tlog.Hash, len(p.Proof))
		for i, h := range p.Proof {
			proof[i] = tlog.Hash(h)
		}
		require.NoError(t, audit.CheckConsistency(before[w], after, proof), "%s: the tree goes on after the restart", w)
	}
	require.NotContains(t, n.stderr.String(), "tombstone", "no live world is buried at the restart")
}
