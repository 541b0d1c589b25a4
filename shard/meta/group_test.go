package meta

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/gsd-dev/gsd/fsm"
	"github.com/gsd-dev/gsd/shard"
	"github.com/gsd-dev/gsd/store"
	"github.com/hashicorp/raft"
	"github.com/stretchr/testify/require"
)

func testLogger() *slog.Logger {
	if os.Getenv("GSD_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// metaCluster is n nodes in one process: each a Mux, a Manager and a
// member of the meta group (all voters), with a Router on the meta map.
type metaCluster struct {
	t       *testing.T
	ids     []string
	muxes   map[string]*shard.Mux
	dirs    map[string]string
	mgrs    map[string]*shard.Manager
	routers map[string]*shard.Router
	servers []raft.Server
	tweak   func(*Config)

	mu     sync.Mutex
	groups map[string]*Group
}

func newMetaCluster(t *testing.T, n int) *metaCluster {
	t.Helper()
	return newMetaClusterWith(t, n, nil)
}

// newMetaClusterWith is newMetaCluster with tweak applied to every
// member's config.
func newMetaClusterWith(t *testing.T, n int, tweak func(*Config)) *metaCluster {
	t.Helper()
	c := &metaCluster{t: t, tweak: tweak, muxes: map[string]*shard.Mux{}, dirs: map[string]string{}, mgrs: map[string]*shard.Manager{},
		routers: map[string]*shard.Router{}, groups: map[string]*Group{}}
	for i := range n {
		id := fmt.Sprintf("n%d", i+1)
		c.ids = append(c.ids, id)
		mc := shard.DefaultMuxConfig()
		mc.Addr, mc.Logger = "127.0.0.1:0", testLogger()
		mux, err := shard.NewMux(mc, nil)
		require.NoError(t, err)
		t.Cleanup(func() { mux.Close() })
		c.muxes[id] = mux
		c.servers = append(c.servers, raft.Server{Suffrage: raft.Voter, ID: raft.ServerID(id), Address: raft.ServerAddress(mux.Addr().String())})
	}
	for _, id := range c.ids {
		c.dirs[id] = t.TempDir()
		m, err := shard.NewManager(shard.ManagerConfig{DataDir: c.dirs[id], Store: testStoreConfig(id)}, c.muxes[id], nil)
		require.NoError(t, err)
		t.Cleanup(func() { _ = m.Close(context.Background()) })
		c.mgrs[id] = m
		c.open(id)
		c.routers[id] = shard.NewRouterWith(m, c.group(id))
	}
	return c
}

func testStoreConfig(id string) store.Config {
	cfg := store.DefaultConfig()
	cfg.ID = id
	cfg.HTTPAddr = "http-" + id + ":80"
	cfg.HeartbeatTimeout, cfg.ElectionTimeout, cfg.LeaderLeaseTimeout = 300*time.Millisecond, 300*time.Millisecond, 150*time.Millisecond
	cfg.ApplyTimeout = 5 * time.Second
	cfg.SnapshotInterval = time.Hour
	cfg.NoSync = true
	cfg.Logger = testLogger()
	return cfg
}

// open starts node id's member of the meta group.
func (c *metaCluster) open(id string) {
	cfg := DefaultConfig()
	cfg.ID, cfg.Bootstrap, cfg.Servers = id, true, c.servers
	cfg.HeartbeatTimeout, cfg.ElectionTimeout, cfg.LeaderLeaseTimeout = 300*time.Millisecond, 300*time.Millisecond, 150*time.Millisecond
	cfg.ReportInterval, cfg.OpenShards, cfg.NoSync, cfg.Logger = 20*time.Millisecond, true, true, testLogger()
	if c.tweak != nil {
		c.tweak(&cfg)
	}
	g, err := Open(c.mgrs[id], cfg)
	require.NoError(c.t, err)
	c.mu.Lock()
	c.groups[id] = g
	c.mu.Unlock()
}

func (c *metaCluster) group(id string) *Group {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.groups[id]
}

// propose proposes cmd from node from, retrying while the meta group has
// no leader. An attempt may take as long as the group's ApplyTimeout: one
// cut short while its entry is in flight may commit after all, and the
// retry of a command refused when done (create_shard) would then fail.
func (c *metaCluster) propose(from string, cmd Command) Result {
	c.t.Helper()
	var res Result
	require.Eventually(c.t, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), DefaultConfig().ApplyTimeout)
		defer cancel()
		var err error
		res, err = c.group(from).Propose(ctx, cmd)
		require.NotErrorIs(c.t, err, ErrRefused)
		return err == nil
	}, 30*time.Second, 10*time.Millisecond, "propose %+v from %s", cmd, from)
	return res
}

// metaLeader waits for a leader of the meta group among the running members.
func (c *metaCluster) metaLeader() string {
	c.t.Helper()
	var id string
	require.Eventually(c.t, func() bool {
		for _, n := range c.ids {
			if g := c.group(n); g != nil && g.IsLeader() {
				id = n
				return true
			}
		}
		return false
	}, 10*time.Second, 5*time.Millisecond, "no meta leader")
	return id
}

// shardLeader waits until a node's router places world on a Store it leads.
func (c *metaCluster) shardLeader(world string) string {
	c.t.Helper()
	var id string
	require.Eventually(c.t, func() bool {
		for _, n := range c.ids {
			if loc, err := c.routers[n].Locate(world); err == nil && loc.Store != nil {
				id = n
				return true
			}
		}
		return false
	}, 10*time.Second, 5*time.Millisecond, "no leader for %q", world)
	return id
}

// addNodes registers every node in the meta map.
func (c *metaCluster) addNodes() {
	for _, s := range c.servers {
		id := string(s.ID)
		c.propose("n1", Command{Op: OpAddNode, Node: id, Raft: string(s.Address), HTTP: "http-" + id + ":80"})
	}
}

// routesTo waits until node from's router sends world to leader's HTTP
// address.
func (c *metaCluster) routesTo(from, world, leader string, group uint64) {
	c.t.Helper()
	require.Eventually(c.t, func() bool {
		loc, err := c.routers[from].Locate(world)
		return err == nil && loc.Store == nil && loc.Group == group && loc.Node == leader && loc.Addr == "http-"+leader+":80"
	}, 10*time.Second, 5*time.Millisecond, "%s routes %s to %s (hints %v)", from, world, leader, c.group(from).View().Leaders)
}

// A shard created through the meta group starts on its voters; the nodes
// without a replica route its worlds to its leader by the map's hint.
func TestANodeWithoutAReplicaRoutesAWorldToItsShardsLeader(t *testing.T) {
	c := newMetaCluster(t, 5)
	_, err := c.routers["n4"].Locate("w")
	require.ErrorIs(t, err, store.ErrNotLeader, "no shards yet")
	c.addNodes()
	res := c.propose("n5", Command{Op: OpCreateShard, Shard: 1, Replicas: 3})
	require.Equal(t, []string{"n1", "n2", "n3"}, res.Voters)
	require.Equal(t, uint64(1), c.propose("n4", Command{Op: OpPlaceWorld, World: "w"}).Shard)

	leader := c.shardLeader("w")
	require.Contains(t, res.Voters, leader)
	for _, id := range []string{"n4", "n5"} {
		_, runs := c.mgrs[id].Group(1)
		require.False(t, runs, "%s is not a voter of shard 1", id)
		c.routesTo(id, "w", leader, 1)
	}
	// The leader serves the world.
	loc, err := c.routers[leader].Locate("w")
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		return loc.Store.ReadBarrier(ctx) == nil
	}, 10*time.Second, 5*time.Millisecond)

	// Its leader reports the shard's load: events per second while
	// actions commit, which every node's map then shows.
	ctx := context.Background()
	require.NoError(t, loc.Store.CreateWorld(ctx, "w", fsm.Rules{}))
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for seq := uint64(1); ; seq++ {
			select {
			case <-stop:
				return
			default:
			}
			a := &fsm.Action{World: "w", Player: "p", Seq: seq, Ops: []fsm.Op{{Kind: fsm.OpIncr, Entity: "e", Field: "n", By: 1}}}
			if _, _, err := loc.Store.Act(ctx, a); err != nil {
				return
			}
		}
	}()
	require.Eventually(t, func() bool { return c.group("n4").View().Events[1] > 0 }, 10*time.Second, 5*time.Millisecond,
		"n4 sees shard 1's event rate")
	close(stop)
	<-done
}

// The map lives in the meta group: its leader stopping loses nothing, the
// others go on changing it, and the member started again catches up.
func TestTheMapSurvivesAMetaLeaderChange(t *testing.T) {
	c := newMetaCluster(t, 5)
	c.addNodes()
	c.propose("n1", Command{Op: OpCreateShard, Shard: 1, Voters: []string{"n1", "n2", "n3"}})
	c.propose("n1", Command{Op: OpCreateShard, Shard: 2, Voters: []string{"n3", "n4", "n5"}})
	c.propose("n1", Command{Op: OpAssignWorld, World: "a", Shard: 1})
	c.propose("n1", Command{Op: OpAssignWorld, World: "b", Shard: 2})
	// Every group's leader has reported itself before the meta leader
	// stops (a node reports through its own meta member only).
	old := c.metaLeader()
	require.Eventually(t, func() bool {
		h := c.group(old).View().Leaders
		return h[shard.MetaGroup] == old && h[1] == c.shardLeader("a") && h[2] == c.shardLeader("b")
	}, 10*time.Second, 5*time.Millisecond, "the leaders report themselves")
	// The member that stops restarts from a snapshot (and the log after it).
	require.NoError(t, c.group(old).raft.Snapshot().Error())
	ctx := context.Background()
	require.NoError(t, c.mgrs[old].CloseGroup(ctx, shard.MetaGroup))
	c.mu.Lock()
	delete(c.groups, old)
	c.mu.Unlock()
	newLeader := c.metaLeader()
	require.NotEqual(t, old, newLeader)

	var other string // a running member other than the new leader
	for _, id := range c.ids {
		if id != old && id != newLeader {
			other = id
			break
		}
	}
	require.Equal(t, uint64(1), c.propose(other, Command{Op: OpPlaceWorld, World: "c"}).Shard, "equal worlds, no players: the lower id")
	for _, id := range c.ids {
		if id == old {
			continue
		}
		require.Eventually(t, func() bool {
			m := c.group(id).View().Map
			return len(m.Shards) == 2 && len(m.Nodes) == 5 && m.ShardOf("a") == 1 && m.ShardOf("b") == 2 && m.ShardOf("c") == 1
		}, 10*time.Second, 5*time.Millisecond, "%s has the map", id)
		require.Eventually(t, func() bool { return c.group(id).View().Leaders[shard.MetaGroup] == newLeader },
			10*time.Second, 5*time.Millisecond, "%s hears of the new meta leader", id)
	}
	for _, id := range []string{"n4", "n5"} {
		if id != old {
			c.routesTo(id, "a", c.shardLeader("a"), 1)
		}
	}

	c.open(old) // its Raft state is on disk: no second bootstrap
	require.Eventually(t, func() bool {
		m := c.group(old).View().Map
		return len(m.Shards) == 2 && m.ShardOf("c") == 1
	}, 10*time.Second, 5*time.Millisecond, "the restarted member catches up")
	r := shard.NewRouterWith(c.mgrs[old], c.group(old))
	require.Eventually(t, func() bool {
		_, errA := r.Locate("a")
		_, errB := r.Locate("b")
		return errA == nil && errB == nil
	}, 10*time.Second, 5*time.Millisecond, "the restarted member routes both shards' worlds")
}

func TestOpenRefusesABadConfigAndASecondMetaGroup(t *testing.T) {
	c := newMetaCluster(t, 1)
	_, err := Open(c.mgrs["n1"], Config{})
	require.ErrorContains(t, err, "a node id (ID) is required")
	cfg := DefaultConfig()
	cfg.ID, cfg.Logger, cfg.Bootstrap = "n1", testLogger(), true
	_, err = Open(c.mgrs["n1"], cfg)
	require.ErrorContains(t, err, "do not name this node")
	cfg.Bootstrap = false
	_, err = Open(c.mgrs["n1"], cfg)
	require.ErrorIs(t, err, shard.ErrGroupTaken)
	_, err = c.mgrs["n1"].Open(shard.MetaGroup, shard.GroupOptions{})
	require.ErrorIs(t, err, shard.ErrGroupTaken, "the meta group's id is not a store's")
}

// A member that does not lead forwards proposals to the leader over the
// meta group's own Layer, and gets its answers and refusals back.
func TestProposalsAreForwardedToTheMetaLeader(t *testing.T) {
	c := newMetaCluster(t, 3)
	leader := c.metaLeader()
	var follower string
	for _, id := range c.ids {
		if id != leader {
			follower = id
			break
		}
	}
	ctx := context.Background()
	f := c.group(follower)
	_, err := f.Propose(ctx, Command{Op: OpPlaceWorld})
	require.ErrorIs(t, err, ErrBadCommand, "refused before it leaves the node")
	require.Eventually(t, func() bool {
		_, err = f.Propose(ctx, Command{Op: OpPlaceWorld, World: "w"})
		return errors.Is(err, ErrRefused)
	}, 10*time.Second, 10*time.Millisecond, "no shards yet: refused at the leader (%v)", err)
	require.ErrorContains(t, err, "at the meta leader")
	c.addNodes()
	res := c.propose(follower, Command{Op: OpCreateShard, Shard: 4, Replicas: 2})
	require.Equal(t, []string{"n1", "n2"}, res.Voters)
	require.Equal(t, uint64(4), c.propose(follower, Command{Op: OpPlaceWorld, World: "w"}).Shard)
	require.Eventually(t, func() bool { m := f.View().Map; return len(m.Shards) > 0 && m.ShardOf("w") == 4 }, 10*time.Second, 5*time.Millisecond)

	// A proposal forwarded to a member that does not lead is answered
	// not_leader, never forwarded on; a bad one bad_command; an oversized
	// frame is not read.
	to := raft.ServerAddress(c.muxes[follower].Addr().String())
	good, err := Command{Op: OpPlaceWorld, World: "x"}.Encode()
	require.NoError(t, err)
	a, ok := rawForward(t, f, to, good)
	require.True(t, ok)
	_, err = a.result()
	require.ErrorIs(t, err, ErrNotLeader)
	a, ok = rawForward(t, f, raft.ServerAddress(c.muxes[leader].Addr().String()), []byte{commandVersion, '{'})
	require.True(t, ok)
	_, err = a.result()
	require.ErrorIs(t, err, ErrBadCommand)
	_, ok = rawForward(t, f, to, make([]byte, maxForward+1))
	require.False(t, ok, "no answer to an oversized frame")
	_, err = forwardAnswer{Code: "exploded", Error: "boom"}.result()
	require.ErrorContains(t, err, "boom")
}

// rawForward sends body as a forwarded proposal from g to the member at
// addr and reads the answer; false when none came.
func rawForward(t *testing.T, g *Group, addr raft.ServerAddress, body []byte) (forwardAnswer, bool) {
	t.Helper()
	conn, err := g.layer.Dial(addr, 5*time.Second)
	require.NoError(t, err)
	defer conn.Close()
	require.NoError(t, conn.SetDeadline(time.Now().Add(10*time.Second)))
	_, err = conn.Write([]byte{forwardMagic})
	require.NoError(t, err)
	if err := writeFrame(conn, body); err != nil {
		return forwardAnswer{}, false
	}
	b, err := readFrame(conn)
	if err != nil {
		return forwardAnswer{}, false
	}
	var a forwardAnswer
	require.NoError(t, json.Unmarshal(b, &a))
	return a, true
}

// Without a quorum there is no leader to apply or forward to.
func TestProposeWithoutALeaderFails(t *testing.T) {
	c := newMetaCluster(t, 2)
	leader := c.metaLeader()
	require.NoError(t, c.mgrs[leader].CloseGroup(context.Background(), shard.MetaGroup))
	for _, id := range c.ids {
		if id == leader {
			continue
		}
		require.Eventually(t, func() bool { return !c.group(id).IsLeader() && c.group(id).Leader() == "" }, 10*time.Second, 5*time.Millisecond)
		_, err := c.group(id).Propose(context.Background(), Command{Op: OpPlaceWorld, World: "w"})
		require.ErrorIs(t, err, ErrNotLeader)
	}
}

// Every member seeds the meta map from the same static map; it is
// applied once, its shards start on their voters, and the other nodes
// route their worlds.
func TestMembersSeedTheMetaMapFromAStaticMap(t *testing.T) {
	seed := &shard.Map{Shards: []shard.MapShard{{ID: 1, Voters: []string{"n1", "n2"}}}, Worlds: map[string]uint64{"w": 1}}
	c := newMetaClusterWith(t, 3, func(cfg *Config) {
		if seed.Nodes == nil { // the first member: every address is known
			seed.Nodes = map[string]shard.MapNode{}
			for _, s := range cfg.Servers {
				seed.Nodes[string(s.ID)] = shard.MapNode{Raft: string(s.Address), HTTP: "http-" + string(s.ID) + ":80"}
			}
		}
		cfg.Seed = seed
	})
	leader := c.shardLeader("w")
	c.routesTo("n3", "w", leader, 1)
	for _, id := range c.ids {
		require.Eventually(t, func() bool { return len(c.group(id).View().Map.Nodes) == 3 }, 10*time.Second, 5*time.Millisecond)
	}
}
