package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/gsd-dev/gsd/client"
	"github.com/gsd-dev/gsd/shard"
	"github.com/gsd-dev/gsd/wire"
	"github.com/stretchr/testify/require"
)

// snapshotIndex returns the highest index of the snapshots in a group's
// directory (0: none yet).
func snapshotIndex(t *testing.T, groupDir string) uint64 {
	t.Helper()
	metas, err := filepath.Glob(filepath.Join(groupDir, "snapshots", "*", "meta.json"))
	require.NoError(t, err)
	var top uint64
	for _, p := range metas {
		b, err := os.ReadFile(p)
		if err != nil {
			continue // being written
		}
		var m struct{ Index uint64 }
		if json.Unmarshal(b, &m) == nil {
			top = max(top, m.Index)
		}
	}
	return top
}

// Under a shard map every group's archive refills itself, not group 0's
// only: a node whose group-1 archive file was cut short while it was
// stopped (its snapshot taken, so Raft no longer replays those events)
// detects the loss at restart, refills the range from group 1's other
// voters, verified, and streams every event of a group-1 world from seq
// 1 again, byte for byte as another node does.
func TestShardGroupArchiveIsRefilledFromItsVotersAfterRestart(t *testing.T) {
	t.Parallel()
	ids := []string{"n1", "n2", "n3"}
	httpAddrs, raftAddrs, dirs := map[string]string{}, map[string]string{}, map[string]string{}
	nodes := map[string]any{}
	for _, id := range ids {
		httpAddrs[id], raftAddrs[id], dirs[id] = freeAddr(t), freeAddr(t), t.TempDir()
		nodes[id] = map[string]string{"raft": raftAddrs[id], "http": httpAddrs[id]}
	}
	b, err := json.Marshal(map[string]any{
		"nodes":  nodes,
		"shards": []map[string]any{{"id": 1, "voters": ids}},
		"worlds": map[string]uint64{"arena": 1},
	})
	require.NoError(t, err)
	flags := []string{"--shard-map", writeFile(t, string(b)), "--snapshot-threshold", "16", "--trailing-logs", "4",
		"--snapshot-interval", "100ms", "--archive-refill-interval", "200ms"}
	run := map[string]*testNode{}
	for i, id := range ids {
		extra := flags
		if i > 0 {
			extra = append(append([]string{}, flags...), "--join", httpAddrs["n1"])
		}
		run[id] = startNodeAt(t, id, dirs[id], httpAddrs[id], raftAddrs[id], extra...)
		c := run[id].client(t)
		if i == 0 {
			waitFor(t, run[id], c, "leads", func(s client.Status) bool { return s.Leader == "n1" })
		} else {
			waitFor(t, run[id], c, "answers", func(client.Status) bool { return true })
		}
	}
	c := run["n1"].client(t)
	waitFor(t, run["n1"], c, "group 0 has three voters", func(s client.Status) bool { return len(s.Servers) == 3 })

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	require.NoError(t, c.CreateWorld(ctx, "arena", wire.Rules{}))
	actRange(ctx, t, c, "arena", 1, 60)
	// n2's group-1 snapshot covers most of the events: after the
	// restart, Raft replays only what follows it.
	g1 := shard.GroupDir(dirs["n2"], 1)
	require.Eventually(t, func() bool { return snapshotIndex(t, g1) >= 40 }, time.Minute, 20*time.Millisecond)
	require.Zero(t, run["n2"].stop(t))

	cutArchive(t, filepath.Join(g1, "events.db"))
	actRange(ctx, t, c, "arena", 61, 70)

	n2 := startNodeAt(t, "n2", dirs["n2"], httpAddrs["n2"], raftAddrs["n2"], flags...)
	waitFor(t, n2, n2.client(t), "answers", func(client.Status) bool { return true })
	st := waitRefilled(t, n2, "arena", 70) // the node's archive status adds up every group's
	require.Zero(t, st.Refused)
	// The refill at start runs while the restarted node's auditor still
	// replays (its trees answer not_ready until then), so two voters'
	// equal answers verify most pages; a later round checks against
	// the world's tree, which the auditor keeps for every group's
	// worlds. Either way every refilled event was verified.
	require.Equal(t, st.Refilled, st.Verified["two_peers"]+st.Verified["audit"], "every refilled event verified: %v", st.Verified)
	requireContains(t, n2.stderr.String(), "event archive is corrupt", "event archive lacks events", "event archive refilled")
	require.Equal(t, eventLines(t, run["n3"].http, "arena", 70), eventLines(t, n2.http, "arena", 70), "byte for byte")
	metrics := httpGet(t, n2.http, "/metrics")
	for _, m := range []string{`gsd_archive_missing_events{group="1"} 0`, `gsd_archive_refill_refused_total{group="1"} 0`} {
		require.True(t, bytes.Contains(metrics, []byte(m)), m)
	}
	require.False(t, bytes.Contains(metrics, []byte(`gsd_archive_refilled_events_total{group="1"} 0`)), "group 1 refilled")
}
