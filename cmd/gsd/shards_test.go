package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/gsd-dev/gsd/client"
	"github.com/gsd-dev/gsd/shard"
	"github.com/gsd-dev/gsd/wire"
	"github.com/stretchr/testify/require"
)

// shardMapFile writes a map with the single node id at raftAddr and
// httpAddr, a voter of shards 0, 1 and 2, and worlds placed on them.
func shardMapFile(t *testing.T, id, raftAddr, httpAddr string, membership uint64) string {
	t.Helper()
	return writeFile(t, fmt.Sprintf(`{
  "membership": %d,
  "nodes": {%q: {"raft": %q, "http": %q}},
  "shards": [{"id": 0, "voters": [%[2]q]}, {"id": 1, "voters": [%[2]q]}, {"id": 2, "voters": [%[2]q]}],
  "worlds": {"old": 0, "a": 1, "b": 2}
}`, membership, id, raftAddr, httpAddr))
}

// A node written by gsd before shards restarts with --shard-map: its data
// dir moves to groups/0 with its worlds, and new worlds go to the shards
// the map names, each a group of its own, served through the same edge.
func TestRunWithAShardMapRunsEachShardAsAGroup(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	n := startNode(t, "s1", dir)
	n.waitLeader(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c := n.client(t)
	require.NoError(t, c.CreateWorld(ctx, "old", wire.Rules{}))
	for seq := uint64(1); seq <= 3; seq++ {
		_, err := c.Act(ctx, "old", incr("p1", seq, "e1", 1))
		require.NoError(t, err)
	}
	require.Equal(t, 0, n.stop(t))
	require.FileExists(t, filepath.Join(dir, "raft.db"))

	smap := shardMapFile(t, "s1", n.raft, n.http, 0)
	again := startNodeAt(t, "s1", dir, n.http, n.raft, "--shard-map", smap)
	again.waitLeader(t)
	require.NoFileExists(t, filepath.Join(dir, "raft.db"))
	require.FileExists(t, filepath.Join(shard.GroupDir(dir, 0), "raft.db"))
	c = again.client(t)
	e, err := c.Entity(ctx, "old", "e1", client.Linearizable)
	require.NoError(t, err)
	total, _ := e.Int("n")
	require.Equal(t, int64(3), total, "group 0 kept its state")

	for i, w := range []string{"a", "b"} {
		require.NoError(t, c.CreateWorld(ctx, w, wire.Rules{}))
		for seq := uint64(1); seq <= uint64(i+2); seq++ {
			ev, err := c.Act(ctx, w, incr("p1", seq, "e1", 1))
			require.NoError(t, err)
			require.Equal(t, "applied", ev.Status)
		}
		require.FileExists(t, filepath.Join(shard.GroupDir(dir, uint64(i+1)), "raft.db"), "world %s has its own group", w)
		e, err := c.Entity(ctx, w, "e1", client.Stale)
		require.NoError(t, err)
		total, _ := e.Int("n")
		require.Equal(t, int64(i+2), total)
	}
	var seqs []uint64
	stop := errors.New("stop")
	require.ErrorIs(t, c.Follow(ctx, "b", 1, func(ev wire.Event) error {
		seqs = append(seqs, ev.Seq)
		if len(seqs) == 3 {
			return stop
		}
		return nil
	}), stop)
	require.Equal(t, []uint64{1, 2, 3}, seqs, "b's events come from b's group")
	ev, err := c.Act(ctx, "old", incr("p1", 4, "e1", 1))
	require.NoError(t, err)
	require.Equal(t, uint64(4), ev.Seq, "old's seq continues on group 0")
	require.Equal(t, 0, again.stop(t))
}

func TestRunRejectsABadShardMap(t *testing.T) {
	t.Parallel()
	raft := freeAddr(t)
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"missing file", []string{"--shard-map", filepath.Join(t.TempDir(), "none")}, "shard map"},
		{"invalid map", []string{"--shard-map", writeFile(t, `{"shards": []}`)}, "no shards"},
		{"membership elsewhere", []string{"--shard-map", shardMapFile(t, "s1", raft, "127.0.0.1:1", 1)}, "membership is 1"},
		{"another raft address", []string{"--shard-map", shardMapFile(t, "s1", "127.0.0.1:1", "127.0.0.1:2", 0)}, "runs on " + raft},
		{"voter missing from nodes", []string{"--shard-map", writeFile(t, `{"nodes": {"x": {"raft": "127.0.0.1:1", "http": "127.0.0.1:2"}}, "shards": [{"id": 1, "voters": ["s1"]}]}`)}, "not in nodes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stderr bytes.Buffer
			args := append([]string{"--id", "s1", "--raft-addr", raft, "--data-dir", t.TempDir()}, tc.args...)
			code := run(context.Background(), args, io.Discard, &stderr)
			require.Equal(t, 1, code, stderr.String())
			requireContains(t, stderr.String(), tc.want)
		})
	}
}

// A data dir holding group 0's files in both layouts is not guessed at.
func TestRunWithAShardMapRefusesAnAmbiguousDataDir(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for _, p := range []string{filepath.Join(dir, "raft.db"), filepath.Join(shard.GroupDir(dir, 0), "raft.db")} {
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o700))
		require.NoError(t, os.WriteFile(p, nil, 0o600))
	}
	raft := freeAddr(t)
	var stderr bytes.Buffer
	code := run(context.Background(), []string{"--id", "s1", "--raft-addr", raft, "--http-addr", "127.0.0.1:0", "--data-dir", dir,
		"--shard-map", shardMapFile(t, "s1", raft, "127.0.0.1:1", 0)}, io.Discard, &stderr)
	require.Equal(t, 1, code)
	requireContains(t, stderr.String(), "ambiguous data directory layout")
}

// Three nodes with a map of two shards (a voter on each node): every
// node serves every world, running it on the shard's leader wherever
// that is, and each world's state comes from its own shard.
func TestRunThreeNodesWithAShardMapServeEveryWorldFromAnyNode(t *testing.T) {
	t.Parallel()
	runThreeNodesWithAShardMap(t, nil)
}

// The same with mutual TLS: the shards' groups ride the mux under TLS,
// and the map names the nodes' HTTP ports by https:// URL.
func TestRunThreeNodesWithAShardMapOverMutualTLS(t *testing.T) {
	t.Parallel()
	runThreeNodesWithAShardMap(t, newTestCA(t))
}

func runThreeNodesWithAShardMap(t *testing.T, ca *testCA) {
	ids := []string{"n1", "n2", "n3"}
	httpAddrs, raftAddrs := map[string]string{}, map[string]string{}
	nodes := map[string]any{}
	for _, id := range ids {
		httpAddrs[id], raftAddrs[id] = freeAddr(t), freeAddr(t)
		url := httpAddrs[id]
		if ca != nil {
			url = "https://" + url
		}
		nodes[id] = map[string]string{"raft": raftAddrs[id], "http": url}
	}
	b, err := json.Marshal(map[string]any{
		"nodes":  nodes,
		"shards": []map[string]any{{"id": 1, "voters": ids}, {"id": 2, "voters": ids}},
		"worlds": map[string]uint64{"a": 1, "b": 2},
	})
	require.NoError(t, err)
	smap := writeFile(t, string(b))
	var run []*testNode
	var clients []*client.Client
	for i, id := range ids {
		extra := []string{"--shard-map", smap}
		if ca != nil {
			extra = append(extra, ca.flags(t, id)...)
		}
		if i > 0 {
			extra = append(extra, "--join", httpAddrs["n1"])
		}
		n := startNodeAt(t, id, t.TempDir(), httpAddrs[id], raftAddrs[id], extra...)
		run = append(run, n)
		clients = append(clients, n.client(t))
		if ca != nil {
			clients[i] = ca.client(t, n.http)
		}
		if i == 0 {
			waitFor(t, n, clients[0], "leads", func(s client.Status) bool { return s.Leader == "n1" })
		} else { // a node that exits says why here
			waitFor(t, n, clients[i], "answers", func(client.Status) bool { return true })
		}
	}
	waitFor(t, run[0], clients[0], "group 0 has three voters", func(s client.Status) bool { return len(s.Servers) == 3 })

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	require.NoError(t, clients[1].CreateWorld(ctx, "a", wire.Rules{}))
	require.NoError(t, clients[2].CreateWorld(ctx, "b", wire.Rules{}))
	for seq := uint64(1); seq <= 6; seq++ {
		c := clients[seq%3]
		for _, w := range []string{"a", "b"} {
			ev, err := c.Act(ctx, w, incr("p1", seq, "e1", 1))
			require.NoError(t, err, "world %s via %s", w, ids[seq%3])
			require.Equal(t, "applied", ev.Status)
			require.Equal(t, seq, ev.Seq)
		}
	}
	for i, c := range clients {
		for _, w := range []string{"a", "b"} {
			e, err := c.Entity(ctx, w, "e1", client.Linearizable)
			require.NoError(t, err, "world %s via %s", w, ids[i])
			total, _ := e.Int("n")
			require.Equal(t, int64(6), total)
		}
	}
	// A rules update needs every voter of the world's shard to read it
	// (the version gate): the shards' leaders know what each node reads
	// from group 0's node table, where every node reports.
	// Nodes report a moment after they join: until then the gate refuses.
	var v uint64
	require.Eventually(t, func() bool {
		v, err = clients[0].UpdateRules(ctx, "b", json.RawMessage(`{"strict": false}`), 0)
		if client.Code(err) == "version_gate" {
			return false
		}
		require.NoError(t, err)
		return true
	}, 30*time.Second, 50*time.Millisecond)
	require.Equal(t, uint64(2), v)
	for _, n := range run {
		require.Equal(t, 0, n.stop(t))
	}
}
