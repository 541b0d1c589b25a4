package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/gsd-dev/gsd/anticheat/audit"
	"github.com/gsd-dev/gsd/client"
	"github.com/gsd-dev/gsd/wire"
	"github.com/stretchr/testify/require"
)

// Issue 15's tombstones over a real node: a world played, deleted,
// created again and played again has two trees; the first match's export
// verifies against the first incarnation's tombstone, the second's
// against the new tree's checkpoint, and the node logs no error (it used
// to refuse the new world's events as diverged).
func TestAuditAWorldCreatedAgainKeepsBothMatchesVerifiable(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a gsd process")
	}
	dir := t.TempDir()
	n, keyPrefix := startAuditNode(t, dir, "", "")

	c := client.New([]string{n.http})
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	play := func(from, to uint64) {
		for seq := from; seq <= to; seq++ {
			_, err := c.Act(ctx, "arena", client.ActionRequest{Player: fmt.Sprintf("p%d", seq%3), Seq: seq,
				Ops: []wire.Op{client.Incr("score", fmt.Sprintf("p%d", seq%3), int64(seq))}})
			require.NoError(t, err)
		}
	}
	incarnation := func() uint64 {
		ws, err := c.Worlds(ctx)
		require.NoError(t, err)
		for _, w := range ws {
			if w.ID == "arena" {
				return w.Incarnation
			}
		}
		t.Fatal("no world arena")
		return 0
	}
	require.NoError(t, c.CreateWorld(ctx, "arena", wire.Rules{}))
	play(1, 12)
	first := incarnation()
	fetchAt(t, n.http, filepath.Join(dir, "first"), 12, keyPrefix+".pub", true)

	_, err := c.DeleteWorld(ctx, "arena", first)
	require.NoError(t, err)
	require.NoError(t, c.CreateWorld(ctx, "arena", wire.Rules{}))
	second := incarnation()
	require.NotEqual(t, first, second)
	play(1, 15) // past the old tree's size
	cp := fetchAt(t, n.http, filepath.Join(dir, "second"), 15, keyPrefix+".pub", true)
	require.Equal(t, second, cp.Incarnation)
	out := mustRun(t, "audit", "verify", "--log", filepath.Join(dir, "second.ndjson"), "--checkpoint", filepath.Join(dir, "second.checkpoint"),
		"--leaves", filepath.Join(dir, "second.leaves"), "--key", keyPrefix+".pub")
	require.Contains(t, out, "incarnation "+strconv.FormatUint(second, 10)+", 15 events")
	require.Contains(t, out, "ok")

	// The first incarnation's tombstone, once the node wrote it.
	tomb := filepath.Join(dir, "tomb")
	require.Eventually(t, func() bool {
		out := mustRun(t, "--addr", n.http, "audit", "fetch", "arena", "--incarnation", strconv.FormatUint(first, 10), "--out", tomb)
		return len(out) > 0 && func() bool {
			b, err := os.ReadFile(tomb + ".checkpoint")
			require.NoError(t, err)
			c, err := checkpointText(b)
			require.NoError(t, err)
			return c.Tombstone
		}()
	}, time.Minute, 20*time.Millisecond)
	out = mustRun(t, "audit", "verify", "--log", filepath.Join(dir, "first.ndjson"), "--checkpoint", tomb+".checkpoint",
		"--leaves", tomb+".leaves", "--key", keyPrefix+".pub")
	require.Contains(t, out, "tombstone: the world incarnation "+strconv.FormatUint(first, 10)+" was deleted; its log ended at 12 events")
	require.Contains(t, out, "ok")
	_, err = os.Stat(tomb + ".ndjson")
	require.True(t, os.IsNotExist(err), "a tombstone's fetch exports no events")
	// The first match's export is not the second tree's.
	code, _, _ := ctl(t, "", "audit", "verify", "--log", filepath.Join(dir, "first.ndjson"), "--checkpoint", filepath.Join(dir, "second.checkpoint"),
		"--key", keyPrefix+".pub")
	require.Equal(t, 1, code)
	code, _, stderr := ctl(t, "", "--addr", n.http, "audit", "fetch", "arena", "--sign", "--incarnation", "1", "--out", tomb)
	require.NotZero(t, code)
	require.Contains(t, stderr, "not with --incarnation")

	// The tombstone survives a restart.
	n.stop(t)
	n.start(t)
	msg, err := c.AuditCheckpointOf(ctx, "arena", first)
	require.NoError(t, err)
	v, err := os.ReadFile(keyPrefix + ".pub")
	require.NoError(t, err)
	k, err := audit.ParseVerifyingKey(string(v))
	require.NoError(t, err)
	got, _, err := audit.OpenCheckpoint(msg, k)
	require.NoError(t, err)
	require.True(t, got.Tombstone)
	require.Equal(t, int64(12), got.Size)
	n.stop(t)
	require.NotContains(t, n.stderr.String(), "level=ERROR")
}
