package main

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/gsd-dev/gsd/client"
	"github.com/gsd-dev/gsd/wire"
	"github.com/stretchr/testify/require"
)

// A node that died for good, a voter of a 3-voter shard, evacuated with
// four gsd processes: its replacement is refused while the meta group's
// version gate waits for it (version_gate), until it is marked down
// (POST /v1/cluster/shards/nodes:down); then shard 1 replaces it with
// n4, world a goes on at the next seq through every live node, and the
// dead node leaves the map, its meta seat taken by n4.
func TestRunFourNodesWithMetaEvacuateADeadNode(t *testing.T) {
	t.Parallel()
	ids := []string{"n1", "n2", "n3", "n4"}
	httpAddrs, raftAddrs := map[string]string{}, map[string]string{}
	nodes := map[string]any{}
	for _, id := range ids {
		httpAddrs[id], raftAddrs[id] = freeAddr(t), freeAddr(t)
		nodes[id] = map[string]string{"raft": raftAddrs[id], "http": httpAddrs[id]}
	}
	b, err := json.Marshal(map[string]any{
		"nodes":  nodes,
		"shards": []map[string]any{{"id": 1, "voters": []string{"n1", "n2", "n3"}}},
		"worlds": map[string]uint64{"a": 1},
	})
	require.NoError(t, err)
	smap := writeFile(t, string(b))
	var run []*testNode
	clients := map[string]*client.Client{}
	for i, id := range ids {
		extra := []string{"--shard-map", smap, "--meta"}
		if i > 0 {
			extra = append(extra, "--join", httpAddrs["n1"])
		}
		n := startNodeAt(t, id, t.TempDir(), httpAddrs[id], raftAddrs[id], extra...)
		run = append(run, n)
		clients[id] = n.client(t)
		if i == 0 {
			waitFor(t, n, clients[id], "leads", func(s client.Status) bool { return s.Leader == "n1" })
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Second)
	defer cancel()
	c := clients["n1"]
	act := createAndAct(ctx, t, c, "a")
	act(c)
	require.Eventually(t, func() bool {
		m, err := c.Shards(ctx)
		return err == nil && len(m.MetaMembers) == 4
	}, 30*time.Second, 20*time.Millisecond, "every node is a meta member")

	run[2].stop(t) // n3, for good
	var gateErr error
	retryUntilNil(t, 30*time.Second, "the gate waits for the dead n3", func() error {
		_, gateErr = c.ReplaceVoter(ctx, 1, "n3", "")
		if client.Code(gateErr) != "version_gate" {
			return fmt.Errorf("want version_gate, got %v", gateErr)
		}
		return nil
	})
	require.ErrorContains(t, gateErr, "member n3 did not answer")
	require.Equal(t, "conflict", client.Code(c.MarkNodesDown(ctx, []string{"n2"})), "n2 answers: it is not down")
	retryUntilNil(t, 30*time.Second, "mark n3 down through n2", func() error {
		return clients["n2"].MarkNodesDown(ctx, []string{"n3"})
	})

	var res wire.VoterReplaced
	retryUntilNil(t, 30*time.Second, "replace n3 in shard 1", func() (err error) {
		res, err = c.ReplaceVoter(ctx, 1, "n3", "")
		return err
	})
	require.Equal(t, "n4", res.New)
	require.Eventually(t, func() bool {
		m, err := c.Shards(ctx)
		if err != nil {
			return false
		}
		i := slices.IndexFunc(m.Shards, func(s wire.ShardInfo) bool { return s.ID == 1 })
		down := slices.ContainsFunc(m.Nodes, func(n wire.ShardNode) bool { return n.ID == "n3" && n.Down })
		return down && i >= 0 && slices.Equal(m.Shards[i].Voters, []string{"n1", "n2", "n4"}) && m.Shards[i].Joining == ""
	}, 90*time.Second, 20*time.Millisecond, "the map replaces the dead n3 with n4 in shard 1")
	for _, id := range []string{"n1", "n2", "n4"} {
		act(clients[id])
	}

	require.NoError(t, clients["n4"].RemoveMapNode(ctx, "n3"))
	require.Eventually(t, func() bool {
		m, err := c.Shards(ctx)
		return err == nil && !slices.ContainsFunc(m.Nodes, func(n wire.ShardNode) bool { return n.ID == "n3" }) &&
			slices.Equal(m.MetaMembers, []wire.MetaMember{{ID: "n1", Voter: true}, {ID: "n2", Voter: true}, {ID: "n4", Voter: true}})
	}, 60*time.Second, 20*time.Millisecond, "n3 leaves the map; n4 takes its meta seat")
	act(clients["n4"])
}
