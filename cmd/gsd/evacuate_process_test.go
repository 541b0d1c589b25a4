package main

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/gsd-dev/gsd/client"
	"github.com/gsd-dev/gsd/wire"
	"github.com/stretchr/testify/require"
)

// Replacing a voter through the admin route with three gsd processes:
// shard 1 (n1, n2) gets n3, the only node that is not its voter, in n1's
// place; world a goes on at the next seq through every node, and n1
// deletes shard 1's data. Then n1 leaves the map, and writes still go
// through every node.
func TestRunThreeNodesWithMetaReplaceAVoter(t *testing.T) {
	t.Parallel()
	mc := startMetaCluster(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	c := mc.clients[2]
	act := createAndAct(ctx, t, c, "a")
	for range 3 {
		act(c)
	}

	_, err := c.ReplaceVoter(ctx, 1, "n3", "")
	require.Equal(t, "conflict", client.Code(err), "n3 is not a voter of shard 1: %v", err)
	_, err = c.ReplaceVoter(ctx, 9, "n1", "")
	require.Equal(t, "not_found", client.Code(err), "%v", err)
	_, err = c.ReplaceVoter(ctx, 2, "n2", "n1x")
	require.Equal(t, "not_found", client.Code(err), "%v", err)
	res, err := c.ReplaceVoter(ctx, 1, "n1", "")
	require.NoError(t, err)
	require.Equal(t, wire.VoterReplaced{Shard: 1, Old: "n1", New: "n3", Voters: []string{"n2", "n3"}}, res)

	require.Eventually(t, func() bool {
		m, err := c.Shards(ctx)
		if err != nil {
			return false
		}
		i := slices.IndexFunc(m.Shards, func(s wire.ShardInfo) bool { return s.ID == 1 })
		if i >= 0 && m.Shards[i].Joining != "" {
			require.Equal(t, "n3", m.Shards[i].Joining, "the map shows the joiner")
			require.Contains(t, m.Shards[i].Voters, "n1", "n1 votes while n3 joins")
		}
		return i >= 0 && slices.Equal(m.Shards[i].Voters, []string{"n2", "n3"}) && m.Shards[i].Joining == ""
	}, 60*time.Second, 20*time.Millisecond, "the map drops n1 from shard 1")
	for _, via := range mc.clients {
		act(via)
	}
	require.Eventually(t, func() bool {
		_, err := os.Stat(filepath.Join(mc.run[0].dir, "groups", "1"))
		return os.IsNotExist(err)
	}, 60*time.Second, 20*time.Millisecond, "n1 deletes shard 1's data")
	act(mc.clients[0])

	// Evacuated, n1 leaves the map; a voter is refused, naming its shards.
	err = c.RemoveMapNode(ctx, "n2")
	require.Equal(t, "conflict", client.Code(err), "%v", err)
	require.ErrorContains(t, err, "voter of shards [1 2]")
	require.Equal(t, "not_found", client.Code(c.RemoveMapNode(ctx, "n9")))
	require.NoError(t, mc.clients[1].RemoveMapNode(ctx, "n1"))
	require.Eventually(t, func() bool {
		m, err := c.Shards(ctx)
		return err == nil && !slices.ContainsFunc(m.Nodes, func(n wire.ShardNode) bool { return n.ID == "n1" })
	}, 30*time.Second, 20*time.Millisecond, "the map drops n1")
	require.Equal(t, "not_found", client.Code(c.RemoveMapNode(ctx, "n1")), "removed already")
	// n1 also leaves the meta group's own members: no dead meta voter.
	require.Eventually(t, func() bool {
		m, err := mc.clients[1].Shards(ctx)
		return err == nil && slices.Equal(m.MetaMembers, []wire.MetaMember{{ID: "n2", Voter: true}, {ID: "n3", Voter: true}})
	}, 30*time.Second, 20*time.Millisecond, "n1 leaves the meta group")
	for _, via := range mc.clients {
		act(via)
	}
}

// createAndAct creates world through c (an earlier attempt's world_exists
// counts) and returns act, which runs the world's next action through a
// client, retrying until it is answered, and checks that its seq
// continues: nothing lost or doubled.
func createAndAct(ctx context.Context, t *testing.T, c *client.Client, world string) func(via *client.Client) {
	t.Helper()
	require.Eventually(t, func() bool {
		err := c.CreateWorld(ctx, world, wire.Rules{})
		return err == nil || client.Code(err) == "world_exists"
	}, 30*time.Second, 20*time.Millisecond, "create %s", world)
	seq := uint64(0)
	return func(via *client.Client) {
		t.Helper()
		seq++
		var ev wire.Event
		var err error
		require.Eventually(t, func() bool {
			ev, err = via.Act(ctx, world, incr("p1", seq, "e1", 1))
			return err == nil
		}, 30*time.Second, 20*time.Millisecond, "act %d on %s: %v", seq, world, err)
		require.Equal(t, seq, ev.Seq, "the world's seq continues: nothing lost or doubled")
	}
}
