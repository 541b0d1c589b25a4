package meta

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/internal/freeport"
	"github.com/gsd-dev/gsd/shard"
	"github.com/hashicorp/raft"
	"github.com/stretchr/testify/require"
)

func TestConfigValidateNamesEveryProblem(t *testing.T) {
	cfg := DefaultConfig()
	cfg.ID, cfg.Logger = "n1", testLogger()
	require.NoError(t, cfg.Validate())
	cfg.HeartbeatTimeout, cfg.ReportInterval = 0, -1
	err := cfg.Validate()
	require.ErrorContains(t, err, "timeouts must be positive")
	require.ErrorContains(t, err, "ReportInterval must not be negative")
}

// A member that cannot open its files frees the meta group's id and
// Layer: a later Open succeeds.
func TestOpenFailureFreesTheMetaGroup(t *testing.T) {
	c := newMetaCluster(t, 1)
	require.NoError(t, c.mgrs["n1"].CloseGroup(context.Background(), shard.MetaGroup))
	dir := shard.GroupDir(c.dirs["n1"], shard.MetaGroup)
	require.NoError(t, os.RemoveAll(dir))
	require.NoError(t, os.MkdirAll(filepath.Dir(dir), 0o700))
	require.NoError(t, os.WriteFile(dir, nil, 0o600)) // a file where the directory goes
	cfg := DefaultConfig()
	cfg.ID, cfg.Logger, cfg.NoSync = "n1", testLogger(), true
	_, err := Open(c.mgrs["n1"], cfg)
	require.ErrorContains(t, err, "meta group data dir")
	require.NoError(t, os.Remove(dir))
	g, err := Open(c.mgrs["n1"], cfg)
	require.NoError(t, err)
	require.NoError(t, g.Close(context.Background()))
	require.NoError(t, g.Close(context.Background()), "Close twice")
}

// Proposals that cannot reach a leader fail with ErrNotLeader, and a
// member that does not lead never applies.
func TestProposalsWithoutAReachableLeader(t *testing.T) {
	c := newMetaCluster(t, 3)
	leader := c.metaLeader()
	var f *Group
	for _, id := range c.ids {
		if id != leader {
			f = c.group(id)
			break
		}
	}
	ctx := context.Background()
	cmd := Command{Op: OpPlaceWorld, World: "w"}
	_, err := f.apply(ctx, cmd)
	require.ErrorIs(t, err, ErrNotLeader)
	_, err = f.forward(ctx, raft.ServerAddress(freeAddr(t)), cmd)
	require.ErrorIs(t, err, ErrNotLeader, "nobody listens there")
	_, err = f.forward(ctx, "", Command{Op: OpPlaceWorld})
	require.ErrorIs(t, err, ErrBadCommand)
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	_, err = f.forward(cctx, raft.ServerAddress(c.muxes[leader].Addr().String()), Command{Op: OpAddNode, Node: "x", Raft: "h:9", HTTP: "h:2"}) // may apply: another address than n1's below
	require.ErrorIs(t, err, ErrNotLeader, "a cancelled proposal gets no answer")

	// A peer that connects and sends nothing, or a byte and goes, is
	// dropped without harm.
	conn, err := f.layer.Dial(raft.ServerAddress(c.muxes[leader].Addr().String()), time.Second)
	require.NoError(t, err)
	require.NoError(t, conn.Close())
	conn, err = f.layer.Dial(raft.ServerAddress(c.muxes[leader].Addr().String()), time.Second)
	require.NoError(t, err)
	_, err = conn.Write([]byte{forwardMagic, 0, 0})
	require.NoError(t, err)
	require.NoError(t, conn.Close())
	// n1 at its own address: the leader's report loop would move the
	// meta member n1 to any other one (members.go), cutting it off.
	c.propose(f.cfg.ID, Command{Op: OpAddNode, Node: "n1", Raft: string(c.servers[0].Address), HTTP: "h:2"})
}

func freeAddr(t *testing.T) string {
	t.Helper()
	addr, err := freeport.Addr()
	require.NoError(t, err)
	return addr
}

// A nonvoter member gets the map and proposes through the leader; it
// never leads.
func TestANonvoterMemberFollowsTheMap(t *testing.T) {
	c := newMetaClusterWith(t, 4, func(cfg *Config) { cfg.Servers[3].Suffrage = raft.Nonvoter })
	c.addNodes()
	require.Equal(t, uint64(1), c.propose("n4", Command{Op: OpCreateShard, Shard: 1, Replicas: 3}).Shard)
	require.Eventually(t, func() bool { return len(c.group("n4").View().Map.Shards) == 1 }, 10*time.Second, 5*time.Millisecond)
	require.False(t, c.group("n4").IsLeader())
	require.NotEqual(t, "n4", c.metaLeader())
}

// A world moved between two shards (shard.Move) is published through the
// meta group: every node then routes it to its new shard.
func TestAMovedWorldIsPublishedThroughTheMetaMap(t *testing.T) {
	c := newMetaCluster(t, 3)
	c.addNodes()
	c.propose("n1", Command{Op: OpCreateShard, Shard: 1, Voters: []string{"n1"}})
	c.propose("n1", Command{Op: OpCreateShard, Shard: 2, Voters: []string{"n1"}})
	c.propose("n1", Command{Op: OpAssignWorld, World: "w", Shard: 1})
	require.Equal(t, "n1", c.shardLeader("w"))
	st, ok := c.mgrs["n1"].Group(1)
	require.True(t, ok)
	require.Eventually(t, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		return st.CreateWorld(ctx, "w", fsm.Rules{}) == nil
	}, 10*time.Second, 10*time.Millisecond)
	require.Eventually(t, func() bool {
		_, ok := c.mgrs["n1"].Group(2)
		return ok
	}, 10*time.Second, 5*time.Millisecond, "n1 opens shard 2")
	dst, _ := c.mgrs["n1"].Group(2)
	require.Eventually(t, func() bool { return dst.IsLeader() }, 10*time.Second, 5*time.Millisecond)

	_, err := c.mgrs["n1"].MoveWorld(context.Background(), "w", 1, 2, c.group("n1").Publish)
	require.NoError(t, err)
	for _, id := range []string{"n2", "n3"} {
		c.routesTo(id, "w", "n1", 2)
	}
	require.Eventually(t, func() bool {
		loc, err := c.routers["n1"].Locate("w")
		return err == nil && loc.Store == dst
	}, 10*time.Second, 5*time.Millisecond, "n1 routes w to its new group")
}
