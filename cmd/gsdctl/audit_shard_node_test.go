package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gsd-dev/gsd/client"
	"github.com/gsd-dev/gsd/wire"
	"github.com/stretchr/testify/require"
)

// Issue 15 under a shard map, over a real node running groups 0, 1 and 2
// (--shard-map, --meta): a world placed on group 1 from the start is
// audited like group 0's (fetched, signed, verified); worlds moved from
// group 0 to group 1, one of them salted, keep one audit log across the
// move and a restart of the node after it: the whole exported log
// verifies with gsdctl audit verify against a checkpoint signed after
// the move and one signed before it, and a tampered event is named.
func TestAuditOfAShardedNodeVerifiesWorldsOfEveryGroupAndAcrossAMove(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a gsd process")
	}
	dir := t.TempDir()
	httpAddr, raftAddr := freeAddr(t), freeAddr(t)
	smap := filepath.Join(dir, "shards.json")
	require.NoError(t, os.WriteFile(smap, fmt.Appendf(nil, `{
  "membership": 0,
  "nodes": {"n1": {"raft": %q, "http": %q}},
  "shards": [{"id": 0, "voters": ["n1"]}, {"id": 1, "voters": ["n1"]}, {"id": 2, "voters": ["n1"]}],
  "worlds": {"arena": 1, "mv": 0, "smv": 0}
}`, raftAddr, httpAddr), 0o644))
	n, keyPrefix := startAuditNode(t, dir, httpAddr, raftAddr, "--shard-map", smap, "--meta")
	pub := keyPrefix + ".pub"

	c := client.New([]string{n.http})
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	require.Eventually(t, func() bool {
		err := c.CreateWorld(ctx, "arena", wire.Rules{})
		return err == nil || client.Code(err) == "world_exists"
	}, time.Minute, 20*time.Millisecond, "create arena")
	require.NoError(t, c.CreateWorld(ctx, "mv", wire.Rules{}))
	require.NoError(t, c.CreateSaltedWorld(ctx, "smv", wire.Rules{}))
	play := func(world string, from, to uint64) {
		for seq := from; seq <= to; seq++ {
			p := fmt.Sprintf("p%d", seq%3)
			_, err := c.Act(ctx, world, client.ActionRequest{Player: p, Seq: seq, Ops: []wire.Op{client.Set(p, "hp", wire.Int(int64(seq)))}})
			require.NoError(t, err)
		}
	}
	for _, w := range []string{"arena", "mv", "smv"} {
		play(w, 1, 6)
	}

	verify := func(world, prefix string, more ...string) (int, string, string) {
		args := []string{"audit", "verify", "--log", prefix + ".ndjson", "--checkpoint", prefix + ".checkpoint", "--key", pub, "--leaves", prefix + ".leaves"}
		if world == "smv" {
			args = append(args, "--salts", prefix+".salts") // unsigned ones refused
		}
		return ctl(t, "", append(args, more...)...)
	}
	// arena lives on group 1: audited there.
	arena := filepath.Join(dir, "arena")
	fetchWorldAt(t, n.http, "arena", arena, 6, pub, true)
	code, out, stderr := verify("arena", arena)
	require.Equal(t, 0, code, "%s%s", out, stderr)
	require.Contains(t, out, "log: 6 events")

	pre := map[string]string{}
	for _, w := range []string{"mv", "smv"} {
		pre[w] = filepath.Join(dir, w+"-pre")
		fetchWorldAt(t, n.http, w, pre[w], 6, pub, true)
		moved, err := c.MoveWorld(ctx, w, 1)
		require.NoError(t, err)
		require.Equal(t, uint64(6), moved.Seq)
		play(w, 7, 9)
	}
	n.stop(t)
	n.start(t)
	for _, w := range []string{"mv", "smv"} {
		play(w, 10, 12)
		post := filepath.Join(dir, w+"-post")
		cp := fetchWorldAt(t, n.http, w, post, 12, pub, true)
		require.Equal(t, w == "smv", cp.Leaf == wire.AuditLeafV2)
		code, out, stderr := verify(w, post, "--checkpoint", pre[w]+".checkpoint")
		require.Equal(t, 0, code, "%s: %s%s", w, out, stderr)
		require.Contains(t, out, "log: 12 events")
		require.Contains(t, out, "ok")
		if w == "smv" { // a salts file over the limit is refused, not read
			code, _, stderr := verify(w, post, "--max-salts-bytes", "10")
			require.Equal(t, 1, code)
			require.Contains(t, stderr, "larger than 10 bytes (--max-salts-bytes)")
		}

		// Event 4, from before the move, tampered with: named.
		tamperLine(t, post+".ndjson", 4, `"value":4`, `"value":40`)
		code, out, _ = verify(w, post, "--checkpoint", pre[w]+".checkpoint")
		require.Equal(t, 1, code)
		require.Contains(t, out, "modified: seq 4", w)
	}
	n.stop(t)
	require.NotContains(t, n.stderr.String(), "level=ERROR")
	require.NotContains(t, n.stderr.String(), "tombstone", "no live world is buried at the restart")
}

// tamperLine replaces old with new in the line of seq in the export file.
func tamperLine(t *testing.T, file string, seq int, old, new string) {
	t.Helper()
	b, err := os.ReadFile(file)
	require.NoError(t, err)
	lines := strings.Split(string(b), "\n")
	require.Contains(t, lines[seq-1], fmt.Sprintf(`"seq":%d,`, seq))
	lines[seq-1] = strings.Replace(lines[seq-1], old, new, 1)
	require.NoError(t, os.WriteFile(file, []byte(strings.Join(lines, "\n")), 0o644))
}
