package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/gsd-dev/gsd/api/edge"
	"github.com/gsd-dev/gsd/client"
	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/shard"
	"github.com/gsd-dev/gsd/shard/meta"
	"github.com/gsd-dev/gsd/store"
	"github.com/gsd-dev/gsd/wire"
	"github.com/hashicorp/raft"
	"github.com/stretchr/testify/require"
)

func TestMetaServersAreTheSameOnEveryNode(t *testing.T) {
	m := &shard.Map{Nodes: map[string]shard.MapNode{}}
	for _, id := range []string{"f", "b", "d", "a", "c", "e", "g"} {
		m.Nodes[id] = shard.MapNode{Raft: id + ":1"}
	}
	var voters, nonvoters []string
	for _, s := range metaServers(m) {
		if s.Suffrage == raft.Voter {
			voters = append(voters, string(s.ID))
		} else {
			nonvoters = append(nonvoters, string(s.ID))
		}
		require.Equal(t, raft.ServerAddress(string(s.ID)+":1"), s.Address)
	}
	require.Equal(t, []string{"a", "b", "c", "d", "e"}, voters)
	require.Equal(t, []string{"f", "g"}, nonvoters)
	delete(m.Nodes, "g")
	delete(m.Nodes, "f")
	delete(m.Nodes, "e")
	require.Len(t, metaServers(m), 4)
	require.Equal(t, raft.Nonvoter, metaServers(m)[3].Suffrage, "3 voters with 4 nodes")
	delete(m.Nodes, "d")
	delete(m.Nodes, "c")
	for _, s := range metaServers(m) {
		require.Equal(t, raft.Voter, s.Suffrage, "every node votes with fewer than 3")
	}
}

func TestRunRejectsMetaWithoutAUsableMap(t *testing.T) {
	t.Parallel()
	raftAddr := freeAddr(t)
	for name, tc := range map[string]struct {
		args []string
		want string
	}{
		"no map":               {[]string{"--meta"}, "--meta needs --shard-map"},
		"join without meta":    {[]string{"--meta-join"}, "--meta-join needs --meta"},
		"node not in map":      {[]string{"--meta", "--shard-map", writeFile(t, `{"nodes": {"x": {"raft": "127.0.0.1:1", "http": "127.0.0.1:2"}}, "shards": [{"id": 1, "voters": ["x"]}]}`)}, "not in the shard map's nodes"},
		"negative meta voters": {[]string{"--meta", "--meta-voters", "-1", "--shard-map", writeFile(t, `{"nodes": {"s1": {"raft": "`+raftAddr+`", "http": "127.0.0.1:2"}}, "shards": [{"id": 0, "voters": ["s1"]}]}`)}, "--meta-voters -1: want 0 or more"},
	} {
		var stderr bytes.Buffer
		args := append([]string{"--id", "s1", "--raft-addr", raftAddr, "--data-dir", t.TempDir()}, tc.args...)
		require.Equal(t, 1, run(context.Background(), args, io.Discard, &stderr), name)
		requireContains(t, stderr.String(), tc.want)
	}
}

// With --meta the map lives in the meta group: a node without a replica
// of a world's shard learns its leader from the map's hints and serves
// the world through it.
func TestRunThreeNodesWithMetaServeAWorldFromANodeWithoutItsShard(t *testing.T) {
	t.Parallel()
	runThreeNodesWithMeta(t, nil)
}

// The same with mutual TLS: the meta group's Raft and its forwarded
// proposals ride the mux under TLS.
func TestRunThreeNodesWithMetaOverMutualTLS(t *testing.T) {
	t.Parallel()
	runThreeNodesWithMeta(t, newTestCA(t))
}

// metaCluster is three gsd processes with --shard-map --meta: shard 1
// on n1 and n2 (world a), shard 2 on n2 and n3 (world b).
type metaCluster struct {
	ids                  []string
	run                  []*testNode
	clients              []*client.Client
	httpAddrs, raftAddrs map[string]string
	flags                map[string][]string
}

// startMetaCluster starts the three nodes (with mutual TLS when ca is
// set, and more flags) and returns once n1 leads group 0.
func startMetaCluster(t *testing.T, ca *testCA, more ...string) *metaCluster {
	return startMetaClusterOf(t, ca, []map[string]any{{"id": 1, "voters": []string{"n1", "n2"}}, {"id": 2, "voters": []string{"n2", "n3"}}},
		map[string]uint64{"a": 1, "b": 2}, more...)
}

// startMetaClusterOf is startMetaCluster with the seed map's shards and
// worlds.
func startMetaClusterOf(t *testing.T, ca *testCA, shards []map[string]any, worlds map[string]uint64, more ...string) *metaCluster {
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
		"shards": shards,
		"worlds": worlds,
	})
	require.NoError(t, err)
	smap := writeFile(t, string(b))
	mc := &metaCluster{ids: ids, httpAddrs: httpAddrs, raftAddrs: raftAddrs, flags: map[string][]string{}}
	for i, id := range ids {
		extra := append([]string{"--shard-map", smap, "--meta"}, more...)
		if ca != nil {
			extra = append(extra, ca.flags(t, id)...)
		}
		if i > 0 {
			extra = append(extra, "--join", httpAddrs["n1"])
		}
		n := startNodeAt(t, id, t.TempDir(), httpAddrs[id], raftAddrs[id], extra...)
		mc.flags[id] = extra
		mc.run = append(mc.run, n)
		c := n.client(t)
		if ca != nil {
			c = ca.client(t, n.http)
		}
		mc.clients = append(mc.clients, c)
		if i == 0 {
			waitFor(t, n, c, "leads", func(s client.Status) bool { return s.Leader == "n1" })
		}
	}
	return mc
}

func runThreeNodesWithMeta(t *testing.T, ca *testCA) {
	mc := startMetaCluster(t, ca)
	ids, run, clients, httpAddrs, raftAddrs, flags := mc.ids, mc.run, mc.clients, mc.httpAddrs, mc.raftAddrs, mc.flags
	var err error
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	// n3 runs no replica of shard 1 (world a), n1 none of shard 2 (b).
	for _, tc := range []struct {
		via   *client.Client
		world string
	}{{clients[2], "a"}, {clients[0], "b"}} {
		require.Eventually(t, func() bool {
			err := tc.via.CreateWorld(ctx, tc.world, wire.Rules{})
			return err == nil || client.Code(err) == "world_exists"
		}, 30*time.Second, 20*time.Millisecond, "create %s", tc.world)
		for seq := uint64(1); seq <= 3; seq++ {
			var ev wire.Event
			require.Eventually(t, func() bool {
				ev, err = tc.via.Act(ctx, tc.world, incr("p1", seq, "e1", 1))
				return err == nil
			}, 30*time.Second, 20*time.Millisecond, "act on %s: %v", tc.world, err)
			require.Equal(t, seq, ev.Seq)
		}
	}
	// The admin route shows the meta map with the shards' leaders.
	require.Eventually(t, func() bool {
		m, err := clients[2].Shards(ctx)
		require.NoError(t, err)
		return m.Meta && len(m.Shards) == 2 && m.Shards[0].Leader != "" && m.Shards[1].Leader != "" && m.Worlds["a"] == 1
	}, 30*time.Second, 20*time.Millisecond)
	// A shard created through the admin route starts on the voters the
	// meta group picks; a world placed on it is served from every node.
	info, err := clients[1].CreateShard(ctx, wire.ShardCreate{ID: 3, Replicas: 2})
	require.NoError(t, err)
	require.Equal(t, []string{"n1", "n3"}, info.Voters, "the nodes with the fewest seats (n2 has two)")
	_, err = clients[1].CreateShard(ctx, wire.ShardCreate{ID: 3, Replicas: 2})
	require.Equal(t, "conflict", client.Code(err), "shard 3 exists")
	_, err = clients[1].CreateShard(ctx, wire.ShardCreate{ID: 4, Voters: []string{"n9"}})
	require.Equal(t, "not_found", client.Code(err))
	_, err = clients[1].CreateShard(ctx, wire.ShardCreate{ID: 4})
	require.Equal(t, "malformed", client.Code(err))
	placed, err := clients[2].PlaceWorld(ctx, "c", nil)
	require.NoError(t, err)
	require.Equal(t, uint64(3), placed, "the shard without worlds")
	require.Equal(t, "conflict", client.Code(clients[0].RemoveShard(ctx, 1)), "shard 1 holds a")
	for i, c := range clients {
		require.Eventually(t, func() bool {
			err := c.CreateWorld(ctx, "c", wire.Rules{})
			return err == nil || client.Code(err) == "world_exists"
		}, 30*time.Second, 20*time.Millisecond, "create c via %s", ids[i])
		require.Eventually(t, func() bool {
			_, err = c.Act(ctx, "c", incr("p"+ids[i], 1, "e1", 1))
			return err == nil
		}, 30*time.Second, 20*time.Millisecond, "act on c via %s: %v", ids[i], err)
	}
	// n3 restarts: the meta map comes back from its disk (no second
	// seed), and it reopens shard 3, which the meta group gave it: with
	// two voters, shard 3 commits nothing without it.
	require.Equal(t, 0, run[2].stop(t))
	again := startNodeAt(t, "n3", run[2].dir, httpAddrs["n3"], raftAddrs["n3"], flags["n3"]...)
	c3 := again.client(t)
	if ca != nil {
		c3 = ca.client(t, again.http)
	}
	require.Eventually(t, func() bool {
		m, err := c3.Shards(ctx)
		return err == nil && len(m.Shards) == 3 && m.Worlds["c"] == 3
	}, 30*time.Second, 20*time.Millisecond, "n3 has the meta map again")
	require.Eventually(t, func() bool {
		_, err = c3.Act(ctx, "c", incr("p-again", 1, "e1", 1))
		return err == nil
	}, 30*time.Second, 20*time.Millisecond, "act on c via n3 again: %v", err)
	require.Equal(t, 0, again.stop(t))
	for _, n := range run[:2] {
		require.Equal(t, 0, n.stop(t))
	}
}

// The meta group's errors reach clients as the edge's: a gated command
// as version_gate, a replica that did not catch up as unavailable, a
// conditional assign refused as conflict.
func TestEditErrorMapsTheMetaGroupsErrors(t *testing.T) {
	for _, c := range []struct {
		err  error
		want error
	}{
		{fmt.Errorf("%w: member n3 reads 1", meta.ErrGate), store.ErrVersionGate},
		{fmt.Errorf("%w: at 9, applied 7", meta.ErrBehind), edge.ErrUnavailable},
		{fmt.Errorf("%w: %w: w is on 2", meta.ErrRefused, meta.ErrElsewhere), edge.ErrConflict},
		{fmt.Errorf("%w: no shard", meta.ErrNotFound), fsm.ErrNotFound},
	} {
		got := editError(c.err)
		require.ErrorIs(t, got, c.want, "%v", c.err)
		require.ErrorIs(t, got, c.err)
	}
	require.NoError(t, editError(nil))
}
