package main

import (
	"context"
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/gsd-dev/gsd/client"
	"github.com/gsd-dev/gsd/wire"
	"github.com/stretchr/testify/require"
)

// A fourth gsd started with --meta-join waits to be added; once an admin
// adds it to the meta map (POST /v1/cluster/shards/nodes), the meta
// group's leader takes it into its members, its replica gets the map,
// and it serves a world of a shard it holds no replica of.
func TestRunAFourthNodeJoinsTheMetaGroupWhenAddedToTheMap(t *testing.T) {
	t.Parallel()
	mc := startMetaCluster(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()

	http4, raft4 := freeAddr(t), freeAddr(t)
	nodes := map[string]any{"n4": map[string]string{"raft": raft4, "http": http4}}
	for _, id := range mc.ids {
		nodes[id] = map[string]string{"raft": mc.raftAddrs[id], "http": mc.httpAddrs[id]}
	}
	b, err := json.Marshal(map[string]any{
		"nodes":  nodes,
		"shards": []map[string]any{{"id": 1, "voters": []string{"n1", "n2"}}, {"id": 2, "voters": []string{"n2", "n3"}}},
		"worlds": map[string]uint64{"a": 1, "b": 2},
	})
	require.NoError(t, err)
	n4 := startNodeAt(t, "n4", t.TempDir(), http4, raft4, "--shard-map", writeFile(t, string(b)), "--meta", "--meta-join",
		"--join", mc.httpAddrs["n1"])
	c4 := n4.client(t)

	c := mc.clients[0]
	require.Eventually(t, func() bool {
		err := c.CreateWorld(ctx, "a", wire.Rules{})
		return err == nil || client.Code(err) == "world_exists"
	}, 30*time.Second, 20*time.Millisecond, "create a")
	m, err := c.Shards(ctx)
	require.NoError(t, err)
	require.Len(t, m.Nodes, 3, "n4 is not in the meta map yet")
	require.Equal(t, []wire.MetaMember{{ID: "n1", Voter: true}, {ID: "n2", Voter: true}, {ID: "n3", Voter: true}}, m.MetaMembers)

	require.Equal(t, "malformed", client.Code(c.AddMapNode(ctx, wire.ShardNode{ID: "n4", Raft: "nope", HTTP: http4})))
	require.Eventually(t, func() bool {
		return c.AddMapNode(ctx, wire.ShardNode{ID: "n4", Raft: raft4, HTTP: http4, Region: "eu"}) == nil
	}, 30*time.Second, 20*time.Millisecond, "add n4 to the meta map")
	require.Eventually(t, func() bool {
		m, err := c4.Shards(ctx)
		return err == nil && m.Meta && len(m.Nodes) == 4 && slices.ContainsFunc(m.Nodes, func(n wire.ShardNode) bool { return n.ID == "n4" && n.Region == "eu" })
	}, 30*time.Second, 20*time.Millisecond, "n4's replica of the meta group has the map, with n4's region")
	// With 4 nodes the meta group keeps 3 voters: n4 is a nonvoter.
	require.Eventually(t, func() bool {
		m, err := c.Shards(ctx)
		return err == nil && slices.Contains(m.MetaMembers, wire.MetaMember{ID: "n4"})
	}, 30*time.Second, 20*time.Millisecond, "n4 is a member of the meta group")
	var ev wire.Event
	require.Eventually(t, func() bool {
		ev, err = c4.Act(ctx, "a", incr("p1", 1, "e1", 1))
		return err == nil
	}, 30*time.Second, 20*time.Millisecond, "act on a through n4: %v", err)
	require.Equal(t, uint64(1), ev.Seq)
}
